package runtime

import (
	"math"
	"slices"
)

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
// keeps one per hashed tensor; the unexported field is the backward's
// scratch (the first call allocates it, later calls nothing), so one
// SMHParams must not serve two calls at the same time.
type SMHParams struct {
	D     int // side of the virtual matrix P
	Rank  int // inner dimension r of P = L·R
	Off   int // flat offset of the tensor's first element in vec(P)
	Count int // number of elements of the tensor

	h []float32 // G·Rᵀ for the full rows, rows x Rank
}

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

// smhSpan splits the flat range [off, end) of a d-wide matrix into a
// partial first row (head, or -1), the full rows [fa, fb), and a partial
// last row (tail, or -1). A range inside one row is a head only.
func smhSpan(d, off, end int) (head, fa, fb, tail int) {
	head, tail = -1, -1
	fa, fb = (off+d-1)/d, end/d
	if fa > fb { // within one row, touching neither edge
		return off / d, 0, 0, -1
	}
	if off%d != 0 {
		head = off / d
	}
	if end%d != 0 {
		tail = end / d
	}
	return head, fa, fb, tail
}

// SMHReconstruct writes the tensor w[:Count] = s · vec(P)[Off:Off+Count]
// with P = L·R, as one product over the band of rows the tensor touches
// (smhBandTask). The result does not depend on the number of workers.
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
	t := smhBandTasks.get()
	if units, grain := p.band(t, dst, l, r, off, s, smhRowBlock); units > 0 {
		ParallelFor(units, grain, t)
	}
	t.release()
	smhBandTasks.put(t)
}

// release drops t's references to the caller's slices and keeps its own
// buffers for the next band.
func (t *smhBandTask) release() {
	*t = smhBandTask{ap: t.ap[:0], offs: t.offs[:0], masks: t.masks[:0]}
}

// band sets t up to write dst = s·vec(P)[off:off+len(dst)] in units of
// nr-column slivers of rowBlock rows (a multiple of every kernel's mr) and
// returns their number with ParallelFor's grain for them. It returns 0
// units when it has already written dst: when dst is empty, and when s is
// 0 (as Sgemm with alpha 0: zeros, even where P is not finite).
func (p *SMHParams) band(t *smhBandTask, dst, l, r []float32, off int, s float32, rowBlock int) (units, grain int) {
	if len(dst) == 0 {
		return 0, 0
	}
	if s == 0 {
		clear(dst)
		return 0, 0
	}
	d, rank := p.D, p.Rank
	g := gemmUse
	h := off / d
	m := (off+len(dst)-1)/d - h + 1
	// A range within one row needs only its own columns.
	j0, j1 := 0, d
	if m == 1 {
		j0, j1 = off-h*d, off-h*d+len(dst)
	}
	ap, offs, masks := t.ap, t.offs, t.masks
	*t = smhBandTask{g: g, dst: dst, l: l, r: r, d: d, rank: rank, off: off, h: h, m: m, j0: j0, j1: j1, alpha: s}
	t.slivers = (j1 - j0 + g.nr - 1) / g.nr
	t.rowsPer = min(m, rowBlock)
	units = t.slivers * ((m + t.rowsPer - 1) / t.rowsPer)
	if gemmStridedB(g) && rank <= g.kc {
		// The units' A slivers start at multiples of mr from row h
		// (rowBlock is a multiple of mr), so one packing serves them all.
		t.ap = gemmGrow(ap, gemmRoundUp(m, g.mr)*rank)
		g.packA(t.ap, false, l, rank, h, 0, m, rank, rank, s)
		t.offs, t.masks = smhStridedB(offs, masks, rank, d, j0, j1, g.nr)
	} else {
		t.ap, t.offs, t.masks = ap[:0], offs[:0], masks[:0]
	}
	return units, max(1, smhParallelMin/(t.rowsPer*rank*g.nr))
}

// smhBandTask computes the flat range [off, off+len(dst)) of alpha·L·R as
// one product over the band of rows h..h+m-1 that holds it, split over
// the pool by nr-column slivers. A tensor rarely starts or ends on a row
// edge, and computing its partial first and last rows as products of
// their own would pack R three times and run two 1-row products on
// mr-row tiles. Here register tiles that lie inside the range are written
// in place (row i, column j of P is dst[i*d+j-off], so the band is C with
// row stride d), and the few that straddle an end go through a tile-sized
// buffer. Each cell is summed exactly as Sgemm sums it, so the result has
// the same bits as Sgemm over any rows or columns that hold it.
type smhBandTask struct {
	g            *gemmImpl
	dst, l, r    []float32
	d, rank, off int
	h, m         int // the band's first row and height
	j0, j1       int // the band's columns
	alpha        float32
	// The pool's units are nr-column slivers of blocks of rowsPer rows,
	// block-major: splitting tall bands by rows too balances the workers
	// to within a sliver of a block rather than a sliver of the band.
	slivers, rowsPer int
	// With the kernel reading R in place and the rank one k block, band
	// packs the band's rows of L once, scaled (ap, nil otherwise), and
	// the k steps' offsets and lane masks (offs; masks, all lanes then
	// the last sliver's), so that the pool's units, a microsecond each,
	// do not repeat that per unit. The buffers outlive a call.
	ap    []float32
	offs  []int32
	masks []uint32
}

