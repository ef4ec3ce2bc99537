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
// implementations). With ep, the masked form applies the epilogue as it
// stores (gemmConvEpiKernel8x32Z) and reports epiDone; the other forms
// leave it to the caller.
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32, ep *convEpi) (done, epiDone bool) {
	d := p.direct
	if d == nil || gemmUse != gemmZ {
		return false, false
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
	// The masked form reads x in place (convDirect.inOffs); the others
	// read a zero-bordered copy.
	xp, offs := x, d.inOffs
	if offs == nil {
		xp, offs = p.padInput(cs, x), d.offs
		ep = nil
	}
	if ep != nil {
		// A missing scale is 1 and a missing shift -0: x*1 + -0 is x,
		// -0 included.
		if ep.mul == nil {
			cs.ones = gemmGrow(cs.ones, p.kg)
			for i := range cs.ones {
				cs.ones[i] = 1
			}
			ep.mul = cs.ones
		}
		if ep.add == nil {
			cs.negz = gemmGrow(cs.negz, p.kg)
			for i := range cs.negz {
				cs.negz[i] = negZero
			}
			ep.add = cs.negz
		}
	}
	y = y[:p.kg*p.oh*p.ow]
	out := y
	if d.rowW != 0 {
		cs.wide = gemmGrow(cs.wide, p.kg*d.span)
		out = cs.wide[:p.kg*d.span]
	}
	nsl := (d.span + nr - 1) / nr
	if !par {
		p.directSlivers(gs.a, xp, offs, out, ep, 0, nsl)
	} else {
		t := convDirectTasks.get()
		t.p, t.a, t.xp, t.offs, t.y, t.ep = p, gs.a, xp, offs, out, ep
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
	return true, ep != nil
}

// directSlivers runs the kernel over output column slivers j0..j1-1: ap is
// the packed filters, xp the input or its zero-bordered copy and offs the
// matching offsets (see fwdDirect), y the group's output (d.span
// positions per channel), ep the epilogue the kernel applies, or nil.
func (p *Conv2DParams) directSlivers(ap, xp []float32, offs []int32, y []float32, ep *convEpi, j0, j1 int) {
	const mr, nr = 8, 32
	d, crs := p.direct, p.crs
	P := d.span
	for j := j0; j < j1; j++ {
		q0 := j * nr
		m := d.masks[d.phase[j]:][:crs]
		cols := min(nr, P-q0)
		for i := 0; i < p.kg; i += mr {
			rows := min(mr, p.kg-i)
			if ep == nil {
				gemmConvKernels[rows](crs, &ap[i*crs], &xp[q0], &offs[0], &m[0], &y[i*P+q0], P, rows, cols, true)
				continue
			}
			var res *float32
			if ep.res != nil {
				res = &ep.res[i*P+q0]
			}
			gemmConvEpiKernels[rows](crs, &ap[i*crs], &xp[q0], &offs[0], &m[0], &y[i*P+q0], P, cols, &ep.mul[i], &ep.add[i], res, ep.lo, ep.hi)
		}
	}
}

// convDirectTask spreads one fwdDirect's slivers over the pool.
type convDirectTask struct {
	p        *Conv2DParams
	a, xp, y []float32
	offs     []int32
	ep       *convEpi
}

var convDirectTasks gemmFreeList[convDirectTask]

// Run implements Task.
func (t *convDirectTask) Run(lo, hi int) { t.p.directSlivers(t.a, t.xp, t.offs, t.y, t.ep, lo, hi) }

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
		if d.phaseHW != 0 {
			p.phaseSplit(pl, xc)
			continue
		}
		if d.rowW == 0 {
			clear(pl[:d.front])
			copy(pl[d.front:], xc)
			clear(pl[d.front+H*W:])
			continue
		}
		padPlaneInto(pl, xc, H, W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
	}
	clear(xp[p.cg*d.plane:])
	return xp
}

// phaseSplit writes input plane xc, zero-bordered, into pl as the phase
// form's four planes (see convDirect.phaseHW).
func (p *Conv2DParams) phaseSplit(pl, xc []float32) {
	d, W := p.direct, p.W
	clear(pl)
	for h := 0; h < p.H; h++ {
		i := h + p.PadTop
		for b := 0; b < 2; b++ {
			// Input columns jx with (jx+PadLeft)%2 == b, from the first.
			jx := (b - p.PadLeft%2 + 2) % 2
			if jx >= W {
				continue
			}
			n := (W - jx + 1) / 2
			row := pl[((i&1)*2+b)*d.phaseHW+(i>>1)*d.rowW+(jx+p.PadLeft)/2:][:n]
			gemmGather2(row, xc[h*W+jx:(h+1)*W])
		}
	}
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
	gemmConvKernels[mr](k, &a[0], &b[0], &offs[0], &masks[0], &c[0], ldc, mr, nr, overwrite)
}

// convWgradKernels holds convWgrad4xTZ at index T.
var convWgradKernels = [...]func(n, ns int, d0, d1, d2, d3 *float32, sdy int, x *float32, sx int, acc *float32){
	nil, convWgrad4x1Z, convWgrad4x2Z, convWgrad4x3Z, convWgrad4x4Z, convWgrad4x5Z, convWgrad4x6Z,
}

// convWgradTaps is the widest kernel row gradFilterWide takes (the
// generator's constant of the same name).
const convWgradTaps = len(convWgradKernels) - 1

// convWgradBatchFloats bounds the floats of input and dy copies one
// gradFilterWide step holds, so that they stay in L2 while every kernel
// row reads them.
const convWgradBatchFloats = 32 << 10

// gradFilterWide is gradFilterChunk for an ungrouped convolution with unit
// strides, no dilation along W and kernel rows at most 6 wide, on
// AVX-512. It computes dW[k][c][kh][kw] = Σ_q dy_k[q] · x_c[q + kh·dil·Wp
// + kw] over the positions q of the wide grid (rows Wp = PadLeft+W+PadRight
// wide, as in the wide direct form) with x zero-bordered and dy widened to
// Wp with zeros past each output row: every (c, kh) pair and four output
// channels is one kernel call whose x vectors are a kernel row's taps, so
// no im2col matrix is built and the multiply-adds are all useful. This is
// the gradient of LeNet-5's convolutions and of any first layer with few
// input channels, which gradFilterDirect does not take. The kernel keeps
// 16 lane sums per weight; they are added in a fixed order at the end, so
// the result does not depend on the pool. With par the kernel calls are
// spread over the pool. It reports false, having done nothing, when it
// does not apply.
func (p *Conv2DParams) gradFilterWide(cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) bool {
	if gemmUse != gemmZ || p.Groups != 1 || p.pointwise || p.StrideH != 1 || p.StrideW != 1 ||
		p.DilationW != 1 || p.KW > convWgradTaps {
		return false
	}
	g := p.wgradGeom()
	hw, P := p.H*p.W, p.oh*p.ow
	// Copies, a step of samples at a time: the zero-bordered input when
	// there is padding, dy widened when its rows are narrower than Wp.
	perX, perDy := 0, 0
	if g.padded {
		perX = p.C * g.plane
	}
	if g.wp != p.ow {
		perDy = p.K * p.oh * g.wp
	}
	step := max(1, convWgradBatchFloats/max(1, perX+perDy))
	cs.wx = gemmGrow(cs.wx, step*perX)
	cs.wdy = gemmGrow(cs.wdy, step*perDy)
	nacc := g.blocks * p.C * p.KH * 4 * p.KW * 16
	cs.wacc = gemmGrow(cs.wacc, nacc)
	acc := cs.wacc[:nacc]
	clear(acc)
	for s0 := n0; s0 < n1; s0 += step {
		ns := min(step, n1-s0)
		xs, sx := x[s0*p.C*hw:][:ns*p.C*hw], p.C*hw
		if g.padded {
			xs, sx = cs.wx[:ns*perX], perX
			for s := 0; s < ns; s++ {
				p.wideInput(xs[s*perX:][:perX], x[(s0+s)*p.C*hw:][:p.C*hw], g)
			}
		}
		dys, sdy := dy[s0*p.K*P:][:ns*p.K*P], p.K*P
		if perDy != 0 {
			dys, sdy = cs.wdy[:ns*perDy], perDy
			for s := 0; s < ns; s++ {
				widenRows(dys[s*perDy:][:perDy], dy[(s0+s)*p.K*P:][:p.K*P], p.ow, g.wp)
			}
		}
		job := convWgradJob{p: p, g: g, ns: ns, xs: xs, sx: sx, dys: dys, sdy: sdy, acc: acc}
		if par && Workers() > 1 {
			t := convWgradTasks.get()
			t.job = job
			ParallelFor(g.blocks*p.C*p.KH, 1, t)
			*t = convWgradTask{}
			convWgradTasks.put(t)
		} else {
			job.run(0, g.blocks*p.C*p.KH)
		}
	}
	// Each weight's 16 lane sums, in a fixed order.
	khw := p.KH * p.KW
	for b := 0; b < g.blocks*p.C*p.KH; b++ {
		kb, c, kh := b/(p.C*p.KH), b/p.KH%p.C, b%p.KH
		blk := acc[b*4*p.KW*16:][:4*p.KW*16]
		for i := 0; i < 4 && kb*4+i < p.K; i++ {
			for j := 0; j < p.KW; j++ {
				dst[(kb*4+i)*p.crs+c*khw+kh*p.KW+j] = laneSum16(blk[(i*p.KW+j)*16:][:16])
			}
		}
	}
	return true
}

// convWgradGeom is the wide grid of gradFilterWide.
type convWgradGeom struct {
	wp, plane int  // row width and floats per zero-bordered input plane
	n         int  // positions per output plane on the grid: (OH-1)*wp + OW
	blocks    int  // groups of four output channels
	padded    bool // the input needs a zero-bordered copy
}

func (p *Conv2DParams) wgradGeom() convWgradGeom {
	wp := p.PadLeft + p.W + p.PadRight
	return convWgradGeom{
		wp:     wp,
		plane:  (p.PadTop + p.H + p.PadBottom) * wp,
		n:      (p.oh-1)*wp + p.ow,
		blocks: (p.K + 3) / 4,
		padded: p.PadTop+p.PadLeft+p.PadBottom+p.PadRight != 0,
	}
}

// wideInput writes x's planes, zero-bordered, into xp (C planes of
// g.plane floats).
func (p *Conv2DParams) wideInput(xp, x []float32, g convWgradGeom) {
	for c := 0; c < p.C; c++ {
		padPlaneInto(xp[c*g.plane:][:g.plane], x[c*p.H*p.W:][:p.H*p.W], p.H, p.W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
	}
}

// spreadPlane places the rows w wide of src on a grid: element (o, q) at
// dst[o*rs + q*cs], every other element of dst zero.
func spreadPlane(dst, src []float32, w, rs, cs int) {
	if cs == 1 {
		widenRows(dst, src, w, rs)
		return
	}
	clear(dst)
	for o := 0; o < len(src)/w; o++ {
		row := dst[o*rs:]
		for q, v := range src[o*w:][:w] {
			row[q*cs] = v
		}
	}
}

// widenRows copies the rows w wide of src into rows wp wide of dst,
// zeroing the columns past w.
func widenRows(dst, src []float32, w, wp int) {
	for r := 0; r < len(src)/w; r++ {
		row := dst[r*wp:][:wp]
		copy(row, src[r*w:][:w])
		clear(row[w:])
	}
}

// laneSum16 adds 16 lane sums pairwise.
func laneSum16(v []float32) float32 {
	v = v[:16]
	var h [8]float32
	for i := range h {
		h[i] = v[i] + v[i+8]
	}
	for i := 0; i < 4; i++ {
		h[i] += h[i+4]
	}
	return (h[0] + h[2]) + (h[1] + h[3])
}

// convWgradJob is one step of gradFilterWide: blocks b of (four output
// channels, input channel, kernel row) over ns samples.
type convWgradJob struct {
	p       *Conv2DParams
	g       convWgradGeom
	ns      int
	xs, dys []float32
	sx, sdy int
	acc     []float32
}

func (j *convWgradJob) run(b0, b1 int) {
	p, g := j.p, j.g
	kern := convWgradKernels[p.KW]
	// dy's planes are oh*ow floats when not widened, and then wp == ow;
	// x's are H*W when not zero-bordered, and then plane == H*W.
	P := p.oh * g.wp
	for b := b0; b < b1; b++ {
		kb, c, kh := b/(p.C*p.KH), b/p.KH%p.C, b%p.KH
		var d [4]*float32
		for i := range d {
			d[i] = &j.dys[min(kb*4+i, p.K-1)*P]
		}
		xr := &j.xs[c*g.plane+kh*p.DilationH*g.wp]
		kern(g.n, j.ns, d[0], d[1], d[2], d[3], j.sdy, xr, j.sx, &j.acc[b*4*p.KW*16])
	}
}

// convWgradTask spreads a gradFilterWide step's blocks over the pool.
type convWgradTask struct{ job convWgradJob }

var convWgradTasks gemmFreeList[convWgradTask]

// Run implements Task.
func (t *convWgradTask) Run(lo, hi int) { t.job.run(lo, hi) }

// dwGradFilterWide is dwGradFilterChannel for strides 1 or 2, no
// dilation along W and 3x3 or 5x5 kernels, on AVX-512: the filter
// gradient of output channel k (input channel c) as dW[r][j] = Σ_q dy[q] ·
// x[q + r·dil·Wp + j] over the positions q of the wide grid (rows Wp =
// PadLeft+W+PadRight wide) with x zero-bordered and dy spread onto the
// grid (output (o, q) at o·stride·Wp + q·stride, zeros elsewhere: with
// stride 2, three multiply-adds in four are of zeros, in 16-lane vectors
// rather than one at a time), as gradFilterWide does for ordinary
// convolutions: one kernel call per step
// of samples covers a whole plane in 16-lane vectors, where the row
// kernels took a call per row, and MobileNet's planes are 16 to 2 pixels
// wide. The 16 lane sums of each tap are added in a fixed order at the
// end. It reports false, having done nothing, when it does not apply.
func (p *Conv2DParams) dwGradFilterWide(cs *convScratch, n, k, c int, dw, x, dy []float32) bool {
	st := p.StrideH
	if !gemmHasAVX512 || gemmUse != gemmZ || st > 2 || p.StrideW != st || p.DilationW != 1 {
		return false
	}
	var kern func(n, ns int, dy *float32, sdy int, x *float32, sx, wp int, acc *float32)
	switch {
	case p.KH == 3 && p.KW == 3:
		kern = dwWgrad3x3Z
	case p.KH == 5 && p.KW == 5:
		kern = dwWgrad5x5Z
	default:
		return false
	}
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	wp := p.PadLeft + W + p.PadRight
	plane := (p.PadTop + H + p.PadBottom) * wp
	padded := plane != H*W
	// Output (o, q) is grid position o*st*wp + q*st.
	npos := (OH-1)*st*wp + (OW-1)*st + 1
	perX, perDy := 0, 0
	if padded {
		perX = plane
	}
	if wp != OW || st != 1 {
		perDy = OH * st * wp // whole rows: widenRows writes them
	}
	step := max(1, convWgradBatchFloats/max(1, perX+perDy))
	cs.wx = gemmGrow(cs.wx, step*perX)
	cs.wdy = gemmGrow(cs.wdy, step*perDy)
	taps := p.KH * p.KW
	cs.wacc = gemmGrow(cs.wacc, taps*16)
	acc := cs.wacc[:taps*16]
	clear(acc)
	for s0 := 0; s0 < n; s0 += step {
		ns := min(step, n-s0)
		xs, sx := x[(s0*p.C+c)*H*W:], p.C*H*W
		if padded {
			xs, sx = cs.wx[:ns*perX], perX
			for s := 0; s < ns; s++ {
				padPlaneInto(xs[s*perX:][:perX], x[((s0+s)*p.C+c)*H*W:][:H*W], H, W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
			}
		}
		dys, sdy := dy[(s0*p.K+k)*OH*OW:], p.K*OH*OW
		if perDy != 0 {
			dys, sdy = cs.wdy[:ns*perDy], perDy
			for s := 0; s < ns; s++ {
				spreadPlane(dys[s*perDy:][:perDy], dy[((s0+s)*p.K+k)*OH*OW:][:OH*OW], OW, st*wp, st)
			}
		}
		kern(npos, ns, &dys[0], sdy, &xs[0], sx, wp*p.DilationH, &acc[0])
	}
	d := dw[k*taps:][:taps]
	for t := range d {
		d[t] = laneSum16(acc[t*16:][:16])
	}
	return true
}

// dwPlane3x3Wide is dwPlane3x3 for unit strides on AVX-512: the whole
// plane in one dwRows3x3Z call over the zero-bordered input pad (rows pw
// wide, kernel rows rs floats apart) instead of a kernel call per output
// row (MobileNet's rows are 16 to 2 pixels wide). It reports false, having
// done nothing, without AVX-512.
func dwPlane3x3Wide(cs *convScratch, y []float32, oh, ow int, pad []float32, pw, rs int, k *[9]float32) bool {
	if !gemmHasAVX512 || gemmUse != gemmZ {
		return false
	}
	dwRows3x3Z(oh, ow, &y[0], &pad[0], pw, rs, k)
	return true
}

// dwStride2Wide computes output plane yp of a 3x3 depthwise convolution
// with strides 2 and no dilation from input plane xp on AVX-512: the
// stride-1 result on the wide grid of the zero-bordered plane (dwWide3x3Z),
// of which every other column of every other row is kept. That is four
// times the multiply-adds, in 16-lane vectors, where the generic loop did
// one tap of one output at a time. It reports false, having done nothing,
// when it does not apply.
func (p *Conv2DParams) dwStride2Wide(cs *convScratch, yp, xp, wk []float32) bool {
	if !gemmHasAVX512 || gemmUse != gemmZ || p.KH != 3 || p.KW != 3 || p.StrideH != 2 || p.StrideW != 2 ||
		p.DilationH != 1 || p.DilationW != 1 {
		return false
	}
	pw := p.PadLeft + p.W + p.PadRight
	pad := cs.padPlane(xp, p.H, p.W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
	OH, OW := p.oh, p.ow
	n := 2*(OH-1)*pw + 2*(OW-1) + 1
	cs.wide = gemmGrow(cs.wide, n)
	dwWide3x3Z(n, &cs.wide[0], &pad[0], pw, (*[9]float32)(wk))
	for o := 0; o < OH; o++ {
		row, src := yp[o*OW:][:OW], cs.wide[2*o*pw:]
		for q := range row {
			row[q] = src[2*q]
		}
	}
	return true
}

// dwGradInStride2Wide computes input-gradient plane dxp of a 3x3 depthwise
// convolution with strides 2, no dilation and one output channel per
// input channel from its dy plane dyp, on AVX-512: dy is spread onto a
// zero grid two wider than the padded input on each side (output (o, q)
// at row 2o+2, column 2q+2), and the input gradient is that grid's
// stride-1 correlation with the kernel turned by 180 degrees at the
// input's pixels (dwRows3x3Z). It reports false, having done
// nothing, when it does not apply.
func (p *Conv2DParams) dwGradInStride2Wide(cs *convScratch, dxp, dyp, wk []float32) bool {
	if !gemmHasAVX512 || gemmUse != gemmZ || p.KH != 3 || p.KW != 3 || p.StrideH != 2 || p.StrideW != 2 ||
		p.DilationH != 1 || p.DilationW != 1 {
		return false
	}
	H, W, OW := p.H, p.W, p.ow
	gw := p.PadLeft + W + p.PadRight + 2
	gh := p.PadTop + H + p.PadBottom + 2
	cs.pad = gemmGrow(cs.pad, gw*gh)
	grid := cs.pad[:gw*gh]
	spreadPlane(grid[2*gw+2:], dyp, OW, 2*gw, 2)
	clear(grid[:2*gw+2])
	var flip [9]float32
	for i := range flip {
		flip[i] = wk[8-i]
	}
	dwRows3x3Z(H, W, &dxp[0], &grid[p.PadTop*gw+p.PadLeft], gw, gw, &flip)
	return true
}

// padRowsVec writes the rows of a zero-bordered plane, each pw floats of
// rows with x's next w at column padL, with padRowsZ; it reports false,
// having done nothing, without AVX-512.
func padRowsVec(rows, x []float32, w, pw, padL int) bool {
	if !gemmHasAVX512 || len(rows) == 0 {
		return false
	}
	h := len(rows) / pw
	_ = x[h*w-1]
	padRowsZ(&rows[0], &x[0], h, w, pw, padL)
	return true
}
