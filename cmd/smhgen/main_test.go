package main

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

const (
	modelDir  = "../../testdata/models"
	goldenDir = "../../testdata/golden"
)

func fixtures(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join(modelDir, "*.onnx"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		b := filepath.Base(f)
		if strings.HasPrefix(b, "bad_") || b == "bool_initializer.onnx" {
			continue
		}
		out = append(out, f)
	}
	return out
}

func smhgen(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestGoldenIR holds the IR of every fixture after the inference pipeline
// (NAME.ir) and, for classifiers, after the training pipeline
// (NAME.train.ir), byte for byte; go test ./cmd/smhgen -update rewrites the
// files.
func TestGoldenIR(t *testing.T) {
	for _, f := range fixtures(t) {
		for _, emit := range []string{"ir", "train-ir"} {
			name := strings.TrimSuffix(filepath.Base(f), ".onnx")
			ext := map[string]string{"ir": ".ir", "train-ir": ".train.ir"}[emit]
			t.Run(name+ext, func(t *testing.T) {
				code, out, errs := smhgen("-emit="+emit, f)
				if emit == "train-ir" && strings.Contains(errs, "not a classifier") {
					return
				}
				require.Equal(t, 0, code, errs)
				golden := filepath.Join(goldenDir, name+ext)
				if *update {
					require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
					return
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "run go test ./cmd/smhgen -update to create it")
				assert.Equal(t, string(want), out)
			})
		}
	}
}

// TestGoldenGo holds the Go source generated for every fixture, byte for
// byte (testdata/golden/NAME.go.golden; -update rewrites them), and checks
// that generating twice gives identical source and weights.
func TestGoldenGo(t *testing.T) {
	for _, f := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "net.go")
			code, _, errs := smhgen("-pkg", "net", "-o", out, f)
			require.Equal(t, 0, code, errs)
			src, err := os.ReadFile(out)
			require.NoError(t, err)
			weights, err := os.ReadFile(filepath.Join(dir, "net.weights"))
			require.NoError(t, err)

			code, _, errs = smhgen("-pkg", "net", "-o", out, f)
			require.Equal(t, 0, code, errs)
			src2, _ := os.ReadFile(out)
			weights2, _ := os.ReadFile(filepath.Join(dir, "net.weights"))
			require.Equal(t, src, src2, "generation is not deterministic")
			require.Equal(t, weights, weights2, "weights are not deterministic")

			fset := token.NewFileSet()
			af, err := parser.ParseFile(fset, out, src, parser.ParseComments)
			require.NoError(t, err)
			assert.True(t, ast.IsGenerated(af), "the file is not marked generated")

			golden := filepath.Join(goldenDir, name+".go.golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, src, 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./cmd/smhgen -update to create it")
			assert.Equal(t, string(want), string(src))
		})
	}
}

// TestGoldenSMH holds the IR and the Go source of LeNet-5 compressed to 10%
// with fused inference (NAME.smh.ir, NAME.smh.go.golden): where each weight
// is reconstructed, started in the background and waited for.
func TestGoldenSMH(t *testing.T) {
	f := filepath.Join(modelDir, "lenet5.onnx")
	dir := t.TempDir()
	out := filepath.Join(dir, "net.go")
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"lenet5.smh.ir", []string{"-emit=ir", "-fraction", "0.1", f}},
		{"lenet5.smh.go.golden", []string{"-pkg", "net", "-fraction", "0.1", "-o", out, f}},
	} {
		t.Run(c.golden, func(t *testing.T) {
			code, got, errs := smhgen(c.args...)
			require.Equal(t, 0, code, errs)
			if c.args[0] != "-emit=ir" {
				src, err := os.ReadFile(out)
				require.NoError(t, err)
				got = string(src)
			}
			golden := filepath.Join(goldenDir, c.golden)
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./cmd/smhgen -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

// TestGoldenFilesHaveFixtures keeps testdata/golden free of stale files.
func TestGoldenFilesHaveFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*"))
	require.NoError(t, err)
	for _, g := range files {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(filepath.Base(g), ".ir"), ".train"), ".go.golden")
		base = strings.TrimSuffix(base, ".smh")
		_, err := os.Stat(filepath.Join(modelDir, base+".onnx"))
		assert.NoError(t, err, "golden file %s has no model", g)
	}
}

