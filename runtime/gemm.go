package runtime

import (
	"strconv"
	"sync"
)

// Cache blocking of Sgemm, after GotoBLAS/BLIS: a gemmKC x gemmNC panel of
// op(B) is packed once per (jc, pc) step and stays in L2/L3, a gemmMC x gemmKC
// block of op(A) is packed into L2, and the micro-kernel sweeps gemmNR-wide
// slivers of the B panel (which stay in L1) against every gemmMR-high sliver
// of the A block.
const (
	gemmMC = 128  // multiple of gemmMR
	gemmKC = 256  // multiple of gemmKU
	gemmNC = 2048 // multiple of gemmNR
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
	sgemmAuto(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
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

// sgemmAuto runs a validated, non-trivial Sgemm, splitting it over the pool
// when it is large enough to pay for the hand-off.
func sgemmAuto(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if Workers() == 1 || m*n*k < gemmParallelMin {
		s := gemmScratches.get()
		s.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		gemmScratches.put(s)
		return
	}
	t := gemmTasks.get()
	*t = sgemmTask{
		transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
	}
	// Split the larger of m and n: each worker packs the whole of the other
	// operand, so the one duplicated is the smaller.
	t.splitN = n >= m
	var units, perUnit int
	if t.splitN {
		units, perUnit = (n+gemmNR-1)/gemmNR, m*k*gemmNR
	} else {
		units, perUnit = (m+gemmMR-1)/gemmMR, n*k*gemmMR
	}
	grain := max(1, gemmParallelMin/perUnit)
	ParallelFor(units, grain, t)
	*t = sgemmTask{} // drop references to the caller's matrices
	gemmTasks.put(t)
}

// sgemmTask splits one Sgemm into independent sub-products over column
// (splitN) or row blocks of C.
type sgemmTask struct {
	transA, transB bool
	splitN         bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

// Run implements Task: units are gemmNR-column or gemmMR-row slivers of C.
func (t *sgemmTask) Run(lo, hi int) {
	s := gemmScratches.get()
	if t.splitN {
		j0, j1 := lo*gemmNR, min(hi*gemmNR, t.n)
		bo := j0
		if t.transB {
			bo = j0 * t.ldb
		}
		s.sgemm(t.transA, t.transB, t.m, j1-j0, t.k, t.alpha, t.a, t.lda, t.b[bo:], t.ldb, t.beta, t.c[j0:], t.ldc)
	} else {
		i0, i1 := lo*gemmMR, min(hi*gemmMR, t.m)
		ao := i0 * t.lda
		if t.transA {
			ao = i0
		}
		s.sgemm(t.transA, t.transB, i1-i0, t.n, t.k, t.alpha, t.a[ao:], t.lda, t.b, t.ldb, t.beta, t.c[i0*t.ldc:], t.ldc)
	}
	gemmScratches.put(s)
}

// sgemm is the single-threaded blocked product on validated arguments with
// m, n, k > 0.
func (s *gemmScratch) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmScale(m, n, beta, c, ldc)
	kcMax := gemmRoundUp(min(k, gemmKC), gemmKU)
	s.b = gemmGrow(s.b, kcMax*gemmRoundUp(min(n, gemmNC), gemmNR))
	s.a = gemmGrow(s.a, kcMax*gemmRoundUp(min(m, gemmMC), gemmMR))
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			kcp := gemmRoundUp(kc, gemmKU)
			gemmPackB(s.b, transB, b, ldb, pc, jc, kc, kcp, nc)
			for ic := 0; ic < m; ic += gemmMC {
				mc := min(gemmMC, m-ic)
				gemmPackA(s.a, transA, a, lda, ic, pc, mc, kc, kcp, alpha)
				gemmMacro(mc, nc, kcp, s.a, s.b, c[ic*ldc+jc:], ldc)
			}
		}
	}
}

func gemmRoundUp(x, m int) int { return (x + m - 1) / m * m }

// gemmMacro multiplies a packed mc x kcp block of A by a packed kcp x nc
// panel of B into C. Edge tiles go through a full-size temporary so the
// micro-kernel never needs to know about them.
func gemmMacro(mc, nc, kcp int, ap, bp, c []float32, ldc int) {
	for jr := 0; jr < nc; jr += gemmNR {
		bs := bp[jr*kcp : (jr+gemmNR)*kcp]
		nr := min(gemmNR, nc-jr)
		for ir := 0; ir < mc; ir += gemmMR {
			as := ap[ir*kcp : (ir+gemmMR)*kcp]
			mr := min(gemmMR, mc-ir)
			if mr == gemmMR && nr == gemmNR {
				gemmKernel(kcp, as, bs, c[ir*ldc+jr:], ldc)
				continue
			}
			var tile [gemmMR * gemmNR]float32
			gemmKernel(kcp, as, bs, tile[:], gemmNR)
			for i := 0; i < mr; i++ {
				row := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+nr]
				for j := range row {
					row[j] += tile[i*gemmNR+j]
				}
			}
		}
	}
}

// gemmPackCols is how many slivers the packers fill per pass when the source
// is read along its rows (op(X) stored with the k index across rows). Going
// down one sliver at a time would touch kc cache lines ld apart, which alias
// to a few L1 sets when ld is a power of two (the common case) and thrash;
// going across all slivers per row would cycle through more destination lines
// than L1 holds. A block of 64 slivers reads each source row segment once and
// keeps its 64 destination lines hot across consecutive k steps.
const gemmPackCols = 64

