package passes

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/internal/irinterp"
	"github.com/smhgen/smhgen/internal/npy"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/runtime"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

const fitModels = "../testdata/models"

// smhFitGraph is testdata/smh/lenet_like's input: N = 91 values in a
// 10 x 10 virtual matrix, the last 9 cells unused.
const smhFitGraph = `graph "g" opset=14
input v0:f32[N,1,4,4] "input"
param v1:f32[4,1,3,3] weight trainable "conv.weight"
param v2:f32[4] bias trainable "conv.bias"
param v3:f32[4] norm_scale trainable "bn.weight"
param v4:f32[4] norm_bias trainable "bn.bias"
param v5:f32[4] norm_mean "bn.running_mean"
param v6:f32[4] norm_var "bn.running_var"
param v7:f32[3,16] weight trainable "fc.weight"
param v8:f32[3] bias trainable "fc.bias"
const v9:i64[2] = [N,-1]
v10:f32[N,4,2,2] = Conv v0 v1 v2
v11:f32[N,4,2,2] = BatchNormalization v10 v3 v4 v5 v6
v12:f32[N,16] = Reshape v11 v9
v13:f32[N,3] = Gemm v12 v7 v8 {trans_b=true}
output v13 "output"
`

// runSMHPass compresses g in place with cfg, returning the log.
func runSMHPass(t testing.TB, g *ir.Graph, cfg SMHConfig) string {
	t.Helper()
	var log strings.Builder
	c := &Context{SMH: &cfg, Logf: func(f string, args ...any) { fmt.Fprintf(&log, f+"\n", args...) }}
	pl, err := NewPipeline(&Pass{Name: SMH.Name, Stage: SMH.Stage, Run: SMH.Run})
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, c, ""))
	return log.String()
}

// param returns g's parameter of that name.
func param(g *ir.Graph, name string) *ir.Value {
	for _, p := range g.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

var smhRuntimeVariant = map[string]runtime.SMHVariant{"product": runtime.SMHProduct, "hash": runtime.SMHHash, "kron": runtime.SMHKron}

// smhWeights reconstructs every compressed tensor of g, by name, with the
// runtime's kernel, and returns their scales.
func smhWeights(t *testing.T, g *ir.Graph) (ws map[string][]float32, scales map[string]float64) {
	t.Helper()
	pool, sc := param(g, "smh.pool").Param.Data, param(g, "smh.scales").Param.Data
	ws, scales = map[string][]float32{}, map[string]float64{}
	for _, n := range ir.SMHTensors(g) {
		a := n.Attrs.(*ir.SMHAttrs)
		p := runtime.SMHWeightParams{Variant: smhRuntimeVariant[a.Variant], D: a.D, Rank: a.Rank, Off: a.Offset,
			Count: ir.Shape(a.Shape).Static(), Scale: a.Scale, Seed: uint64(a.Seed), Tensor: uint64(a.Tensor)}
		require.NoError(t, p.Init())
		w := make([]float32, p.Count)
		runtime.SMHWeight(&p, w, pool, sc)
		name := n.Name
		ws[name], scales[name] = w, float64(sc[a.Scale])
	}
	return ws, scales
}

// materializeSMH replaces every SMHReconstruct of g by a parameter holding
// the weights it computes, so that irinterp can run the model.
func materializeSMH(t *testing.T, g *ir.Graph) {
	t.Helper()
	ws, _ := smhWeights(t, g)
	for _, n := range ir.SMHTensors(g) {
		v := n.Results[0]
		p := g.AddParam(n.Name+".dense", v.Type, &ir.Param{Data: ws[n.Name], Role: ir.RoleWeight})
		g.ReplaceAllUses(v, p)
	}
	g.RemoveDead()
}

// fitError is ‖W − Ŵ‖/‖W‖ over the compressed tensors in units of their
// scales (the error in the virtual matrix's used cells), Ŵ what g's pool
// reconstructs and W the weights in dense.
func fitError(t *testing.T, dense map[string][]float32, g *ir.Graph) float64 {
	t.Helper()
	ws, scales := smhWeights(t, g)
	require.NotEmpty(t, ws)
	var num, den float64
	for name, w := range ws {
		orig, ok := dense[name]
		require.True(t, ok, name)
		require.Len(t, orig, len(w))
		s := scales[name]
		for i := range w {
			e := (float64(w[i]) - float64(orig[i])) / s
			num += e * e
			den += float64(orig[i]) * float64(orig[i]) / (s * s)
		}
	}
	return math.Sqrt(num / den)
}

func paramData(g *ir.Graph) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range g.Params {
		out[p.Name] = p.Param.Data
	}
	return out
}

