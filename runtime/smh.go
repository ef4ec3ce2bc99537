package runtime

import "math"

// Structured Multi-Hashing (Eban et al., CVPR 2020). All hashed weights of a
// model, tensor after tensor, are one virtual vector vec(P) tiled row-major
// into a d x d matrix P = L·R, with L d x r and R r x d, both row-major. A
// tensor of count elements at flat offset off is W = s · vec(P)[off:off+count]
// with a learnable scalar s per tensor. Element k of the tensor is
// P[i, j] with i*d + j = off + k, so a tensor covers the rows
// off/d ... (off+count-1)/d, the first and last usually only in part.
//
// The kernels below compute only the cells a tensor covers: a partial first
// or last row costs its own columns, not a whole row.

// SMHGeometry returns the side d and rank r of the virtual matrix for n
// hashed values and a budget of about budget trainable factor values:
// d = ceil(sqrt(n)) so that the d x d matrix holds every value, and
// r = max(1, ceil(budget/(2d))) so that the factors' 2·d·r values are the
// smallest multiple of 2d that is at least budget. The honest parameter
// count adds one scale per hashed tensor and every unhashed parameter.
// r ≥ d/2 means 2dr ≥ d², no compression at all. It panics if n < 1.
func SMHGeometry(n, budget int) (d, r int) {
	if n < 1 {
		panic("runtime: SMHGeometry: n < 1")
	}
	d = int(math.Sqrt(float64(n)))
	for d*d < n {
		d++
	}
	for d > 1 && (d-1)*(d-1) >= n {
		d--
	}
	r = 1
	if budget > 2*d {
		r = (budget + 2*d - 1) / (2 * d)
	}
	return d, r
}

// SMHGeometryFraction is SMHGeometry with the budget given as a fraction
// frac of n (0.1 for "10% of the hashed values"). The budget is
// ceil(frac·n) with a relative slack of 1e-9, so that a product that is an
// integer in exact arithmetic (0.25·4096) is not pushed up by one by its
// binary rounding.
func SMHGeometryFraction(n int, frac float64) (d, r int) {
	t := frac * float64(n)
	return SMHGeometry(n, int(math.Ceil(t-1e-9*math.Abs(t))))
}

// SMHInitFactors fills L then R with i.i.d. N(0, r^(-1/2)) values (std
// r^(-1/4)), so that each cell of P = L·R, a sum of r products, has unit
// variance and the per-tensor scale alone sets a layer's init std, as the
// paper prescribes.
func SMHInitFactors(l, r []float32, rng *RNG, rank int) {
	// Two correctly rounded square roots rather than math.Pow, whose
	// portable code may be fused differently on other architectures.
	std := float32(1 / math.Sqrt(math.Sqrt(float64(rank))))
	Normal(l, rng, 0, std)
	Normal(r, rng, 0, std)
}

// SMHParams places one hashed tensor in the virtual matrix. Generated code
// keeps one per hashed tensor; the unexported fields are the kernels'
// scratch (the first backward call allocates d float64s, later calls
// nothing), so one SMHParams must not serve two calls at the same time.
type SMHParams struct {
	D     int // side of the virtual matrix P
	Rank  int // inner dimension r of P = L·R
	Off   int // flat offset of the tensor's first element in vec(P)
	Count int // number of elements of the tensor

	fwd   smhFwdTask
	rows  smhRowGradTask
	cols  smhColGradTask
	dsRow []float64
}

// smhMinWork is the number of multiply-adds below which a kernel runs on
// the calling goroutine: handing work to the pool costs a few microseconds.
const smhMinWork = 1 << 16

func (p *SMHParams) check(op string, l, r []float32, off, count int) {
	d, rank := p.D, p.Rank
	switch {
	case d < 1 || rank < 1:
		panic("runtime: " + op + ": D and Rank must be positive")
	case off < 0 || count < 0 || off+count > d*d:
		panic("runtime: " + op + ": range outside the d x d virtual matrix")
	case len(l) < d*rank:
		panic("runtime: " + op + ": L shorter than D*Rank")
	case len(r) < rank*d:
		panic("runtime: " + op + ": R shorter than Rank*D")
	}
}

