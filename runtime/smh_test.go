package runtime

import (
	"fmt"
	"math"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// smhRef materialises P = L·R in float64, the naive reference.
func smhRef(l, r []float32, d, rank int) []float64 {
	p := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			var s float64
			for t := 0; t < rank; t++ {
				s += float64(l[i*rank+t]) * float64(r[t*d+j])
			}
			p[i*d+j] = s
		}
	}
	return p
}

func smhFactors(seed uint64, d, rank int) (l, r []float32) {
	l, r = make([]float32, d*rank), make([]float32, rank*d)
	SMHInitFactors(l, r, NewRNG(seed), rank)
	return l, r
}

func randSlice(g *RNG, n int) []float32 {
	x := make([]float32, n)
	Normal(x, g, 0, 1)
	return x
}

// requireClose fails unless |have-want| <= tol·(1+|want|) element-wise.
func requireClose(t *testing.T, want []float64, have []float32, tol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(have), msg)
	for i := range want {
		if math.Abs(float64(have[i])-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s: element %d: have %v, want %v", msg, i, have[i], want[i])
		}
	}
}

// smhCases covers the ways a tensor can sit in the virtual matrix.
var smhCases = []struct {
	name       string
	d, rank    int
	off, count int
	usedN      int // cells in use (0: d*d); only documents the layout
	s          float32
}{
	{name: "mid-row to mid-row", d: 37, rank: 3, off: 10, count: 200, s: 0.7},
	{name: "inside one row", d: 37, rank: 3, off: 40, count: 20, s: -1.3},
	{name: "whole rows", d: 37, rank: 3, off: 2 * 37, count: 5 * 37, s: 0.25},
	{name: "row start to mid-row", d: 37, rank: 5, off: 37, count: 60, s: 1},
	{name: "mid-row to row end", d: 37, rank: 5, off: 50, count: 3*37 - 13, s: 2},
	{name: "last used cell, unused tail", d: 37, rank: 3, off: 37*37 - 5 - 50, count: 50, usedN: 37*37 - 5, s: 0.1},
	{name: "one cell at row end", d: 37, rank: 4, off: 3*37 - 1, count: 1, s: 3},
	{name: "one cell at row start", d: 37, rank: 4, off: 3 * 37, count: 1, s: 3},
	{name: "two cells across a row boundary", d: 37, rank: 8, off: 3*37 - 1, count: 2, s: 0.5},
	{name: "whole matrix", d: 37, rank: 7, off: 0, count: 37 * 37, s: 1.5},
	{name: "d=1", d: 1, rank: 2, off: 0, count: 1, s: 0.3},
	{name: "two partial rows, no middle", d: 37, rank: 6, off: 30, count: 20, s: 1},
	{name: "large, parallel", d: 301, rank: 9, off: 123, count: 301*301 - 200, s: 0.05},
	// More than one k block (kc is at most 256) and one row block (mc at
	// most 512): partial tiles are read back between k blocks.
	{name: "rank beyond a k block", d: 61, rank: 300, off: 45, count: 61*20 + 7, s: 0.5},
	{name: "rows beyond an m block", d: 600, rank: 2, off: 599, count: 600 * 590, s: 1},
}

func TestSMHReconstructMatchesReference(t *testing.T) {
	for _, tc := range smhCases {
		t.Run(tc.name, func(t *testing.T) {
			l, r := smhFactors(1, tc.d, tc.rank)
			ref := smhRef(l, r, tc.d, tc.rank)
			p := &SMHParams{D: tc.d, Rank: tc.rank, Off: tc.off, Count: tc.count}
			w := make([]float32, tc.count+3)
			for i := range w {
				w[i] = 99
			}
			SMHReconstruct(p, w, l, r, tc.s)
			want := make([]float64, tc.count)
			for k := range want {
				want[k] = float64(tc.s) * ref[tc.off+k]
			}
			requireClose(t, want, w[:tc.count], 1e-5, "W")
			require.Equal(t, []float32{99, 99, 99}, w[tc.count:], "wrote past Count")
		})
	}
}

