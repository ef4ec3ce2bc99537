//go:build amd64 && !purego

package runtime

// convDirectWidth is the output positions a direct-convolution kernel call
// covers (its tile's columns); 0 when the CPU has no direct kernel.
var convDirectWidth = func() int {
	if gemmHasAVX512 {
		return 32
	}
	return 0
}()

// fwdDirect computes y = W · im2col(x) for one group of one sample with
// gemmConvKernel8x32Z, which reads im2col's entries straight from a
// zero-bordered copy of x: nothing is packed but the filters, and the copy
// is a ninth of the im2col matrix for a 3x3 kernel. With par, the output's
// column slivers are spread over the pool (batch 1). It reports false,
// having done nothing, when p has no direct form or Sgemm is not running the
// AVX-512 kernels (the tests swap implementations).
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32) bool {
	d := p.direct
	if d == nil || gemmUse != gemmZ {
		return false
	}
	const mr, nr = 8, 32
	H, W, P, crs := p.H, p.W, p.oh*p.ow, p.crs
	gs.a = gemmGrow(gs.a, gemmRoundUp(p.kg, mr)*crs)
	gemmZ.packA(gs.a, false, w, crs, 0, 0, p.kg, crs, crs, 1)
	// The kernel's loads run up to nr-1 floats past the last plane.
	n := p.cg*d.plane + nr
	cs.pad = gemmGrow(cs.pad, n)
	xp := cs.pad[:n]
	for c := 0; c < p.cg; c++ {
		pl := xp[c*d.plane:][:d.plane]
		clear(pl[:d.front])
		copy(pl[d.front:], x[c*H*W:][:H*W])
		clear(pl[d.front+H*W:])
	}
	clear(xp[p.cg*d.plane:])
	y = y[:p.kg*P]
	nsl := (P + nr - 1) / nr
	if !par {
		p.directSlivers(gs.a, xp, y, 0, nsl)
		return true
	}
	t := convDirectTasks.get()
	t.p, t.a, t.xp, t.y = p, gs.a, xp, y
	ParallelFor(nsl, max(1, gemmParallelMin/(p.kg*crs*nr)), t)
	*t = convDirectTask{}
	convDirectTasks.put(t)
	return true
}

// directSlivers runs the kernel over output column slivers j0..j1-1: ap is
// the packed filters, xp the zero-bordered input, y the group's output.
func (p *Conv2DParams) directSlivers(ap, xp, y []float32, j0, j1 int) {
	const mr, nr = 8, 32
	d, P, crs := p.direct, p.oh*p.ow, p.crs
	for j := j0; j < j1; j++ {
		q0 := j * nr
		m := d.masks[d.phase[j]:][:crs]
		cols := min(nr, P-q0)
		for i := 0; i < p.kg; i += mr {
			gemmConvKernel8x32Z(crs, &ap[i*crs], &xp[q0], &d.offs[0], &m[0], &y[i*P+q0], P, min(mr, p.kg-i), cols, true)
		}
	}
}

// convDirectTask spreads one fwdDirect's slivers over the pool.
type convDirectTask struct {
	p        *Conv2DParams
	a, xp, y []float32
}

var convDirectTasks gemmFreeList[convDirectTask]

// Run implements Task.
func (t *convDirectTask) Run(lo, hi int) { t.p.directSlivers(t.a, t.xp, t.y, lo, hi) }
