package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func refSoftmax(rows, K int, x []float64, log bool) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < rows; r++ {
		row := x[r*K : (r+1)*K]
		var s float64
		for _, v := range row {
			s += math.Exp(v)
		}
		for i, v := range row {
			if log {
				y[r*K+i] = v - math.Log(s)
			} else {
				y[r*K+i] = math.Exp(v) / s
			}
		}
	}
	return y
}

func TestSoftmaxForwardBackward(t *testing.T) {
	r := nntRand(50)
	for _, g := range []struct{ n, outer, K int }{{1, 0, 1}, {1, 1, 10}, {3, 1, 7}, {2, 3, 5}, {4, 2, 33}} {
		p := &SoftmaxParams{Outer: g.outer, Inner: g.K}
		require.NoError(t, p.Init())
		rows := g.n * max(g.outer, 1)
		x := nntSlice(r, rows*g.K, -4, 4)
		for _, log := range []bool{false, true} {
			name := fmt.Sprintf("%+v log=%v", g, log)
			y := nntFill(make([]float32, len(x)))
			if log {
				LogSoftmax(p, g.n, y, x)
			} else {
				Softmax(p, g.n, y, x)
			}
			nntClose(t, refSoftmax(rows, g.K, nnt64(x), log), y, 1e-6, "%s", name)
			dy := nntSlice(r, len(x), -1, 1)
			dx := nntFill(make([]float32, len(x)))
			if log {
				LogSoftmaxBackward(p, g.n, dx, dy, y)
			} else {
				SoftmaxBackward(p, g.n, dx, dy, y)
			}
			ref := func(in [][]float64) []float64 { return refSoftmax(rows, g.K, in[0], log) }
			nntFD(t, name, ref, [][]float32{x}, dy, [][]float32{dx})
		}
	}
}

// TestSoftmaxStable feeds logits whose exponentials overflow float64.
func TestSoftmaxStable(t *testing.T) {
	p := &SoftmaxParams{Inner: 3}
	require.NoError(t, p.Init())
	x := []float32{1000, 1001, -1000}
	y := make([]float32, 3)
	Softmax(p, 1, y, x)
	e := math.Exp(-1)
	nntClose(t, []float64{e / (1 + e), 1 / (1 + e), 0}, y, 1e-6, "softmax")
	LogSoftmax(p, 1, y, x)
	nntClose(t, []float64{-1 - math.Log(1+e), -math.Log(1 + e), -2001 - math.Log(1+e)}, y, 1e-6, "log softmax")
}

func TestSoftmaxErrorsAndAllocs(t *testing.T) {
	require.Error(t, (&SoftmaxParams{Inner: 0}).Init())
	require.Error(t, (&SoftmaxParams{Outer: -1, Inner: 3}).Init())
	p := &SoftmaxParams{Outer: 4, Inner: 1000}
	require.NoError(t, p.Init())
	n := 8
	r := nntRand(51)
	x := nntSlice(r, n*4*1000, -3, 3)
	y, dx := make([]float32, len(x)), make([]float32, len(x))
	require.Panics(t, func() { SoftmaxBackward(p, n, dx, x, nil) })
	nntNoAllocs(t, "Softmax", func() { Softmax(p, n, y, x) })
	nntNoAllocs(t, "SoftmaxBackward", func() { SoftmaxBackward(p, n, dx, x, y) })
	nntNoAllocs(t, "LogSoftmax", func() { LogSoftmax(p, n, y, x) })
	nntNoAllocs(t, "LogSoftmaxBackward", func() { LogSoftmaxBackward(p, n, dx, x, y) })
}
