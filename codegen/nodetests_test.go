package codegen

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// updateOps rewrites docs/ops.md from the node-test results. The name is
// not -update so that it cannot clash with a golden-file flag elsewhere in
// the package.
var updateOps = flag.Bool("update-ops", false, "rewrite docs/ops.md from ONNX's backend node tests")

// nodeTestData is where Debian's libonnx-testdata installs ONNX's backend
// node tests: one directory per test with model.onnx and
// test_data_set_0/{input,output}_N.pb.
const nodeTestData = "/usr/share/libonnx-testdata/data/node"

// opsDoc is the op coverage table the node tests maintain.
const opsDoc = "../docs/ops.md"

// Tolerance of the numeric comparison: |got-want| <= nodeAtol +
// nodeRtol·|want|, elementwise. The node tests are small (reductions over at
// most a few hundred terms), so float32 rounding in a different summation
// order stays far below 1e-4 relative, while any real mistake (a wrong index,
// attribute or broadcast) gives errors of order one. The absolute term
// covers results that cancel to near zero. It is tighter than ONNX's own
// rtol 1e-3 in relative terms, looser than its atol 1e-7, which only a
// bit-exact float32 implementation could meet near zero.
const (
	nodeAtol = 1e-4
	nodeRtol = 1e-4
)

// nodeTest is one ONNX backend node test and what became of it.
type nodeTest struct {
	name string   // directory name, test_add
	ops  []string // distinct op types of its nodes, sorted
	// unsupported lists op types the frontend does not import; such a test
	// is not compiled.
	unsupported []string
	// reject is the compile-time error, empty when the test compiled.
	reject string
	pkg    string
	gen    *Output
	// single: the model has one input and one output, so the generated
	// package has Forward rather than ForwardAll.
	single bool
	ins    []tensorData
	outs   []tensorData
	// baked lists the graph inputs made initializers (see
	// bakeConstInputs).
	baked []string
	// failure is the numeric mismatch or run-time error, empty when the
	// generated code reproduced every output.
	failure string
	passed  bool
	// worst is the largest error of a passing test as a fraction of its
	// tolerance.
	worst float64
}

// tensorData is a decoded TensorProto.
type tensorData struct {
	name  string
	dtype int64
	dims  []int
	data  []float32 // FLOAT data only
	raw   []byte    // the serialized TensorProto
}

// TestONNXNodeTests compiles every ONNX backend node test whose ops the
// frontend imports, builds all the generated packages in one temporary
// module, runs each on the test's inputs and compares with ONNX's expected
// outputs. A compile-time rejection is fine (it is recorded in docs/ops.md);
// a panic in the compiler, generated code that does not build or that
// computes wrong numbers fails the test.
func TestONNXNodeTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code for hundreds of models")
	}
	if _, err := os.Stat(nodeTestData); err != nil {
		t.Skipf("ONNX node tests not installed (%v): apt-get install libonnx-testdata", err)
	}
	dirs, err := os.ReadDir(nodeTestData)
	require.NoError(t, err)
	supported := map[string]bool{}
	for _, op := range onnx.SupportedOps() {
		supported[op] = true
	}

	var tests []*nodeTest
	var total int
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		total++
		nt := &nodeTest{name: d.Name()}
		model, err := os.ReadFile(filepath.Join(nodeTestData, nt.name, "model.onnx"))
		if err != nil {
			continue // not a model test
		}
		nt.ops, err = modelOpTypes(model)
		require.NoError(t, err, nt.name)
		for _, op := range nt.ops {
			if !supported[op] {
				nt.unsupported = append(nt.unsupported, op)
			}
		}
		tests = append(tests, nt)
		if len(nt.unsupported) == 0 {
			nt.pkg = fmt.Sprintf("%s%d", PackageName(strings.TrimPrefix(nt.name, "test_")), len(tests))
			compileNodeTest(t, nt, model)
		}
	}

	dir := tempModule(t)
	var compiled []*nodeTest
	for _, nt := range tests {
		if nt.pkg != "" && nt.reject == "" {
			compiled = append(compiled, nt)
		}
	}
	if len(compiled) > 0 {
		runNodeTests(t, dir, compiled)
	}

	var considered, passed int
	reasons := map[string]int{}
	for _, nt := range tests {
		if len(nt.unsupported) > 0 {
			continue
		}
		considered++
		why, known := knownFailures[nt.name]
		switch {
		case nt.reject != "":
			reasons[abbreviate(nt.reject)]++
		case nt.passed:
			passed++
		case known:
			t.Logf("%s: known failure (%s): %s", nt.name, why, firstLine(nt.failure))
			continue
		default:
			t.Errorf("%s: generated code gives wrong results: %s", nt.name, nt.failure)
		}
		if known {
			t.Errorf("%s is listed in knownFailures but no longer fails: remove it", nt.name)
		}
	}
	t.Logf("%d node tests, %d use only supported ops: %d compiled, %d passed, %d rejected at compile time",
		total, considered, len(compiled), passed, considered-len(compiled))
	if i := slices.IndexFunc(compiled, func(nt *nodeTest) bool { return nt.passed }); i >= 0 {
		worst := compiled[i]
		for _, nt := range compiled {
			if nt.passed && nt.worst > worst.worst {
				worst = nt
			}
		}
		t.Logf("largest error of a passing test: %.3g of the tolerance (%s)", worst.worst, worst.name)
	}
	for _, r := range sortedReasons(reasons) {
		t.Logf("  %3d × %s", reasons[r], r)
	}

	doc := opsTable(tests, total)
	if *updateOps {
		require.NoError(t, os.MkdirAll(filepath.Dir(opsDoc), 0o755))
		require.NoError(t, os.WriteFile(opsDoc, doc, 0o644))
		return
	}
	have, err := os.ReadFile(opsDoc)
	if err != nil || !bytes.Equal(have, doc) {
		t.Errorf("docs/ops.md is stale or missing: run go test ./codegen -run ONNXNodeTests -update-ops")
	}
}

