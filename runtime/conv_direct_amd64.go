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
// is a ninth of the im2col matrix for a 3x3 kernel. It reports false, having
// done nothing, when p has no direct form or Sgemm is not running the
// AVX-512 kernels (the tests swap implementations).
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, x, y, w []float32) bool {
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
	_ = y[(p.kg-1)*P+P-1]
	for j, q0 := 0, 0; q0 < P; j, q0 = j+1, q0+nr {
		m := d.masks[d.phase[j]:][:crs]
		cols := min(nr, P-q0)
		for i := 0; i < p.kg; i += mr {
			gemmConvKernel8x32Z(crs, &gs.a[i*crs], &xp[q0], &d.offs[0], &m[0], &y[i*P+q0], P, min(mr, p.kg-i), cols, true)
		}
	}
	return true
}