func TestSMHReconstructRows(t *testing.T) {
	const d, rank = 37, 3
	l, r := smhFactors(2, d, rank)
	ref := smhRef(l, r, d, rank)
	p := &SMHParams{D: d, Rank: rank}
	for _, rr := range [][2]int{{0, d}, {5, 6}, {10, 20}, {36, 37}, {4, 4}} {
		dst := make([]float32, (rr[1]-rr[0])*d)
		SMHReconstructRows(p, dst, l, r, rr[0], rr[1])
		requireClose(t, ref[rr[0]*d:rr[1]*d], dst, 1e-5, fmt.Sprint("rows ", rr))
	}
	require.Panics(t, func() { SMHReconstructRows(p, make([]float32, 2*d), l, r, 36, 38) })
}

// Pitfall 1 of SMH.md: FeatherMap placed biases at the wrong offset at row
// boundaries. Tensors laid out back to back must reconstruct exactly the
// consecutive slices of vec(P), bit for bit.
func TestSMHConsecutiveTensorsTileVecP(t *testing.T) {
	// A LeNet-5-like layout (conv1 w/b, conv2 w/b, fc1..fc3 w/b) at 1/4 width.
	counts := []int{150 / 2, 6, 2400 / 4, 16, 12000 / 8, 120, 10080 / 8, 84, 840, 10}
	n := 0
	for _, c := range counts {
		n += c
	}
	d, rank := SMHGeometryFraction(n, 0.1)
	l, r := smhFactors(3, d, rank)
	full := make([]float32, d*d)
	SMHReconstructRows(&SMHParams{D: d, Rank: rank}, full, l, r, 0, d)
	// The reconstruction sums each cell as Sgemm does.
	prod := make([]float32, d*d)
	Sgemm(false, false, d, d, rank, 1, l, rank, r, d, 0, prod, d)
	require.Equal(t, prod, full)

	var cat []float32
	off := 0
	for i, c := range counts {
		p := &SMHParams{D: d, Rank: rank, Off: off, Count: c}
		w := make([]float32, c)
		SMHReconstruct(p, w, l, r, 1)
		require.Equal(t, full[off:off+c], w, "tensor %d at offset %d", i, off)
		cat = append(cat, w...)
		off += c
	}
	require.Equal(t, full[:n], cat)
	requireClose(t, smhRef(l, r, d, rank)[:n], cat, 1e-5, "against float64 reference")
}

func TestSMHScatterAddMatchesReference(t *testing.T) {
	for _, tc := range smhCases {
		t.Run(tc.name, func(t *testing.T) {
			d, rank := tc.d, tc.rank
			g := NewRNG(4)
			l, r := smhFactors(5, d, rank)
			dw := randSlice(g, tc.count)
			dl0, dr0 := randSlice(g, d*rank), randSlice(g, rank*d)
			ds0 := float32(0.375)

			// Reference: G = s·dw scattered into P's shape.
			gm := make([]float64, d*d)
			for k, v := range dw {
				gm[tc.off+k] = float64(tc.s) * float64(v)
			}
			wantL, wantR := make([]float64, d*rank), make([]float64, rank*d)
			for i := 0; i < d; i++ {
				for t := 0; t < rank; t++ {
					sum := float64(dl0[i*rank+t])
					for j := 0; j < d; j++ {
						sum += gm[i*d+j] * float64(r[t*d+j])
					}
					wantL[i*rank+t] = sum
				}
			}
			for t := 0; t < rank; t++ {
				for j := 0; j < d; j++ {
					sum := float64(dr0[t*d+j])
					for i := 0; i < d; i++ {
						sum += float64(l[i*rank+t]) * gm[i*d+j]
					}
					wantR[t*d+j] = sum
				}
			}
			ref := smhRef(l, r, d, rank)
			wantS := float64(ds0)
			for k, v := range dw {
				wantS += float64(v) * ref[tc.off+k]
			}

			p := &SMHParams{D: d, Rank: rank, Off: tc.off, Count: tc.count}
			dl, dr, ds := append([]float32(nil), dl0...), append([]float32(nil), dr0...), ds0
			SMHScatterAdd(p, dl, dr, &ds, dw, l, r, tc.s)
			tol := 2e-5 * math.Sqrt(float64(d))
			requireClose(t, wantL, dl, tol, "dL")
			requireClose(t, wantR, dr, tol, "dR")
			requireClose(t, []float64{wantS}, []float32{ds}, tol*math.Sqrt(float64(tc.count)), "ds")

			// Rows outside the tensor's band are untouched.
			i0, i1 := tc.off/d, (tc.off+tc.count-1)/d
			for i := 0; i < d; i++ {
				if i < i0 || i > i1 {
					require.Equal(t, dl0[i*rank:(i+1)*rank], dl[i*rank:(i+1)*rank], "row %d", i)
				}
			}
			SMHScatterAdd(p, dl, dr, nil, dw, l, r, tc.s) // nil ds is allowed
		})
	}
}