// knownFailures are node tests that compile but compute wrong results
// because of a bug outside the code this test may change, with the bug. A
// listed test that no longer fails fails TestONNXNodeTests, so that the
// entry goes with the fix.
var knownFailures = map[string]string{}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// internalError is in the messages of panics the importer and the pass
// pipeline turn into errors: a compiler bug, never a valid rejection.
const internalError = "internal error"

// compileNodeTest compiles one node test and records its data, or the
// reason it was rejected. A panic that reaches here fails the test.
func compileNodeTest(t *testing.T, nt *nodeTest, model []byte) {
	// Data this harness cannot read (sequences, optionals) belongs to
	// models the compiler must reject; it gets the model as it is, and the
	// data only has to be readable if it compiles.
	ins, outs, dataErr := readTestData(filepath.Join(nodeTestData, nt.name, "test_data_set_0"))
	if dataErr == nil {
		var err error
		model, nt.ins, nt.baked, err = bakeConstInputs(model, ins)
		if err != nil {
			t.Errorf("%s: %v", nt.name, err)
			nt.reject = err.Error()
			return
		}
	}
	out, single, err := compileNoBatch(model, nt.name, nt.pkg)
	if err == nil && dataErr != nil {
		t.Errorf("%s: the model compiled, but its test data: %v", nt.name, dataErr)
		nt.reject = dataErr.Error()
		return
	}
	if err != nil {
		if _, ok := err.(panicError); ok || strings.Contains(err.Error(), internalError) {
			t.Errorf("%s: the compiler panicked: %v", nt.name, err)
		}
		nt.reject = err.Error()
		return
	}
	// The frontend takes only FLOAT inputs and outputs, so a compiled model
	// with other data is a compiler bug.
	for i, td := range append(slices.Clone(nt.ins), outs...) {
		if td.dtype != dtFloat {
			t.Errorf("%s: value %d (%q) holds %s data, yet the model compiled", nt.name, i, td.name, onnxDType(td.dtype))
			nt.reject = "non-float data"
			return
		}
	}
	nt.gen, nt.single, nt.outs = out, single, outs
}

