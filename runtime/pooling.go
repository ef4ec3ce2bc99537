package runtime

import (
	"fmt"
	"math"
)

// PoolParams describes 2-D max or average pooling of one sample [C, H, W];
// the output is [C, OutH(), OutW()]. Zero strides and dilations mean 1.
//
// Output size, windows and divisors follow PyTorch: with CeilMode the last
// window must start inside the input or the top/left padding; an average
// window counting padding (CountIncludePad) is cut at the padded border
// (H+PadBottom, W+PadRight), not at the ceil-mode overhang, and one that does
// not count padding divides by its taps inside the input.
type PoolParams struct {
	C, H, W                              int  // input geometry of one sample
	KernelH, KernelW                     int  // window size
	StrideH, StrideW                     int  // 0 means 1
	PadTop, PadLeft, PadBottom, PadRight int  // each below the dilated window extent
	DilationH, DilationW                 int  // 0 means 1
	CeilMode                             bool // round the output size up (see above)
	CountIncludePad                      bool // average pooling only

	ok         bool
	oh, ow     int
	sh, sw     int
	dh, dw     int
	rows, cols []nnPoolSpan
	t          nnPoolTask
	// win2 says every window is a whole 2x2 block at (2*oh, 2*ow): the
	// common pooling, which gets loops without the general span logic.
	win2 bool
}

// nnPoolSpan is the part of a window along one axis: taps lo..hi-1 fall inside
// the input, start is the input coordinate of tap 0 and padded counts the
// taps inside the padded input (the CountIncludePad divisor factor).
type nnPoolSpan struct {
	start, lo, hi, padded int
}

// Init validates the geometry and precomputes window spans.
func (p *PoolParams) Init() error {
	p.ok = false
	if p.C < 1 || p.H < 1 || p.W < 1 || p.KernelH < 1 || p.KernelW < 1 {
		return fmt.Errorf("pool: C %d H %d W %d kernel %dx%d: want all >= 1", p.C, p.H, p.W, p.KernelH, p.KernelW)
	}
	one := func(v int) int {
		if v == 0 {
			return 1
		}
		return v
	}
	p.sh, p.sw, p.dh, p.dw = one(p.StrideH), one(p.StrideW), one(p.DilationH), one(p.DilationW)
	if p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 {
		return fmt.Errorf("pool: strides %dx%d dilations %dx%d: want >= 1", p.StrideH, p.StrideW, p.DilationH, p.DilationW)
	}
	var err error
	if p.rows, p.oh, err = nnPoolAxis("height", p.H, p.KernelH, p.sh, p.dh, p.PadTop, p.PadBottom, p.CeilMode); err != nil {
		return err
	}
	if p.cols, p.ow, err = nnPoolAxis("width", p.W, p.KernelW, p.sw, p.dw, p.PadLeft, p.PadRight, p.CeilMode); err != nil {
		return err
	}
	p.win2 = p.KernelH == 2 && p.KernelW == 2 && p.sh == 2 && p.sw == 2 && whole2(p.rows) && whole2(p.cols)
	p.t.p = p
	p.ok = true
	return nil
}

// whole2 reports whether window o of every span covers input 2*o and
// 2*o+1, both inside.
func whole2(spans []nnPoolSpan) bool {
	for o, sp := range spans {
		if sp.start != 2*o || sp.lo != 0 || sp.hi != 2 {
			return false
		}
	}
	return true
}

func nnPoolAxis(name string, size, k, s, d, padLo, padHi int, ceil bool) ([]nnPoolSpan, int, error) {
	ext := (k-1)*d + 1
	if padLo < 0 || padHi < 0 || padLo >= ext || padHi >= ext {
		return nil, 0, fmt.Errorf("pool %s: pads %d,%d: want >= 0 and below the window extent %d", name, padLo, padHi, ext)
	}
	num := size + padLo + padHi - ext
	if num < 0 {
		return nil, 0, fmt.Errorf("pool %s: window extent %d exceeds padded size %d", name, ext, size+padLo+padHi)
	}
	out := num/s + 1
	if ceil {
		out = (num+s-1)/s + 1
		if (out-1)*s >= size+padLo {
			out--
		}
	}
	spans := make([]nnPoolSpan, out)
	for o := range spans {
		st := o*s - padLo
		sp := nnPoolSpan{start: st, lo: k, hi: k}
		for i := 0; i < k; i++ {
			h := st + i*d
			if h >= 0 && h < size {
				if sp.lo == k {
					sp.lo = i
				}
				sp.hi = i + 1
			}
			if h < size+padHi {
				sp.padded++
			}
		}
		if sp.lo == k {
			sp.lo, sp.hi = 0, 0 // possible only with dilation: no tap inside
		}
		spans[o] = sp
	}
	return spans, out, nil
}

