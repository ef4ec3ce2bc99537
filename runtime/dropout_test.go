package runtime

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDropoutMaskDeterminismAndRate(t *testing.T) {
	r := nntRand(70)
	const size = 200003
	x := nntAway(r, size, -1, 1, 1e-3, 0)
	for _, ratio := range []float32{0, 0.1, 0.5, 0.9} {
		p := &DropoutParams{Ratio: ratio, Seed: 12345}
		require.NoError(t, p.Init())
		y := nntFill(make([]float32, size))
		Dropout(p, 7, y, x)
		kept := 0
		for i, v := range y {
			keep := DropoutHash(12345, 7, uint64(i))>>40 >= uint64(float64(ratio)*(1<<24))
			if keep {
				kept++
				require.Equal(t, x[i]*(1/(1-ratio)), v)
			} else {
				require.Zero(t, v)
			}
		}
		// Binomial standard deviation is below 0.0012 at this size.
		require.InDelta(t, 1-float64(ratio), float64(kept)/size, 0.006, "ratio %v", ratio)

		// Same seed and step: same mask; the backward pass reuses it.
		y2 := make([]float32, size)
		Dropout(p, 7, y2, x)
		require.Equal(t, y, y2)
		dx := make([]float32, size)
		DropoutBackward(p, 7, dx, x)
		require.Equal(t, y, dx)

		if ratio > 0 {
			Dropout(p, 8, y2, x)
			require.NotEqual(t, y, y2, "a new step draws a new mask")
			q := &DropoutParams{Ratio: ratio, Seed: 54321}
			require.NoError(t, q.Init())
			Dropout(q, 7, y2, x)
			require.NotEqual(t, y, y2, "a new seed draws a new mask")
		}
	}
}

// TestDropoutHashPinned pins the hash so that a change to it, which would
// silently change every training run, fails loudly.
func TestDropoutHashPinned(t *testing.T) {
	mix := func(z uint64) uint64 {
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		return z ^ (z >> 31)
	}
	const g = 0x9E3779B97F4A7C15
	for _, c := range []struct{ seed, step, i uint64 }{{0, 0, 0}, {1, 2, 3}, {12345, 7, 199999}} {
		key := mix((c.seed ^ mix(c.step+g)) + g)
		require.Equal(t, mix(key+(c.i+1)*g), DropoutHash(c.seed, c.step, c.i))
	}
	// Values computed independently (Python, arbitrary-precision integers).
	require.Equal(t, uint64(0x1e6ba488418e2c8e), DropoutHash(1, 2, 3))
	require.Equal(t, uint64(0x238275bc38fcbe91), DropoutHash(0, 0, 0))
}

func TestDropoutErrorsAndAllocs(t *testing.T) {
	require.Error(t, (&DropoutParams{Ratio: 1}).Init())
	require.Error(t, (&DropoutParams{Ratio: -0.1}).Init())
	p := &DropoutParams{Ratio: 0.3, Seed: 1}
	require.NoError(t, p.Init())
	x := make([]float32, 1<<17)
	y := make([]float32, len(x))
	nntNoAllocs(t, "Dropout", func() { Dropout(p, 3, y, x) })
	nntNoAllocs(t, "DropoutBackward", func() { DropoutBackward(p, 3, y, x) })
}