// panicError is a panic recovered from the compiler.
type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// compileNoBatch runs the frontend without a batch dimension, the inference
// pipeline and code generation.
func compileNoBatch(model []byte, name, pkg string) (out *Output, single bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError{r}
		}
	}()
	g, err := onnx.Import(model, name+".onnx", onnx.Options{NoBatch: true})
	if err != nil {
		return nil, false, err
	}
	pl, err := passes.NewPipeline(passes.Inference()...)
	if err != nil {
		return nil, false, err
	}
	if err := pl.Run(g, nil, ""); err != nil {
		return nil, false, err
	}
	out, err = Generate(g, Options{Package: pkg, Source: name + ".onnx", WeightsFile: pkg + ".weights"})
	return out, len(g.Inputs) == 1 && len(g.Outputs) == 1, err
}

// modelOpTypes lists the distinct op types of a model's top-level nodes,
// sorted. (ModelProto.graph = 7, GraphProto.node = 1, NodeProto.op_type = 4.)
func modelOpTypes(model []byte) ([]string, error) {
	var ops []string
	err := protoFields(model, func(num protowire.Number, _ uint64, graph []byte) error {
		if num != 7 {
			return nil
		}
		return protoFields(graph, func(num protowire.Number, _ uint64, node []byte) error {
			if num != 1 {
				return nil
			}
			return protoFields(node, func(num protowire.Number, _ uint64, b []byte) error {
				if num == 4 && !slices.Contains(ops, string(b)) {
					ops = append(ops, string(b))
				}
				return nil
			})
		})
	})
	slices.Sort(ops)
	return ops, err
}

// protoFields calls f for each field of a protobuf message with its varint
// value or its bytes; fixed-width fields come as bytes.
func protoFields(msg []byte, f func(num protowire.Number, v uint64, b []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		case protowire.Fixed32Type:
			n = 4
			if len(msg) >= 4 {
				b = msg[:4]
			}
		case protowire.Fixed64Type:
			n = 8
			if len(msg) >= 8 {
				b = msg[:8]
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 || n > len(msg) {
			return fmt.Errorf("malformed protobuf field %d", num)
		}
		msg = msg[n:]
		if err := f(num, v, b); err != nil {
			return err
		}
	}
	return nil
}

// decodeTensor reads a serialized TensorProto: dims (1), data_type (2),
// float_data (4), name (8) and raw_data (9). Only FLOAT data is decoded;
// other element types keep their dtype and no data.
func decodeTensor(b []byte) (tensorData, error) {
	td := tensorData{raw: b}
	var raw, floats []byte
	err := protoFields(b, func(num protowire.Number, v uint64, b []byte) error {
		switch num {
		case 1:
			if b == nil {
				td.dims = append(td.dims, int(v))
				return nil
			}
			for len(b) > 0 {
				d, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return protowire.ParseError(n)
				}
				td.dims, b = append(td.dims, int(d)), b[n:]
			}
		case 2:
			td.dtype = int64(v)
		case 4:
			// Packed or one fixed32 element at a time, float_data is
			// little-endian float32s either way.
			floats = append(floats, b...)
		case 8:
			td.name = string(b)
		case 9:
			raw = b
		}
		return nil
	})
	if err != nil || td.dtype != dtFloat {
		return td, err
	}
	n := 1
	for _, d := range td.dims {
		n *= d
	}
	src := raw
	if src == nil {
		src = floats
	}
	for i := 0; i+4 <= len(src); i += 4 {
		td.data = append(td.data, math.Float32frombits(binary.LittleEndian.Uint32(src[i:])))
	}
	if len(td.data) != n {
		return td, fmt.Errorf("tensor %q: %d values for shape %v", td.name, len(td.data), td.dims)
	}
	return td, nil
}

