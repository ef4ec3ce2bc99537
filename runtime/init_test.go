package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFans(t *testing.T) {
	for _, tc := range []struct {
		shape      []int
		in, out    int
		conv, dens bool
	}{
		{shape: []int{64, 3, 3, 3}, in: 27, out: 576},
		{shape: []int{32, 1, 3, 3}, in: 9, out: 288}, // depthwise: group count not divided out
		{shape: []int{10, 84}, in: 84, out: 10},      // PyTorch Linear [out, in]
		{shape: []int{6, 1, 5, 5}, in: 25, out: 150},
		{shape: []int{8, 4, 3}, in: 12, out: 24}, // Conv1d
	} {
		in, out := Fans(tc.shape)
		require.Equal(t, [2]int{tc.in, tc.out}, [2]int{in, out}, "%v", tc.shape)
		if len(tc.shape) == 4 {
			in, out = ConvFans(tc.shape[0], tc.shape[1], tc.shape[2], tc.shape[3])
			require.Equal(t, [2]int{tc.in, tc.out}, [2]int{in, out}, "ConvFans %v", tc.shape)
		}
	}
	in, out := DenseFans(84, 10)
	require.Equal(t, [2]int{84, 10}, [2]int{in, out})
	require.Panics(t, func() { Fans([]int{5}) })
}

func TestInitialisersDistribution(t *testing.T) {
	const n = 100000
	const fanIn, fanOut = 75, 150
	for _, tc := range []struct {
		name  string
		fill  func([]float32, *RNG)
		mean  float64
		std   float64
		bound float64 // 0: unbounded (normal)
	}{
		{"Normal", func(d []float32, g *RNG) { Normal(d, g, 0.5, 2) }, 0.5, 2, 0},
		{"Uniform", func(d []float32, g *RNG) { Uniform(d, g, -3, 1) }, -1, 4 / math.Sqrt(12), 0},
		{"HeNormal", func(d []float32, g *RNG) { HeNormal(d, g, fanIn) }, 0, math.Sqrt(2.0 / fanIn), 0},
		{"HeUniform", func(d []float32, g *RNG) { HeUniform(d, g, fanIn) }, 0, math.Sqrt(2.0 / fanIn), math.Sqrt(6.0 / fanIn)},
		{"KaimingNormal", func(d []float32, g *RNG) { KaimingNormal(d, g, fanOut, 0.1) }, 0, math.Sqrt(2/1.01) / math.Sqrt(fanOut), 0},
		{"GlorotNormal", func(d []float32, g *RNG) { GlorotNormal(d, g, fanIn, fanOut) }, 0, math.Sqrt(2.0 / (fanIn + fanOut)), 0},
		{"GlorotUniform", func(d []float32, g *RNG) { GlorotUniform(d, g, fanIn, fanOut) }, 0, math.Sqrt(2.0 / (fanIn + fanOut)), math.Sqrt(6.0 / (fanIn + fanOut))},
		{"TorchDefaultWeight", func(d []float32, g *RNG) { TorchDefaultWeight(d, g, fanIn) }, 0, 1 / math.Sqrt(3*fanIn), 1 / math.Sqrt(fanIn)},
		{"TorchDefaultBias", func(d []float32, g *RNG) { TorchDefaultBias(d, g, fanIn) }, 0, 1 / math.Sqrt(3*fanIn), 1 / math.Sqrt(fanIn)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := make([]float32, n)
			tc.fill(d, NewRNG(11))
			var s1, s2 float64
			for _, v := range d {
				s1 += float64(v)
				if tc.bound > 0 {
					require.LessOrEqual(t, math.Abs(float64(v)), tc.bound*(1+1e-6))
				}
			}
			mean := s1 / n
			for _, v := range d {
				s2 += (float64(v) - mean) * (float64(v) - mean)
			}
			require.InDelta(t, tc.mean, mean, 0.02*tc.std)
			require.InEpsilon(t, tc.std, math.Sqrt(s2/n), 0.01)
			e := make([]float32, n)
			tc.fill(e, NewRNG(11))
			require.Equal(t, d, e, "same seed, same values")
		})
	}
}

// The initialisers are defined in terms of the RNG stream, so pin that
// definition: one draw per element, in order, rounded once.
func TestInitialisersFollowTheStream(t *testing.T) {
	d := make([]float32, 5)
	Normal(d, NewRNG(4), 1, 3)
	g := NewRNG(4)
	for i := range d {
		require.Equal(t, float32(1+float64(3*g.NormFloat64())), d[i])
	}
	Uniform(d, NewRNG(4), -2, 2)
	g = NewRNG(4)
	for i := range d {
		require.Equal(t, float32(-2+float64(4*g.Float64())), d[i])
	}
}

func TestTorchDefaultWeightBoundIsInverseSqrtFanIn(t *testing.T) {
	// kaiming_uniform_(a=sqrt(5)) reduces to 1/sqrt(fan_in).
	for _, fan := range []int{1, 9, 400, 4096} {
		b := math.Sqrt(3) * KaimingGain(math.Sqrt(5)) / math.Sqrt(float64(fan))
		require.InEpsilon(t, 1/math.Sqrt(float64(fan)), b, 1e-12)
	}
	require.InEpsilon(t, math.Sqrt2, KaimingGain(0), 1e-15)
}