// TestCheck: -check passes on fresh output, fails on stale or missing files
// and writes nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "lenet.go")
	lenet := filepath.Join(modelDir, "lenet5.onnx")
	code, _, errs := smhgen("-check", "-o", out, lenet)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "lenet.go is out of date")
	_, err := os.Stat(out)
	assert.True(t, os.IsNotExist(err), "-check wrote a file")

	code, _, errs = smhgen("-o", out, lenet)
	require.Equal(t, 0, code, errs)
	code, _, errs = smhgen("-check", "-o", out, lenet)
	assert.Equal(t, 0, code, errs)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "lenet.weights"), []byte("stale"), 0o644))
	code, _, errs = smhgen("-check", "-o", out, lenet)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "lenet.weights is out of date")
	b, _ := os.ReadFile(filepath.Join(dir, "lenet.weights"))
	assert.Equal(t, "stale", string(b), "-check rewrote a file")
}

// TestEveryStageRoundTrips prints each fixture's graph after import and after
// every pass, parses it back and prints again: the texts must be equal, and
// the parsed graph must verify at the same stage.
func TestEveryStageRoundTrips(t *testing.T) {
	pl, err := passes.NewPipeline(passes.Inference()...)
	require.NoError(t, err)
	stages := map[string]ir.Stage{}
	for _, p := range passes.Inference() {
		stages[p.Name] = p.Stage
	}
	check := func(t *testing.T, stage ir.Stage, g *ir.Graph) {
		text := ir.Format(g)
		back, err := ir.Parse(text)
		require.NoError(t, err)
		require.Equal(t, text, ir.Format(back))
		require.NoError(t, ir.Verify(back, stage))
	}
	for _, f := range fixtures(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			g, err := onnx.ImportFile(f, onnx.Options{})
			require.NoError(t, err)
			check(t, ir.StageImported, g)
			stage := ir.StageImported
			ctx := &passes.Context{AfterPass: func(pass string, g *ir.Graph) {
				stage = max(stage, stages[pass])
				check(t, stage, g)
			}}
			require.NoError(t, pl.Run(g, ctx, ""))
		})
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	lenet := filepath.Join(modelDir, "lenet5.onnx")
	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no model", nil, 2, []string{"want one model file"}},
		{"two models", []string{"-emit=ir", lenet, lenet}, 2, []string{"want one model file, have 2"}},
		{"unknown flag", []string{"-frob", "-emit=ir", lenet}, 2, []string{"flag provided but not defined: -frob"}},
		{"bad emit", []string{"-emit=c", lenet}, 2, []string{"-emit=c: want go, ir or train-ir"}},
		{"bad mode", []string{"-mode=fast", "-o", "x.go", lenet}, 2, []string{"-mode=fast: want auto, train or infer"}},
		{"cannot train", []string{"-mode=train", "-o", filepath.Join(t.TempDir(), "x.go"), filepath.Join(modelDir, "shared_initializer.onnx")}, 1, []string{"not a classifier", "[N,8,4,4]"}},
		{"go needs -o", []string{lenet}, 2, []string{"-emit=go needs -o file.go"}},
		{"output not .go", []string{"-o", "net.txt", lenet}, 2, []string{"must be a .go file"}},
		{"bad package", []string{"-pkg", "func", "-o", "x.go", lenet}, 2, []string{`-pkg "func" is not a Go identifier`}},
		{"dump-after with go", []string{"-dump-after=fold", "-o", "x.go", lenet}, 2, []string{"-dump-after needs -emit=ir"}},
		{"bad dump-after", []string{"-emit=ir", "-dump-after=nosuch", lenet}, 2, []string{"no such pass", "import, cleanup, fold, simplify, bnfold, smh, fuse, dce, smh-prefetch, plan"}},
		{"missing file", []string{"-emit=ir", "nosuch.onnx"}, 1, []string{"nosuch.onnx", "no such file"}},
		{"unsupported op", []string{"-emit=ir", filepath.Join(modelDir, "bad_unsupported_op.onnx")}, 1, []string{"bad_unsupported_op.onnx", `node "lstm_0" (LSTM, opset 14): unsupported op`}},
		{"limit", []string{"-emit=ir", "-max-params", "1000", lenet}, 1, []string{"lenet5.onnx", "exceed the limit of 1000"}},
		{"help", []string{"-h"}, 0, []string{"usage: smhgen"}},
		{"no output directory", []string{"-o", filepath.Join(t.TempDir(), "nodir", "x.go"), lenet}, 1, []string{"output directory", "nodir does not exist"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := smhgen(c.args...)
			assert.Equal(t, c.code, code, errs)
			for _, w := range c.want {
				assert.Contains(t, errs, w)
			}
		})
	}
}

