package runtime

import (
	"strconv"
	"sync"
)

// gemmParallelMin is the m*n*k below which Sgemm stays on the caller's
// goroutine: handing work to the pool costs a few microseconds.
const gemmParallelMin = 1 << 18

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on row-major matrices with
// BLAS sgemm semantics: op(X) is X or its transpose, op(A) is m x k, op(B) is
// k x n, C is m x n, and lda, ldb, ldc are the row strides of the stored A, B
// and C. When beta is 0, C is overwritten without being read (NaNs in C do not
// propagate); when alpha is 0 or k is 0, A and B are not read.
//
// The result does not depend on GOMAXPROCS or on how the work is split: each
// element of C is accumulated over k in the same order in every case.
// Sgemm allocates nothing once the per-worker packing buffers have grown to
// the largest shape seen.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmWith(gemmUse, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemmWith is Sgemm on implementation g, so that tests can run each one.
func sgemmWith(g *gemmImpl, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		gemmPanic("negative dimension m=" + strconv.Itoa(m) + " n=" + strconv.Itoa(n) + " k=" + strconv.Itoa(k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	gemmCheck("a", "lda", a, lda, ar, ac)
	gemmCheck("b", "ldb", b, ldb, br, bc)
	gemmCheck("c", "ldc", c, ldc, m, n)
	if m == 0 || n == 0 {
		return
	}
	if alpha == 0 || k == 0 {
		gemmScale(m, n, beta, c, ldc)
		return
	}
	sgemmAuto(g, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmPanic(msg string) {
	panic("runtime.Sgemm: " + msg)
}

// gemmCheck validates a stored rows x cols matrix with row stride ld, as BLAS
// does, so that a bad call panics with a message instead of reading a
// neighbouring tensor.
func gemmCheck(name, ldName string, x []float32, ld, rows, cols int) {
	if ld < max(1, cols) {
		gemmPanic(ldName + "=" + strconv.Itoa(ld) + " is less than the " + strconv.Itoa(cols) + " columns of " + name)
	}
	if rows > 0 && cols > 0 {
		if need := (rows-1)*ld + cols; len(x) < need {
			gemmPanic(name + " has " + strconv.Itoa(len(x)) + " elements, want at least " + strconv.Itoa(need))
		}
	}
}

// gemmScale sets C = beta*C over the m x n block; beta 0 overwrites, so NaN
// and Inf in C vanish as BLAS requires.
func gemmScale(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemmFreeList hands out long-lived *T values to concurrent users: kernels
// keep scratch buffers and Task values in them so that a call, once warm,
// allocates nothing. Values are never released, so the list grows to the
// largest number of simultaneous users (pool workers plus concurrent callers).
type gemmFreeList[T any] struct {
	mu    sync.Mutex
	items []*T
}

func (f *gemmFreeList[T]) get() *T {
	f.mu.Lock()
	if n := len(f.items); n > 0 {
		x := f.items[n-1]
		f.items[n-1] = nil
		f.items = f.items[:n-1]
		f.mu.Unlock()
		return x
	}
	f.mu.Unlock()
	return new(T)
}

func (f *gemmFreeList[T]) put(x *T) {
	f.mu.Lock()
	f.items = append(f.items, x)
	f.mu.Unlock()
}

// gemmScratch holds one worker's packed panels.
type gemmScratch struct {
	a, b []float32
	mat  gemmMatB  // the B operand of sgemm, held here so passing it allocates nothing
	tmp  []float32 // scratch for a gemmPanelB that builds B in pieces
	// offs and masks describe a B read in place (gemmStridedTile).
	offs  []int32
	masks []uint32
	// aFor is the filter slice whose packed form a holds, when a direct
	// convolution packed it (fwdDirect), so that the next sample of the
	// same call reuses it; nil when a holds anything else.
	aFor *float32
}

var (
	gemmScratches gemmFreeList[gemmScratch]
	gemmTasks     gemmFreeList[sgemmTask]
)

// gemmGrow returns buf resized to n elements, allocating only when its
// capacity is too small.
func gemmGrow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// gemmImpl is one GEMM micro-kernel together with the register tile it
// computes, the packing routines that lay panels out for it and the cache
// blocking that suits it. Sgemm runs gemmUse, picked once at start-up from
// what the CPU supports (gemm_amd64.go, gemm_noasm.go); the tests run every
// implementation the machine can.
type gemmImpl struct {
	name   string
	mr, nr int // register tile: rows and columns of C per kernel call
	ku     int // the packed panels' k extent is zero-padded to a multiple of ku
	// Cache blocking, after GotoBLAS/BLIS: a kc x nc panel of op(B) is
	// packed once per (jc, pc) step and stays in L2/L3, an mc x kc block of
	// op(A) is packed once per (ic, pc) step and stays in L2, and the kernel
	// sweeps nr-wide slivers of the B panel (each kept in L1 while it meets
	// every mr-high sliver of the A block). These are upper bounds: the
	// actual blocks split each dimension evenly (gemmBlock).
	mc, kc, nc int // mc is a multiple of mr, nc of nr, kc of ku
	kernel     gemmKernelFunc
	// packCopy and packGather lay out blocks of A and B for the kernel;
	// the k padding is left to gemmPadK.
	packCopy, packGather gemmPackFunc
}

// gemmKernelFunc computes one tile of C from an mr-row sliver a and an
// nr-column sliver b of packed panels, k steps deep:
//
//	C[i*ldc+j] = C[i*ldc+j] + Σ_{p<k} a[p*MR+i]*b[p*NR+j]    (overwrite: without the C term)
//
// for i < mr and j < nr, where MR x NR is the implementation's tile and
// mr <= MR, nr <= NR are smaller at the bottom and right edges of C (the
// packed slivers are zero-padded there, and the kernel must not touch C
// outside the mr x nr corner). Each element's sum runs over p in order,
// starting from zero, and is then added to C, in the same way at the edges
// as inside: that is what makes Sgemm's result independent of how C is
// split between workers.
type gemmKernelFunc func(k int, a, b, c []float32, ldc, mr, nr int, overwrite bool)

// gemmPackFunc packs n columns of a block (rows of C for A, columns for B)
// into ceil(n/w) slivers of width w, kc k steps each and kcp*w apart in dst,
// with element (p, j) of the block at dst[(j/w)*kcp*w+p*w+j%w] =
// alpha*x(p, j), where x(p, j) is src[p*ld+j] for packCopy (a sliver's k
// step is contiguous in the source) and src[j*ld+p] for packGather (a
// sliver's k step gathers one element from each of w rows). The columns of
// the last sliver past n are zeroed; the k steps kc <= p < kcp are not
// written.
type gemmPackFunc func(dst, src []float32, ld, w, n, kc, kcp int, alpha float32)

// gemmBlock returns the block size for a dimension of extent x cut into
// blocks of at most max (a multiple of unit): the extent is split into the
// fewest blocks, all of nearly equal size, so that no block is a sliver
// that pays the per-block overheads for little work (k = 257 with kc = 256
// would otherwise run a 1-deep pass over all of C).
func gemmBlock(x, max, unit int) int {
	if x <= max {
		return x
	}
	nb := (x + max - 1) / max
	return gemmRoundUp((x+nb-1)/nb, unit)
}

// gemmPanelB is a source of packed panels of op(B) for the blocked product:
// a stored matrix (gemmMatB), or one computed while packing, as the
// convolutions' im2col matrix is, so that it is never stored whole.
type gemmPanelB interface {
	// packB writes op(B)[pc:pc+kc, jc:jc+nc] into s.b as g.nr-column
	// slivers, each kcp x g.nr with element (p, j) at p*g.nr+j, zeroing the
	// last sliver's missing columns but not the k padding (gemmPackFunc's
	// layout); s.tmp is free for its use. Concurrent calls with different
	// s must be safe.
	packB(g *gemmImpl, s *gemmScratch, pc, jc, kc, kcp, nc int)
}

// gemmMatB is a stored op(B): b with row stride ldb, transposed if trans.
type gemmMatB struct {
	trans bool
	b     []float32
	ldb   int
}

func (m *gemmMatB) packB(g *gemmImpl, s *gemmScratch, pc, jc, kc, kcp, nc int) {
	if m.trans {
		g.packGather(s.b, m.b[jc*m.ldb+pc:], m.ldb, g.nr, nc, kc, kcp, 1)
	} else {
		g.packCopy(s.b, m.b[pc*m.ldb+jc:], m.ldb, g.nr, nc, kc, kcp, 1)
	}
}

// sgemmAuto runs a validated, non-trivial Sgemm with g, splitting it over
// the pool when it is large enough to pay for the hand-off.
func sgemmAuto(g *gemmImpl, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if Workers() == 1 || m*n*k < gemmParallelMin {
		s := gemmScratches.get()
		s.sgemm(g, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		gemmScratches.put(s)
		return
	}
	t := gemmTasks.get()
	t.mat = gemmMatB{trans: transB, b: b, ldb: ldb}
	t.run(g, transA, m, n, k, alpha, a, lda, &t.mat, beta, c, ldc)
}

// sgemmAutoB is sgemmAuto with op(B) taken from a panel source.
func sgemmAutoB(g *gemmImpl, transA bool, m, n, k int, alpha float32, a []float32, lda int, bp gemmPanelB, beta float32, c []float32, ldc int) {
	if Workers() == 1 || m*n*k < gemmParallelMin {
		s := gemmScratches.get()
		s.sgemmB(g, transA, m, n, k, alpha, a, lda, bp, 0, beta, c, ldc)
		gemmScratches.put(s)
		return
	}
	gemmTasks.get().run(g, transA, m, n, k, alpha, a, lda, bp, beta, c, ldc)
}

// sgemmTask splits one Sgemm into independent sub-products over column
// (splitN) or row blocks of C.
type sgemmTask struct {
	g           *gemmImpl
	transA      bool
	splitN      bool
	m, n, k     int
	alpha, beta float32
	a, c        []float32
	lda, ldc    int
	bp          gemmPanelB
	mat         gemmMatB // bp for a stored B
}

// run splits the product over the pool, then returns t to its free list.
func (t *sgemmTask) run(g *gemmImpl, transA bool, m, n, k int, alpha float32, a []float32, lda int, bp gemmPanelB, beta float32, c []float32, ldc int) {
	t.g, t.transA, t.m, t.n, t.k = g, transA, m, n, k
	t.alpha, t.beta, t.a, t.lda, t.bp, t.c, t.ldc = alpha, beta, a, lda, bp, c, ldc
	// Split the larger of m and n: each worker packs the whole of the other
	// operand, so the one duplicated is the smaller.
	t.splitN = n >= m
	var units, perUnit int
	if t.splitN {
		units, perUnit = (n+g.nr-1)/g.nr, m*k*g.nr
	} else {
		units, perUnit = (m+g.mr-1)/g.mr, n*k*g.mr
	}
	grain := max(1, gemmParallelMin/perUnit)
	ParallelFor(units, grain, t)
	*t = sgemmTask{} // drop references to the caller's matrices
	gemmTasks.put(t)
}

// Run implements Task: units are nr-column or mr-row slivers of C.
func (t *sgemmTask) Run(lo, hi int) {
	s := gemmScratches.get()
	g := t.g
	if t.splitN {
		j0, j1 := lo*g.nr, min(hi*g.nr, t.n)
		s.sgemmB(g, t.transA, t.m, j1-j0, t.k, t.alpha, t.a, t.lda, t.bp, j0, t.beta, t.c[j0:], t.ldc)
	} else {
		i0, i1 := lo*g.mr, min(hi*g.mr, t.m)
		ao := i0 * t.lda
		if t.transA {
			ao = i0
		}
		s.sgemmB(g, t.transA, i1-i0, t.n, t.k, t.alpha, t.a[ao:], t.lda, t.bp, 0, t.beta, t.c[i0*t.ldc:], t.ldc)
	}
	gemmScratches.put(s)
}

// sgemm is the single-threaded blocked product on validated arguments with
// m, n, k > 0.
func (s *gemmScratch) sgemm(g *gemmImpl, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s.mat = gemmMatB{trans: transB, b: b, ldb: ldb}
	s.sgemmB(g, transA, m, n, k, alpha, a, lda, &s.mat, 0, beta, c, ldc)
	s.mat = gemmMatB{}
}

// sgemmB is sgemm with op(B) taken from columns j0..j0+n-1 of a panel
// source.
func (s *gemmScratch) sgemmB(g *gemmImpl, transA bool, m, n, k int, alpha float32, a []float32, lda int, bp gemmPanelB, j0 int, beta float32, c []float32, ldc int) {
	// beta == 0 is folded into the first pass over k, whose kernel calls
	// store instead of adding: C is written once rather than cleared and
	// read back.
	if beta != 0 {
		gemmScale(m, n, beta, c, ldc)
	}
	// The k blocking depends on k alone, never on m or n, so a worker given
	// part of C sums every element in the same order as a single thread.
	kb := gemmBlock(k, g.kc, g.ku)
	mb := gemmBlock(m, g.mc, g.mr)
	nb := gemmBlock(n, g.nc, g.nr)
	kcMax := gemmRoundUp(kb, g.ku)
	s.b = gemmGrow(s.b, kcMax*gemmRoundUp(nb, g.nr))
	s.a, s.aFor = gemmGrow(s.a, kcMax*gemmRoundUp(mb, g.mr)), nil
	for jc := 0; jc < n; jc += nb {
		nc := min(nb, n-jc)
		for pc := 0; pc < k; pc += kb {
			kc := min(kb, k-pc)
			kcp := gemmRoundUp(kc, g.ku)
			bp.packB(g, s, pc, j0+jc, kc, kcp, nc)
			gemmPadK(s.b, g.nr, (nc+g.nr-1)/g.nr, kc, kcp)
			for ic := 0; ic < m; ic += mb {
				mc := min(mb, m-ic)
				g.packA(s.a, transA, a, lda, ic, pc, mc, kc, kcp, alpha)
				g.macro(mc, nc, kcp, s.a, s.b, c[ic*ldc+jc:], ldc, beta == 0 && pc == 0)
			}
		}
	}
}

func gemmRoundUp(x, m int) int { return (x + m - 1) / m * m }

// macro multiplies a packed mc x kcp block of A by a packed kcp x nc panel
// of B into C, one register tile at a time; the kernel handles the edge
// tiles itself.
func (g *gemmImpl) macro(mc, nc, kcp int, ap, bp, c []float32, ldc int, overwrite bool) {
	mr, nr := g.mr, g.nr
	for jr := 0; jr < nc; jr += nr {
		bs := bp[jr*kcp : (jr+nr)*kcp]
		nrr := min(nr, nc-jr)
		for ir := 0; ir < mc; ir += mr {
			g.kernel(kcp, ap[ir*kcp:(ir+mr)*kcp], bs, c[ir*ldc+jr:], ldc, min(mr, mc-ir), nrr, overwrite)
		}
	}
}

// gemmPackCols is how many slivers the copying packers fill per pass. Going
// down one sliver at a time would touch kc cache lines ld apart, which alias
// to a few L1 sets when ld is a power of two (the common case) and thrash;
// going across all slivers per row would cycle through more destination
// lines than L1 holds. A block of 64 slivers reads each source row segment
// once and keeps its destination lines hot across consecutive k steps.
const gemmPackCols = 64

// packA copies alpha * op(A)[ic:ic+mc, pc:pc+kc] into dst as mr-row
// slivers, each kcp x mr with element (p, i) at p*mr+i, zero-padding the
// missing rows of the last sliver and the k tail. Folding alpha in here
// costs nothing extra, since every element is touched anyway.
func (g *gemmImpl) packA(dst []float32, trans bool, a []float32, lda, ic, pc, mc, kc, kcp int, alpha float32) {
	if trans {
		g.packCopy(dst, a[pc*lda+ic:], lda, g.mr, mc, kc, kcp, alpha)
	} else {
		g.packGather(dst, a[ic*lda+pc:], lda, g.mr, mc, kc, kcp, alpha)
	}
	gemmPadK(dst, g.mr, (mc+g.mr-1)/g.mr, kc, kcp)
}

// gemmPadK zeroes the k padding (steps kc..kcp-1) of the first ns slivers of
// width w: it may hold stale values, even Inf or NaN, from an earlier call.
func gemmPadK(dst []float32, w, ns, kc, kcp int) {
	if kc == kcp {
		return
	}
	for s := 0; s < ns; s++ {
		clear(dst[s*kcp*w+kc*w : (s+1)*kcp*w])
	}
}

// gemmPackCopyGo is the portable gemmPackFunc for contiguous sliver rows
// (op(A) = Aᵀ, op(B) = B).
func gemmPackCopyGo(dst, src []float32, ld, w, n, kc, kcp int, alpha float32) {
	full := n / w
	for s0 := 0; s0 < full; s0 += gemmPackCols {
		ns := min(gemmPackCols, full-s0)
		if w == gemmNR && alpha == 1 {
			gemmPackCopyNR(dst[s0*kcp*w:], src[s0*w:], ld, kcp, kc, ns)
			continue
		}
		for p := 0; p < kc; p++ {
			row := src[p*ld+s0*w:][:ns*w]
			d := dst[s0*kcp*w+p*w:]
			for s := 0; s < ns; s++ {
				gemmScaleCopy(d[s*kcp*w:][:w], row[s*w:][:w], alpha)
			}
		}
	}
	gemmPackCopyEdge(dst, src, ld, w, n, kc, kcp, alpha)
}

// gemmPackCopyNR packs ns full slivers of B for the Go kernel with
// fixed-size moves: written for any width, the loop spent more time in
// control and bounds checks than in the moves. It stays out of line, as
// the original packers did, so that its loop does not spill.
//
//go:noinline
func gemmPackCopyNR(dst, src []float32, ld, kcp, kc, ns int) {
	for p := 0; p < kc; p++ {
		row := src[p*ld:][:ns*gemmNR]
		d := dst[p*gemmNR:]
		for s := 0; s < ns; s++ {
			*(*[gemmNR]float32)(d[s*kcp*gemmNR:]) = *(*[gemmNR]float32)(row[s*gemmNR:])
		}
	}
}

// gemmPackCopyEdge packs the partial last sliver for the copying packers.
func gemmPackCopyEdge(dst, src []float32, ld, w, n, kc, kcp int, alpha float32) {
	full := n / w
	r := n - full*w
	if r == 0 {
		return
	}
	d := dst[full*kcp*w:][:kc*w]
	for p := 0; p < kc; p++ {
		row := d[p*w : (p+1)*w]
		gemmScaleCopy(row[:r], src[p*ld+full*w:][:r], alpha)
		clear(row[r:])
	}
}

// gemmScaleCopy sets dst = alpha*src; alpha 1 is a plain copy. The Go
// kernel's slivers are 2 and 4 wide, too short to pay for a memmove call.
func gemmScaleCopy(dst, src []float32, alpha float32) {
	if alpha == 1 && len(dst) > 8 {
		copy(dst, src)
		return
	}
	src = src[:len(dst)]
	if alpha == 1 {
		for i, v := range src {
			dst[i] = v
		}
		return
	}
	for i, v := range src {
		dst[i] = alpha * v
	}
}

// gemmPackGatherGo is the portable gemmPackFunc for gathered sliver rows
// (op(A) = A, op(B) = Bᵀ): each source row is contiguous along k and is
// scattered with stride w.
func gemmPackGatherGo(dst, src []float32, ld, w, n, kc, kcp int, alpha float32) {
	full := n / w
	for s := 0; s < full; s++ {
		gemmPackGatherRows(dst[s*kcp*w:], src[s*w*ld:], ld, w, w, kc, alpha)
	}
	if r := n - full*w; r > 0 {
		d := dst[full*kcp*w:][:kc*w]
		clear(d)
		gemmPackGatherRows(d, src[full*w*ld:], ld, w, r, kc, alpha)
	}
}

// gemmPackGatherRows scatters the first kc elements of rows source rows, ld
// apart, into columns 0..rows-1 of a sliver of width w.
func gemmPackGatherRows(d, src []float32, ld, w, rows, kc int, alpha float32) {
	d = d[:(kc-1)*w+rows]
	for i := 0; i < rows; i++ {
		r := src[i*ld:][:kc]
		d := d[i:]
		if alpha == 1 {
			for p, v := range r {
				d[p*w] = v
			}
			continue
		}
		for p, v := range r {
			d[p*w] = alpha * v
		}
	}
}

// gemmAddGo is the portable gemmAdd.
func gemmAddGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// gemmGather2Go is the portable gemmGather2.
func gemmGather2Go(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	src = src[:2*len(dst)-1]
	for i := range dst {
		dst[i] = src[2*i]
	}
}