// OutH returns the output height.
func (p *PoolParams) OutH() int { return p.oh }

// OutW returns the output width.
func (p *PoolParams) OutW() int { return p.ow }

// Phases of nnPoolTask.
const (
	nnPlMax = iota
	nnPlMaxBack
	nnPlAvg
	nnPlAvgBack
)

type nnPoolTask struct {
	p     *PoolParams
	phase int
	y, x  []float32 // forward: y, x; backward: y = dx, x = x (max) and g = dy
	g     []float32
}

// Run implements Task over (sample, channel) planes.
func (t *nnPoolTask) Run(lo, hi int) {
	p := t.p
	in, out := p.H*p.W, p.oh*p.ow
	for pl := lo; pl < hi; pl++ {
		switch t.phase {
		case nnPlMax:
			p.maxPlane(t.y[pl*out:(pl+1)*out], t.x[pl*in:(pl+1)*in])
		case nnPlMaxBack:
			dx := t.y[pl*in : (pl+1)*in]
			clear(dx)
			p.maxBackPlane(dx, t.x[pl*in:(pl+1)*in], t.g[pl*out:(pl+1)*out])
		case nnPlAvg:
			p.avgPlane(t.y[pl*out:(pl+1)*out], t.x[pl*in:(pl+1)*in])
		case nnPlAvgBack:
			dx := t.y[pl*in : (pl+1)*in]
			clear(dx)
			p.avgBackPlane(dx, t.g[pl*out:(pl+1)*out])
		}
	}
}

// maxPlane writes the window maxima of x into y. NaN propagates, and a
// window with no tap inside the input (possible only with dilation) gives
// -Inf.
func (p *PoolParams) maxPlane(y, x []float32) {
	W, dh, dw := p.W, p.dh, p.dw
	if p.win2 {
		// max is exact and order-free (NaN wins, +0 beats -0), so the
		// window's order does not matter.
		for oh := 0; oh < p.oh; oh++ {
			r0, r1 := x[2*oh*W:][:2*p.ow], x[(2*oh+1)*W:][:2*p.ow]
			yr := y[oh*p.ow:][:p.ow]
			for ow := range yr {
				yr[ow] = max(r0[2*ow], r0[2*ow+1], r1[2*ow], r1[2*ow+1])
			}
		}
		return
	}
	for oh, r := range p.rows {
		yr := y[oh*p.ow : (oh+1)*p.ow]
		for ow := range yr {
			c := &p.cols[ow]
			best := float32(math.Inf(-1))
			for i := r.lo; i < r.hi; i++ {
				base := (r.start+i*dh)*W + c.start
				if dw == 1 {
					for _, v := range x[base+c.lo : base+c.hi] {
						best = max(best, v)
					}
					continue
				}
				for j := c.lo; j < c.hi; j++ {
					best = max(best, x[base+j*dw])
				}
			}
			yr[ow] = best
		}
	}
}

// maxBackPlane adds each dy to dx at its window's argmax: the first maximum
// in row-major window order, NaN winning, as in PyTorch's CPU kernel.
func (p *PoolParams) maxBackPlane(dx, x, dy []float32) {
	W, dh, dw := p.W, p.dh, p.dw
	if p.win2 {
		for oh := 0; oh < p.oh; oh++ {
			i0, i1 := 2*oh*W, (2*oh+1)*W
			g := dy[oh*p.ow:][:p.ow]
			done := vecMaxPool2Back(dx[i0:][:2*p.ow], dx[i1:][:2*p.ow], x[i0:][:2*p.ow], x[i1:][:2*p.ow], g)
			for ow := done; ow < len(g); ow++ {
				v := g[ow]
				// The same rule as below, over the window in row-major order.
				arg := i0 + 2*ow
				best := x[arg]
				for _, i := range [3]int{i0 + 2*ow + 1, i1 + 2*ow, i1 + 2*ow + 1} {
					if u := x[i]; u > best || u != u {
						best, arg = u, i
					}
				}
				dx[arg] += v
			}
		}
		return
	}
	for oh, r := range p.rows {
		g := dy[oh*p.ow : (oh+1)*p.ow]
		for ow := range g {
			c := &p.cols[ow]
			best := float32(math.Inf(-1))
			arg := -1
			for i := r.lo; i < r.hi; i++ {
				base := (r.start+i*dh)*W + c.start
				for j := c.lo; j < c.hi; j++ {
					if v := x[base+j*dw]; arg < 0 || v > best || v != v {
						best, arg = v, base+j*dw
					}
				}
			}
			if arg >= 0 {
				dx[arg] += g[ow]
			}
		}
	}
}

func (p *PoolParams) divisor(r, c nnPoolSpan) float32 {
	if p.CountIncludePad {
		return float32(r.padded * c.padded)
	}
	return float32((r.hi - r.lo) * (c.hi - c.lo))
}

