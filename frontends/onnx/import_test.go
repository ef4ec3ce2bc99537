package onnx

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

const models = "../../testdata/models"

// fixtures lists the committed model files that must compile.
func fixtures(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(models, "*.onnx"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if !strings.HasPrefix(filepath.Base(f), "bad_") && filepath.Base(f) != "bool_initializer.onnx" {
			out = append(out, f)
		}
	}
	require.GreaterOrEqual(t, len(out), 10)
	return out
}

// TestFixturesLowerToTypedIR imports every fixture and runs the inference
// pipeline: the result is fully typed, static apart from the batch, and
// produces [N,10] logits (the hostile-name pair: [N,3]).
func TestFixturesLowerToTypedIR(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			g, err := ImportFile(f, Options{})
			require.NoError(t, err)
			require.NoError(t, ir.Verify(g, ir.StageImported))
			pl, err := passes.NewPipeline(passes.Inference()...)
			require.NoError(t, err)
			require.NoError(t, pl.Run(g, nil, ""))
			require.NoError(t, ir.Verify(g, ir.StageLowered))
			require.Len(t, g.Outputs, 1)
			switch filepath.Base(f) {
			case "shared_initializer.onnx":
			case "hostile.onnx", "hostile_clean.onnx":
				assert.Equal(t, ir.Of(ir.F32, ir.BatchDim, 3), g.Outputs[0].Type)
			default:
				assert.Equal(t, ir.Of(ir.F32, ir.BatchDim, 10), g.Outputs[0].Type)
			}
			for _, p := range g.Params {
				assert.Len(t, p.Param.Data, p.Type.Shape.Static(), p.Name)
			}
		})
	}
}

// TestBigFixtures lowers the fixtures too large to commit, which
// testdata/models/export.py writes to big/.
func TestBigFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(models, "big", "*.onnx"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Skip("no big fixtures: run /usr/bin/python3 testdata/models/export.py")
	}
	for _, f := range files {
		g, err := ImportFile(f, Options{})
		require.NoError(t, err, f)
		pl, err := passes.NewPipeline(passes.Inference()...)
		require.NoError(t, err)
		require.NoError(t, pl.Run(g, nil, ""), f)
		assert.Equal(t, ir.Of(ir.F32, ir.BatchDim, 10), g.Outputs[0].Type, f)
	}
}

// TestParamsMatchInitializers checks weights survive decoding bit for bit
// and that BN statistics are kept out of training.
func TestParamsMatchInitializers(t *testing.T) {
	g, err := ImportFile(filepath.Join(models, "resnet8a_bn.onnx"), Options{})
	require.NoError(t, err)
	roles := map[ir.Role]int{}
	for _, p := range g.Params {
		roles[p.Param.Role]++
		wantTrain := p.Param.Role != ir.RoleNormMean && p.Param.Role != ir.RoleNormVar
		assert.Equal(t, wantTrain, p.Param.Trainable, p.Name)
	}
	assert.Equal(t, map[ir.Role]int{ir.RoleWeight: 8, ir.RoleBias: 1, ir.RoleNormScale: 7, ir.RoleNormBias: 7, ir.RoleNormMean: 7, ir.RoleNormVar: 7}, roles)
	// The running variance must be positive: a misread would show here.
	for _, p := range g.Params {
		if p.Param.Role == ir.RoleNormVar {
			for _, v := range p.Param.Data {
				require.True(t, v >= 0.5 && v < 2, "%s holds %v", p.Name, v)
			}
		}
	}
}

// model builds small ONNX files for error cases.
type model struct {
	opset  int64
	nodes  [][]byte
	inits  [][]byte
	inputs [][]byte
	output []byte
}

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func varintField(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func valueInfo(name string, elem int64, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch d := d.(type) {
		case int:
			dim = varintField(nil, 1, int64(d))
		case string:
			dim = bytesField(nil, 2, []byte(d))
		}
		shape = bytesField(shape, 1, dim)
	}
	tt := varintField(nil, 1, elem)
	tt = bytesField(tt, 2, shape)
	typ := bytesField(nil, 1, tt)
	vi := bytesField(nil, 1, []byte(name))
	return bytesField(vi, 2, typ)
}

