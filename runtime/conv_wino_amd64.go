//go:build amd64 && !purego

package runtime

// convWino lays out a convolution computed with Winograd's F(2x2, 3x3)
// (Lavin and Gray, 2016): each 2x2 block of outputs (a tile) is
// Aᵀ [Σ_c (G g_kc Gᵀ) ⊙ (Bᵀ d_c B)] A, with d_c the tile's 4x4 input patch
// of channel c and g_kc the 3x3 filter. The 16 element-wise products,
// summed over c, are 16 GEMMs of the transformed filters (K x C) by the
// transformed inputs (C x tiles), each a quarter of the direct GEMM's
// size, so the multiply-adds fall by 9·4/16 = 2.25x; the transforms are
// additions, vectorised over a row of up to 16 tiles (winoInZ, winoOutZ).
// Rounding differs from the direct form's, within float32's usual error.
type convWino struct {
	tw, th, t int      // tiles per row, tile rows, tiles per plane
	ns        int      // samples whose tiles share the GEMMs' columns
	kp        int      // K rounded up to the kernels' 8-row slivers
	inMasks   []uint32 // per tile row, winoInZ's 16 load masks
	lm        uint32   // a tile row's lanes
	sm0, sm1  uint32   // an output row's lanes, columns 0..15 and 16..31
	offs      []int32  // GEMM k step c: B's offset c·t
	masks     []uint32 // GEMM lane masks: C full, then C for the last sliver
}

// buildWino sets p.wino for unit-stride, undilated, ungrouped 3x3
// convolutions padded by 1 on every side with even sides at most 32 wide
// (a tile row is one vector), on AVX-512. Planes of fewer than 32 tiles
// (ResNet's 8x8) put ns samples side by side in the GEMMs' columns, so
// that a 32-tile sliver is full.
func (p *Conv2DParams) buildWino() {
	p.wino = nil
	if convDirectWidth == 0 || p.KH != 3 || p.KW != 3 || p.StrideH != 1 || p.StrideW != 1 ||
		p.DilationH != 1 || p.DilationW != 1 || p.Groups != 1 ||
		p.PadTop != 1 || p.PadLeft != 1 || p.PadBottom != 1 || p.PadRight != 1 ||
		p.H%2 != 0 || p.W%2 != 0 || p.W > 32 {
		return
	}
	W := p.W
	wn := &convWino{tw: W / 2, th: p.H / 2, kp: (p.K + 7) / 8 * 8}
	wn.t = wn.tw * wn.th
	wn.ns = max(1, 32/wn.t)
	lanes := func(lo, hi int) uint32 { // lanes l with lo <= l < hi, of 16
		var m uint32
		for l := max(lo, 0); l < min(hi, 16); l++ {
			m |= 1 << l
		}
		return m
	}
	wn.lm = lanes(0, wn.tw)
	wn.sm0, wn.sm1 = lanes(0, W), lanes(0, W-16)
	// Loads at columns -1.. (lane l is column l-1, then 15+l) and 1..
	// (column l+1, then 17+l).
	cols := [4]uint32{lanes(1, W+1), lanes(0, W-15), lanes(0, W-1), lanes(0, W-17)}
	wn.inMasks = make([]uint32, 16*wn.th)
	for ty := 0; ty < wn.th; ty++ {
		for r := 0; r < 4; r++ {
			if row := 2*ty - 1 + r; row >= 0 && row < p.H {
				copy(wn.inMasks[16*ty+4*r:][:4], cols[:])
			}
		}
	}
	wn.offs = make([]int32, p.C)
	wn.masks = make([]uint32, 2*p.C)
	t2 := wn.ns * wn.t
	tail := uint32(1)<<(t2%32) - 1
	if t2%32 == 0 {
		tail = ^uint32(0)
	}
	for c := range wn.offs {
		wn.offs[c] = int32(c * t2)
		wn.masks[c], wn.masks[p.C+c] = ^uint32(0), tail
	}
	p.wino = wn
}

