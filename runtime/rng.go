package runtime

import (
	"math"
	"math/bits"
)

// RNG is a xoshiro256** generator (Blackman and Vigna, 2018) seeded through
// SplitMix64. It exists because math/rand and math/rand/v2 do not promise
// their streams across Go versions, and a model's initial weights, data
// shuffles and augmentations must come out the same for a given seed on
// every machine and every Go release: checkpoints, fixtures and reported
// results depend on it.
//
// Everything it returns is a fixed function of the seed:
//
//   - Uint64 is the reference xoshiro256** output.
//   - Float64 and Float32 take the top 53 or 24 bits, which is exact.
//   - NormFloat64 uses the Marsaglia polar method with a logarithm written in
//     this package (see rngLog): math.Log has an assembly version on amd64
//     that may differ in the last bit from the portable one, so it cannot be
//     used here. Products whose fusion into an FMA would change the result
//     are wrapped in explicit float64 conversions, which the Go spec defines
//     to round and so forbid fusion on arm64, ppc64, s390x, riscv64 and
//     amd64 v3.
//
// The zero RNG is not usable (xoshiro's all-zero state is a fixed point);
// create one with NewRNG or Seed it. An RNG is not safe for concurrent use.
type RNG struct {
	s [4]uint64
}

// NewRNG returns a generator seeded with seed; see Seed.
func NewRNG(seed uint64) *RNG {
	g := &RNG{}
	g.Seed(seed)
	return g
}

// Seed resets the generator: its four state words are the first four
// outputs of SplitMix64 started at seed, the seeding that xoshiro's authors
// recommend. SplitMix64 is a bijection of its counter, so the words are
// distinct and the state is never all zero.
func (g *RNG) Seed(seed uint64) {
	x := seed
	for i := range g.s {
		g.s[i] = rngSplitMix64(&x)
	}
}

// State returns the generator's four state words, for checkpoints.
func (g *RNG) State() [4]uint64 { return g.s }

// SetState restores a state returned by State. An all-zero state would make
// the generator emit zeros forever, so it panics on one.
func (g *RNG) SetState(s [4]uint64) {
	if s == [4]uint64{} {
		panic("runtime: RNG.SetState: all-zero xoshiro256** state")
	}
	g.s = s
}

// rngSplitMix64 advances *x by the golden-ratio increment and returns the
// mixed value (Steele, Lea and Flood's SplitMix64, Vigna's constants).
func rngSplitMix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	return rngMix64(*x)
}

// rngMix64 is SplitMix64's output function, a bijective 64-bit finalizer.
func rngMix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Uint64 returns the next 64 uniformly distributed bits.
func (g *RNG) Uint64() uint64 {
	s := &g.s
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// Float64 returns a uniform value in [0, 1) on the grid k·2⁻⁵³, built from
// the top 53 bits (xoshiro's low bits are its weakest).
func (g *RNG) Float64() float64 {
	return float64(g.Uint64()>>11) * 0x1p-53
}

// Float32 returns a uniform value in [0, 1) on the grid k·2⁻²⁴. It is not
// float32(Float64()), which could round up to 1.
func (g *RNG) Float32() float32 {
	return float32(g.Uint64()>>40) * 0x1p-24
}

// Intn returns a uniform integer in [0, n) by Lemire's multiply-and-reject
// method, which is unbiased and usually needs one Uint64. It panics if
// n <= 0.
func (g *RNG) Intn(n int) int {
	if n <= 0 {
		panic("runtime: RNG.Intn: n <= 0")
	}
	un := uint64(n)
	hi, lo := bits.Mul64(g.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(g.Uint64(), un)
		}
	}
	return int(hi)
}

// Shuffle permutes n items by Fisher–Yates from the last index down,
// calling swap(i, j) with j = Intn(i+1). The order of draws is part of the
// stream's definition, so a shuffle is reproducible from the seed.
func (g *RNG) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, g.Intn(i+1))
	}
}

// NormFloat64 returns a standard normal value by the Marsaglia polar
// method: draw u, v uniform in (-1, 1) until s = u²+v² is in (0, 1), then
// return u·sqrt(-2·ln(s)/s). The second normal v·sqrt(...) is discarded so
// that the four state words remain the generator's entire state (State and
// SetState stay simple); a draw costs 2.55 Uint64 on average.
//
// u and v are exact (2·k·2⁻⁵³ − 1), the sum of squares is computed with
// each product rounded before the add, the logarithm is rngLog, and
// division and math.Sqrt are correctly rounded by IEEE 754, so the result
// is bit-identical on every platform.
func (g *RNG) NormFloat64() float64 {
	for {
		u := 2*g.Float64() - 1
		v := 2*g.Float64() - 1
		s := float64(u*u) + float64(v*v)
		if s < 1 && s != 0 {
			return u * math.Sqrt(-2*rngLog(s)/s)
		}
	}
}

// rngLog is the natural logarithm for finite x > 0, the FreeBSD
// msun/e_log.c algorithm that Go's portable math.log also uses, with every
// product rounded explicitly so no compiler may fuse it into an FMA. Its
// result is within one ulp of the true value and, unlike math.Log, the same
// bits on every architecture.
func rngLog(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01 // 3fe62e42 fee00000
		ln2Lo = 1.90821492927058770002e-10 // 3dea39ef 35793c76
		l1    = 6.666666666666735130e-01   // 3FE55555 55555593
		l2    = 3.999999999940941908e-01   // 3FD99999 9997FA04
		l3    = 2.857142874366239149e-01   // 3FD24924 94229359
		l4    = 2.222219843214978396e-01   // 3FCC71C5 1D8E78AF
		l5    = 1.818357216161805012e-01   // 3FC74664 96CB03DE
		l6    = 1.531383769920937332e-01   // 3FC39A09 D078C69F
		l7    = 1.479819860511658591e-01   // 3FC2F112 DF3E5244
	)
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * (l1 + float64(s4*(l3+float64(s4*(l5+float64(s4*l7)))))))
	t2 := float64(s4 * (l2 + float64(s4*(l4+float64(s4*l6)))))
	r := t1 + t2
	hfsq := float64(0.5 * float64(f*f))
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f)
}
