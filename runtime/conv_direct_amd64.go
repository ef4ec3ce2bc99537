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
// is a ninth of the im2col matrix for a 3x3 kernel. In the wide form (see
// convDirect) the kernel writes a scratch grid that is then compacted into
// y. With par, the output's column slivers are spread over the pool (batch
// 1). It reports false, having done nothing, when p has no direct form or
// Sgemm is not running the AVX-512 kernels (the tests swap
// implementations).
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32) bool {
	d := p.direct
	if d == nil || gemmUse != gemmZ {
		return false
	}
	const mr, nr = 8, 32
	crs := p.crs
	// A call packs a group's filters once per worker, not once per sample
	// (convScratchesGet clears gs.aFor between calls).
	if gs.aFor != &w[0] {
		gs.a = gemmGrow(gs.a, gemmRoundUp(p.kg, mr)*crs)
		gemmZ.packA(gs.a, false, w, crs, 0, 0, p.kg, crs, crs, 1)
		gs.aFor = &w[0]
	}
	xp := p.padInput(cs, x)
	y = y[:p.kg*p.oh*p.ow]
	out := y
	if d.rowW != 0 {
		cs.wide = gemmGrow(cs.wide, p.kg*d.span)
		out = cs.wide[:p.kg*d.span]
	}
	nsl := (d.span + nr - 1) / nr
	if !par {
		p.directSlivers(gs.a, xp, out, 0, nsl)
	} else {
		t := convDirectTasks.get()
		t.p, t.a, t.xp, t.y = p, gs.a, xp, out
		ParallelFor(nsl, max(1, gemmParallelMin/(p.kg*crs*nr)), t)
		*t = convDirectTask{}
		convDirectTasks.put(t)
	}
	if d.rowW != 0 {
		OH, OW := p.oh, p.ow
		for k := 0; k < p.kg; k++ {
			src, dst := out[k*d.span:], y[k*OH*OW:]
			for oh := 0; oh < OH; oh++ {
				copy(dst[oh*OW:][:OW], src[oh*d.rowW:][:OW])
			}
		}
	}
	return true
}