// smhCols returns the columns [lo, hi) of row i that the flat range
// [off, end) covers.
func smhCols(i, d, off, end int) (lo, hi int) {
	lo, hi = 0, d
	if base := i * d; off > base {
		lo = off - base
	}
	if base := i * d; end < base+d {
		hi = end - base
	}
	return lo, hi
}

// SMHReconstruct writes the tensor w[:Count] = s · vec(P)[Off:Off+Count]
// with P = L·R. Rows are independent and spread over the worker pool; the
// result does not depend on the number of workers.
func SMHReconstruct(p *SMHParams, w, l, r []float32, s float32) {
	p.check("SMHReconstruct", l, r, p.Off, p.Count)
	if len(w) < p.Count {
		panic("runtime: SMHReconstruct: w shorter than Count")
	}
	p.forward(w[:p.Count], l, r, p.Off, s)
}

// SMHReconstructRows writes rows [r0, r1) of P = L·R into dst
// ((r1-r0)·D values, row-major, unscaled); only p.D and p.Rank are used.
// It serves fused kernels that reconstruct a band of P once and slice
// several tensors out of it.
func SMHReconstructRows(p *SMHParams, dst, l, r []float32, r0, r1 int) {
	if r0 < 0 || r1 < r0 {
		panic("runtime: SMHReconstructRows: bad row range")
	}
	p.check("SMHReconstructRows", l, r, r0*p.D, (r1-r0)*p.D)
	n := (r1 - r0) * p.D
	if len(dst) < n {
		panic("runtime: SMHReconstructRows: dst shorter than (r1-r0)*D")
	}
	p.forward(dst[:n], l, r, r0*p.D, 1)
}

func (p *SMHParams) forward(dst, l, r []float32, off int, s float32) {
	if len(dst) == 0 {
		return
	}
	d, rank := p.D, p.Rank
	end := off + len(dst)
	i0, i1 := off/d, (end-1)/d
	t := &p.fwd
	*t = smhFwdTask{dst: dst, l: l, r: r, d: d, rank: rank, off: off, end: end, i0: i0, s: s}
	rows := i1 - i0 + 1
	if len(dst)*rank < smhMinWork {
		t.Run(0, rows)
	} else {
		ParallelFor(rows, smhCeilDiv(smhMinWork, d*rank), t)
	}
	*t = smhFwdTask{} // drop references to the caller's buffers
}

type smhFwdTask struct {
	dst, l, r             []float32
	d, rank, off, end, i0 int
	s                     float32
}

// Run reconstructs the rows i0+lo ... i0+hi-1 of the range.
func (t *smhFwdTask) Run(lo, hi int) {
	d, rank := t.d, t.rank
	for u := lo; u < hi; u++ {
		i := t.i0 + u
		c0, c1 := smhCols(i, d, t.off, t.end)
		base := i*d - t.off
		smhRowFwd(t.dst[base+c0:base+c1], t.l[i*rank:(i+1)*rank], t.r, d, c0, t.s)
	}
}

// smhRowFwd writes dst[j-c0] = s·Σ_t li[t]·R[t, j] for the columns
// j ∈ [c0, c0+len(dst)). It streams four rows of R at a time against one
// output row, which keeps the output in L1 and beat register-blocked
// variants in benchmarks (the Go compiler does not vectorise either).
func smhRowFwd(dst, li, r []float32, d, c0 int, s float32) {
	clear(dst)
	n := len(dst)
	rank := len(li)
	t := 0
	for ; t+4 <= rank; t += 4 {
		a0, a1, a2, a3 := s*li[t], s*li[t+1], s*li[t+2], s*li[t+3]
		r0 := r[t*d+c0:][:len(dst)]
		r1 := r[(t+1)*d+c0:][:len(dst)]
		r2 := r[(t+2)*d+c0:][:len(dst)]
		r3 := r[(t+3)*d+c0:][:len(dst)]
		for j := range dst {
			dst[j] += a0*r0[j] + a1*r1[j] + a2*r2[j] + a3*r3[j]
		}
	}
	for ; t < rank; t++ {
		a := s * li[t]
		rt := r[t*d+c0:][:n]
		for j := range rt {
			dst[j] += a * rt[j]
		}
	}
}

