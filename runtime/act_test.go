package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

type nntAct struct {
	name  string
	ref   func(x float64) float64
	fwd   func(y, x []float32)
	back  func(dx, dy, x, y []float32)
	kinks []float64
}

func nntActs() []nntAct {
	clip := &ClipParams{Min: 0, Max: 6}
	clip2 := &ClipParams{Min: -0.5, Max: 1.25}
	hs := &HardSigmoidParams{Alpha: 0.2, Beta: 0.5}
	hsTorch := &HardSigmoidParams{Alpha: 1.0 / 6, Beta: 0.5}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	hard := func(a, b float64) func(float64) float64 {
		return func(x float64) float64 { return math.Max(0, math.Min(1, a*x+b)) }
	}
	return []nntAct{
		{"Relu", func(x float64) float64 { return math.Max(x, 0) }, Relu,
			func(dx, dy, x, y []float32) { ReluBackward(dx, dy, y) }, []float64{0}},
		{"Clip(0,6)", func(x float64) float64 { return math.Min(math.Max(x, 0), 6) },
			func(y, x []float32) { Clip(clip, y, x) },
			func(dx, dy, x, y []float32) { ClipBackward(clip, dx, dy, y) }, []float64{0, 6}},
		{"Clip(-0.5,1.25)", func(x float64) float64 { return math.Min(math.Max(x, -0.5), 1.25) },
			func(y, x []float32) { Clip(clip2, y, x) },
			func(dx, dy, x, y []float32) { ClipBackward(clip2, dx, dy, y) }, []float64{-0.5, 1.25}},
		{"Sigmoid", sig, Sigmoid, func(dx, dy, x, y []float32) { SigmoidBackward(dx, dy, y) }, nil},
		{"HardSigmoid(0.2,0.5)", hard(0.2, 0.5),
			func(y, x []float32) { HardSigmoid(hs, y, x) },
			func(dx, dy, x, y []float32) { HardSigmoidBackward(hs, dx, dy, y) }, []float64{-2.5, 2.5}},
		{"HardSigmoid(1/6,0.5)", hard(1.0/6, 0.5),
			func(y, x []float32) { HardSigmoid(hsTorch, y, x) },
			func(dx, dy, x, y []float32) { HardSigmoidBackward(hsTorch, dx, dy, y) }, []float64{-3, 3}},
		{"HardSwish", func(x float64) float64 { return x * hard(1.0/6, 0.5)(x) }, HardSwish,
			func(dx, dy, x, y []float32) { HardSwishBackward(dx, dy, x) }, []float64{-3, 3}},
		{"SiLU", func(x float64) float64 { return x * sig(x) }, SiLU,
			func(dx, dy, x, y []float32) { SiLUBackward(dx, dy, x) }, nil},
	}
}

func TestActivationsForward(t *testing.T) {
	r := nntRand(10)
	for _, a := range nntActs() {
		// 1e5 elements take the parallel path; the odd sizes the inline one.
		for _, n := range []int{1, 7, 1000, 100003} {
			x := nntSlice(r, n, -9, 9)
			x[0] = 0
			y := nntFill(make([]float32, n))
			a.fwd(y, x)
			want := make([]float64, n)
			for i, v := range x {
				want[i] = a.ref(float64(v))
			}
			nntClose(t, want, y, 1e-6, "%s n=%d", a.name, n)
		}
	}
}

func TestActivationsBackwardFiniteDifferences(t *testing.T) {
	r := nntRand(11)
	for _, a := range nntActs() {
		n := 300
		x := nntAway(r, n, -8, 8, 1e-3, a.kinks...)
		y := make([]float32, n)
		a.fwd(y, x)
		g := nntSlice(r, n, -1, 1)
		dx := nntFill(make([]float32, n))
		a.back(dx, g, x, y)
		ref := func(in [][]float64) []float64 {
			out := make([]float64, len(in[0]))
			for i, v := range in[0] {
				out[i] = a.ref(v)
			}
			return out
		}
		nntFD(t, a.name, ref, [][]float32{x}, g, [][]float32{dx})
	}
}