// loweredFixture imports a fixture and runs the inference passes that
// come before smh.
func loweredFixture(t testing.TB, file string) *ir.Graph {
	t.Helper()
	g, err := onnx.ImportFile(filepath.Join(fitModels, file), onnx.Options{})
	require.NoError(t, err)
	pl, err := NewPipeline(Cleanup, Fold, Simplify, BNFold)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, &Context{}, ""))
	return g
}

// TestSMHFitRecoversRepresentableWeights: weights that a pool can express
// exactly (those of a randomly initialised pool, with the cells past the
// last weight made zero, since the fit takes them as zeros) are found again
// by the fit, for every variant, to float32 precision.
func TestSMHFitRecoversRepresentableWeights(t *testing.T) {
	for _, variant := range []string{"product", "kron", "hash"} {
		t.Run(variant, func(t *testing.T) {
			cfg := SMHConfig{Variant: variant, Fraction: 0.5, Seed: 3}
			g, err := ir.Parse(smhFitGraph)
			require.NoError(t, err)
			runSMHPass(t, g, cfg)
			// Make the unused cells zero.
			a := ir.SMHTensors(g)[0].Attrs.(*ir.SMHAttrs)
			pool := param(g, "smh.pool").Param.Data
			n := 91
			switch variant {
			case "product": // L's rows from the first one holding unused cells
				for i := n / a.D; i < a.D; i++ {
					clear(pool[i*a.Rank : (i+1)*a.Rank])
				}
			case "kron": // A_k's block rows from the first one holding unused cells
				side := isqrtCeil(a.D)
				for k := 0; k < a.Rank; k++ {
					clear(pool[k*a.D+(n/a.D/side)*side : (k+1)*a.D])
				}
			}
			want, _ := smhWeights(t, g)

			g, err = ir.Parse(smhFitGraph)
			require.NoError(t, err)
			for _, p := range g.Params {
				p.Param.Data = want[p.Name]
				if p.Param.Data == nil {
					p.Param.Data = make([]float32, p.Type.Shape.Static())
				}
			}
			cfg.Init = SMHInitFit
			cfg.Seed = 11 // the fit depends on the seed only through the hash
			if variant == "hash" {
				cfg.Seed = 3
			}
			log := runSMHPass(t, g, cfg)
			assert.Contains(t, log, "smh: fit the pool to the weights")
			got, _ := smhWeights(t, g)
			for name, w := range want {
				assert.Less(t, relDiff(got[name], w), 1e-5, name)
			}
			e := fitError(t, want, g)
			t.Logf("%s: relative error %.2g", variant, e)
			assert.Less(t, e, 1e-5)
		})
	}
}