// SMHScatterAdd is the backward of SMHReconstruct. Given dw, the gradient
// of the loss with respect to the scaled tensor W (Count values), and G, s·dw
// scattered into P's shape (zero elsewhere), it accumulates
//
//	dl += G·Rᵀ   (only the rows the tensor covers)
//	dr += Lᵀ·G
//	*ds += ⟨dw, vec(P)[Off:Off+Count]⟩
//
// It needs no copy of the unscaled slice: ⟨dw, vec(P)⟩ = Σ_i L[i,:]·H[i,:]
// with H = dw·Rᵀ, the product the dl update computes anyway (dl = s·H), so
// the scale's gradient costs r multiply-adds per covered row and stays
// defined when s = 0. ds is summed per row in float64 and then over rows in
// order, and dr's columns are summed over rows in a fixed order, so the
// results do not depend on the number of workers. ds may be nil.
func SMHScatterAdd(p *SMHParams, dl, dr []float32, ds *float32, dw, l, r []float32, s float32) {
	p.check("SMHScatterAdd", l, r, p.Off, p.Count)
	d, rank, off, count := p.D, p.Rank, p.Off, p.Count
	switch {
	case len(dw) < count:
		panic("runtime: SMHScatterAdd: dw shorter than Count")
	case len(dl) < d*rank || len(dr) < rank*d:
		panic("runtime: SMHScatterAdd: dl or dr shorter than L or R")
	}
	if count == 0 {
		return
	}
	end := off + count
	i0, i1 := off/d, (end-1)/d
	rows := i1 - i0 + 1
	if cap(p.dsRow) < rows {
		p.dsRow = make([]float64, d)
	}
	dsRow := p.dsRow[:rows]
	small := count*rank < smhMinWork

	rt := &p.rows
	*rt = smhRowGradTask{dl: dl, dw: dw, l: l, r: r, dsRow: dsRow,
		d: d, rank: rank, off: off, end: end, i0: i0, s: s}
	if small {
		rt.Run(0, rows)
	} else {
		ParallelFor(rows, smhCeilDiv(smhMinWork, d*rank), rt)
	}
	*rt = smhRowGradTask{}

	ct := &p.cols
	*ct = smhColGradTask{dr: dr, dw: dw, l: l,
		d: d, rank: rank, off: off, end: end, i0: i0, i1: i1, s: s}
	if small {
		ct.Run(0, d)
	} else {
		ParallelFor(d, smhCeilDiv(smhMinWork, rows*rank), ct)
	}
	*ct = smhColGradTask{}

	if ds != nil {
		var sum float64
		for _, v := range dsRow {
			sum += v
		}
		*ds += float32(sum)
	}
}

type smhRowGradTask struct {
	dl, dw, l, r          []float32
	dsRow                 []float64
	d, rank, off, end, i0 int
	s                     float32
}

// Run updates dL and the per-row ds shares for rows i0+lo ... i0+hi-1.
func (t *smhRowGradTask) Run(lo, hi int) {
	d, rank := t.d, t.rank
	for u := lo; u < hi; u++ {
		i := t.i0 + u
		c0, c1 := smhCols(i, d, t.off, t.end)
		base := i*d - t.off
		t.dsRow[u] = smhRowGrad(t.dl[i*rank:(i+1)*rank], t.dw[base+c0:base+c1],
			t.l[i*rank:(i+1)*rank], t.r, d, c0, t.s)
	}
}

