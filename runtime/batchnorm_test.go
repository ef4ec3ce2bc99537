package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// refBNStats returns the per-channel batch mean and biased variance.
func refBNStats(n, C, S int, x []float64) (mean, variance []float64) {
	mean, variance = make([]float64, C), make([]float64, C)
	M := float64(n * S)
	for c := 0; c < C; c++ {
		for b := 0; b < n; b++ {
			for s := 0; s < S; s++ {
				mean[c] += x[(b*C+c)*S+s]
			}
		}
		mean[c] /= M
		for b := 0; b < n; b++ {
			for s := 0; s < S; s++ {
				d := x[(b*C+c)*S+s] - mean[c]
				variance[c] += d * d
			}
		}
		variance[c] /= M
	}
	return mean, variance
}

func refBNApply(n, C, S int, eps float64, x, scale, bias, mean, variance []float64) []float64 {
	y := make([]float64, len(x))
	for i := range y {
		c := i / S % C
		y[i] = scale[c]*(x[i]-mean[c])/math.Sqrt(variance[c]+eps) + bias[c]
	}
	return y
}

func TestBatchNormInferenceAndFold(t *testing.T) {
	r := nntRand(20)
	for _, g := range []struct{ n, C, S int }{{1, 3, 1}, {3, 5, 7}, {2, 16, 33 * 33}} {
		p := &BatchNormParams{C: g.C, Spatial: g.S, Epsilon: 1e-5, Momentum: 0.1}
		require.NoError(t, p.Init())
		x := nntSlice(r, g.n*g.C*g.S, -3, 3)
		scale, bias := nntSlice(r, g.C, 0.5, 2), nntSlice(r, g.C, -1, 1)
		mean, variance := nntSlice(r, g.C, -1, 1), nntSlice(r, g.C, 0.1, 2)
		y := nntFill(make([]float32, len(x)))
		BatchNormInference(p, g.n, y, x, scale, bias, mean, variance)
		want := refBNApply(g.n, g.C, g.S, 1e-5, nnt64(x), nnt64(scale), nnt64(bias), nnt64(mean), nnt64(variance))
		nntClose(t, want, y, 1e-5, "inference %+v", g)

		mul, add := make([]float32, g.C), make([]float32, g.C)
		BatchNormFold(p, mul, add, scale, bias, mean, variance)
		cp := &ChannelParams{C: g.C, Spatial: g.S}
		require.NoError(t, cp.Init())
		y2 := nntFill(make([]float32, len(x)))
		ChannelAffine(cp, g.n, y2, x, mul, add)
		nntClose(t, want, y2, 1e-5, "fold+affine %+v", g)
	}
}

func TestBatchNormTrainingForwardAndRunningStats(t *testing.T) {
	r := nntRand(21)
	for _, g := range []struct {
		n, C, S  int
		momentum float32
	}{{4, 3, 1, 0.1}, {2, 5, 9, 0.3}, {1, 2, 1, 0.5}, {3, 16, 31 * 29, 1}, {2, 3, 4, 0}} {
		p := &BatchNormParams{C: g.C, Spatial: g.S, Epsilon: 1e-3, Momentum: g.momentum}
		require.NoError(t, p.Init())
		x := nntSlice(r, g.n*g.C*g.S, -3, 5)
		scale, bias := nntSlice(r, g.C, 0.5, 2), nntSlice(r, g.C, -1, 1)
		rm0, rv0 := nntSlice(r, g.C, -1, 1), nntSlice(r, g.C, 0.5, 2)
		rm, rv := append([]float32(nil), rm0...), append([]float32(nil), rv0...)
		y := nntFill(make([]float32, len(x)))
		sm, si := nntFill(make([]float32, g.C)), nntFill(make([]float32, g.C))
		BatchNormTraining(p, g.n, y, sm, si, rm, rv, x, scale, bias)

		mean, variance := refBNStats(g.n, g.C, g.S, nnt64(x))
		nntClose(t, refBNApply(g.n, g.C, g.S, 1e-3, nnt64(x), nnt64(scale), nnt64(bias), mean, variance), y, 1e-5, "y %+v", g)
		nntClose(t, mean, sm, 1e-6, "saved mean %+v", g)
		inv := make([]float64, g.C)
		wantRM, wantRV := make([]float64, g.C), make([]float64, g.C)
		M := float64(g.n * g.S)
		m := float64(g.momentum)
		for c := range inv {
			inv[c] = 1 / math.Sqrt(variance[c]+1e-3)
			unbiased := variance[c]
			if M > 1 {
				unbiased *= M / (M - 1)
			}
			// PyTorch: running = (1-momentum)*running + momentum*batch.
			wantRM[c] = (1-m)*float64(rm0[c]) + m*mean[c]
			wantRV[c] = (1-m)*float64(rv0[c]) + m*unbiased
		}
		nntClose(t, inv, si, 1e-6, "saved inv std %+v", g)
		nntClose(t, wantRM, rm, 1e-6, "running mean %+v", g)
		nntClose(t, wantRV, rv, 1e-6, "running var %+v", g)

		// nil running buffers are skipped.
		BatchNormTraining(p, g.n, y, sm, si, nil, nil, x, scale, bias)
	}
	require.InDelta(t, 0.1, MomentumFromONNX(0.9), 1e-7)
}