func floatTensor(name string, dims []int64, vals []float32) []byte {
	var t []byte
	for _, d := range dims {
		t = varintField(t, 1, d)
	}
	t = varintField(t, 2, dtFloat)
	t = bytesField(t, 8, []byte(name))
	raw := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		raw = protowire.AppendFixed32(raw, math.Float32bits(v))
	}
	return bytesField(t, 9, raw)
}

type attr struct {
	name string
	ints []int64
	i    *int64
	s    string
}

func node(op, name string, ins, outs []string, attrs ...attr) []byte {
	var n []byte
	for _, s := range ins {
		n = bytesField(n, 1, []byte(s))
	}
	for _, s := range outs {
		n = bytesField(n, 2, []byte(s))
	}
	n = bytesField(n, 3, []byte(name))
	n = bytesField(n, 4, []byte(op))
	for _, a := range attrs {
		ab := bytesField(nil, 1, []byte(a.name))
		switch {
		case a.i != nil:
			ab = varintField(ab, 3, *a.i)
			ab = varintField(ab, 20, 2)
		case a.s != "":
			ab = bytesField(ab, 4, []byte(a.s))
			ab = varintField(ab, 20, 3)
		default:
			for _, v := range a.ints {
				ab = varintField(ab, 8, v)
			}
			ab = varintField(ab, 20, 7)
		}
		n = bytesField(n, 5, ab)
	}
	return n
}

func (m model) bytes() []byte {
	var g []byte
	for _, n := range m.nodes {
		g = bytesField(g, 1, n)
	}
	g = bytesField(g, 2, []byte("g"))
	for _, t := range m.inits {
		g = bytesField(g, 5, t)
	}
	for _, in := range m.inputs {
		g = bytesField(g, 11, in)
	}
	g = bytesField(g, 12, m.output)
	b := varintField(nil, 1, 7)
	opset := m.opset
	if opset == 0 {
		opset = 14
	}
	b = bytesField(b, 8, varintField(bytesField(nil, 1, nil), 2, opset))
	return bytesField(b, 7, g)
}

func reluModel() model {
	return model{
		nodes:  [][]byte{node("Relu", "relu_0", []string{"x"}, []string{"y"})},
		inputs: [][]byte{valueInfo("x", dtFloat, "batch", 4)},
		output: valueInfo("y", dtFloat, "batch", 4),
	}
}

func TestBuiltModelImports(t *testing.T) {
	g, err := Import(reluModel().bytes(), "relu.onnx", Options{})
	require.NoError(t, err)
	assert.Equal(t, "graph \"relu\" opset=14\ninput v0:f32[N,4] \"x\"\nv1:? = Relu v0 \"relu_0\"\noutput v1 \"y\"\n", ir.Format(g))
}

func i64(v int64) *int64 { return &v }

