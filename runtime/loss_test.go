package runtime

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func refSCE(n, K int, x []float64, labels []int32) float64 {
	var loss float64
	for r := 0; r < n; r++ {
		row := x[r*K : (r+1)*K]
		var s float64
		for _, v := range row {
			s += math.Exp(v)
		}
		loss += math.Log(s) - row[labels[r]]
	}
	return loss / float64(n)
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	r := nntRand(60)
	for _, g := range []struct{ n, K int }{{1, 1}, {1, 10}, {5, 3}, {7, 13}, {64, 1000}} {
		name := fmt.Sprintf("%+v", g)
		p := &SoftmaxCrossEntropyParams{Classes: g.K}
		require.NoError(t, p.Init())
		x := nntSlice(r, g.n*g.K, -5, 5)
		labels := make([]int32, g.n)
		for i := range labels {
			labels[i] = int32(r.IntN(g.K))
		}
		d := nntFill(make([]float32, len(x)))
		loss, err := SoftmaxCrossEntropy(p, g.n, d, x, labels)
		require.NoError(t, err)
		require.InDelta(t, refSCE(g.n, g.K, nnt64(x), labels), float64(loss), 1e-5, name)

		// The loss alone, without a gradient buffer, is the same.
		loss2, err := SoftmaxCrossEntropy(p, g.n, nil, x, labels)
		require.NoError(t, err)
		require.Equal(t, loss, loss2)

		if g.n*g.K <= 200 {
			ref := func(in [][]float64) []float64 { return []float64{refSCE(g.n, g.K, in[0], labels)} }
			nntFD(t, name, ref, [][]float32{x}, []float32{1}, [][]float32{d})
		}
		// Each gradient row sums to zero: softmax sums to one.
		for i := 0; i < g.n; i++ {
			require.InDelta(t, 0, nntSum(d[i*g.K:(i+1)*g.K]), 1e-6)
		}
	}
}

func nntSum(s []float32) float64 {
	var a float64
	for _, v := range s {
		a += float64(v)
	}
	return a
}

func TestSoftmaxCrossEntropyBadLabel(t *testing.T) {
	p := &SoftmaxCrossEntropyParams{Classes: 3}
	require.NoError(t, p.Init())
	x := []float32{1, 2, 3, 4, 5, 6}
	d := []float32{9, 9, 9, 9, 9, 9}
	for _, bad := range []int32{3, -1, 1 << 30} {
		loss, err := SoftmaxCrossEntropy(p, 2, d, x, []int32{0, bad})
		var le *LabelError
		require.True(t, errors.As(err, &le), "%v", err)
		require.Equal(t, LabelError{Index: 1, Label: bad, Classes: 3}, *le)
		require.Zero(t, loss)
		require.Equal(t, []float32{9, 9, 9, 9, 9, 9}, d, "dlogits untouched")
	}
	require.Error(t, (&SoftmaxCrossEntropyParams{}).Init())
	loss, err := SoftmaxCrossEntropy(p, 0, nil, nil, nil)
	require.NoError(t, err)
	require.Zero(t, loss)
}

func TestSoftmaxCrossEntropyNoAllocs(t *testing.T) {
	r := nntRand(61)
	p := &SoftmaxCrossEntropyParams{Classes: 100}
	require.NoError(t, p.Init())
	n := 128
	x := nntSlice(r, n*100, -3, 3)
	d := make([]float32, len(x))
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % 100)
	}
	nntNoAllocs(t, "SoftmaxCrossEntropy", func() {
		if _, err := SoftmaxCrossEntropy(p, n, d, x, labels); err != nil {
			panic(err)
		}
	})
}
