package runtime

// Direct kernels for depthwise convolution (Groups == C, K = M*C with channel
// multiplier M): each output plane reads one input plane, so im2col would
// copy KH*KW times more data than the few multiply-adds per pixel justify.
// The loops run over output rows and kernel taps, with the valid column range
// of each tap computed once (convSpan) so the inner loops carry no padding
// tests; with stride 1 the inner loop is a plain axpy or dot product. The
// common 3-wide kernel with unit stride and dilation along W (p.dwRow3)
// instead fuses the taps of a kernel row, or of all three rows, into one pass
// over the output row (dwAcc3, dwAcc9, dwDot3): that halves the loads and
// stores per multiply-add, which is what bounds these loops.

// dwFwdPlane computes output plane k of sample ni.
func (p *Conv2DParams) dwFwdPlane(ni, k int, y, x, w, b []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	c := k / p.kg // input channel: kg is the channel multiplier here
	yp := y[(ni*p.K+k)*OH*OW:][:OH*OW]
	xp := x[(ni*p.C+c)*H*W:][:H*W]
	wk := w[k*p.KH*p.KW:][:p.KH*p.KW]
	clear(yp)
	for oh := 0; oh < OH; oh++ {
		yrow := yp[oh*OW : (oh+1)*OW]
		if p.dwRow3 && p.KH == 3 {
			ih := oh*sh - p.PadTop
			if ih >= 0 && ih+2*p.DilationH < H {
				// All three kernel rows inside: one pass over y for nine taps.
				dh := p.DilationH * W
				dwAcc9(yrow, xp[ih*W:][:W], xp[ih*W+dh:][:W], xp[ih*W+2*dh:][:W], -p.PadLeft, (*[9]float32)(wk))
				continue
			}
		}
		for kh := 0; kh < p.KH; kh++ {
			ih := oh*sh + kh*p.DilationH - p.PadTop
			if ih < 0 || ih >= H {
				continue
			}
			xrow := xp[ih*W : (ih+1)*W]
			if p.dwRow3 {
				dwAcc3(yrow, xrow, -p.PadLeft, wk[kh*3], wk[kh*3+1], wk[kh*3+2])
				continue
			}
			for kw := 0; kw < p.KW; kw++ {
				wv := wk[kh*p.KW+kw]
				offW := kw*p.DilationW - p.PadLeft
				ow0, ow1 := convSpan(offW, sw, W, OW)
				if ow0 == ow1 {
					continue
				}
				if sw == 1 {
					ys := yrow[ow0:ow1]
					xs := xrow[ow0+offW:][:len(ys)]
					for i, v := range xs {
						ys[i] += wv * v
					}
					continue
				}
				for q := ow0; q < ow1; q++ {
					yrow[q] += wv * xrow[q*sw+offW]
				}
			}
		}
	}
	if b == nil {
		p.Epilogue.Apply(yp)
		return
	}
	p.Epilogue.applyBias(yp, b[k], true)
}

// dwGradInPlane computes input-gradient plane c of sample ni, gathering the
// contributions of the channel's M output planes in a fixed order.
func (p *Conv2DParams) dwGradInPlane(ni, c int, dx, dy, w []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	dxp := dx[(ni*p.C+c)*H*W:][:H*W]
	clear(dxp)
	if p.dwRow3 {
		p.dwGradInPlaneRow3(ni, c, dxp, dy, w)
		return
	}
	for m := 0; m < p.kg; m++ {
		k := c*p.kg + m
		dyp := dy[(ni*p.K+k)*OH*OW:][:OH*OW]
		wk := w[k*p.KH*p.KW:][:p.KH*p.KW]
		for oh := 0; oh < OH; oh++ {
			dyrow := dyp[oh*OW : (oh+1)*OW]
			for kh := 0; kh < p.KH; kh++ {
				ih := oh*sh + kh*p.DilationH - p.PadTop
				if ih < 0 || ih >= H {
					continue
				}
				dxrow := dxp[ih*W : (ih+1)*W]
				for kw := 0; kw < p.KW; kw++ {
					wv := wk[kh*p.KW+kw]
					offW := kw*p.DilationW - p.PadLeft
					ow0, ow1 := convSpan(offW, sw, W, OW)
					if ow0 == ow1 {
						continue
					}
					if sw == 1 {
						gs := dyrow[ow0:ow1]
						ds := dxrow[ow0+offW:][:len(gs)]
						for i, v := range gs {
							ds[i] += wv * v
						}
						continue
					}
					for q := ow0; q < ow1; q++ {
						dxrow[q*sw+offW] += wv * dyrow[q]
					}
				}
			}
		}
	}
}

