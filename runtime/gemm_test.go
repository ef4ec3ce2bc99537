package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// gemmTestMatrix returns a rows x cols matrix with row stride ld filled with
// uniform values in [-1, 1); the padding between rows holds NaN so that a
// kernel reading outside the matrix is caught.
// gemmTestOperands returns random op(A) (m x k), op(B) (k x n), stored
// transposed as tr says with tight leading dimensions, and C (m x n).
func gemmTestOperands(rng *rand.Rand, tr [2]bool, m, n, k int) (a []float32, lda int, b []float32, ldb int, c []float32) {
	lda, ldb = k, n
	if tr[0] {
		lda = m
	}
	if tr[1] {
		ldb = k
	}
	a = gemmTestMatrix(rng, m*k/lda, lda, lda)
	b = gemmTestMatrix(rng, k*n/ldb, ldb, ldb)
	return a, lda, b, ldb, gemmTestMatrix(rng, m, n, n)
}

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
		// Edges of the assembly kernels' tiles (8x32, 6x16) and their k
		// blocking (kc 192, 256, with a one-step tail).
		{7, 31, 9, 1, 0, 0},
		{9, 33, 17, 1, 1, 1},
		{8, 32, 8, 1, 0, 0},
		{13, 47, 193, 1, 0.5, 0},
		{25, 65, 385, 2, 0, 2},
		{6, 16, 257, 1, 0, 0},
		{520, 40, 30, 1, 1, 0},  // m beyond the assembly kernels' mc
		{40, 4100, 12, 1, 0, 1}, // n beyond their nc
	}
	for _, g := range gemmTestImpls() {
		for _, tc := range cases {
			if g.mc < 64 && tc.m*tc.n*tc.k > 1<<18 {
				continue // tiny blocks: the small cases cross every boundary already
			}
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				testSgemmCase(t, g, rng, tc, tr[0], tr[1])
			}
		}
	}
}

// testSgemmCase runs one product with implementation g and checks it against
// gemmRef.
func testSgemmCase(t *testing.T, g *gemmImpl, rng *rand.Rand, tc gemmCase, transA, transB bool) {
	name := fmt.Sprintf("%s/%dx%dx%d_tA%v_tB%v_a%v_b%v_pad%d", g.name, tc.m, tc.n, tc.k, transA, transB, tc.alpha, tc.beta, tc.pad)
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
		// A row of NaN past the end catches stores below the last row.
		c = append(c, make([]float32, ldc)...)
		for i := tc.m*ldc - tc.pad; i < len(c); i++ {
			c[i] = float32(math.NaN())
		}
		want, scale := gemmRef(transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		sgemmWith(g, transA, transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		tol := float64(tc.k+2) * 0x1p-23
		for i := 0; i < tc.m; i++ {
			for j := 0; j < tc.n; j++ {
				// Plain comparisons: require's per-call cost dominates the
				// large cases.
				got := float64(c[i*ldc+j])
				w := want[i*tc.n+j]
				if !(math.Abs(got-w) <= tol*scale[i*tc.n+j]+1e-30) { // also catches NaN
					t.Fatalf("C[%d,%d] = %v, want %v", i, j, got, w)
				}
			}
			// Row padding of C is not part of the matrix and stays untouched.
			for j := tc.n; j < ldc; j++ {
				if !math.IsNaN(float64(c[i*ldc+j])) {
					t.Fatalf("padding C[%d,%d] was written", i, j)
				}
			}
		}
		for i := tc.m * ldc; i < len(c); i++ {
			if !math.IsNaN(float64(c[i])) {
				t.Fatalf("C[%d] past the last row was written", i)
			}
		}
	})
}

// TestSgemmImplsAgree runs every implementation on the same inputs: each
// must be within float32 rounding of the float64 reference, and so within
// twice that of each other (the assembly kernels fuse multiply and add, the
// Go kernel rounds twice, so their bits may differ).
func TestSgemmImplsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	impls := gemmImpls()
	for _, s := range [][3]int{{1, 1, 1}, {23, 45, 67}, {64, 96, 200}, {130, 70, 513}} {
		m, n, k := s[0], s[1], s[2]
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			a, lda, b, ldb, c0 := gemmTestOperands(rng, tr, m, n, k)
			const alpha, beta = 0.5, -1.25
			want, scale := gemmRef(tr[0], tr[1], m, n, k, alpha, a, lda, b, ldb, beta, c0, n)
			tol := float64(k+2) * 0x1p-23
			results := make([][]float32, len(impls))
			for gi, g := range impls {
				c := slices.Clone(c0)
				sgemmWith(g, tr[0], tr[1], m, n, k, alpha, a, lda, b, ldb, beta, c, n)
				for i, v := range c {
					if !(math.Abs(float64(v)-want[i]) <= tol*scale[i]+1e-30) {
						t.Fatalf("%s %dx%dx%d trans %v: C[%d] = %v, want %v", g.name, m, n, k, tr, i, v, want[i])
					}
				}
				results[gi] = c
			}
			for gi := 1; gi < len(impls); gi++ {
				for i, v := range results[gi] {
					if u := results[0][i]; !(math.Abs(float64(u)-float64(v)) <= 2*tol*scale[i]+1e-30) {
						t.Fatalf("%s vs %s %dx%dx%d trans %v: C[%d] = %v vs %v", impls[0].name, impls[gi].name, m, n, k, tr, i, u, v)
					}
				}
			}
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
		sc.sgemm(gemmUse, false, false, m, n, k, 1, a, k, b, n, 0, ser, n)
		gemmScratches.put(sc)
		require.Equal(t, ser, par)
	}
}