// Backward against central finite differences in float64 of
// f(L, R, s) = Σ_k W_k·g_k with W = s·vec(L·R)[off:off+count].
func TestSMHScatterAddFiniteDifferences(t *testing.T) {
	for _, tc := range smhCases {
		if tc.d > 40 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			d, rank := tc.d, tc.rank
			g := NewRNG(6)
			l, r := smhFactors(7, d, rank)
			gw := randSlice(g, tc.count)
			lf, rf := make([]float64, len(l)), make([]float64, len(r))
			for i := range l {
				lf[i] = float64(l[i])
			}
			for i := range r {
				rf[i] = float64(r[i])
			}
			f := func(s float64) float64 {
				var sum float64
				for k, gv := range gw {
					i, j := (tc.off+k)/d, (tc.off+k)%d
					var p float64
					for t := 0; t < rank; t++ {
						p += lf[i*rank+t] * rf[t*d+j]
					}
					sum += s * p * float64(gv)
				}
				return sum
			}
			const h = 1e-4
			s := float64(tc.s)
			fd := func(x *float64) float64 {
				old := *x
				*x = old + h
				fp := f(s)
				*x = old - h
				fm := f(s)
				*x = old
				return (fp - fm) / (2 * h)
			}
			wantL, wantR := make([]float64, len(l)), make([]float64, len(r))
			for i := range lf {
				wantL[i] = fd(&lf[i])
			}
			for i := range rf {
				wantR[i] = fd(&rf[i])
			}
			wantS := (f(s+h) - f(s-h)) / (2 * h)

			p := &SMHParams{D: d, Rank: rank, Off: tc.off, Count: tc.count}
			dl, dr := make([]float32, len(l)), make([]float32, len(r))
			var ds float32
			SMHScatterAdd(p, dl, dr, &ds, gw, l, r, tc.s)
			requireClose(t, wantL, dl, 1e-4, "dL")
			requireClose(t, wantR, dr, 1e-4, "dR")
			requireClose(t, []float64{wantS}, []float32{ds}, 1e-4, "ds")
		})
	}
}

// The pool splits rows and columns by the number of workers; the results
// must not depend on it. Run the tasks with different chunkings by hand.
// TestSMHWorkersDoNotChangeResults: one worker or two, the kernels give the
// same bits.
func TestSMHWorkersDoNotChangeResults(t *testing.T) {
	const d, rank, off, count = 301, 9, 57, 301*280 + 13
	l, r := smhFactors(8, d, rank)
	dw := randSlice(NewRNG(9), count)
	run := func() ([]float32, []float32, []float32, float32) {
		p := &SMHParams{D: d, Rank: rank, Off: off, Count: count}
		w := make([]float32, count)
		SMHReconstruct(p, w, l, r, 0.3)
		dl, dr := make([]float32, d*rank), make([]float32, rank*d)
		var ds float32
		SMHScatterAdd(p, dl, dr, &ds, dw, l, r, 0.3)
		return w, dl, dr, ds
	}
	prev := goruntime.GOMAXPROCS(1)
	w1, dl1, dr1, ds1 := run()
	goruntime.GOMAXPROCS(max(2, prev))
	w2, dl2, dr2, ds2 := run()
	goruntime.GOMAXPROCS(prev)
	require.Equal(t, w1, w2)
	require.Equal(t, dl1, dl2)
	require.Equal(t, dr1, dr2)
	require.Equal(t, ds1, ds2)
}

func TestSMHAllocatesNothing(t *testing.T) {
	for _, tc := range []struct{ d, rank, off, count int }{{37, 3, 10, 200}, {301, 9, 123, 301*301 - 200}} {
		l, r := smhFactors(1, tc.d, tc.rank)
		p := &SMHParams{D: tc.d, Rank: tc.rank, Off: tc.off, Count: tc.count}
		w := make([]float32, tc.count)
		dl, dr := make([]float32, len(l)), make([]float32, len(r))
		var ds float32
		SMHReconstruct(p, w, l, r, 1)
		SMHScatterAdd(p, dl, dr, &ds, w, l, r, 1)
		require.Zero(t, testing.AllocsPerRun(5, func() { SMHReconstruct(p, w, l, r, 1) }))
		require.Zero(t, testing.AllocsPerRun(5, func() { SMHScatterAdd(p, dl, dr, &ds, w, l, r, 1) }))
	}
}