// dwGradFilterChannel computes the KH*KW filter gradient of output channel k,
// summing over the batch in sample order in float64.
func (p *Conv2DParams) dwGradFilterChannel(cs *convScratch, n, k int, dw, x, dy []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	taps := p.KH * p.KW
	if cap(cs.acc) < taps {
		cs.acc = make([]float64, taps)
	}
	acc := cs.acc[:taps]
	clear(acc)
	c := k / p.kg
	for ni := 0; ni < n; ni++ {
		dyp := dy[(ni*p.K+k)*OH*OW:][:OH*OW]
		xp := x[(ni*p.C+c)*H*W:][:H*W]
		for oh := 0; oh < OH; oh++ {
			dyrow := dyp[oh*OW : (oh+1)*OW]
			for kh := 0; kh < p.KH; kh++ {
				ih := oh*sh + kh*p.DilationH - p.PadTop
				if ih < 0 || ih >= H {
					continue
				}
				xrow := xp[ih*W : (ih+1)*W]
				if p.dwRow3 {
					s0, s1, s2 := dwDot3(dyrow, xrow, -p.PadLeft)
					a := acc[kh*3 : kh*3+3 : kh*3+3]
					a[0] += float64(s0)
					a[1] += float64(s1)
					a[2] += float64(s2)
					continue
				}
				for kw := 0; kw < p.KW; kw++ {
					offW := kw*p.DilationW - p.PadLeft
					ow0, ow1 := convSpan(offW, sw, W, OW)
					if ow0 == ow1 {
						continue
					}
					var s float32
					if sw == 1 {
						gs := dyrow[ow0:ow1]
						xs := xrow[ow0+offW:][:len(gs)]
						for i, v := range gs {
							s += v * xs[i]
						}
					} else {
						for q := ow0; q < ow1; q++ {
							s += dyrow[q] * xrow[q*sw+offW]
						}
					}
					acc[kh*p.KW+kw] += float64(s)
				}
			}
		}
	}
	d := dw[k*taps:][:taps]
	for i, v := range acc {
		d[i] = float32(v)
	}
}

// dwGradInPlaneRow3 is dwGradInPlane for p.dwRow3: it gathers each input-
// gradient row from the output-gradient rows that read it, so every dx
// element is written once per (tap row, multiplier) instead of once per tap.
// Along W, dx[iw] += sum over kw of w[kw]*dy[iw+PadLeft-kw], a 3-tap
// correlation with the taps reversed.
func (p *Conv2DParams) dwGradInPlaneRow3(ni, c int, dxp, dy, w []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	for ih := 0; ih < H; ih++ {
		dxrow := dxp[ih*W : (ih+1)*W]
		for m := 0; m < p.kg; m++ {
			k := c*p.kg + m
			dyp := dy[(ni*p.K+k)*OH*OW:][:OH*OW]
			wk := w[k*p.KH*3:][:p.KH*3]
			for kh := 0; kh < p.KH; kh++ {
				t := ih + p.PadTop - kh*p.DilationH
				if t < 0 || t%p.StrideH != 0 || t/p.StrideH >= OH {
					continue
				}
				oh := t / p.StrideH
				dwAcc3(dxrow, dyp[oh*OW:(oh+1)*OW], p.PadLeft-2, wk[kh*3+2], wk[kh*3+1], wk[kh*3])
			}
		}
	}
}