func TestBatchNormBackwardFiniteDifferences(t *testing.T) {
	r := nntRand(22)
	for _, g := range []struct{ n, C, S int }{{2, 3, 5}, {5, 2, 1}, {1, 2, 7}} {
		name := fmt.Sprintf("%+v", g)
		p := &BatchNormParams{C: g.C, Spatial: g.S, Epsilon: 1e-5, Momentum: 0.1}
		require.NoError(t, p.Init())
		x := nntSlice(r, g.n*g.C*g.S, -2, 3)
		scale, bias := nntSlice(r, g.C, 0.5, 2), nntSlice(r, g.C, -1, 1)
		y := make([]float32, len(x))
		sm, si := make([]float32, g.C), make([]float32, g.C)
		BatchNormTraining(p, g.n, y, sm, si, nil, nil, x, scale, bias)
		dy := nntSlice(r, len(x), -1, 1)
		dx := nntFill(make([]float32, len(x)))
		ds, db := nntFill(make([]float32, g.C)), nntFill(make([]float32, g.C))
		BatchNormBackward(p, g.n, dx, ds, db, dy, x, scale, sm, si)
		ref := func(in [][]float64) []float64 {
			mean, variance := refBNStats(g.n, g.C, g.S, in[0])
			return refBNApply(g.n, g.C, g.S, 1e-5, in[0], in[1], in[2], mean, variance)
		}
		nntFD(t, name, ref, [][]float32{x, scale, bias}, dy, [][]float32{dx, ds, db})

		// Each output alone gives the same values.
		dx2 := nntFill(make([]float32, len(x)))
		BatchNormBackward(p, g.n, dx2, nil, nil, dy, x, scale, sm, si)
		require.Equal(t, dx, dx2)
		ds2 := nntFill(make([]float32, g.C))
		BatchNormBackward(p, g.n, nil, ds2, nil, dy, x, scale, sm, si)
		require.Equal(t, ds, ds2)
	}
}

// TestBatchNormBackwardLarge checks the parallel path against the closed
// form in float64.
// TestBatchNormBackwardLarge checks training and backward against float64
// on planes the lane kernels take whole, and on 2x2 planes of many
// samples, whose channels are gathered into one row.
func TestBatchNormBackwardLarge(t *testing.T) {
	for _, g := range []struct{ n, C, S int }{{3, 16, 29 * 31}, {64, 8, 4}} {
		bnBackwardLarge(t, g.n, g.C, g.S)
	}
}

func bnBackwardLarge(t *testing.T, n, C, S int) {
	r := nntRand(23)
	p := &BatchNormParams{C: C, Spatial: S, Epsilon: 1e-5, Momentum: 0.1}
	require.NoError(t, p.Init())
	x := nntSlice(r, n*C*S, -2, 3)
	scale, bias := nntSlice(r, C, 0.5, 2), nntSlice(r, C, -1, 1)
	y := make([]float32, len(x))
	sm, si := make([]float32, C), make([]float32, C)
	BatchNormTraining(p, n, y, sm, si, nil, nil, x, scale, bias)
	mean, variance := refBNStats(n, C, S, nnt64(x))
	nntClose(t, refBNApply(n, C, S, 1e-5, nnt64(x), nnt64(scale), nnt64(bias), mean, variance), y, 1e-5, "y")
	dy := nntSlice(r, len(x), -1, 1)
	dx, ds, db := make([]float32, len(x)), make([]float32, C), make([]float32, C)
	BatchNormBackward(p, n, dx, ds, db, dy, x, scale, sm, si)

	wdb, wds := make([]float64, C), make([]float64, C)
	for i, g := range dy {
		c := i / S % C
		xh := (float64(x[i]) - mean[c]) / math.Sqrt(variance[c]+1e-5)
		wdb[c] += float64(g)
		wds[c] += float64(g) * xh
	}
	wdx := make([]float64, len(x))
	M := float64(n * S)
	for i, g := range dy {
		c := i / S % C
		inv := 1 / math.Sqrt(variance[c]+1e-5)
		xh := (float64(x[i]) - mean[c]) * inv
		wdx[i] = float64(scale[c]) * inv * (float64(g) - wdb[c]/M - xh*wds[c]/M)
	}
	nntClose(t, wdb, db, 1e-5, "dbias")
	nntClose(t, wds, ds, 1e-5, "dscale")
	nntClose(t, wdx, dx, 1e-4, "dx")
}