func TestFlagsAfterModelAndDumpAfter(t *testing.T) {
	lenet := filepath.Join(modelDir, "lenet5.onnx")
	code, out, errs := smhgen(lenet, "-emit=ir", "-dump-after", "import")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "= Conv")
	assert.Contains(t, out, "v23:? = Gemm") // untyped before shape inference
	code, out, errs = smhgen(lenet, "-dump-after=fold", "-emit=ir", "-v")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "f32[N,400] = Reshape")
	assert.Contains(t, errs, "starts with the export batch 2")
}

// TestOutputIsAtomic: -o writes the file; a failed run leaves an existing
// output untouched and no temporary files behind.
func TestOutputIsAtomic(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "net.ir")
	code, _, errs := smhgen("-emit=ir", "-o", out, filepath.Join(modelDir, "lenet5.onnx"))
	require.Equal(t, 0, code, errs)
	good, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(good), `graph "lenet5"`))

	code, _, _ = smhgen("-emit=ir", "-o", out, filepath.Join(modelDir, "bad_unsupported_op.onnx"))
	require.Equal(t, 1, code)
	after, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, good, after)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

// TestModes: -mode=auto trains classifiers and falls back to inference for
// other models with a note; -mode=infer never trains.
func TestModes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "net.go")
	gen := func(args ...string) (string, string) {
		code, _, errs := smhgen(append(args, "-o", out)...)
		require.Equal(t, 0, code, errs)
		src, err := os.ReadFile(out)
		require.NoError(t, err)
		return string(src), errs
	}
	src, _ := gen(filepath.Join(modelDir, "lenet5.onnx"))
	assert.Contains(t, src, "func (m *Model) TrainStep(")
	src, _ = gen("-mode=infer", filepath.Join(modelDir, "resnet8a_bn.onnx"))
	assert.NotContains(t, src, "TrainStep")
	assert.NotContains(t, src, "BatchNormInference", "inference-only packages fold BatchNorm")
	src, _ = gen(filepath.Join(modelDir, "resnet8a_bn.onnx"))
	assert.Contains(t, src, "rt.Conv2DBatchNorm(", "trainable packages fold BatchNorm into the conv at run time")
	assert.NotContains(t, src, "rt.BatchNormInference(")
	assert.Contains(t, src, "rt.BatchNormTraining(")
	src, errs := gen(filepath.Join(modelDir, "shared_initializer.onnx"))
	assert.NotContains(t, src, "TrainStep")
	assert.Contains(t, errs, "not a classifier")
}

