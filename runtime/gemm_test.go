package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// gemmTestMatrix returns a rows x cols matrix with row stride ld filled with
// uniform values in [-1, 1); the padding between rows holds NaN so that a
// kernel reading outside the matrix is caught.
func gemmTestMatrix(rng *rand.Rand, rows, cols, ld int) []float32 {
	x := make([]float32, max(0, (rows-1)*ld+cols))
	for i := range x {
		if i%ld < cols {
			x[i] = float32(rng.Float64()*2 - 1)
		} else {
			x[i] = float32(math.NaN())
		}
	}
	return x
}

// gemmRef computes alpha*op(A)*op(B) + beta*C in float64 and, per element,
// the error scale |alpha|*sum|a||b| + |beta*c|.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				abs += math.Abs(av * bv)
			}
			v := float64(alpha) * s
			sc := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				cv := float64(beta) * float64(c[i*ldc+j])
				v += cv
				sc += math.Abs(cv)
			}
			want[i*n+j] = v
			scale[i*n+j] = sc
		}
	}
	return want, scale
}

type gemmCase struct {
	m, n, k     int
	alpha, beta float32
	pad         int // extra elements per row of A, B and C beyond the minimum
}

func TestSgemmMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []gemmCase{
		{1, 1, 1, 1, 0, 0},
		{1, 1, 1, -2, 0.5, 3},
		{2, 3, 1, 1, 1, 0},
		{4, 2, 4, 1, 0, 0},
		{5, 3, 7, 0.5, -1, 1},
		{17, 33, 5, 1, 0, 0},
		{17, 33, 5, 1.5, 1, 2},
		{33, 17, 9, -1, 0.25, 1},
		{64, 64, 64, 1, 0, 0},
		{129, 65, 257, 1, 0, 0},
		{129, 65, 257, 0.75, 1, 5},
		{65, 129, 300, 1, -0.5, 0},
		{300, 7, 600, 1, 0, 1},   // k beyond gemmKC, m beyond gemmMC
		{3, 2100, 20, 1, 1, 0},   // n beyond gemmNC
		{70, 40, 1, 2, 0, 3},     // k below the unroll
		{8, 8, 3, 1, 0, 0},       // k tail padding
		{200, 96, 40, 1, 0, 0},   // parallel, split over m
		{96, 200, 40, 1, 0.5, 2}, // parallel, split over n
	}
	for _, tc := range cases {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			transA, transB := tr[0], tr[1]
			name := fmt.Sprintf("%dx%dx%d_tA%v_tB%v_a%v_b%v_pad%d", tc.m, tc.n, tc.k, transA, transB, tc.alpha, tc.beta, tc.pad)
			t.Run(name, func(t *testing.T) {
				ar, ac := tc.m, tc.k
				if transA {
					ar, ac = tc.k, tc.m
				}
				br, bc := tc.k, tc.n
				if transB {
					br, bc = tc.n, tc.k
				}
				lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
				a := gemmTestMatrix(rng, ar, ac, lda)
				b := gemmTestMatrix(rng, br, bc, ldb)
				c := gemmTestMatrix(rng, tc.m, tc.n, ldc)
				if tc.beta == 0 {
					for i := range c {
						c[i] = float32(math.NaN()) // must be overwritten, not scaled
					}
				}
				want, scale := gemmRef(transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
				Sgemm(transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
				tol := float64(tc.k+2) * 0x1p-23
				for i := 0; i < tc.m; i++ {
					for j := 0; j < tc.n; j++ {
						got := float64(c[i*ldc+j])
						w := want[i*tc.n+j]
						require.False(t, math.IsNaN(got), "C[%d,%d] is NaN", i, j)
						require.LessOrEqual(t, math.Abs(got-w), tol*scale[i*tc.n+j]+1e-30,
							"C[%d,%d] = %v, want %v", i, j, got, w)
					}
					if tc.pad > 0 && i < tc.m-1 {
						// Row padding of C is not part of the matrix and stays untouched.
						require.True(t, math.IsNaN(float64(c[i*ldc+tc.n])) || tc.beta != 0,
							"padding after row %d was written", i)
					}
				}
			})
		}
	}
}