// TestMalformedInputs: every kind of bad file gets an error that says what
// and where, never a panic.
func TestMalformedInputs(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(models, name))
		require.NoError(t, err)
		return b
	}
	lenet := read("lenet5.onnx")
	withNodes := func(nodes ...[]byte) []byte {
		m := reluModel()
		m.nodes = nodes
		return m.bytes()
	}
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty file", nil, []string{"not an ONNX model", "empty"}},
		{"text", []byte("this is not a model, just text\n"), []string{"not a valid ONNX model"}},
		{"random bytes", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}, []string{"not a valid ONNX model"}},
		{"truncated", lenet[:len(lenet)/2], []string{"not a valid ONNX model"}},
		{"truncated header", lenet[:7], []string{"not a valid ONNX model"}},
		{"unsupported op", read("bad_unsupported_op.onnx"), []string{`node "lstm_0"`, "LSTM", "opset 14", "unsupported op"}},
		{"missing initializer", read("bad_missing_initializer.onnx"), []string{`node "conv_0"`, "Conv", `"conv.weight"`, "not an initializer"}},
		{"float16", read("bad_dtype.onnx"), []string{"FLOAT16", "not supported"}},
		{"bool initializer", read("bool_initializer.onnx"), []string{`tensor "cond_raw"`, "BOOL"}},
		{"custom domain", func() []byte {
			n := node("Relu", "r", []string{"x"}, []string{"y"})
			n = bytesField(n, 7, []byte("com.microsoft"))
			return withNodes(n)
		}(), []string{`node "r"`, `domain "com.microsoft"`}},
		{"unknown attribute", withNodes(node("Relu", "r", []string{"x"}, []string{"y"}, attr{name: "frob", i: i64(1)})), []string{`node "r" (Relu`, `attribute "frob" is not supported`}},
		{"bad arity", withNodes(node("Relu", "r", []string{"x", "x"}, []string{"y"})), []string{`node "r" (Relu`, "want 1 inputs, have 2"}},
		{"unsupported output used", withNodes(
			node("MaxPool", "mp", []string{"x"}, []string{"p", "idx"}, attr{name: "kernel_shape", ints: []int64{1, 1}}),
			node("Relu", "r", []string{"idx"}, []string{"y"})), []string{`node "r"`, `input "idx"`, `output 1 of node "mp" (MaxPool)`}},
		{"symbolic inner dim", func() []byte {
			m := reluModel()
			m.inputs = [][]byte{valueInfo("x", dtFloat, "batch", "width")}
			return m.bytes()
		}(), []string{`graph input "x"`, `"width"`, "symbolic"}},
		{"int64 output", func() []byte {
			m := reluModel()
			m.output = valueInfo("y", dtInt64, "batch", 4)
			return m.bytes()
		}(), []string{`graph output "y"`, "INT64", "want FLOAT"}},
		{"old opset", func() []byte { m := reluModel(); m.opset = 5; return m.bytes() }(), []string{"opset 5 is not supported"}},
		{"initializer length", func() []byte {
			m := reluModel()
			m.inits = [][]byte{floatTensor("w", []int64{2, 3}, []float32{1, 2, 3})}
			return m.bytes()
		}(), []string{`tensor "w"`, "holds 3 elements", "need 6"}},
		{"negative dim", func() []byte {
			m := reluModel()
			m.inits = [][]byte{floatTensor("w", []int64{-2, 3}, nil)}
			return m.bytes()
		}(), []string{`tensor "w"`, "negative dimension"}},
		{"huge tensor", func() []byte {
			m := reluModel()
			m.inits = [][]byte{floatTensor("w", []int64{1 << 20, 1 << 20}, nil)}
			return m.bytes()
		}(), []string{`tensor "w"`, "exceed the limit"}},
		{"overflowing dims", func() []byte {
			m := reluModel()
			m.inits = [][]byte{floatTensor("w", []int64{1 << 62, 1 << 62, 4}, nil)}
			return m.bytes()
		}(), []string{`tensor "w"`, "overflow"}},
		{"huge input", func() []byte {
			m := reluModel()
			m.inputs = [][]byte{valueInfo("x", dtFloat, 1, 1<<30, 1<<30)}
			return m.bytes()
		}(), []string{`value "x"`, "limit"}},
		{"output undefined", func() []byte {
			m := reluModel()
			m.output = valueInfo("nowhere", dtFloat, 1)
			return m.bytes()
		}(), []string{`graph output "nowhere"`}},
		{"output defined twice", withNodes(node("Relu", "a", []string{"x"}, []string{"y"}), node("Relu", "b", []string{"x"}, []string{"y"})), []string{`node "b"`, `output "y" is defined twice`}},
		{"conv rank", withNodes(node("Conv", "c", []string{"x", "x"}, []string{"y"}, attr{name: "kernel_shape", ints: []int64{3}})), []string{`node "c" (Conv`, "only 2-D"}},
		{"subgraph attribute", func() []byte {
			n := node("Relu", "r", []string{"x"}, []string{"y"})
			ab := bytesField(nil, 1, []byte("body"))
			ab = bytesField(ab, 6, nil)
			n = bytesField(n, 5, ab)
			return withNodes(n)
		}(), []string{`node "r"`, "subgraph"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := Import(c.data, "m.onnx", Options{MaxElems: 1 << 24})
			require.Error(t, err)
			assert.Nil(t, g)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestShapeErrorsNameTheNode: a model that imports but whose shapes do not
// agree fails in the pipeline with the node's name and op.
func TestShapeErrorsNameTheNode(t *testing.T) {
	m := reluModel()
	m.inits = [][]byte{floatTensor("w", []int64{3, 5}, make([]float32, 15))}
	m.nodes = [][]byte{node("MatMul", "mm", []string{"x", "w"}, []string{"y"})}
	g, err := Import(m.bytes(), "m.onnx", Options{})
	require.NoError(t, err)
	pl, err := passes.NewPipeline(passes.Inference()...)
	require.NoError(t, err)
	err = pl.Run(g, nil, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `node "mm" (MatMul): inner dimensions differ: [N,4] times [3,5]`)
}

// TestNoBatch: with Options.NoBatch every input dimension is static, so a
// node test's [3,4,5] input and its [5] broadcast operand keep their shapes,
// nothing is batched after the pipeline, and ExportBatch stays 0.
func TestNoBatch(t *testing.T) {
	m := model{
		nodes:  [][]byte{node("Add", "add", []string{"x", "b"}, []string{"y"})},
		inputs: [][]byte{valueInfo("x", dtFloat, 3, 4, 5), valueInfo("b", dtFloat, 5)},
		output: valueInfo("y", dtFloat, 3, 4, 5),
	}
	g, err := Import(m.bytes(), "add.onnx", Options{NoBatch: true})
	require.NoError(t, err)
	assert.Equal(t, 0, g.ExportBatch)
	require.Len(t, g.Inputs, 2)
	assert.Equal(t, ir.Of(ir.F32, 3, 4, 5), g.Inputs[0].Type)
	assert.Equal(t, ir.Of(ir.F32, 5), g.Inputs[1].Type)
	pl, err := passes.NewPipeline(passes.Inference()...)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, nil, ""))
	assert.Equal(t, ir.Of(ir.F32, 3, 4, 5), g.Outputs[0].Type)
	for _, n := range g.Nodes {
		for _, r := range n.Results {
			assert.False(t, r.Type.Shape.HasBatch(), "v%d %v", r.ID, r.Type)
		}
	}
	assert.Zero(t, g.Arena, "no value is batched, so the batched arena is empty")
	assert.Equal(t, 60, g.Fixed)

	// Without the option the same file reads dimension 0 of each input as
	// a static export batch, and 3 and 5 disagree.
	_, err = Import(m.bytes(), "add.onnx", Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "batch 5 differs from another input's 3")

	// A scalar input is fine without a batch.
	m.inputs[1] = valueInfo("b", dtFloat)
	g, err = Import(m.bytes(), "add.onnx", Options{NoBatch: true})
	require.NoError(t, err)
	assert.Equal(t, ir.Of(ir.F32), g.Inputs[1].Type)

	// A symbolic dimension has no size to take: an error naming the input
	// and the dimension, wherever it is.
	for _, c := range []struct {
		dims []any
		want string
	}{{[]any{"n", 4, 5}, `dimension 0 ("n") is symbolic`}, {[]any{3, "w", 5}, `dimension 1 ("w") is symbolic`}} {
		m.inputs[0] = valueInfo("x", dtFloat, c.dims...)
		_, err = Import(m.bytes(), "add.onnx", Options{NoBatch: true})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `graph input "x"`)
		assert.Contains(t, err.Error(), c.want)
	}
}