// TestSMHFlags: -report prints the compression's layout and counts; bad
// compression flags are usage errors.
func TestSMHFlags(t *testing.T) {
	lenet := filepath.Join(modelDir, "lenet5.onnx")
	code, out, errs := smhgen("-report", "-fraction", "0.1", lenet)
	require.Equal(t, 0, code, errs)
	assert.Empty(t, out)
	assert.Contains(t, errs, `"fc1.weight"   [120 400]    2572  48000`)
	assert.Contains(t, errs, "variant product, d=249 r=13: 61706 weights in 10 tensors compressed into a pool of 6474 and 10 scales")
	assert.Contains(t, errs, "trainable: 61706 dense -> 6484 compressed")

	dir := t.TempDir()
	code, _, errs = smhgen("-smh=hash", "-params", "5000", "-o", filepath.Join(dir, "net.go"), lenet)
	require.Equal(t, 0, code, errs)
	src, err := os.ReadFile(filepath.Join(dir, "net.go"))
	require.NoError(t, err)
	assert.Regexp(t, `SMHVariant += "hash"`, string(src))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-fraction", "0.5", "-params", "100"}, "not both"},
		{[]string{"-fraction", "1.5"}, "want 0 < F <= 1"},
		{[]string{"-fraction", "0.5", "-smh=magic"}, "-smh=magic: want product, hash or kron"},
		{[]string{"-fraction", "0.5", "-smh-scope=dense"}, "want all or conv"},
		{[]string{"-fraction", "0.5", "-smh-exclude=("}, "-smh-exclude"},
		{[]string{"-fraction", "0.5", "-smh-inference=lazy"}, "want fused or cached"},
		{[]string{"-report"}, "-report needs -fraction or -params"},
	} {
		code, _, errs := smhgen(append(c.args, "-emit=ir", lenet)...)
		assert.Equal(t, 2, code, errs)
		assert.Contains(t, errs, c.want)
	}
	code, _, errs = smhgen("-params", "10", "-emit=ir", lenet)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "budget")
}

// TestSMHInitFlag: -smh-init=fit fits the pool to the model's weights (the
// log says how well), the same way on every run, unlike the random pool;
// other values, and fit without compression, are usage errors.
func TestSMHInitFlag(t *testing.T) {
	lenet := filepath.Join(modelDir, "lenet5.onnx")
	for _, variant := range []string{"product", "kron", "hash"} {
		code, _, errs := smhgen("-v", "-fraction", "0.5", "-smh="+variant, "-smh-init=fit", "-emit=ir", lenet)
		require.Equal(t, 0, code, errs)
		assert.Regexp(t, `smh: fit the pool to the weights \(.*\) in .*: relative error 0\.[0-9]+`, errs, variant)
	}
	code, _, errs := smhgen("-v", "-fraction", "0.5", "-emit=ir", lenet)
	require.Equal(t, 0, code, errs)
	assert.NotContains(t, errs, "smh: fit")

	dir := t.TempDir()
	weights := func(name string, args ...string) []byte {
		out := filepath.Join(dir, name+".go")
		code, _, errs := smhgen(append(args, "-mode=infer", "-fraction", "0.1", "-o", out, lenet)...)
		require.Equal(t, 0, code, errs)
		b, err := os.ReadFile(filepath.Join(dir, name+".weights"))
		require.NoError(t, err)
		return b
	}
	fit1, fit2, rnd := weights("fit1", "-smh-init=fit"), weights("fit2", "-smh-init=fit"), weights("rnd", "-smh-init=random")
	assert.Equal(t, fit1, fit2)
	assert.NotEqual(t, fit1, rnd)
	assert.Equal(t, rnd, weights("default"))

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-fraction", "0.5", "-smh-init=svd"}, "-smh-init=svd: want random or fit"},
		{[]string{"-smh-init=fit"}, "-smh-init=fit needs -fraction or -params"},
	} {
		code, _, errs := smhgen(append(c.args, "-emit=ir", lenet)...)
		assert.Equal(t, 2, code, errs)
		assert.Contains(t, errs, c.want)
	}
}