// fwdWino computes y = conv(x, w) for ns consecutive samples (at most
// p.wino.ns) with p.wino and reports whether it did (not without a
// Winograd form, or when Sgemm is not running the AVX-512 kernels). The
// transformed filters are made once per call and worker, as the direct
// form packs its filters.
func (p *Conv2DParams) fwdWino(gs *gemmScratch, cs *convScratch, x, y, w []float32, ns int) bool {
	wn := p.wino
	if wn == nil || gemmUse != gemmZ || ns > wn.ns {
		return false
	}
	C, K, HW := p.C, p.K, p.H*p.W
	// The GEMMs' columns are wn.ns samples' tiles, sample s's from s·t;
	// those of samples past ns hold stale values, whose products are not
	// read.
	T := wn.ns * wn.t
	if gs.aFor != &w[0] {
		gs.a = gemmGrow(gs.a, 16*wn.kp*C)
		winoFilters(gs.a[:16*wn.kp*C], w, K, C, wn.kp)
		gs.aFor = &w[0]
	}
	// The 16 planes of V and of M are a cache line more than their size
	// apart: at their size, often a multiple of 4 KiB, the transforms'
	// 16 streams would all fall into the same L1 sets.
	ldv, ldm := C*T+16, K*T+16
	cs.wv = gemmGrow(cs.wv, 16*ldv)
	cs.wm = gemmGrow(cs.wm, 16*ldm)
	v, m := cs.wv[:16*ldv], cs.wm[:16*ldm]
	for s := 0; s < ns; s++ {
		for c := 0; c < C; c++ {
			winoInZ(&x[(s*C+c)*HW], p.W, wn.th, wn.tw, &wn.inMasks[0], &v[c*T+s*wn.t], ldv, wn.lm)
		}
	}
	for xi := 0; xi < 16; xi++ {
		a, vx, mx := gs.a[xi*wn.kp*C:], v[xi*ldv:], m[xi*ldm:]
		for q0 := 0; q0 < ns*wn.t; q0 += 32 {
			cols := min(32, T-q0)
			mk := &wn.masks[0]
			if cols < 32 {
				mk = &wn.masks[C]
			}
			for i := 0; i < K; i += 8 {
				rows := min(8, K-i)
				gemmConvKernels[rows](C, &a[i*C], &vx[q0], &wn.offs[0], mk, &mx[i*T+q0], T, rows, cols, true)
			}
		}
	}
	for s := 0; s < ns; s++ {
		for k := 0; k < K; k++ {
			winoOutZ(&m[k*T+s*wn.t], ldm, wn.lm, &y[(s*K+k)*HW], p.W, wn.th, wn.tw, wn.sm0, wn.sm1)
		}
	}
	return true
}

// winoFilters writes the transformed filters U = G g Gᵀ of w ([K, C, 3,
// 3]) as 16 GEMM A operands, element xi of U for output channel k and
// input channel c at a[xi*kp*C + (k/8)*8*C + c*8 + k%8] (the conv
// kernels' 8-row slivers), rows K..kp-1 zero. G is the 4x3 matrix of
// F(2x2, 3x3): rows (1, 0, 0), (½, ½, ½), (½, -½, ½), (0, 0, 1).
func winoFilters(a, w []float32, K, C, kp int) {
	clear(a)
	for k := 0; k < K; k++ {
		for c := 0; c < C; c++ {
			g := w[(k*C+c)*9:][:9]
			var t [4][3]float32 // G g
			for j := 0; j < 3; j++ {
				g0, g1, g2 := g[j], g[3+j], g[6+j]
				t[0][j] = g0
				t[1][j] = 0.5 * (g0 + g1 + g2)
				t[2][j] = 0.5 * (g0 - g1 + g2)
				t[3][j] = g2
			}
			base := (k/8)*8*C + c*8 + k%8
			for i := 0; i < 4; i++ {
				r0, r1, r2 := t[i][0], t[i][1], t[i][2]
				u := [4]float32{r0, 0.5 * (r0 + r1 + r2), 0.5 * (r0 - r1 + r2), r2}
				for j, val := range u {
					a[(4*i+j)*kp*C+base] = val
				}
			}
		}
	}
}