func TestSMHPanicsOnBadGeometry(t *testing.T) {
	l, r := smhFactors(1, 5, 2)
	w := make([]float32, 30)
	for _, p := range []*SMHParams{
		{D: 5, Rank: 2, Off: 20, Count: 6}, // past d*d
		{D: 5, Rank: 3, Off: 0, Count: 5},  // factors too short for Rank
		{D: 0, Rank: 2},
		{D: 5, Rank: 2, Off: -1, Count: 2},
	} {
		require.Panics(t, func() { SMHReconstruct(p, w, l, r, 1) }, "%+v", *p)
	}
	require.Panics(t, func() { SMHReconstruct(&SMHParams{D: 5, Rank: 2, Count: 25}, w[:3], l, r, 1) })
}

func TestSMHGeometry(t *testing.T) {
	for _, tc := range []struct {
		n, budget int
		d, r      int
	}{
		{n: 1, budget: 0, d: 1, r: 1},
		{n: 1, budget: 5, d: 1, r: 3},
		{n: 4, budget: 4, d: 2, r: 1},
		{n: 5, budget: 4, d: 3, r: 1},
		{n: 16, budget: 16, d: 4, r: 2},
		{n: 17, budget: 16, d: 5, r: 2},
		{n: 1 << 20, budget: 1 << 17, d: 1024, r: 64},
		{n: 61706, budget: 6171, d: 249, r: 13}, // LeNet-5 at 10%: 6,474 factor values (SMH.md)
	} {
		d, r := SMHGeometry(tc.n, tc.budget)
		require.Equal(t, [2]int{tc.d, tc.r}, [2]int{d, r}, "n=%d budget=%d", tc.n, tc.budget)
	}
	for n := 1; n <= 3000; n += 7 {
		for _, budget := range []int{0, 1, n / 10, n / 4, n} {
			d, r := SMHGeometry(n, budget)
			require.True(t, d*d >= n && (d-1)*(d-1) < n, "n=%d d=%d", n, d)
			require.GreaterOrEqual(t, r, 1)
			require.GreaterOrEqual(t, 2*d*r, budget, "n=%d budget=%d", n, budget)
			if r > 1 {
				require.Less(t, 2*d*(r-1), budget, "r not minimal: n=%d budget=%d", n, budget)
			}
		}
	}
	d, r := SMHGeometryFraction(4096, 0.25)
	require.Equal(t, [2]int{64, 8}, [2]int{d, r}, "exact 25%% must not round up")
	d, r = SMHGeometryFraction(61706, 0.1)
	require.Equal(t, [2]int{249, 13}, [2]int{d, r})
	require.Panics(t, func() { SMHGeometry(0, 1) })
}

func TestSMHInitFactorsGivesUnitVarianceCells(t *testing.T) {
	const d, rank = 200, 16
	l, r := smhFactors(12, d, rank)
	p := smhRef(l, r, d, rank)
	var s2 float64
	for _, v := range p {
		s2 += v * v
	}
	require.InDelta(t, 1, s2/float64(len(p)), 0.1)
}

func BenchmarkSMH(b *testing.B) {
	const d, rank = 520, 32
	l, r := smhFactors(1, d, rank)
	p := &SMHParams{D: d, Rank: rank, Off: 0, Count: d * d}
	w := make([]float32, d*d)
	dl, dr := make([]float32, len(l)), make([]float32, len(r))
	var ds float32
	b.Run("Reconstruct", func(b *testing.B) {
		b.SetBytes(int64(d * d * rank)) // reported MB/s = million multiply-adds per second
		for i := 0; i < b.N; i++ {
			SMHReconstruct(p, w, l, r, 1)
		}
	})
	b.Run("ScatterAdd", func(b *testing.B) {
		b.SetBytes(int64(2 * d * d * rank))
		for i := 0; i < b.N; i++ {
			SMHScatterAdd(p, dl, dr, &ds, w, l, r, 1)
		}
	})
}