func (p *PoolParams) avgPlane(y, x []float32) {
	W, dh, dw := p.W, p.dh, p.dw
	for oh, r := range p.rows {
		yr := y[oh*p.ow : (oh+1)*p.ow]
		for ow := range yr {
			c := &p.cols[ow]
			var s float32
			for i := r.lo; i < r.hi; i++ {
				base := (r.start+i*dh)*W + c.start
				if dw == 1 {
					for _, v := range x[base+c.lo : base+c.hi] {
						s += v
					}
					continue
				}
				for j := c.lo; j < c.hi; j++ {
					s += x[base+j*dw]
				}
			}
			if d := p.divisor(r, *c); d > 0 {
				s /= d
			}
			yr[ow] = s
		}
	}
}

func (p *PoolParams) avgBackPlane(dx, dy []float32) {
	W, dh, dw := p.W, p.dh, p.dw
	for oh, r := range p.rows {
		gr := dy[oh*p.ow : (oh+1)*p.ow]
		for ow := range gr {
			c := &p.cols[ow]
			d := p.divisor(r, *c)
			if d == 0 {
				continue
			}
			g := gr[ow] / d
			for i := r.lo; i < r.hi; i++ {
				base := (r.start+i*dh)*W + c.start
				if dw == 1 {
					seg := dx[base+c.lo : base+c.hi]
					for k := range seg {
						seg[k] += g
					}
					continue
				}
				for j := c.lo; j < c.hi; j++ {
					dx[base+j*dw] += g
				}
			}
		}
	}
}

func (p *PoolParams) run(kernel string, phase, n int, y, x, g []float32, yLen, xLen, gLen int) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	t := &p.t
	t.phase = phase
	t.y = nnNeed(kernel, "output", y, n*yLen)
	t.x, t.g = nil, nil
	if xLen > 0 {
		t.x = nnNeed(kernel, "x", x, n*xLen)
	}
	if gLen > 0 {
		t.g = nnNeed(kernel, "dy", g, n*gLen)
	}
	work := p.oh * p.ow * p.KernelH * p.KernelW
	ParallelFor(n*p.C, max(1, (1<<15)/max(1, work)), t)
}

func (p *PoolParams) inLen() int  { return p.C * p.H * p.W }
func (p *PoolParams) outLen() int { return p.C * p.oh * p.ow }

// MaxPool2D writes y[n, C, OutH, OutW] = the maximum of each window of x;
// padding never wins (it is not a value).
func MaxPool2D(p *PoolParams, n int, y, x []float32) {
	p.run("MaxPool2D", nnPlMax, n, y, x, nil, p.outLen(), p.inLen(), 0)
}

// MaxPool2DBackward writes dx: each dy added at its window's argmax. The
// argmax is recomputed from the forward input x (no index buffer to keep),
// taking the first maximum in row-major window order as PyTorch does.
func MaxPool2DBackward(p *PoolParams, n int, dx, dy, x []float32) {
	p.run("MaxPool2DBackward", nnPlMaxBack, n, dx, x, dy, p.inLen(), p.inLen(), p.outLen())
}

// AveragePool2D writes y = the mean of each window of x, the divisor chosen
// by CountIncludePad (see PoolParams).
func AveragePool2D(p *PoolParams, n int, y, x []float32) {
	p.run("AveragePool2D", nnPlAvg, n, y, x, nil, p.outLen(), p.inLen(), 0)
}

// AveragePool2DBackward writes dx: each dy divided by its window's divisor
// and added to the window's input taps.
func AveragePool2DBackward(p *PoolParams, n int, dx, dy []float32) {
	p.run("AveragePool2DBackward", nnPlAvgBack, n, dx, nil, dy, p.inLen(), 0, p.outLen())
}

// GlobalAveragePool writes y[n, C] (equivalently [n, C, 1, 1]) = the mean of
// each channel's Spatial elements, summed in float64.
func GlobalAveragePool(p *ChannelParams, n int, y, x []float32) {
	const k = "GlobalAveragePool"
	size := p.check(k, n)
	t := &p.t
	t.phase = nnChGAP
	t.y, t.x = nnNeed(k, "y", y, n*p.C), nnNeed(k, "x", x, size)
	ParallelFor(n*p.C, max(1, (1<<15)/p.Spatial), t)
}

// GlobalAveragePoolBackward writes dx = dy/Spatial spread over each channel.
func GlobalAveragePoolBackward(p *ChannelParams, n int, dx, dy []float32) {
	const k = "GlobalAveragePoolBackward"
	size := p.check(k, n)
	t := &p.t
	t.phase = nnChGAPBack
	t.y, t.x = nnNeed(k, "dx", dx, size), nnNeed(k, "dy", dy, n*p.C)
	ParallelFor(n*p.C, max(1, (1<<15)/p.Spatial), t)
}