// smhRowGrad computes h[t] = Σ_j g[j]·R[t, c0+j] for one row, adds s·h to
// that row of dL and returns Σ_t li[t]·h[t], the row's share of ds.
func smhRowGrad(dli, g, li, r []float32, d, c0 int, s float32) float64 {
	rank := len(li)
	dli = dli[:rank]
	var ds float64
	t := 0
	for ; t+4 <= rank; t += 4 {
		r0 := r[t*d+c0:][:len(g)]
		r1 := r[(t+1)*d+c0:][:len(g)]
		r2 := r[(t+2)*d+c0:][:len(g)]
		r3 := r[(t+3)*d+c0:][:len(g)]
		var h0, h1, h2, h3 float32
		for j, v := range g {
			h0 += v * r0[j]
			h1 += v * r1[j]
			h2 += v * r2[j]
			h3 += v * r3[j]
		}
		dli[t] += s * h0
		dli[t+1] += s * h1
		dli[t+2] += s * h2
		dli[t+3] += s * h3
		ds += float64(li[t])*float64(h0) + float64(li[t+1])*float64(h1) +
			float64(li[t+2])*float64(h2) + float64(li[t+3])*float64(h3)
	}
	for ; t < rank; t++ {
		rt := r[t*d+c0:][:len(g)]
		var h float32
		for j, v := range g {
			h += v * rt[j]
		}
		dli[t] += s * h
		ds += float64(li[t]) * float64(h)
	}
	return ds
}

type smhColGradTask struct {
	dr, dw, l                 []float32
	d, rank, off, end, i0, i1 int
	s                         float32
}

// Run accumulates dR[:, lo:hi]. Each column sums the rows in one fixed
// order (a partial first row, then full rows four at a time, then the
// remaining full rows, then a partial last row) whatever lo and hi are, so
// the chunking of the columns cannot change the result.
func (t *smhColGradTask) Run(lo, hi int) {
	d := t.d
	i, last := t.i0, t.i1
	if c0, c1 := smhCols(i, d, t.off, t.end); c1-c0 < d {
		t.row(i, c0, c1, lo, hi)
		i++
	}
	tailPartial := false
	if i <= last {
		if c0, c1 := smhCols(last, d, t.off, t.end); c1-c0 < d {
			tailPartial = true
			last--
		}
	}
	for ; i+4 <= last+1; i += 4 {
		t.block4(i, lo, hi)
	}
	for ; i <= last; i++ {
		t.row(i, 0, d, lo, hi)
	}
	if tailPartial {
		c0, c1 := smhCols(t.i1, d, t.off, t.end)
		t.row(t.i1, c0, c1, lo, hi)
	}
}

// row adds s·L[i, t]·dW[i, j] to dR[t, j] for the row's columns [c0, c1)
// within [lo, hi).
func (t *smhColGradTask) row(i, c0, c1, lo, hi int) {
	c0, c1 = max(c0, lo), min(c1, hi)
	if c0 >= c1 {
		return
	}
	d, rank := t.d, t.rank
	g := t.dw[i*d-t.off+c0 : i*d-t.off+c1]
	li := t.l[i*rank : (i+1)*rank]
	for k, lv := range li {
		a := t.s * lv
		drt := t.dr[k*d+c0:][:len(g)]
		for j, v := range g {
			drt[j] += a * v
		}
	}
}

// block4 is row for four consecutive full rows, read together so that each
// dR element is loaded and stored once per four rows.
func (t *smhColGradTask) block4(i, lo, hi int) {
	d, rank, s := t.d, t.rank, t.s
	base := i*d - t.off
	g0 := t.dw[base+lo : base+hi]
	g1 := t.dw[base+d+lo:][:len(g0)]
	g2 := t.dw[base+2*d+lo:][:len(g0)]
	g3 := t.dw[base+3*d+lo:][:len(g0)]
	l := t.l[i*rank : (i+4)*rank]
	for k := 0; k < rank; k++ {
		a0, a1, a2, a3 := s*l[k], s*l[rank+k], s*l[2*rank+k], s*l[3*rank+k]
		drt := t.dr[k*d+lo:][:len(g0)]
		for j, v := range g0 {
			drt[j] += a0*v + a1*g1[j] + a2*g2[j] + a3*g3[j]
		}
	}
}

func smhCeilDiv(a, b int) int {
	if b < 1 {
		return a
	}
	return (a + b - 1) / b
}
