package main

import (
	"bytes"
	"flag"
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

// TestGoldenIR holds the IR of every fixture after the inference pipeline,
// byte for byte; go test ./cmd/smhgen -update rewrites the files.
func TestGoldenIR(t *testing.T) {
	for _, f := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		t.Run(name, func(t *testing.T) {
			code, out, errs := smhgen("-emit=ir", f)
			require.Equal(t, 0, code, errs)
			golden := filepath.Join(goldenDir, name+".ir")
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

// TestGoldenFilesHaveFixtures keeps testdata/golden free of stale files.
func TestGoldenFilesHaveFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.ir"))
	require.NoError(t, err)
	for _, g := range files {
		m := filepath.Join(modelDir, strings.TrimSuffix(filepath.Base(g), ".ir")+".onnx")
		_, err := os.Stat(m)
		assert.NoError(t, err, "golden file %s has no model", g)
	}
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

func TestDeterministic(t *testing.T) {
	f := filepath.Join(modelDir, "mobilenetv3_tiny_bn.onnx")
	_, a, _ := smhgen(f)
	_, b, _ := smhgen(f)
	assert.Equal(t, a, b)
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
		{"two models", []string{lenet, lenet}, 2, []string{"want one model file, have 2"}},
		{"unknown flag", []string{"-frob", lenet}, 2, []string{"flag provided but not defined: -frob"}},
		{"bad emit", []string{"-emit=go", lenet}, 2, []string{"-emit=go: only ir"}},
		{"bad dump-after", []string{"-dump-after=nosuch", lenet}, 2, []string{"no such pass", "import, cleanup, fold, simplify, bnfold, fuse, dce, plan"}},
		{"missing file", []string{"nosuch.onnx"}, 1, []string{"nosuch.onnx", "no such file"}},
		{"unsupported op", []string{filepath.Join(modelDir, "bad_unsupported_op.onnx")}, 1, []string{"bad_unsupported_op.onnx", `node "lstm_0" (LSTM, opset 14): unsupported op`}},
		{"limit", []string{"-max-params", "1000", lenet}, 1, []string{"lenet5.onnx", "exceed the limit of 1000"}},
		{"help", []string{"-h"}, 0, []string{"usage: smhgen"}},
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
	code, out, errs := smhgen(lenet, "-dump-after", "import")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "= Conv")
	assert.Contains(t, out, "v23:? = Gemm") // untyped before shape inference
	code, out, errs = smhgen(lenet, "-dump-after=fold", "-v")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "f32[N,400] = Reshape")
	assert.Contains(t, errs, "starts with the export batch 2")
}

// TestOutputIsAtomic: -o writes the file; a failed run leaves an existing
// output untouched and no temporary files behind.
func TestOutputIsAtomic(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "net.ir")
	code, _, errs := smhgen("-o", out, filepath.Join(modelDir, "lenet5.onnx"))
	require.Equal(t, 0, code, errs)
	good, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(good), `graph "lenet5"`))

	code, _, _ = smhgen("-o", out, filepath.Join(modelDir, "bad_unsupported_op.onnx"))
	require.Equal(t, 1, code)
	after, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, good, after)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}