// TestActivationsKinks pins PyTorch's choice of derivative where the
// function is not differentiable.
func TestActivationsKinks(t *testing.T) {
	one := func(f func(dx, dy, z []float32), z float32) float32 {
		dx := []float32{42}
		f(dx, []float32{1}, []float32{z})
		return dx[0]
	}
	require.Equal(t, float32(0), one(ReluBackward, 0))
	clip := &ClipParams{Min: 0, Max: 6}
	y := func(x float32) float32 {
		out := []float32{0}
		Clip(clip, out, []float32{x})
		return out[0]
	}
	cb := func(dx, dy, z []float32) { ClipBackward(clip, dx, dy, z) }
	require.Equal(t, float32(0), one(cb, y(0)))
	require.Equal(t, float32(0), one(cb, y(6)))
	require.Equal(t, float32(1), one(cb, y(3)))
	hs := &HardSigmoidParams{Alpha: 1.0 / 6, Beta: 0.5}
	hb := func(dx, dy, z []float32) { HardSigmoidBackward(hs, dx, dy, z) }
	hy := func(x float32) float32 {
		out := []float32{0}
		HardSigmoid(hs, out, []float32{x})
		return out[0]
	}
	require.Equal(t, float32(0), one(hb, hy(-3)))
	require.Equal(t, float32(0), one(hb, hy(3)))
	require.InDelta(t, 1.0/6, one(hb, hy(1)), 1e-7)
	require.Equal(t, float32(0), one(HardSwishBackward, -3.5))
	require.InDelta(t, -0.5, one(HardSwishBackward, -3), 1e-7)
	require.InDelta(t, 1.5, one(HardSwishBackward, 3), 1e-7)
	require.Equal(t, float32(1), one(HardSwishBackward, 3.5))
}

func TestActivationsParamsAndLengths(t *testing.T) {
	require.Error(t, (&ClipParams{Min: 1, Max: 0}).Init())
	require.Error(t, (&ClipParams{Min: float32(math.NaN()), Max: 0}).Init())
	require.NoError(t, (&ClipParams{Min: 0, Max: 6}).Init())
	require.Error(t, (&HardSigmoidParams{Alpha: float32(math.Inf(1))}).Init())
	require.NoError(t, (&HardSigmoidParams{Alpha: 0.2, Beta: 0.5}).Init())
	require.Panics(t, func() { Relu(make([]float32, 4), make([]float32, 3)) })
	require.Panics(t, func() { SigmoidBackward(make([]float32, 4), make([]float32, 4), make([]float32, 3)) })
	require.NotPanics(t, func() { Relu(make([]float32, 3), make([]float32, 4)) })
}

func TestActivationsNoAllocs(t *testing.T) {
	r := nntRand(12)
	for _, a := range nntActs() {
		for _, n := range []int{100, 1 << 17} {
			x := nntSlice(r, n, -4, 4)
			y, dx := make([]float32, n), make([]float32, n)
			nntNoAllocs(t, a.name, func() { a.fwd(y, x) })
			nntNoAllocs(t, a.name+" backward", func() { a.back(dx, x, x, y) })
		}
	}
}

func TestExpAccuracy(t *testing.T) {
	r := nntRand(13)
	worst := 0.0
	check := func(x float64) {
		want, got := math.Exp(x), nnExp(x)
		if math.IsNaN(want) || math.IsInf(want, 0) || want == 0 {
			require.Equal(t, math.Float64bits(want), math.Float64bits(got), "exp(%v)", x)
			return
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	for range 200000 {
		check(-760 + 1480*r.Float64())
		check(-20 + 40*r.Float64())
		check(float64(float32(-1 + 2*r.Float64())))
	}
	for _, x := range []float64{0, -0.0, 1, -1, 708, 709, -707.9, -708, -745, -746, 709.8, 710,
		math.Inf(1), math.Inf(-1), math.NaN(), 1e-300, math.SmallestNonzeroFloat64} {
		check(x)
	}
	require.Less(t, worst, 1e-15)
	t.Logf("worst relative error %g", worst)
}
