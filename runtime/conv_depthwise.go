package runtime

// Direct kernels for depthwise convolution (Groups == C, K = M*C with channel
// multiplier M): each output plane reads one input plane, so im2col would
// copy KH*KW times more data than the few multiply-adds per pixel justify.
// The loops run over output rows and kernel taps, with the valid column range
// of each tap computed once (convSpan) so the inner loops carry no padding
// tests; with stride 1 the inner loop is a plain axpy or dot product. The
// common 3-wide kernel with unit stride and dilation along W (p.dwRow3)
// instead fuses the taps of a kernel row, or of all three rows, into one pass
// over the output row (dwAcc3, dwSet9Go, dwDot3): that halves the loads and
// stores per multiply-add, which is what bounds these loops.

// dwFwdPlane computes output plane k of sample ni (with fwdItem's
// per-channel scale mul and residual res when not nil).
func (p *Conv2DParams) dwFwdPlane(cs *convScratch, ni, k int, y, x, w, mul, b, res []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	c := k / p.kg // input channel: kg is the channel multiplier here
	yp := y[(ni*p.K+k)*OH*OW:][:OH*OW]
	xp := x[(ni*p.C+c)*H*W:][:H*W]
	wk := w[k*p.KH*p.KW:][:p.KH*p.KW]
	done := false
	if p.dwRow3 && p.KH == 3 {
		p.dwFwdPlane3x3(cs, yp, xp, (*[9]float32)(wk))
		done = true
	} else {
		done = p.dwStride2Wide(cs, yp, xp, wk)
	}
	if done {
		p.channelEpilogue(yp, mul, b, convPlane(res, ni, p.K, k, OH*OW), k)
		return
	}
	clear(yp)
	for oh := 0; oh < OH; oh++ {
		yrow := yp[oh*OW : (oh+1)*OW]
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
	p.channelEpilogue(yp, mul, b, convPlane(res, ni, p.K, k, OH*OW), k)
}

// dwFwdPlane3x3 is dwFwdPlane for 3x3 kernels with unit stride and
// dilation along W.
func (p *Conv2DParams) dwFwdPlane3x3(cs *convScratch, yp, xp []float32, w *[9]float32) {
	dwPlane3x3(cs, yp, p.oh, p.ow, xp, p.H, p.W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight, p.StrideH, p.DilationH, w)
}

// dwPlane3x3 sets y (oh x ow) to the 3x3 correlation of x (h x w) zero-
// padded by padT, padL, padB, padR, with stride sh and dilation dh along H
// and unit stride and dilation along W (so ow = w+padL+padR-2). It copies
// x into a zero-bordered plane (cs.padPlane) first, so that every output row is
// one pass of dwSet9Go over three padded rows with no edge cases; the copy
// costs less than the bounds-tested edge columns and kernel rows it
// replaces.
func dwPlane3x3(cs *convScratch, y []float32, oh, ow int, x []float32, h, w, padT, padL, padB, padR, sh, dh int, k *[9]float32) {
	PW := w + padL + padR
	pad := cs.padPlane(x, h, w, padT, padL, padB, padR)
	dh *= PW
	if sh == 1 && dwPlane3x3Wide(cs, y, oh, ow, pad, PW, dh, k) {
		return
	}
	for o := 0; o < oh; o++ {
		r0 := pad[o*sh*PW:]
		yr := y[o*ow:][:ow]
		a, b, c := r0[:ow+2], r0[dh:][:ow+2], r0[2*dh:][:ow+2]
		if !vecDwSet9(yr, a, b, c, k) {
			dwSet9Go(yr, a, b, c, k)
		}
	}
}

// dwGradInPlane computes input-gradient plane c of sample ni, gathering the
// contributions of the channel's M output planes in a fixed order.
func (p *Conv2DParams) dwGradInPlane(cs *convScratch, ni, c int, dx, dy, w []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	dxp := dx[(ni*p.C+c)*H*W:][:H*W]
	if p.dwRow3 && p.KH == 3 && sh == 1 && p.DilationH == 1 && p.kg == 1 && max(p.PadTop, p.PadLeft, p.PadBottom, p.PadRight) <= 2 {
		// With unit strides and dilations the input gradient is the
		// forward correlation of dy, padded by 2 minus each pad, with the
		// kernel turned by 180 degrees.
		wk := w[c*9:][:9]
		var flip [9]float32
		for i := range flip {
			flip[i] = wk[8-i]
		}
		dwPlane3x3(cs, dxp, H, W, dy[(ni*p.K+c)*OH*OW:][:OH*OW], OH, OW, 2-p.PadTop, 2-p.PadLeft, 2-p.PadBottom, 2-p.PadRight, 1, 1, &flip)
		return
	}
	if p.kg == 1 && p.dwGradInStride2Wide(cs, dxp, dy[(ni*p.K+c)*OH*OW:][:OH*OW], w[c*p.KH*p.KW:][:p.KH*p.KW]) {
		return
	}
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
	if p.dwGradFilterWide(cs, n, k, c, dw, x, dy) {
		return
	}
	if p.dwRow3 && p.KH == 3 {
		p.dwGradFilter3x3(cs, n, k, c, acc, x, dy)
		d := dw[k*taps:][:taps]
		for i, v := range acc {
			d[i] = float32(v)
		}
		return
	}
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

// dwGradFilter3x3 adds the 3x3 filter gradient of output channel k (input
// channel c) into acc, for 3x3 kernels with unit stride and dilation along
// W. Each sample's input plane is zero-bordered first (cs.padPlane),
// so each (output row, kernel row) pair is one dwDot3Lanes pass with no
// edge cases; the eight lanes of each tap are summed into acc in float64
// once per sample.
func (p *Conv2DParams) dwGradFilter3x3(cs *convScratch, n, k, c int, acc []float64, x, dy []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	PW := W + p.PadLeft + p.PadRight
	for ni := 0; ni < n; ni++ {
		pad := cs.padPlane(x[(ni*p.C+c)*H*W:][:H*W], H, W, p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
		dyp := dy[(ni*p.K+k)*OH*OW:][:OH*OW]
		var lanes [3][24]float32
		for oh := 0; oh < OH; oh++ {
			g := dyp[oh*OW:][:OW]
			for kh := 0; kh < 3; kh++ {
				r := pad[(oh*p.StrideH+kh*p.DilationH)*PW:][:OW+2]
				dwDot3Lanes(g, r, &lanes[kh])
			}
		}
		for kh := range lanes {
			for t := 0; t < 3; t++ {
				var s float64
				for _, v := range lanes[kh][8*t : 8*t+8] {
					s += float64(v)
				}
				acc[kh*3+t] += s
			}
		}
	}
}

// padPlane copies the h x w plane x into cs.pad with padT, padL, padB and
// padR rows and columns of zeros around it, and returns that plane.
func (cs *convScratch) padPlane(x []float32, h, w, padT, padL, padB, padR int) []float32 {
	PW, PH := w+padL+padR, h+padT+padB
	cs.pad = gemmGrow(cs.pad, PW*PH)
	return padPlaneInto(cs.pad[:PW*PH], x, h, w, padT, padL, padB, padR)
}

// padPlaneInto is padPlane into pad ((h+padT+padB)*(w+padL+padR) floats).
//
// Planes here are often a few pixels wide, so a row costs one copy call:
// the top rows and the first left pad are one clear, and the zeros
// between one row's pixels and the next's (its right pad, the next left
// pad) a loop the compiler inlines.
func padPlaneInto(pad, x []float32, h, w, padT, padL, padB, padR int) []float32 {
	PW := w + padL + padR
	if padRowsVec(pad[padT*PW:][:h*PW], x[:h*w], w, PW, padL) {
		clear(pad[:padT*PW])
		clear(pad[(h+padT)*PW:])
		return pad
	}
	clear(pad[:padT*PW+padL])
	for ih := 0; ih < h; ih++ {
		o := (ih+padT)*PW + padL
		copy(pad[o:o+w], x[ih*w:(ih+1)*w])
		gap := pad[o+w : min(o+w+padR+padL, len(pad))]
		for i := range gap {
			gap[i] = 0
		}
	}
	clear(pad[(h+padT)*PW:])
	return pad
}

// dwDot3Lanes adds g[i]*x[i+t] (x is len(g)+2 long) into acc[8t+i%8] for
// t < 3, the first len(g)&^7 elements as eight lanes (on the vector kernel
// where the CPU has one) and the rest into lane 0, always as a multiply
// then an add, so every platform gets the same bits.
func dwDot3Lanes(g, x []float32, acc *[24]float32) {
	n8 := len(g) &^ 7
	if vecDwDot3(g, x, acc) != n8 {
		dwDot3LanesGo(g[:n8], x, acc)
	}
	for i := n8; i < len(g); i++ {
		v := g[i]
		p0 := v * x[i]
		p1 := v * x[i+1]
		p2 := v * x[i+2]
		acc[0] += p0
		acc[8] += p1
		acc[16] += p2
	}
}

// dwDot3LanesGo is dwDot3Lanes's eight-lane part, len(g) a multiple of 8.
func dwDot3LanesGo(g, x []float32, acc *[24]float32) {
	for i, v := range g {
		l := i & 7
		p0 := v * x[i]
		p1 := v * x[i+1]
		p2 := v * x[i+2]
		acc[l] += p0
		acc[8+l] += p1
		acc[16+l] += p2
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
	if q1 > q0 && !vecDwAcc3(y[q0:q1], x[q0+off:q1+off+2], w0, w1, w2) {
		dwAcc3Go(y[q0:q1], x[q0+off:q1+off+2], w0, w1, w2)
	}
	dwAcc3Edge(y[:q0], x, off, w0, w1, w2)
	dwAcc3Edge(y[q1:], x, off+q1, w0, w1, w2)
}

// dwAcc3Go is dwAcc3's interior, with len(xs) == len(ys)+2.
func dwAcc3Go(ys, xs []float32, w0, w1, w2 float32) {
	a0, a1 := xs[0], xs[1]
	xs = xs[2:][:len(ys)]
	for i, a2 := range xs {
		ys[i] += w0*a0 + w1*a1 + w2*a2
		a0, a1 = a1, a2
	}
}

// dwSet9Go sets ys[i] to the sum of the 3x3 taps w over rows r0, r1, r2
// (each len(ys)+2 long) at i, i+1, i+2: dwAcc3 over three rows at once,
// writing each output once.
func dwSet9Go(ys, r0, r1, r2 []float32, w *[9]float32) {
	n := len(ys)
	a0, a1 := r0[0], r0[1]
	b0, b1 := r1[0], r1[1]
	c0, c1 := r2[0], r2[1]
	r0, r1, r2 = r0[2:][:n], r1[2:][:n], r2[2:][:n]
	for i := range ys {
		a2, b2, c2 := r0[i], r1[i], r2[i]
		ys[i] = w[0]*a0 + w[1]*a1 + w[2]*a2 +
			w[3]*b0 + w[4]*b1 + w[5]*b2 +
			w[6]*c0 + w[7]*c1 + w[8]*c2
		a0, a1 = a1, a2
		b0, b1 = b1, b2
		c0, c1 = c1, c2
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