func TestBatchNormInitErrors(t *testing.T) {
	for _, p := range []BatchNormParams{
		{C: 0, Spatial: 1},
		{C: 1, Spatial: 0},
		{C: 1, Spatial: 1, Epsilon: -1},
		{C: 1, Spatial: 1, Momentum: 1.5},
		{C: 1, Spatial: 1, Momentum: float32(math.NaN())},
	} {
		require.Error(t, p.Init(), "%+v", p)
	}
	require.Error(t, (&ChannelParams{C: 0, Spatial: 1}).Init())
	p := &BatchNormParams{C: 2, Spatial: 3}
	require.Panics(t, func() { BatchNormInference(p, 1, nil, nil, nil, nil, nil, nil) })
}

func TestBatchNormNoAllocs(t *testing.T) {
	r := nntRand(24)
	n, C, S := 4, 32, 28*28
	p := &BatchNormParams{C: C, Spatial: S, Epsilon: 1e-5, Momentum: 0.1}
	require.NoError(t, p.Init())
	x := nntSlice(r, n*C*S, -1, 1)
	y, dx := make([]float32, len(x)), make([]float32, len(x))
	c := func() []float32 { return nntSlice(r, C, 0.5, 1) }
	scale, bias, sm, si, rm, rv, ds, db := c(), c(), c(), c(), c(), c(), c(), c()
	nntNoAllocs(t, "BatchNormInference", func() { BatchNormInference(p, n, y, x, scale, bias, rm, rv) })
	nntNoAllocs(t, "BatchNormTraining", func() { BatchNormTraining(p, n, y, sm, si, rm, rv, x, scale, bias) })
	nntNoAllocs(t, "BatchNormBackward", func() { BatchNormBackward(p, n, dx, ds, db, y, x, scale, sm, si) })
	nntNoAllocs(t, "BatchNormFold", func() { BatchNormFold(p, ds, db, scale, bias, rm, rv) })
	cp := &ChannelParams{C: C, Spatial: S}
	require.NoError(t, cp.Init())
	nntNoAllocs(t, "ChannelAffine", func() { ChannelAffine(cp, n, y, x, scale, bias) })
}

// TestBatchNormUpdateRunningMatchesTraining: committing the statistics
// afterwards gives what BatchNormTraining gives with running buffers.
func TestBatchNormUpdateRunningMatchesTraining(t *testing.T) {
	rng := nntRand(11)
	p := BatchNormParams{C: 3, Spatial: 5, Epsilon: 1e-5, Momentum: 0.1}
	require.NoError(t, p.Init())
	n := 4
	x := make([]float32, n*15)
	for i := range x {
		x[i] = float32(rng.NormFloat64()*2 + 1)
	}
	scale, bias := []float32{1, 2, 3}, []float32{0, 1, -1}
	y := make([]float32, len(x))
	mean, inv := make([]float32, 3), make([]float32, 3)
	rm1, rv1 := []float32{0.5, -1, 2}, []float32{1, 2, 0.5}
	rm2, rv2 := append([]float32{}, rm1...), append([]float32{}, rv1...)
	BatchNormTraining(&p, n, y, mean, inv, rm1, rv1, x, scale, bias)
	BatchNormTraining(&p, n, y, mean, inv, nil, nil, x, scale, bias)
	BatchNormUpdateRunning(&p, n, rm2, rv2, mean, inv)
	for c := 0; c < 3; c++ {
		require.InDelta(t, rm1[c], rm2[c], 1e-6)
		require.InDelta(t, rv1[c], rv2[c], 1e-5*float64(rv1[c]))
	}
	require.Zero(t, testing.AllocsPerRun(10, func() { BatchNormUpdateRunning(&p, n, rm2, rv2, mean, inv) }))
}