// TestSgemmAnySplitIsBitIdentical runs each implementation's parallel task
// by hand over every way of cutting C in two, along m and along n, and
// checks that no split changes a bit of the result: edge tiles move with the
// cut, so this also checks that the kernels' edge path sums exactly like the
// full-tile path. It does not need GOMAXPROCS > 1.
func TestSgemmAnySplitIsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, g := range gemmTestImpls() {
		for _, s := range []struct {
			m, n, k int
			beta    float32
		}{{37, 70, 45, 0}, {50, 41, 400, 0.5}} {
			for _, tr := range [][2]bool{{false, false}, {true, true}} {
				m, n, k := s.m, s.n, s.k
				a, lda, b, ldb, c0 := gemmTestOperands(rng, tr, m, n, k)
				ser := slices.Clone(c0)
				sc := gemmScratches.get()
				sc.sgemm(g, tr[0], tr[1], m, n, k, 1.5, a, lda, b, ldb, s.beta, ser, n)
				gemmScratches.put(sc)
				for _, splitN := range []bool{false, true} {
					units := (m + g.mr - 1) / g.mr
					if splitN {
						units = (n + g.nr - 1) / g.nr
					}
					for cut := 1; cut < units; cut++ {
						par := slices.Clone(c0)
						task := sgemmTask{
							g: g, transA: tr[0], splitN: splitN, m: m, n: n, k: k,
							alpha: 1.5, beta: s.beta, a: a, lda: lda, c: par, ldc: n,
							bp: &gemmMatB{trans: tr[1], b: b, ldb: ldb},
						}
						task.Run(cut, units)
						task.Run(0, cut)
						require.Equal(t, ser, par, "%s %dx%dx%d trans %v splitN %v cut %d", g.name, m, n, k, tr, splitN, cut)
					}
				}
			}
		}
	}
}

// TestGemmKernelEdgeTiles calls each kernel directly on every tile size up
// to its full tile, in both modes, and checks the mr x nr corner against a
// float64 sum and every other element of C for stray writes. The rows and
// columns of a and b beyond the corner are not zero (as packing would make
// them) so that a stray add changes the sentinel.
func TestGemmKernelEdgeTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const sentinel = 1000.5
	for _, g := range gemmImpls() {
		for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 33} {
			kp := gemmRoundUp(k, g.ku)
			a := make([]float32, kp*g.mr) // zero k padding, as packed
			b := make([]float32, kp*g.nr)
			for i := range k * g.mr {
				a[i] = float32(rng.Float64()*2 - 1)
			}
			for i := range k * g.nr {
				b[i] = float32(rng.Float64()*2 - 1)
			}
			ldc := g.nr + 3
			for mr := 1; mr <= g.mr; mr++ {
				for nr := 1; nr <= g.nr; nr++ {
					for _, overwrite := range []bool{false, true} {
						c := make([]float32, (g.mr+1)*ldc)
						for i := range c {
							c[i] = sentinel
						}
						c0 := make([]float32, len(c))
						for i := 0; i < mr; i++ {
							for j := 0; j < nr; j++ {
								if !overwrite {
									c[i*ldc+j] = float32(rng.Float64()*2 - 1)
								}
								c0[i*ldc+j] = c[i*ldc+j]
							}
						}
						g.kernel(kp, a, b, c, ldc, mr, nr, overwrite)
						for i := range c {
							r, j := i/ldc, i%ldc
							if r >= mr || j >= nr {
								require.Equal(t, float32(sentinel), c[i], "%s k %d tile %dx%d overwrite %v: C[%d,%d] written", g.name, k, mr, nr, overwrite, r, j)
								continue
							}
							var want, scale float64
							if !overwrite {
								want, scale = float64(c0[i]), math.Abs(float64(c0[i]))
							}
							for p := 0; p < k; p++ {
								x := float64(a[p*g.mr+r]) * float64(b[p*g.nr+j])
								want += x
								scale += math.Abs(x)
							}
							require.InDelta(t, want, float64(c[i]), float64(k+2)*0x1p-23*scale,
								"%s k %d tile %dx%d overwrite %v: C[%d,%d]", g.name, k, mr, nr, overwrite, r, j)
						}
					}
				}
			}
		}
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

// gemmTestImpls returns every implementation the machine runs, each also
// with tiny cache blocks, so that small test shapes cross every block
// boundary (several mc, kc and nc blocks, and a k tail in each).
func gemmTestImpls() []*gemmImpl {
	var l []*gemmImpl
	for _, g := range gemmImpls() {
		tiny := *g
		tiny.name += "-tinyblocks"
		tiny.mc, tiny.kc, tiny.nc = 2*g.mr, 3*g.ku, 2*g.nr
		l = append(l, g, &tiny)
	}
	return l
}

// TestConv2DOnEveryGemm reruns the convolution reference tests with each
// GEMM implementation in turn: the convolutions build their im2col panels
// straight into the packed layout, which follows the implementation's tile
// and blocking.
func TestConv2DOnEveryGemm(t *testing.T) {
	saved := gemmUse
	defer func() { gemmUse = saved }()
	for i, g := range gemmTestImpls() {
		if i%2 == 0 {
			// Only the tiny-block variants: they take every path the
			// full-size blocks do and cross all the block boundaries (the
			// regular tests run gemmUse with its full blocks).
			continue
		}
		gemmUse = g
		t.Run(g.name, func(t *testing.T) {
			TestConv2DForward(t)
			TestConv2DGradientsMatchReference(t)
		})
	}
}
