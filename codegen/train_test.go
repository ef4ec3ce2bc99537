package codegen

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/internal/npy"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/require"
)

// trainFixtures maps each model with PyTorch training references to the
// export it trains from (BN kept) and its reference file.
var trainFixtures = []struct{ model, onnx, ref string }{
	{"lenet5", "lenet5.onnx", "lenet5.train.npz"},
	{"mlp", "mlp.onnx", "mlp.train.npz"},
	{"resnet8a", "resnet8a_bn.onnx", "resnet8a.train.npz"},
	{"mobilenetv3_tiny", "mobilenetv3_tiny_bn.onnx", "mobilenetv3_tiny.train.npz"},
	{"efficientnet_tiny", "efficientnet_tiny_bn.onnx", "big/efficientnet_tiny.train.npz"},
}

// trainRef is what the harness reads: PyTorch's batch, loss, gradients and
// parameters after optimizer steps, keyed by initializer name.
type trainRef struct {
	X       []float32            `json:"x"`
	Labels  []int32              `json:"labels"`
	Loss    float32              `json:"loss"`
	Grad    map[string][]float32 `json:"grad"`
	Running map[string][]float32 `json:"running"`
	SGD     map[string][]float32 `json:"sgd"`
	AdamW   map[string][]float32 `json:"adamw"`
}

func loadTrainRef(t *testing.T, path string) *trainRef {
	z, err := npy.ReadNPZ(path)
	require.NoError(t, err)
	r := &trainRef{X: z["input"].Data, Loss: z["loss"].Data[0], Grad: map[string][]float32{}, Running: map[string][]float32{},
		SGD: map[string][]float32{}, AdamW: map[string][]float32{}}
	for _, l := range z["labels"].Ints {
		r.Labels = append(r.Labels, int32(l))
	}
	for k, a := range z {
		for prefix, m := range map[string]map[string][]float32{"grad/": r.Grad, "running/": r.Running, "sgd/": r.SGD, "adamw/": r.AdamW} {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				m[name] = a.Data
			}
		}
	}
	return r
}

// generateTrainable compiles a model's inference and training programs into
// one package under dir, and reports false for a model that cannot be
// trained (not a classifier).
func generateTrainable(t *testing.T, file, dir, pkg string) bool {
	build := func(ps []*passes.Pass, training bool) (*ir.Graph, error) {
		g, err := onnx.ImportFile(file, onnx.Options{})
		require.NoError(t, err)
		pl, err := passes.NewPipeline(ps...)
		require.NoError(t, err)
		return g, pl.Run(g, &passes.Context{Training: training}, "")
	}
	eval, err := build(passes.TrainedInference(), false)
	require.NoError(t, err)
	train, err := build(passes.Training(), true)
	if errors.Is(err, passes.ErrNotClassifier) {
		return false
	}
	require.NoError(t, err)
	out, err := GenerateTrainable(eval, train, Options{Package: pkg, Source: filepath.Base(file), WeightsFile: pkg + ".weights"})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, pkg), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".go"), out.Go, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".weights"), out.Weights, 0o644))
	return true
}

// TestTraining builds trainable packages for the fixtures with PyTorch
// training references and runs trainHarness against them in one go test.
func TestTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code")
	}
	dir := tempModule(t)
	var imports, entries strings.Builder
	for _, fx := range trainFixtures {
		ref := filepath.Join(models, fx.ref)
		if _, err := os.Stat(ref); err != nil {
			t.Logf("skipping %s: %s not present (run testdata/models/export.py)", fx.model, fx.ref)
			continue
		}
		pkg := "t" + PackageName(fx.model)
		require.True(t, generateTrainable(t, filepath.Join(models, fx.onnx), dir, pkg))
		data, err := json.Marshal(loadTrainRef(t, ref))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fx.model+".json"), data, 0o644))
		fmt.Fprintf(&imports, "\t%q\n", "conformance/"+pkg)
		fmt.Fprintf(&entries, "\t{%q, func(seed uint64, dropout bool) model {\n\t\topts := []%s.Option{%s.WithSeed(seed)}\n\t\tif !dropout {\n\t\t\topts = append(opts, %s.WithoutDropout())\n\t\t}\n\t\treturn %s.New(opts...)\n\t}},\n", fx.model, pkg, pkg, pkg, pkg)
	}
	src := strings.Replace(strings.Replace(trainHarness, "//IMPORTS\n", imports.String(), 1), "//MODELS\n", entries.String(), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "train_test.go"), []byte(src), 0o644))
	goTest(t, dir, "-v", "-run", "Train", ".")
}