// smhRowBlock is the rows of a band's blocks when it is split over the
// pool (a multiple of every kernel's mr).
const smhRowBlock = 24

var smhBandTasks gemmFreeList[smhBandTask]

// Run implements Task: units are nr-column slivers of row blocks.
func (t *smhBandTask) Run(lo, hi int) {
	var s *gemmScratch
	if len(t.ap) == 0 {
		s = gemmScratches.get()
		defer gemmScratches.put(s)
	}
	for u := lo; u < hi; {
		b, j := u/t.slivers, u%t.slivers
		n := min(hi-u, t.slivers-j) // the run of units in block b
		r0 := b * t.rowsPer
		t.cols(s, t.j0+j*t.g.nr, min(t.j0+(j+n)*t.g.nr, t.j1), r0, min(r0+t.rowsPer, t.m))
		u += n
	}
}

// cols computes columns [j0, j1) of the band's rows [r0, r1): sgemmB's blocking with the
// store of each register tile clipped to the range. Where the kernel can
// read B in place (gemmStridedB), R is not packed at all: a sliver's k
// step is a run of R's row, d floats after the previous one. The sums are
// the same either way.
func (t *smhBandTask) cols(s *gemmScratch, j0, j1, r0, r1 int) {
	g, d, k := t.g, t.d, t.rank
	mr, nr := g.mr, g.nr
	kb := gemmBlock(k, g.kc, g.ku)
	mb := gemmBlock(r1-r0, g.mc, mr)
	nb := gemmBlock(j1-j0, g.nc, nr)
	kcMax := gemmRoundUp(kb, g.ku)
	strided := gemmStridedB(g)
	// pre: band packed L and made the offsets and masks (then kb == k).
	pre := len(t.ap) > 0
	var tmp []float32 // a straddling tile's buffer, from a scratch
	if !pre && strided {
		s.offs, s.masks = smhStridedB(s.offs, s.masks, kb, d, j0, j1, nr)
	} else if !strided {
		s.b = gemmGrow(s.b, kcMax*gemmRoundUp(nb, nr))
	}
	offs, allMasks := t.offs, t.masks
	if !pre {
		s.a, s.aFor = gemmGrow(s.a, kcMax*gemmRoundUp(mb, mr)), nil
		s.tmp = gemmGrow(s.tmp, mr*nr)
		tmp = s.tmp[:mr*nr]
		offs, allMasks = s.offs, s.masks
	} else {
		// Only the units holding the tensor's first or last cells have
		// tiles that straddle them: those take a scratch for the buffer.
		defer func() {
			if s != nil {
				gemmScratches.put(s)
			}
		}()
	}
	count := len(t.dst)
	for jc := j0; jc < j1; jc += nb {
		nc := min(nb, j1-jc)
		for pc := 0; pc < k; pc += kb {
			kc := min(kb, k-pc)
			kcp := gemmRoundUp(kc, g.ku)
			if strided {
				kcp = kc
			} else {
				g.packCopy(s.b, t.r[pc*d+jc:], d, nr, nc, kc, kcp, 1)
				gemmPadK(s.b, nr, (nc+nr-1)/nr, kc, kcp)
			}
			for ic := r0; ic < r1; ic += mb {
				mc := min(mb, r1-ic)
				if !pre {
					g.packA(s.a, false, t.l, k, t.h+ic, pc, mc, kc, kcp, t.alpha)
				}
				for jr := 0; jr < nc; jr += nr {
					nrr := min(nr, nc-jr)
					var bs []float32
					var masks []uint32
					if strided {
						bs = t.r[pc*d+jc+jr:]
						masks = allMasks[:kc]
						if jc+jr+nr > d {
							masks = allMasks[kb:][:kc]
						}
					} else {
						bs = s.b[jr*kcp : (jr+nr)*kcp]
					}
					tile := func(c []float32, ldc, mrr int, overwrite bool, as []float32) {
						if strided {
							gemmStridedTile(kc, as, bs, offs, masks, c, ldc, mrr, nrr, overwrite)
						} else {
							g.kernel(kcp, as, bs, c, ldc, mrr, nrr, overwrite)
						}
					}
					for ir := 0; ir < mc; ir += mr {
						mrr := min(mr, mc-ir)
						var as []float32
						if pre {
							as = t.ap[(ic+ir)*kcp : (ic+ir+mr)*kcp]
						} else {
							as = s.a[ir*kcp : (ir+mr)*kcp]
						}
						first := (t.h+ic+ir)*d + jc + jr - t.off
						last := first + (mrr-1)*d + nrr - 1
						if first >= 0 && last < count {
							tile(t.dst[first:], d, mrr, pc == 0, as)
							continue
						}
						if tmp == nil {
							s = gemmScratches.get()
							s.tmp = gemmGrow(s.tmp, mr*nr)
							tmp = s.tmp[:mr*nr]
						}
						buf := tmp
						if pc > 0 {
							smhTileCopy(buf, t.dst, first, d, mrr, nrr, nr, true)
						}
						tile(buf, nr, mrr, pc == 0, as)
						smhTileCopy(buf, t.dst, first, d, mrr, nrr, nr, false)
					}
				}
			}
		}
	}
}