// gemmPackA copies alpha * op(A)[ic:ic+mc, pc:pc+kc] into dst as gemmMR-row
// slivers, each kcp x gemmMR with element (p, i) at p*gemmMR+i, zero-padding
// the missing rows of the last sliver and the k tail. Folding alpha in here
// costs nothing extra, since every element is touched anyway. The loops are
// written for any gemmMR so that a kernel with another tile reuses them.
func gemmPackA(dst []float32, trans bool, a []float32, lda, ic, pc, mc, kc, kcp int, alpha float32) {
	full := mc / gemmMR
	if trans {
		gemmPackAT(dst, a[pc*lda+ic:], lda, full, kc, kcp, alpha)
	} else {
		gemmPackAN(dst, a[ic*lda+pc:], lda, full, kc, kcp, alpha)
	}
	if mr := mc - full*gemmMR; mr > 0 {
		d := dst[full*kcp*gemmMR:][:kc*gemmMR]
		clear(d)
		i0 := ic + full*gemmMR
		for i := 0; i < mr; i++ {
			for p := 0; p < kc; p++ {
				if trans {
					d[p*gemmMR+i] = alpha * a[(pc+p)*lda+i0+i]
				} else {
					d[p*gemmMR+i] = alpha * a[(i0+i)*lda+pc+p]
				}
			}
		}
	}
	if kc < kcp {
		for s := 0; s < (mc+gemmMR-1)/gemmMR; s++ {
			clear(dst[s*kcp*gemmMR+kc*gemmMR : (s+1)*kcp*gemmMR])
		}
	}
}

// gemmPackB copies op(B)[pc:pc+kc, jc:jc+nc] into dst as gemmNR-column
// slivers, each kcp x gemmNR with element (p, j) at p*gemmNR+j, zero-padding
// the missing columns of the last sliver and the k tail.
func gemmPackB(dst []float32, trans bool, b []float32, ldb, pc, jc, kc, kcp, nc int) {
	full := nc / gemmNR
	if trans {
		gemmPackBT(dst, b[jc*ldb+pc:], ldb, full, kc, kcp)
	} else {
		gemmPackBN(dst, b[pc*ldb+jc:], ldb, full, kc, kcp)
	}
	if nr := nc - full*gemmNR; nr > 0 {
		d := dst[full*kcp*gemmNR:][:kc*gemmNR]
		clear(d)
		j0 := jc + full*gemmNR
		for j := 0; j < nr; j++ {
			for p := 0; p < kc; p++ {
				if trans {
					d[p*gemmNR+j] = b[(j0+j)*ldb+pc+p]
				} else {
					d[p*gemmNR+j] = b[(pc+p)*ldb+j0+j]
				}
			}
		}
	}
	if kc < kcp {
		for s := 0; s < (nc+gemmNR-1)/gemmNR; s++ {
			clear(dst[s*kcp*gemmNR+kc*gemmNR : (s+1)*kcp*gemmNR])
		}
	}
}

// The full-sliver packing loops live in small functions of their own: inlined
// into the packers, with their many live values, they spilled on every
// element and ran several times slower. In each, a starts at the block's
// first element and full slivers are packed.

// gemmPackAT packs from A stored k x m (op(A) = Aᵀ): a sliver's k step is
// contiguous in the source.
func gemmPackAT(dst, a []float32, lda, full, kc, kcp int, alpha float32) {
	for s0 := 0; s0 < full; s0 += gemmPackCols {
		ns := min(gemmPackCols, full-s0)
		for p := 0; p < kc; p++ {
			src := a[p*lda+s0*gemmMR:][:ns*gemmMR]
			d := dst[s0*kcp*gemmMR+p*gemmMR:]
			for s := 0; s < ns; s++ {
				dp := (*[gemmMR]float32)(d[s*kcp*gemmMR:])
				sp := (*[gemmMR]float32)(src[s*gemmMR:])
				for i := range dp {
					dp[i] = alpha * sp[i]
				}
			}
		}
	}
}

// gemmPackAN packs from A stored m x k: a sliver's k step gathers one element
// from each of gemmMR contiguous rows.
func gemmPackAN(dst, a []float32, lda, full, kc, kcp int, alpha float32) {
	for s := 0; s < full; s++ {
		d := dst[s*kcp*gemmMR:][:kc*gemmMR]
		for i := 0; i < gemmMR; i++ {
			r := a[(s*gemmMR+i)*lda:][:kc]
			d := d[i:]
			for p, v := range r {
				d[p*gemmMR] = alpha * v
			}
		}
	}
}

// gemmPackBN packs from B stored k x n: a sliver's k step is contiguous in
// the source.
func gemmPackBN(dst, b []float32, ldb, full, kc, kcp int) {
	for s0 := 0; s0 < full; s0 += gemmPackCols {
		ns := min(gemmPackCols, full-s0)
		for p := 0; p < kc; p++ {
			src := b[p*ldb+s0*gemmNR:][:ns*gemmNR]
			d := dst[s0*kcp*gemmNR+p*gemmNR:]
			for s := 0; s < ns; s++ {
				*(*[gemmNR]float32)(d[s*kcp*gemmNR:]) = *(*[gemmNR]float32)(src[s*gemmNR:])
			}
		}
	}
}

// gemmPackBT packs from B stored n x k (op(B) = Bᵀ): a sliver's k step
// gathers one element from each of gemmNR contiguous rows.
func gemmPackBT(dst, b []float32, ldb, full, kc, kcp int) {
	for s := 0; s < full; s++ {
		d := dst[s*kcp*gemmNR:][:kc*gemmNR]
		for j := 0; j < gemmNR; j++ {
			r := b[(s*gemmNR+j)*ldb:][:kc]
			d := d[j:]
			for p, v := range r {
				d[p*gemmNR] = v
			}
		}
	}
}