// readTestData reads input_N.pb and output_N.pb of a test data set.
func readTestData(dir string) (ins, outs []tensorData, err error) {
	for _, kind := range []string{"input", "output"} {
		for i := 0; ; i++ {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.pb", kind, i)))
			if os.IsNotExist(err) {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			td, err := decodeTensor(b)
			if err != nil {
				return nil, nil, fmt.Errorf("%s_%d.pb: %v", kind, i, err)
			}
			if kind == "input" {
				ins = append(ins, td)
			} else {
				outs = append(outs, td)
			}
		}
	}
	return ins, outs, nil
}

// bakeConstInputs turns the model's INT64 graph inputs and its scalar FLOAT
// ones into initializers holding the test's data for them, and returns the
// model with the inputs left to feed. Node tests pass shapes, axes,
// indices, pads, clip bounds and pad values as inputs to cover the general
// case, where exported models hold them as initializers and the compiler
// needs them constant; baked, these tests exercise the shape rules, folding
// and kernels of Reshape, Slice, Gather, Clip and the like instead of
// stopping at "INT64 input". Graph input i takes input_i.pb; IR version 3
// models also list their initializers as inputs, and those are skipped.
func bakeConstInputs(model []byte, data []tensorData) (out []byte, feed []tensorData, baked []string, err error) {
	var graph []byte
	var initNames, inputNames []string
	err = protoFields(model, func(num protowire.Number, _ uint64, b []byte) error {
		if num != 7 {
			return nil
		}
		graph = b
		return protoFields(b, func(num protowire.Number, _ uint64, b []byte) error {
			if num != 5 && num != 11 {
				return nil
			}
			if num == 5 {
				td, err := decodeTensor(b)
				initNames = append(initNames, td.name)
				return err
			}
			inputNames = append(inputNames, valueInfoName(b))
			return nil
		})
	})
	if err != nil {
		return nil, nil, nil, err
	}
	bake := map[string][]byte{}
	i := 0
	for _, name := range inputNames {
		if slices.Contains(initNames, name) {
			continue
		}
		if i >= len(data) {
			return nil, nil, nil, fmt.Errorf("graph input %q has no input_%d.pb", name, i)
		}
		td := data[i]
		i++
		if td.name != "" && td.name != name {
			return nil, nil, nil, fmt.Errorf("graph input %q is fed input_%d.pb, named %q", name, i-1, td.name)
		}
		if td.dtype != dtInt64 && (td.dtype != dtFloat || len(td.dims) != 0) {
			feed = append(feed, td)
			continue
		}
		// The tensor's bytes with its name set: a repeated string field's
		// last occurrence wins.
		bake[name] = protowire.AppendBytes(protowire.AppendTag(slices.Clone(td.raw), 8, protowire.BytesType), []byte(name))
		baked = append(baked, name)
	}
	if i != len(data) {
		return nil, nil, nil, fmt.Errorf("%d graph inputs for %d input_N.pb files", i, len(data))
	}
	if len(bake) == 0 {
		return model, feed, nil, nil
	}
	var g []byte
	for _, f := range rawFields(graph) {
		if f.num == 11 && bake[valueInfoName(f.value)] != nil {
			continue
		}
		g = append(g, f.raw...)
	}
	for _, name := range baked {
		g = protowire.AppendBytes(protowire.AppendTag(g, 5, protowire.BytesType), bake[name])
	}
	for _, f := range rawFields(model) {
		if f.num == 7 {
			out = protowire.AppendBytes(protowire.AppendTag(out, 7, protowire.BytesType), g)
			continue
		}
		out = append(out, f.raw...)
	}
	return out, feed, baked, nil
}

// valueInfoName is the name (field 1) of a ValueInfoProto.
func valueInfoName(b []byte) string {
	for _, f := range rawFields(b) {
		if f.num == 1 {
			return string(f.value)
		}
	}
	return ""
}

// rawField is one field of a protobuf message: its number, its encoding
// (tag included) and, for a length-delimited field, its payload.
type rawField struct {
	num        protowire.Number
	raw, value []byte
}

// rawFields splits a well-formed message into its fields, so that it can be
// rewritten field by field.
func rawFields(msg []byte) []rawField {
	var out []rawField
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			break
		}
		f := rawField{num: num, raw: msg[:n+m]}
		if typ == protowire.BytesType {
			f.value, _ = protowire.ConsumeBytes(msg[n:])
		}
		out = append(out, f)
		msg = msg[n+m:]
	}
	return out
}

// ONNX TensorProto.DataType values the harness tells apart.
const (
	dtFloat = 1
	dtInt64 = 7
)

func onnxDType(t int64) string {
	names := []string{"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE"}
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("dtype %d", t)
}