// TestGraphLimits: structurally wrong graphs and absurd attributes are
// errors that name the node and op, found by the import or the inference
// pipeline, never panics.
func TestGraphLimits(t *testing.T) {
	conv := func(attrs ...attr) model {
		return model{
			opset:  14,
			nodes:  [][]byte{node("Conv", "conv_1", []string{"x", "w"}, []string{"y"}, attrs...)},
			inits:  [][]byte{floatTensor("w", []int64{2, 1, 3, 3}, make([]float32, 18))},
			inputs: [][]byte{valueInfo("x", dtFloat, "batch", 1, 4, 4)},
			output: valueInfo("y", dtFloat, "batch", 2, 2, 2),
		}
	}
	big := conv()
	big.inits = [][]byte{floatTensor("w", []int64{2, 1, 7, 7}, make([]float32, 98))}
	cases := []struct {
		name string
		m    model
		want []string
	}{
		{"cycle", func() model {
			m := reluModel()
			m.nodes = [][]byte{
				node("Relu", "a", []string{"b_out"}, []string{"a_out"}),
				node("Relu", "b", []string{"a_out"}, []string{"b_out"}),
				node("Relu", "c", []string{"a_out"}, []string{"y"}),
			}
			return m
		}(), []string{`node "a" (Relu`, `"b_out" is the output of node "b" (Relu), which comes later`, "cycle"}},
		{"undefined input", func() model {
			m := reluModel()
			m.nodes = [][]byte{node("Add", "add_1", []string{"x", "ghost"}, []string{"y"})}
			return m
		}(), []string{`node "add_1"`, `"ghost"`}},
		{"kernel larger than input", big, []string{`node "conv_1" (Conv`, "kernel"}},
		{"zero stride", conv(attr{name: "strides", ints: []int64{0, 1}}), []string{`node "conv_1" (Conv`, "stride"}},
		{"negative pad", conv(attr{name: "pads", ints: []int64{-1, 0, 0, 0}}), []string{`node "conv_1" (Conv`, "pad"}},
		{"absurd dilation", conv(attr{name: "dilations", ints: []int64{1 << 40, 1}}), []string{`node "conv_1" (Conv`, "dilations", "out of range"}},
		{"kernel_shape disagrees", conv(attr{name: "kernel_shape", ints: []int64{5, 5}}), []string{`node "conv_1" (Conv`, "kernel"}},
		{"group does not divide", conv(attr{name: "group", i: i64(3)}), []string{`node "conv_1" (Conv`, "group"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := func() (err error) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				g, err := Import(c.m.bytes(), "m.onnx", Options{})
				if err != nil {
					return err
				}
				pl, err := passes.NewPipeline(passes.Inference()...)
				require.NoError(t, err)
				return pl.Run(g, nil, "")
			}()
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			t.Log(err)
		})
	}
}

