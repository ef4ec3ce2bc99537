package onnx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
)

// FuzzImport feeds arbitrary bytes to the frontend and, when they import,
// to the inference pipeline: every outcome must be a graph or an error,
// never a panic, and an imported graph must verify.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"lenet5.onnx", "shared_initializer.onnx", "bool_initializer.onnx", "bad_unsupported_op.onnx",
		"bad_missing_initializer.onnx", "bad_dtype.onnx", "resnet8a.onnx"} {
		b, err := os.ReadFile(filepath.Join(models, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(reluModel().bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Import(data, "fuzz.onnx", Options{MaxElems: 1 << 20})
		if err != nil {
			return
		}
		if err := ir.Verify(g, ir.StageImported); err != nil {
			t.Fatalf("imported graph does not verify: %v", err)
		}
		pl, err := passes.NewPipeline(passes.Inference()...)
		if err != nil {
			t.Fatal(err)
		}
		// Errors are fine (bad shapes, unsupported combinations); panics
		// are not, and the pipeline turns a pass's panic into an error
		// that says "internal error".
		if err := pl.Run(g, nil, ""); err != nil && containsInternal(err.Error()) {
			t.Fatalf("pipeline panicked: %v", err)
		}
	})
}

func containsInternal(s string) bool {
	for i := 0; i+len("internal error") <= len(s); i++ {
		if s[i:i+len("internal error")] == "internal error" {
			return true
		}
	}
	return false
}