const nodeTestsMain = `package conformance

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"testing"
%s)

// runner runs one model on a test's inputs.
type runner func(in [][]float32) ([][]float32, error)

var cases = []struct {
	name, pkg           string
	newRunner           func() runner
	inShapes, outShapes [][]int // as the generated package reports them
	wantIn, wantOut     [][]int // as the test data has them
}{
%s}

func read(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// compare checks got against want within |d| <= atol + rtol·|want|, NaN
// matching NaN and infinities matching exactly, and returns the worst
// error as a fraction of its tolerance.
func compare(t *testing.T, what string, got, want []float32) float64 {
	const atol, rtol = %g, %g
	if len(got) != len(want) {
		t.Errorf("%%s: %%d values, want %%d", what, len(got), len(want))
		return math.Inf(1)
	}
	var worst float64
	bad := 0
	for i := range want {
		g, w := float64(got[i]), float64(want[i])
		tol := atol + rtol*math.Abs(w)
		var ok bool
		switch {
		case math.IsNaN(w):
			ok = math.IsNaN(g)
		case math.IsInf(w, 0):
			ok = g == w
		default:
			ok = math.Abs(g-w) <= tol
			worst = math.Max(worst, math.Abs(g-w)/tol)
		}
		if !ok {
			if bad < 5 {
				t.Errorf("%%s[%%d] = %%g, want %%g", what, i, g, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%%s: %%d of %%d values differ by more than %%g + %%g·|want|", what, bad, len(want), atol, rtol)
	}
	return worst
}

// safeRun turns a panic in generated code into an error, so that one
// model's crash is reported as its own failure.
func safeRun(run runner, in [][]float32) (outs [][]float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("panic: %%v\n%%s", r, debug.Stack())
		}
	}()
	return run(in)
}

func TestNodeTests(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !slices.EqualFunc(c.inShapes, c.wantIn, slices.Equal) {
				t.Fatalf("input shapes %%v, the test data has %%v", c.inShapes, c.wantIn)
			}
			if !slices.EqualFunc(c.outShapes, c.wantOut, slices.Equal) {
				t.Errorf("output shapes %%v, the test data has %%v", c.outShapes, c.wantOut)
			}
			in := make([][]float32, len(c.wantIn))
			for i := range in {
				in[i] = read(t, fmt.Sprintf("data/%%s/in%%d", c.pkg, i))
			}
			saved := make([][]float32, len(in))
			for i := range in {
				saved[i] = slices.Clone(in[i])
			}
			run := c.newRunner()
			var first [][]float32
			// Twice on one model: the second run must not depend on state
			// the first left behind.
			for pass := 0; pass < 2; pass++ {
				outs, err := safeRun(run, in)
				if err != nil {
					t.Fatal(err)
				}
				if len(outs) != len(c.wantOut) {
					t.Fatalf("%%d outputs, want %%d", len(outs), len(c.wantOut))
				}
				var worst float64
				for i, got := range outs {
					what := fmt.Sprintf("output %%d", i)
					if pass == 0 {
						first = append(first, slices.Clone(got))
						worst = math.Max(worst, compare(t, what, got, read(t, fmt.Sprintf("data/%%s/want%%d", c.pkg, i))))
					} else if !slices.EqualFunc(got, first[i], func(a, b float32) bool { return a == b || a != a && b != b }) {
						t.Errorf("%%s differs on a second run with the same inputs", what)
					}
				}
				if pass == 0 {
					t.Logf("worst error: %%.3g of the tolerance", worst)
				}
				for i := range in {
					if !slices.EqualFunc(in[i], saved[i], func(a, b float32) bool { return a == b || a != a && b != b }) {
						t.Fatalf("the model wrote into input %%d", i)
					}
				}
			}
		})
	}
}
`

