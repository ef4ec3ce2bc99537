package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRNGSplitMix64ReferenceVectors(t *testing.T) {
	// Published SplitMix64 outputs (Vigna's splitmix64.c; Rosetta Code).
	for _, tc := range []struct {
		seed uint64
		want []uint64
	}{
		{0, []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec}},
		{1234567, []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423,
			4593380528125082431, 16408922859458223821}},
	} {
		x := tc.seed
		for i, w := range tc.want {
			require.Equal(t, w, rngSplitMix64(&x), "seed %d output %d", tc.seed, i)
		}
	}
}

func TestRNGXoshiroReferenceVector(t *testing.T) {
	// The published xoshiro256** outputs from the state {1, 2, 3, 4}.
	want := []uint64{11520, 0, 1509978240, 1215971899390074240, 1216172134540287360,
		607988272756665600, 16172922978634559625, 8476171486693032832,
		10595114339597558777, 2904607092377533576}
	var g RNG
	g.SetState([4]uint64{1, 2, 3, 4})
	for i, w := range want {
		require.Equal(t, w, g.Uint64(), "output %d", i)
	}
}

// The first values for seed 42, pinned. They were cross-checked against an
// independent Python transcription of SplitMix64 seeding, xoshiro256** and
// the polar method (with the C library's log). A change here breaks every
// seeded result and checkpoint: it must be deliberate.
func TestRNGGolden(t *testing.T) {
	g := NewRNG(42)
	for i, w := range []uint64{0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1, 0xecb8ad4703b360a1} {
		require.Equal(t, w, g.Uint64(), "Uint64 %d", i)
	}
	g.Seed(42)
	for i, w := range []uint64{0x3fb5780b2e0c2ec0, 0x3fd84136619b444e, 0x3fe5c2ea66473c93} {
		require.Equal(t, w, math.Float64bits(g.Float64()), "Float64 %d", i)
	}
	g.Seed(42)
	for i, w := range []uint64{
		0xbfe73d2feb0fb377, // -0.7262191382447857
		0x3fcc5e21f7812a4c, // 0.2216227015035933
		0x3fddb514bfac5b4e, // 0.46417731016247366
		0x3ff79eb7c13cfccd, // 1.476249461018415
		0x3ff02007c2380aea, // 1.0078198992420604
	} {
		require.Equal(t, w, math.Float64bits(g.NormFloat64()), "NormFloat64 %d", i)
	}
	g.Seed(7)
	for i, w := range []uint32{0x3f3358fa, 0x3e8eb87a, 0x3f56f1d3} {
		require.Equal(t, w, math.Float32bits(g.Float32()), "Float32 %d", i)
	}
}

func TestRNGLogWithinOneUlpOfMathLog(t *testing.T) {
	g := NewRNG(1)
	xs := []float64{1, math.Nextafter(1, 0), math.Sqrt2 / 2, math.Nextafter(math.Sqrt2/2, 0),
		0x1p-104, 0.5, 0.25, 1e-300, 1e300, 2, 3, 10}
	for i := 0; i < 20000; i++ {
		xs = append(xs, g.Float64()+0x1p-60, math.Ldexp(g.Float64()+0.5, int(g.Intn(200))-100))
	}
	for _, x := range xs {
		have, want := rngLog(x), math.Log(x)
		if have != want {
			ulp := math.Abs(math.Nextafter(want, math.Inf(1)) - want)
			require.LessOrEqual(t, math.Abs(have-want), ulp, "log(%v)", x)
		}
	}
}

func TestRNGDistributions(t *testing.T) {
	g := NewRNG(3)
	const n = 200000
	var s1, s2, u1 float64
	for i := 0; i < n; i++ {
		z := g.NormFloat64()
		s1 += z
		s2 += z * z
		u := g.Float64()
		require.True(t, u >= 0 && u < 1)
		u1 += u
		f := g.Float32()
		require.True(t, f >= 0 && f < 1)
	}
	require.InDelta(t, 0, s1/n, 0.01)
	require.InDelta(t, 1, s2/n, 0.01)
	require.InDelta(t, 0.5, u1/n, 0.003)

	for _, k := range []int{1, 2, 3, 7, 1000, 1 << 30} {
		hits := map[int]int{}
		for i := 0; i < 3000; i++ {
			v := g.Intn(k)
			require.True(t, v >= 0 && v < k, "Intn(%d) = %d", k, v)
			hits[v]++
		}
		if k <= 7 {
			for v := 0; v < k; v++ {
				require.InDelta(t, 3000/k, hits[v], 150, "Intn(%d) value %d", k, v)
			}
		}
	}
	require.Panics(t, func() { g.Intn(0) })
}

func TestRNGShuffleIsAPermutationAndReproducible(t *testing.T) {
	perm := func(seed uint64) []int {
		p := make([]int, 50)
		for i := range p {
			p[i] = i
		}
		NewRNG(seed).Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		return p
	}
	a := perm(9)
	require.Equal(t, a, perm(9))
	require.NotEqual(t, a, perm(10))
	seen := make([]bool, len(a))
	for _, v := range a {
		require.False(t, seen[v])
		seen[v] = true
	}
}

func TestRNGStateRoundTrip(t *testing.T) {
	g := NewRNG(5)
	g.Uint64()
	s := g.State()
	want := []float64{g.NormFloat64(), g.Float64()}
	h := NewRNG(0)
	h.SetState(s)
	require.Equal(t, want, []float64{h.NormFloat64(), h.Float64()})
	require.Panics(t, func() { h.SetState([4]uint64{}) })
	require.NotEqual(t, NewRNG(0).State(), [4]uint64{})
}

func TestRNGAllocatesNothing(t *testing.T) {
	g := NewRNG(1)
	require.Zero(t, testing.AllocsPerRun(100, func() { g.NormFloat64(); g.Intn(10) }))
}