func TestSgemmAlphaZeroDoesNotReadAB(t *testing.T) {
	m, n, k := 3, 4, 5
	nan := float32(math.NaN())
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = nan
	}
	for i := range b {
		b[i] = nan
	}
	c := make([]float32, m*n)
	for i := range c {
		c[i] = float32(i)
	}
	Sgemm(false, false, m, n, k, 0, a, k, b, n, 2, c, n)
	for i, v := range c {
		require.Equal(t, float32(2*i), v)
	}
	Sgemm(false, false, m, n, 0, 1, nil, 1, nil, n, 0, c, n)
	for _, v := range c {
		require.Equal(t, float32(0), v)
	}
	Sgemm(false, false, 0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1) // empty is a no-op
}

func TestSgemmPanicsOnBadArguments(t *testing.T) {
	a := make([]float32, 6)
	b := make([]float32, 6)
	c := make([]float32, 4)
	require.PanicsWithValue(t, "runtime.Sgemm: lda=2 is less than the 3 columns of a", func() {
		Sgemm(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2)
	})
	require.PanicsWithValue(t, "runtime.Sgemm: b has 6 elements, want at least 8", func() {
		Sgemm(false, false, 2, 2, 4, 1, make([]float32, 8), 4, b, 2, 0, c, 2)
	})
	require.PanicsWithValue(t, "runtime.Sgemm: c has 4 elements, want at least 5", func() {
		Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 3)
	})
	require.Panics(t, func() { Sgemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) })
}

// TestSgemmSplitInvariant checks that the parallel split does not change a
// single bit: every element is accumulated in the same order.
func TestSgemmSplitInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{96, 300, 70}, {300, 96, 70}} {
		m, n, k := s[0], s[1], s[2]
		a := gemmTestMatrix(rng, m, k, k)
		b := gemmTestMatrix(rng, k, n, n)
		par := make([]float32, m*n)
		Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, par, n)
		ser := make([]float32, m*n)
		sc := gemmScratches.get()
		sc.sgemm(false, false, m, n, k, 1, a, k, b, n, 0, ser, n)
		gemmScratches.put(sc)
		require.Equal(t, ser, par)
	}
}

func TestSgemmAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, s := range [][3]int{{7, 9, 11}, {128, 256, 96}, {256, 64, 80}} {
		m, n, k := s[0], s[1], s[2]
		a := gemmTestMatrix(rng, m, k, k)
		b := gemmTestMatrix(rng, k, n, n)
		c := make([]float32, m*n)
		allocs := testing.AllocsPerRun(10, func() {
			Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
			Sgemm(true, false, m, n, k, 1, a, m, b, n, 1, c, n)
		})
		require.Zero(t, allocs, "Sgemm %dx%dx%d", m, n, k)
	}
}

// TestSgemmPackingPadsWithZeros runs a product with Inf everywhere and then
// one whose k is not a multiple of the kernel's unroll, so that stale Inf in
// the packing buffers' padding would turn into NaN (0*Inf) if the padding
// were not rewritten.
func TestSgemmPackingPadsWithZeros(t *testing.T) {
	inf := float32(math.Inf(1))
	big := make([]float32, 64*64)
	for i := range big {
		big[i] = inf
	}
	c := make([]float32, 64*64)
	Sgemm(false, false, 8, 8, 64, 1, big, 64, big, 8, 0, c, 8)
	Sgemm(true, true, 8, 8, 64, 1, big, 8, big, 64, 0, c, 8)
	for _, k := range []int{1, 5, 7, 13} {
		for _, tr := range [][2]bool{{false, false}, {true, true}} {
			a := make([]float32, 7*k)
			b := make([]float32, k*3)
			for i := range a {
				a[i] = 1
			}
			for i := range b {
				b[i] = 2
			}
			c := make([]float32, 7*3)
			lda, ldb := k, 3
			if tr[0] {
				lda = 7
			}
			if tr[1] {
				ldb = k
			}
			Sgemm(tr[0], tr[1], 7, 3, k, 1, a, lda, b, ldb, 0, c, 3)
			for _, v := range c {
				require.Equal(t, float32(2*k), v, "k=%d trans=%v", k, tr)
			}
		}
	}
}
