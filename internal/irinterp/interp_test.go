package irinterp

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/internal/npy"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/require"
)

const models = "../../testdata/models"

// TestFixturesMatchPyTorch evaluates every fixture's IR after the inference
// pipeline and compares with the outputs PyTorch computed for the same
// inputs, at batch 2 and, for the first sample alone, at batch 1: the
// frontend, shape inference, constant folding and the export-batch rewrite
// must all be right for this to pass.
func TestFixturesMatchPyTorch(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(models, "*.onnx"))
	require.NoError(t, err)
	big, _ := filepath.Glob(filepath.Join(models, "big", "*.onnx"))
	ran := 0
	for _, f := range append(files, big...) {
		base := strings.TrimSuffix(filepath.Base(f), ".onnx")
		if strings.HasPrefix(base, "bad_") || base == "bool_initializer" {
			continue
		}
		model := base
		for _, suffix := range []string{"_bn", "_dyn", "_op11"} {
			model = strings.TrimSuffix(model, suffix)
		}
		t.Run(base, func(t *testing.T) {
			in, err := npy.ReadFile(filepath.Join(models, model+".input.npy"))
			require.NoError(t, err)
			want, err := npy.ReadFile(filepath.Join(models, model+".output.npy"))
			require.NoError(t, err)
			g, err := onnx.ImportFile(f, onnx.Options{})
			require.NoError(t, err)
			pl, err := passes.NewPipeline(passes.Inference()...)
			require.NoError(t, err)
			require.NoError(t, pl.Run(g, nil, ""))
			batch := in.Shape[0]
			per := len(in.Data) / batch
			perOut := len(want.Data) / batch
			for _, n := range []int{batch, 1} {
				out, err := Run(g, n, in.Data[:n*per])
				require.NoError(t, err)
				require.Len(t, out[0].Data, n*perOut)
				for i, v := range out[0].Data {
					w := float64(want.Data[i])
					require.InDelta(t, w, v, 1e-4*math.Max(1, math.Abs(w)), "batch %d element %d", n, i)
				}
			}
			ran++
		})
	}
	require.GreaterOrEqual(t, ran, 15)
}