// smhStridedB returns, reusing offs and masks, gemmStridedTile's view of
// R for kb k steps of columns [j0, j1) in nr-column slivers: k step p
// reads R's row p, d floats after the previous (offs), with all lanes
// (masks[:kb]) or, for the sliver that runs past column d (never past R's
// end), its lanes inside (masks[kb:]).
func smhStridedB(offs []int32, masks []uint32, kb, d, j0, j1, nr int) ([]int32, []uint32) {
	offs = slices.Grow(offs[:0], kb)[:kb]
	masks = slices.Grow(masks[:0], 2*kb)[:2*kb]
	last := j0 + (j1-1-j0)/nr*nr
	tail := ^uint32(0)
	if last+nr > d {
		tail = 1<<(d-last) - 1
	}
	for p := range kb {
		offs[p] = int32(p * d)
		masks[p], masks[kb+p] = ^uint32(0), tail
	}
	return offs, masks
}

// smhTileCopy moves the cells of an mrr x nrr register tile (row stride
// ld in tile) whose flat index first+i*d+j falls inside dst: into the tile
// when load, out of it otherwise.
func smhTileCopy(tile, dst []float32, first, d, mrr, nrr, ld int, load bool) {
	for i := range mrr {
		base := first + i*d
		lo, hi := max(0, -base), min(nrr, len(dst)-base)
		if lo >= hi {
			continue
		}
		if load {
			copy(tile[i*ld+lo:i*ld+hi], dst[base+lo:base+hi])
		} else {
			copy(dst[base+lo:base+hi], tile[i*ld+lo:i*ld+hi])
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
// For the full rows these are two Sgemm calls. It needs no copy of the
// unscaled slice: ⟨dw, vec(P)⟩ = Σ_i L[i,:]·H[i,:] with H = dw·Rᵀ, the
// product the dl update computes anyway (dl = s·H), so the scale's gradient
// costs r multiply-adds per covered row and stays defined when s = 0. ds is
// summed in float64 in row order. The results do not depend on the number
// of workers. ds may be nil.
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
	head, fa, fb, tail := smhSpan(d, off, end)
	if cap(p.h) < max(fb-fa, 1)*rank {
		p.h = make([]float32, max(fb-fa, 1)*rank)
	}
	var sum float64
	// band handles rows [i0, i1), columns [c0, c1) of each: H = G·Rᵀ,
	// dL += s·H, ds += ⟨L, H⟩, dR += s·Lᵀ·G.
	band := func(i0, i1, c0, c1 int) {
		k, n := i1-i0, c1-c0
		h := p.h[:k*rank]
		g := dw[i0*d-off+c0:]
		li := l[i0*rank : i1*rank]
		Sgemm(false, true, k, rank, n, 1, g, d, r[c0:], d, 0, h, rank)
		dli := dl[i0*rank : i1*rank]
		for i, v := range h {
			dli[i] += s * v
			sum += float64(li[i]) * float64(v)
		}
		Sgemm(true, false, rank, n, k, s, li, rank, g, d, 1, dr[c0:], d)
	}
	if head >= 0 {
		c0, c1 := smhCols(head, d, off, end)
		band(head, head+1, c0, c1)
	}
	if fb > fa {
		band(fa, fb, 0, d)
	}
	if tail >= 0 {
		c0, c1 := smhCols(tail, d, off, end)
		band(tail, tail+1, c0, c1)
	}
	if ds != nil {
		*ds += float32(sum)
	}
}

func smhCeilDiv(a, b int) int {
	if b < 1 {
		return a
	}
	return (a + b - 1) / b
}

// smhParallelMin is the multiply-adds below which a reconstruction stays
// on the caller's goroutine: a quarter of Sgemm's threshold, because a
// fused Forward at batch 1 reconstructs every layer's weights between
// layers, with nothing else to run alongside, and the pool's hand-off
// (about a microsecond, its workers spinning between calls) is paid back
// from about that size on.
const smhParallelMin = gemmParallelMin / 4