// runNodeTests writes each compiled test's package and data into the
// module at dir, with one test that runs them all, runs go test once and
// records each test's result.
func runNodeTests(t *testing.T, dir string, tests []*nodeTest) {
	var imports, entries strings.Builder
	byName := map[string]*nodeTest{}
	for _, nt := range tests {
		byName[nt.name] = nt
		pkgDir := filepath.Join(dir, nt.pkg)
		require.NoError(t, os.MkdirAll(pkgDir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(pkgDir, nt.pkg+".go"), nt.gen.Go, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(pkgDir, nt.pkg+".weights"), nt.gen.Weights, 0o644))
		dataDir := filepath.Join(dir, "data", nt.pkg)
		require.NoError(t, os.MkdirAll(dataDir, 0o755))
		var wantIn, wantOut strings.Builder
		for i, in := range nt.ins {
			writeFloats(t, filepath.Join(dataDir, fmt.Sprintf("in%d", i)), in.data)
			fmt.Fprintf(&wantIn, "%#v, ", in.dims)
		}
		for i, out := range nt.outs {
			writeFloats(t, filepath.Join(dataDir, fmt.Sprintf("want%d", i)), out.data)
			fmt.Fprintf(&wantOut, "%#v, ", out.dims)
		}
		fmt.Fprintf(&imports, "\t%q\n", "conformance/"+nt.pkg)
		var newRunner, shapes string
		if nt.single {
			newRunner = fmt.Sprintf(`func() runner {
			m := %s.New()
			return func(in [][]float32) ([][]float32, error) {
				if len(in) != 1 {
					return nil, fmt.Errorf("%%d inputs, want 1", len(in))
				}
				y, err := m.Forward(in[0], 1)
				return [][]float32{y}, err
			}
		}`, nt.pkg)
			shapes = fmt.Sprintf("[][]int{%[1]s.InputShape()}, [][]int{%[1]s.OutputShape()}", nt.pkg)
		} else {
			newRunner = fmt.Sprintf(`func() runner {
			m := %s.New()
			return func(in [][]float32) ([][]float32, error) { return m.ForwardAll(in, 1) }
		}`, nt.pkg)
			shapes = fmt.Sprintf("%[1]s.InputShapes(), %[1]s.OutputShapes()", nt.pkg)
		}
		fmt.Fprintf(&entries, "\t{%q, %q,\n\t\t%s,\n\t\t%s,\n\t\t[][]int{%s}, [][]int{%s}},\n",
			nt.name, nt.pkg, newRunner, shapes, wantIn.String(), wantOut.String())
	}
	src := fmt.Sprintf(nodeTestsMain, imports.String(), entries.String(), nodeAtol, nodeRtol)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "nodetests_test.go"), []byte(src), 0o644))

	cmd := exec.Command("go", "test", "-count=1", "-json", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, runErr := cmd.CombinedOutput()
	seen := 0
	output := map[string]*strings.Builder{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		var ev struct{ Action, Test, Output string }
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		name, ok := strings.CutPrefix(ev.Test, "TestNodeTests/")
		nt := byName[name]
		if !ok || nt == nil {
			continue
		}
		switch ev.Action {
		case "output":
			if output[name] == nil {
				output[name] = &strings.Builder{}
			}
			output[name].WriteString(ev.Output)
			if _, w, ok := strings.Cut(ev.Output, "worst error: "); ok {
				fmt.Sscan(w, &nt.worst)
			}
		case "pass":
			nt.passed = true
			seen++
		case "fail":
			seen++
			if o := output[name]; o != nil {
				var lines []string
				for _, l := range strings.Split(o.String(), "\n") {
					if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- ") {
						lines = append(lines, l)
					}
				}
				nt.failure = strings.Join(lines, "\n")
			}
		}
	}
	if seen != len(tests) {
		t.Fatalf("go test in the generated module reported %d of %d tests (%v):\n%s", seen, len(tests), runErr, out)
	}
}

// Patterns abbreviate removes from a rejection: where it happened (the
// pass, the node), the names of values and the numbers in parentheses, so
// that tests rejected for one reason share one line.
var (
	reasonPrefix = regexp.MustCompile(`^(pass \w+: |node "[^"]*" \([^)]*\): |node \w+: |not a valid ONNX model: )+`)
	reasonQuoted = regexp.MustCompile(` "[^"]*"`)
	reasonParens = regexp.MustCompile(` \([^()]*\)`)
	reasonShape  = regexp.MustCompile(`\[[0-9N, ]*\]`)
)

// abbreviate shortens a rejection to its reason.
func abbreviate(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	msg = reasonPrefix.ReplaceAllString(msg, "")
	msg = reasonQuoted.ReplaceAllString(msg, "")
	msg = reasonParens.ReplaceAllString(msg, "")
	msg = reasonShape.ReplaceAllString(msg, "[…]")
	msg = strings.TrimSuffix(msg, ": export the model in eval mode")
	if r := []rune(msg); len(r) > 90 {
		msg = string(r[:89]) + "…"
	}
	return msg
}

// sortedReasons orders reasons by count, most frequent first, then by text.
func sortedReasons(m map[string]int) []string {
	var out []string
	for r := range m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return out
}