// directSlivers runs the kernel over output column slivers j0..j1-1: ap is
// the packed filters, xp the zero-bordered input, y the group's output
// (d.span positions per channel).
func (p *Conv2DParams) directSlivers(ap, xp, y []float32, j0, j1 int) {
	const mr, nr = 8, 32
	d, crs := p.direct, p.crs
	P := d.span
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

// padInput copies the group's input planes x into cs.pad with the zero
// borders of p.direct, plus 32 floats of slack at the end (the direct
// kernel's loads run up to 31 floats past the last plane), and returns the
// copy.
func (p *Conv2DParams) padInput(cs *convScratch, x []float32) []float32 {
	d, H, W := p.direct, p.H, p.W
	n := p.cg*d.plane + 32
	cs.pad = gemmGrow(cs.pad, n)
	xp := cs.pad[:n]
	for c := 0; c < p.cg; c++ {
		pl := xp[c*d.plane:][:d.plane]
		xc := x[c*H*W:][:H*W]
		if d.rowW == 0 {
			clear(pl[:d.front])
			copy(pl[d.front:], xc)
			clear(pl[d.front+H*W:])
			continue
		}
		clear(pl[:d.front-p.PadLeft])
		for h := 0; h < H; h++ {
			row := pl[d.front-p.PadLeft+h*d.rowW:][:d.rowW]
			for i := range row[:p.PadLeft] {
				row[i] = 0
			}
			copy(row[p.PadLeft:], xc[h*W:][:W])
			for i := p.PadLeft + W; i < len(row); i++ {
				row[i] = 0
			}
		}
		clear(pl[d.front-p.PadLeft+H*d.rowW:])
	}
	clear(xp[p.cg*d.plane:])
	return xp
}

// gradFilterDirect is gradFilterChunk for a convolution with a direct form,
// one group and a multiple of 8 input channels: dW = Σ dy · im2col(x)ᵀ
// with the im2col matrix's columns taken tap-major, (kh, kw, c) instead of
// (c, kh, kw), so that every 8 consecutive columns are one tap of 8
// channels: rows of the zero-bordered input a plane apart, which the
// gather packer transposes straight into the GEMM's panels
// (convDirectTPanel) with no im2col buffer. The sum, in that column order,
// goes to cs.col and is permuted into dst at the end. It reports false,
// having done nothing, when it does not apply.
func (p *Conv2DParams) gradFilterDirect(gs *gemmScratch, cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) bool {
	if p.direct == nil || p.direct.rowW != 0 || gemmUse != gemmZ || p.Groups != 1 || p.cg%8 != 0 {
		return false
	}
	hw, P, crs, khw := p.H*p.W, p.oh*p.ow, p.crs, p.KH*p.KW
	cs.col = gemmGrow(cs.col, p.K*crs)
	dwt := cs.col[:p.K*crs]
	for ni := n0; ni < n1; ni++ {
		beta := float32(1)
		if ni == n0 {
			beta = 0
		}
		cs.dirT = convDirectTPanel{p: p, xp: p.padInput(cs, x[ni*p.C*hw:][:p.C*hw])}
		convGemmB(gs, par, false, p.K, crs, P, dy[ni*p.K*P:][:p.K*P], P, &cs.dirT, beta, dwt, crs)
		cs.dirT = convDirectTPanel{}
	}
	for k := 0; k < p.K; k++ {
		src, out := dwt[k*crs:][:crs], dst[k*crs:][:crs]
		for t := 0; t < khw; t++ {
			for c, v := range src[t*p.cg : (t+1)*p.cg] {
				out[c*khw+t] = v
			}
		}
	}
	return true
}

// convDirectTPanel is the transposed im2col matrix with tap-major columns
// (see gradFilterDirect), packed from the zero-bordered input xp: column
// (t, c) at k step q is xp[c*plane + q + offs[t]], or 0 where tap t's
// column falls outside the input.
type convDirectTPanel struct {
	p  *Conv2DParams
	xp []float32
}

func (b *convDirectTPanel) packB(g *gemmImpl, s *gemmScratch, pc, jc, kc, kcp, nc int) {
	p, d := b.p, b.p.direct
	w, cg, OW := g.nr, p.cg, p.ow
	for j0 := 0; j0 < nc; j0 += w {
		sl := s.b[j0*kcp:][:kcp*w]
		lanes := min(w, nc-j0)
		if lanes < w {
			clear(sl[:kc*w])
		}
		for i := 0; i < lanes; i += 8 {
			col := jc + j0 + i
			t, c := col/cg, col%cg
			tap := &p.taps[t]
			gemmPackGather8Y(&sl[i], w, &b.xp[c*d.plane+int(d.offs[t])+pc], d.plane, kc, 1)
			// The padding columns read the neighbouring row's pixels.
			for j := 0; j < OW; j++ {
				if j == int(tap.ow0) {
					j = int(tap.ow1)
					if j == OW {
						break
					}
				}
				q := pc - pc%OW + j
				if q < pc {
					q += OW
				}
				for ; q < pc+kc; q += OW {
					clear(sl[(q-pc)*w+i:][:8])
				}
			}
		}
	}
}

// gemmStridedB reports whether gemmStridedTile can run in place of g's
// kernel: g is the AVX-512 implementation, whose tile has a twin that
// reads B unpacked.
func gemmStridedB(g *gemmImpl) bool { return g == gemmZ }

// gemmStridedTile is gemmZ's kernel with B read in place rather than from
// a packed sliver: k step p reads the 32 floats at b[offs[p]:], lanes whose
// bit in masks[p] is clear as 0 (gemmConvKernel8x32Z). a is a packed
// sliver k steps deep, and c the tile's first element with row stride ldc.
func gemmStridedTile(k int, a, b []float32, offs []int32, masks []uint32, c []float32, ldc, mr, nr int, overwrite bool) {
	gemmConvKernel8x32Z(k, &a[0], &b[0], &offs[0], &masks[0], &c[0], ldc, mr, nr, overwrite)
}