// dwAcc3 adds y[q] += w0*x[q+off] + w1*x[q+off+1] + w2*x[q+off+2] for every
// q, taking x as zero outside its bounds. One load and store of y per three
// taps, and a sliding window over x, make this about twice as fast as three
// separate axpy passes.
func dwAcc3(y, x []float32, off int, w0, w1, w2 float32) {
	q0 := min(max(0, -off), len(y))          // first q with all three taps inside x
	q1 := max(q0, min(len(y), len(x)-2-off)) // end of that interior
	if q1 > q0 {
		ys := y[q0:q1]
		xs := x[q0+off : q1+off+2]
		a0, a1 := xs[0], xs[1]
		xs = xs[2:][:len(ys)]
		for i, a2 := range xs {
			ys[i] += w0*a0 + w1*a1 + w2*a2
			a0, a1 = a1, a2
		}
	}
	dwAcc3Edge(y[:q0], x, off, w0, w1, w2)
	dwAcc3Edge(y[q1:], x, off+q1, w0, w1, w2)
}

// dwAcc9 is dwAcc3 over three input rows at once with the 3x3 taps w, for
// output rows whose kernel rows all fall inside the input.
func dwAcc9(y, x0, x1, x2 []float32, off int, w *[9]float32) {
	q0 := min(max(0, -off), len(y))
	q1 := max(q0, min(len(y), len(x0)-2-off))
	if q1 > q0 {
		n := q1 - q0
		ys := y[q0:q1]
		r0 := x0[q0+off:][:n+2]
		r1 := x1[q0+off:][:n+2]
		r2 := x2[q0+off:][:n+2]
		a0, a1 := r0[0], r0[1]
		b0, b1 := r1[0], r1[1]
		c0, c1 := r2[0], r2[1]
		r0, r1, r2 = r0[2:][:n], r1[2:][:n], r2[2:][:n]
		for i := range ys {
			a2, b2, c2 := r0[i], r1[i], r2[i]
			ys[i] += w[0]*a0 + w[1]*a1 + w[2]*a2 +
				w[3]*b0 + w[4]*b1 + w[5]*b2 +
				w[6]*c0 + w[7]*c1 + w[8]*c2
			a0, a1 = a1, a2
			b0, b1 = b1, b2
			c0, c1 = c1, c2
		}
	}
	for r, x := range [3][]float32{x0, x1, x2} {
		dwAcc3Edge(y[:q0], x, off, w[3*r], w[3*r+1], w[3*r+2])
		dwAcc3Edge(y[q1:], x, off+q1, w[3*r], w[3*r+1], w[3*r+2])
	}
}

// dwAcc3Edge is dwAcc3 with a bounds test per tap, for the few columns near
// the padding.
func dwAcc3Edge(y, x []float32, off int, w0, w1, w2 float32) {
	for q := range y {
		i := q + off
		var s float32
		if i >= 0 && i < len(x) {
			s += w0 * x[i]
		}
		if i+1 >= 0 && i+1 < len(x) {
			s += w1 * x[i+1]
		}
		if i+2 >= 0 && i+2 < len(x) {
			s += w2 * x[i+2]
		}
		y[q] += s
	}
}

// dwDot3 returns, for t = 0, 1, 2, the sum over q of g[q]*x[q+off+t], taking
// x as zero outside its bounds: the three filter-gradient taps of one row
// pair, sharing the loads of g.
func dwDot3(g, x []float32, off int) (s0, s1, s2 float32) {
	q0 := min(max(0, -off), len(g))
	q1 := max(q0, min(len(g), len(x)-2-off))
	if q1 > q0 {
		gs := g[q0:q1]
		xs := x[q0+off : q1+off+2]
		a0, a1 := xs[0], xs[1]
		xs = xs[2:][:len(gs)]
		for i, a2 := range xs {
			v := gs[i]
			s0 += v * a0
			s1 += v * a1
			s2 += v * a2
			a0, a1 = a1, a2
		}
	}
	for _, r := range [2][2]int{{0, q0}, {q1, len(g)}} {
		for q := r[0]; q < r[1]; q++ {
			i := q + off
			v := g[q]
			if i >= 0 && i < len(x) {
				s0 += v * x[i]
			}
			if i+1 >= 0 && i+1 < len(x) {
				s1 += v * x[i+1]
			}
			if i+2 >= 0 && i+2 < len(x) {
				s2 += v * x[i+2]
			}
		}
	}
	return s0, s1, s2
}