// mdCell makes text safe for one cell of a Markdown table.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	return s
}

// opsTable renders docs/ops.md: per ONNX op the frontend imports, how its
// node tests fared, then every test that uses only such ops.
func opsTable(tests []*nodeTest, total int) []byte {
	type row struct {
		tests, skipped, compiled, passed, failed, rejected int
		reasons                                            map[string]int
	}
	rows := map[string]*row{}
	for _, op := range onnx.SupportedOps() {
		rows[op] = &row{reasons: map[string]int{}}
	}
	var considered, compiled, passed, failed int
	allReasons := map[string]int{}
	for _, nt := range tests {
		if len(nt.unsupported) == 0 {
			considered++
			switch {
			case nt.reject != "":
				allReasons[abbreviate(nt.reject)]++
			case nt.passed:
				compiled++
				passed++
			default:
				compiled++
				failed++
			}
		}
		for _, op := range nt.ops {
			r := rows[op]
			switch {
			case r == nil:
				continue
			case len(nt.unsupported) > 0:
				r.skipped++
				continue
			}
			r.tests++
			switch {
			case nt.reject != "":
				r.rejected++
				r.reasons[abbreviate(nt.reject)]++
			case nt.passed:
				r.compiled++
				r.passed++
			default:
				r.compiled++
				r.failed++
			}
		}
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `# ONNX op coverage

Generated by `+"`go test ./codegen -run ONNXNodeTests -update-ops`"+` from ONNX's
backend node tests, as Debian's libonnx-testdata installs them in
%s; do not edit. TestONNXNodeTests fails when this file is stale.

Each node test is one small model with inputs and expected outputs. A test
counts here when every op it uses is one smhgen imports. It is imported
without a batch dimension (`+"`onnx.Options{NoBatch: true}`"+`), its INT64 and
scalar FLOAT inputs (shapes, axes, indices, pads, clip bounds) are first
made initializers holding the test's data, as exported models hold them,
and the rest are fed at run time. It goes through the inference pipeline
and code generation; all the generated packages are built in one module
and each runs on the test's inputs, every output compared elementwise
within |got − want| ≤ %g + %g·|want| (NaN must match NaN).

A rejection is a compile-time error for something smhgen does not support
(non-float data, 1-D or 3-D pooling, softmax over a non-last axis, …),
never a wrong answer; a failure is a wrong answer, which only a known bug
listed in codegen/nodetests_test.go may give. "Other ops" counts the node
tests that use the op together with an op smhgen does not import, which
are not run.

%d node tests; %d use only ops smhgen imports: %d compiled, %d passed, %d failed, %d rejected at compile time.

| op | tests | compiled | passed | failed | rejected | rejections | other ops |
|---|---:|---:|---:|---:|---:|---|---:|
`, nodeTestData, nodeAtol, nodeRtol, total, considered, compiled, passed, failed, considered-compiled)
	for _, op := range onnx.SupportedOps() {
		r := rows[op]
		var rs []string
		for _, reason := range sortedReasons(r.reasons) {
			rs = append(rs, fmt.Sprintf("%d× %s", r.reasons[reason], mdCell(reason)))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %d |\n", op, r.tests, r.compiled, r.passed, r.failed, r.rejected, strings.Join(rs, "; "), r.skipped)
	}

	b.WriteString("\n## Rejections\n\n| count | reason |\n|---:|---|\n")
	for _, reason := range sortedReasons(allReasons) {
		fmt.Fprintf(&b, "| %d | %s |\n", allReasons[reason], mdCell(reason))
	}

	b.WriteString("\n## Tests\n\n| test | ops | inputs made constant | result |\n|---|---|---|---|\n")
	for _, nt := range tests {
		if len(nt.unsupported) > 0 {
			continue
		}
		result := "passed"
		switch {
		case nt.reject != "":
			msg, _, _ := strings.Cut(nt.reject, "\n")
			result = "rejected: " + msg
		case !nt.passed:
			result = "**failed**"
			if why := knownFailures[nt.name]; why != "" {
				result += " (known: " + why + ")"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", nt.name, strings.Join(nt.ops, ", "), mdCell(strings.Join(nt.baked, ", ")), mdCell(result))
	}
	return b.Bytes()
}