// TestBatchNormParamsAreUntied: PyTorch's exporter merges equal
// initializers, so two freshly initialised BatchNorms share one tensor of
// ones (as scale and as variance) and one of zeros, read directly or
// through Identity nodes named after the merged tensors. Each BatchNorm
// must get its own four params, of the right roles, with those names.
func TestBatchNormParamsAreUntied(t *testing.T) {
	ones, zeros := make([]float32, 2), make([]float32, 2)
	ones[0], ones[1] = 1, 1
	m := model{
		nodes: [][]byte{
			node("Identity", "Identity_0", []string{"bn.weight"}, []string{"bn.running_var"}),
			node("Identity", "Identity_1", []string{"bn.bias"}, []string{"bn.running_mean"}),
			node("Identity", "Identity_2", []string{"bn.weight"}, []string{"bn2.weight"}),
			node("BatchNormalization", "bn_1", []string{"x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, []string{"a"}),
			node("BatchNormalization", "bn_2", []string{"a", "bn2.weight", "bn.bias", "bn.bias", "bn.weight"}, []string{"y"}),
		},
		inits:  [][]byte{floatTensor("bn.weight", []int64{2}, ones), floatTensor("bn.bias", []int64{2}, zeros)},
		inputs: [][]byte{valueInfo("x", dtFloat, "batch", 2, 3, 3)},
		output: valueInfo("y", dtFloat, "batch", 2, 3, 3),
	}
	g, err := Import(m.bytes(), "bn.onnx", Options{})
	require.NoError(t, err)
	seen := map[*ir.Value]bool{}
	wantRoles := []ir.Role{ir.RoleNormScale, ir.RoleNormBias, ir.RoleNormMean, ir.RoleNormVar}
	var names []string
	for _, n := range g.Nodes {
		if n.Op != ir.OpBatchNorm {
			continue
		}
		for i := 1; i <= 4; i++ {
			p := n.Args[i]
			require.Equal(t, ir.KindParam, p.Kind, "%s arg %d", n.Name, i)
			require.False(t, seen[p], "%s arg %d shares %q", n.Name, i, p.Name)
			seen[p] = true
			assert.Equal(t, wantRoles[i-1], p.Param.Role, "%s arg %d", n.Name, i)
			assert.Equal(t, i <= 2, p.Param.Trainable, "%s arg %d", n.Name, i)
			want := zeros
			if i == 1 || i == 4 {
				want = ones
			}
			assert.Equal(t, want, p.Param.Data, "%s arg %d", n.Name, i)
			names = append(names, p.Name)
		}
	}
	assert.Equal(t, []string{"bn.weight#2", "bn.bias#2", "bn.running_mean", "bn.running_var",
		"bn2.weight", "bn.bias#3", "bn.bias", "bn.weight"}, names)
}