func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// TestSMHTruncatedSVD: on a matrix of exact rank r both methods find it;
// on a full-rank one the randomized error is within a hair of the exact
// optimum (Eckart–Young), and the reported error is the true one.
func TestSMHTruncatedSVD(t *testing.T) {
	const d, r = 120, 7
	rng := runtime.NewRNG(5)
	gauss := func(rows, cols int) *mat.Dense {
		m := mat.NewDense(rows, cols, nil)
		for i := range m.RawMatrix().Data {
			m.RawMatrix().Data[i] = rng.NormFloat64()
		}
		return m
	}
	var low mat.Dense
	low.Mul(gauss(d, r), gauss(r, d))
	full := gauss(d, d)
	for _, method := range []string{"exact", "randomized"} {
		u, s, v, res, err := smhTruncatedSVD(&low, r, 1, smhFitOptions{Method: method})
		require.NoError(t, err)
		var back, us mat.Dense
		us.Mul(u, mat.NewDiagDense(r, s))
		back.Mul(&us, v.T())
		back.Sub(&back, &low)
		assert.Less(t, mat.Norm(&back, 2)/mat.Norm(&low, 2), 1e-12, method)
		assert.Less(t, res.RelErr, 1e-6, method)
	}
	_, _, _, exact, err := smhTruncatedSVD(full, r, 1, smhFitOptions{Method: "exact"})
	require.NoError(t, err)
	u, s, v, rnd, err := smhTruncatedSVD(full, r, 1, smhFitOptions{Method: "randomized"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rnd.RelErr, exact.RelErr-1e-12)
	assert.Less(t, rnd.RelErr, exact.RelErr*1.01)
	var back, us mat.Dense
	us.Mul(u, mat.NewDiagDense(r, s))
	back.Mul(&us, v.T())
	back.Sub(&back, full)
	assert.InDelta(t, rnd.RelErr, mat.Norm(&back, 2)/mat.Norm(full, 2), 1e-9)
}

// TestSMHFitLeNet: on LeNet-5 at half size, the fitted pool is far closer
// to the model's weights than a random one, the compressed model's outputs
// are closer to the dense model's, and two fits are identical.
func TestSMHFitLeNet(t *testing.T) {
	in, err := npy.ReadFile(filepath.Join(fitModels, "lenet5.input.npy"))
	require.NoError(t, err)
	batch := in.Shape[0]
	dense := loweredFixture(t, "lenet5.onnx")
	weights := paramData(dense)
	want, err := irinterp.Run(dense, batch, in.Data)
	require.NoError(t, err)

	compress := func(init string) (*ir.Graph, string) {
		g := loweredFixture(t, "lenet5.onnx")
		log := runSMHPass(t, g, SMHConfig{Variant: "product", Fraction: 0.5, Seed: 1, Init: init})
		return g, log
	}
	outputDist := func(g *ir.Graph) float64 {
		materializeSMH(t, g)
		out, err := irinterp.Run(g, batch, in.Data)
		require.NoError(t, err)
		var num, den float64
		for i, y := range out[0].Data {
			num += (y - want[0].Data[i]) * (y - want[0].Data[i])
			den += want[0].Data[i] * want[0].Data[i]
		}
		return math.Sqrt(num / den)
	}
	rnd, _ := compress(SMHInitRandom)
	fit, log := compress(SMHInitFit)
	errRnd, errFit := fitError(t, weights, rnd), fitError(t, weights, fit)
	t.Logf("weights: relative error %.4f fit, %.4f random; %s", errFit, errRnd, strings.TrimSpace(log))
	assert.Less(t, errFit, 0.6)
	assert.Greater(t, errRnd, 1.0)
	assert.Contains(t, log, "exact SVD")

	again, _ := compress(SMHInitFit)
	assert.Equal(t, param(fit, "smh.pool").Param.Data, param(again, "smh.pool").Param.Data)
	assert.Equal(t, param(fit, "smh.scales").Param.Data, param(rnd, "smh.scales").Param.Data, "the fit keeps the initial scales")

	dRnd, dFit := outputDist(rnd), outputDist(fit)
	t.Logf("outputs: relative distance to the dense model's %.4f fit, %.4f random", dFit, dRnd)
	assert.Less(t, dFit, dRnd/2)
}

// TestSMHFitVariantsLeNet: the kron and hash fits also beat a random pool
// by far.
func TestSMHFitVariantsLeNet(t *testing.T) {
	weights := paramData(loweredFixture(t, "lenet5.onnx"))
	for _, variant := range []string{"kron", "hash"} {
		errs := map[string]float64{}
		for _, init := range []string{SMHInitRandom, SMHInitFit} {
			g := loweredFixture(t, "lenet5.onnx")
			runSMHPass(t, g, SMHConfig{Variant: variant, Fraction: 0.5, Seed: 1, Init: init})
			errs[init] = fitError(t, weights, g)
		}
		t.Logf("%s: relative error %.4f fit, %.4f random", variant, errs[SMHInitFit], errs[SMHInitRandom])
		assert.Less(t, errs[SMHInitFit], errs[SMHInitRandom]/2, variant)
	}
}

// virtualMatrix compresses a fixture at fraction and returns its virtual
// matrix (the weights over their scales) and rank.
func virtualMatrix(t testing.TB, file string, fraction float64) (*mat.Dense, int) {
	dense := paramData(loweredFixture(t, file))
	g := loweredFixture(t, file)
	runSMHPass(t, g, SMHConfig{Variant: "product", Fraction: fraction, Seed: 1})
	sc := param(g, "smh.scales").Param.Data
	var m *mat.Dense
	r := 0
	for _, n := range ir.SMHTensors(g) {
		a := n.Attrs.(*ir.SMHAttrs)
		if m == nil {
			m, r = mat.NewDense(a.D, a.D, nil), a.Rank
		}
		for i, x := range dense[n.Name] {
			m.RawMatrix().Data[a.Offset+i] = float64(x) / float64(sc[a.Scale])
		}
	}
	return m, r
}

// TestSMHFitRandomizedNearExact: on real weights, whose spectrum decays
// slowly, the randomized SVD's error stays within 1% of the optimum.
// (EfficientNet-B0 at fraction 0.1, d = 2296, r = 115: 0.7353 against
// 0.7348, in 2.7 s against 36 s.)
func TestSMHFitRandomizedNearExact(t *testing.T) {
	for _, fraction := range []float64{0.1, 0.5} {
		m, r := virtualMatrix(t, "lenet5.onnx", fraction)
		_, _, _, exact, err := smhTruncatedSVD(m, r, 1, smhFitOptions{Method: "exact"})
		require.NoError(t, err)
		_, _, _, rnd, err := smhTruncatedSVD(m, r, 1, smhFitOptions{Method: "randomized"})
		require.NoError(t, err)
		t.Logf("lenet5 at %v, r = %d: relative error %.5f exact, %.5f %s", fraction, r, exact.RelErr, rnd.RelErr, rnd.Method)
		assert.GreaterOrEqual(t, rnd.RelErr, exact.RelErr-1e-9)
		assert.Less(t, rnd.RelErr, exact.RelErr*1.01)
	}
}

// TestSMHFitUnusedRank: where the weights use fewer than r directions
// (here none: all zero), the fit still reconstructs them exactly but
// leaves the left factor non-zero, so that training is not stuck at the
// saddle point of two zero factors.
func TestSMHFitUnusedRank(t *testing.T) {
	for _, variant := range []string{"product", "kron"} {
		g, err := ir.Parse(smhFitGraph)
		require.NoError(t, err)
		for _, p := range g.Params {
			p.Param.Data = make([]float32, p.Type.Shape.Static())
		}
		runSMHPass(t, g, SMHConfig{Variant: variant, Fraction: 0.5, Seed: 1, Init: SMHInitFit})
		pool := param(g, "smh.pool").Param.Data
		ws, _ := smhWeights(t, g)
		for name, w := range ws {
			assert.Equal(t, make([]float32, len(w)), w, name)
		}
		half := len(pool) / 2
		assert.NotEqual(t, make([]float32, half), pool[:half], variant)
		assert.Equal(t, make([]float32, half), pool[half:], variant)
	}
}

// BenchmarkSMHFitEfficientNetB0 times the fit of EfficientNet-B0 (5.3M
// weights, d = 2296) at a tenth of its size, when
// testdata/models/export_efficientnet_b0.py has written it.
func BenchmarkSMHFitEfficientNetB0(b *testing.B) {
	const file = "big/bench/efficientnet_b0.onnx"
	if _, err := os.Stat(filepath.Join(fitModels, file)); err != nil {
		b.Skip("run /usr/bin/python3 testdata/models/export_efficientnet_b0.py")
	}
	var log string
	for b.Loop() {
		b.StopTimer()
		g := loweredFixture(b, file)
		b.StartTimer()
		log = runSMHPass(b, g, SMHConfig{Variant: "product", Fraction: 0.1, Seed: 1, Init: SMHInitFit})
	}
	b.Log(log)
}

// TestSMHFitErrors: an unknown init and a parameter without values are
// errors.
func TestSMHFitErrors(t *testing.T) {
	g, err := ir.Parse(smhFitGraph)
	require.NoError(t, err)
	pl, err := NewPipeline(&Pass{Name: SMH.Name, Stage: SMH.Stage, Run: SMH.Run})
	require.NoError(t, err)
	err = pl.Run(g, &Context{SMH: &SMHConfig{Variant: "product", Fraction: 0.5, Init: "magic"}}, "")
	assert.ErrorContains(t, err, `unknown SMH init "magic" (want random or fit)`)
	err = pl.Run(g, &Context{SMH: &SMHConfig{Variant: "product", Fraction: 0.5, Init: SMHInitFit}}, "")
	assert.ErrorContains(t, err, `parameter "conv.weight" has 0 values, want 36`)
}
