package runtime

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"
)

// Conv2DParams describes a 2-D convolution (ONNX Conv, PyTorch Conv2d) of one
// sample: input [C, H, W], weight [K, C/Groups, KH, KW], output
// [K, OutH(), OutW()]. Every field must be set explicitly (strides and
// dilations of 1 included), then Init must be called before the params are
// passed to a kernel, and again after any field changes.
//
// The kernels keep no per-call state in the struct, so one Conv2DParams may be
// used by concurrent calls.
type Conv2DParams struct {
	C, H, W                              int // input channels, height, width
	K                                    int // output channels
	KH, KW                               int // kernel height and width
	StrideH, StrideW                     int
	PadTop, PadLeft, PadBottom, PadRight int // zero padding, asymmetric allowed
	DilationH, DilationW                 int
	// Groups splits the channels into independent convolutions: C and K
	// must both be multiples of it. Groups == C is depthwise (with a channel
	// multiplier K/C), which runs a direct kernel instead of im2col + GEMM.
	Groups int
	// Epilogue is applied by Conv2D after the bias. The gradient kernels
	// ignore it: they are the gradients of the plain convolution.
	Epilogue Epilogue

	ok        bool
	oh, ow    int
	cg, kg    int // input and output channels per group
	crs       int // cg*KH*KW: rows of the im2col matrix, columns of a weight row
	pointwise bool
	depthwise bool
	dwRow3    bool // depthwise with KW 3, stride and dilation 1 along W: fused 3-tap rows
	// tconv holds, for unit strides, the convolution of dy with the
	// flipped, transposed filters that Conv2DGradInput computes instead of
	// a GEMM into an im2col-shaped buffer followed by col2im: its GEMM runs
	// with k = K/Groups*KH*KW instead of K/Groups (far better use of the
	// kernel) and nothing is scattered back. It is built by the first
	// GradInput (transposedConv), so that inference, which never needs it,
	// does not hold its tables.
	tconv *convLazyT
	// taps describes each kernel tap (kh, kw), for the rows (c, kh, kw) of
	// a group's im2col matrix, so that building a row costs one division
	// instead of five (see convTap); per tap rather than per row, because
	// fused SMH inference promises to hold little beyond the weights.
	taps []convTap
	// unitSame is unit strides with the output as wide as the input: an
	// im2col row is then the input plane shifted by a constant, with the
	// padding columns zeroed.
	unitSame bool
	// direct, for unitSame geometries on CPUs with a direct kernel, lets
	// the forward pass skip im2col (see fwdDirect). Nil otherwise.
	direct *convDirect
	// wino, for 3x3 convolutions that Winograd's F(2x2, 3x3) suits (see
	// fwdWino), on CPUs with its kernels.
	wino *convWino
}

// convDirect describes a convolution whose forward GEMM reads its B
// operand straight from a zero-bordered copy of the input, in one of
// three forms. The masked form (unitSame geometries, rowW 0) keeps the
// input's rows W wide with zero rows above and below: output position q of
// im2col row r is plane[q+offs[r]] when the tap's column is inside the
// input, and 0 otherwise (the row's lane masks). Its masks drop the rows
// outside the input too, so the forward reads x itself at q+inOffs[r]
// and only the filter gradient's packer uses the zero-bordered copy. The wide form (any other
// unit-stride geometry, such as an unpadded convolution or the transpose of
// one) pads every row too, to rowW = PadLeft+W+PadRight: the kernel then
// computes the outputs on a grid rowW wide, position q = oh*rowW+ow
// reading plane[q+offs[r]] with no masks, and the rowW-OW columns past each
// output row, which straddle two input rows, are dropped when the result
// is compacted. The phase form (strides 2, no dilation) is the wide form
// on the four planes of even and odd rows and columns (phaseHW).
type convDirect struct {
	plane int // floats per zero-bordered plane (all four phases of one in the phase form)
	front int // zeros before a plane's first pixel: PadTop rows and PadLeft
	rowW  int // the wide form's row width; 0 for the masked form
	// phaseHW, in the phase form (strides 2), is the floats of each of the
	// four planes a zero-bordered input plane is split into by the parity
	// of its rows and columns, each rowW wide: output (o, q) reads tap (kh,
	// kw) from phase (kh%2, kw%2) at row o+kh/2, column q+kw/2, so every
	// tap is again a unit-stride run. 0 otherwise.
	phaseHW int
	span    int      // output positions the kernel computes per channel
	offs    []int32  // per im2col row (c, kh, kw)
	masks   []uint32 // per mask table, per im2col row: lane i is output q0+i
	phase   []int32  // per convDirectWidth-column sliver of the output: its masks' start
	// inOffs, in the masked form, are offs for the input itself rather
	// than its zero-bordered copy: the masks there also drop the lanes
	// whose tap's row lies outside the input, which the kernel's masked
	// loads then never touch, so the forward reads x in place.
	inOffs []int32
}

// convDirectMaxMasks bounds the mask tables of a direct convolution (one
// uint32 per im2col row per table; slivers whose masks are equal share a
// table).
const convDirectMaxMasks = 1 << 16

// buildDirect sets p.direct when the geometry and the CPU allow it.
func (p *Conv2DParams) buildDirect() {
	p.direct = nil
	w := convDirectWidth
	if w == 0 || p.pointwise || p.depthwise {
		return
	}
	if p.StrideH == 2 && p.StrideW == 2 && p.DilationH == 1 && p.DilationW == 1 {
		p.buildDirectWide(w, true)
		return
	}
	if p.StrideH != 1 || p.StrideW != 1 {
		return
	}
	if !p.unitSame {
		p.buildDirectWide(w, false)
		return
	}
	P := p.oh * p.ow
	nsl := (P + w - 1) / w
	d := &convDirect{
		front:  p.PadTop*p.W + p.PadLeft,
		plane:  (p.PadTop+p.H+p.PadBottom)*p.W + p.PadLeft + p.PadRight,
		span:   P,
		offs:   make([]int32, p.crs),
		inOffs: make([]int32, p.crs),
		phase:  make([]int32, nsl),
	}
	if int64(p.cg)*int64(d.plane)+int64(w) > math.MaxInt32 {
		return
	}
	khw := p.KH * p.KW
	for r := range d.offs {
		c, kh, kw := r/khw, r%khw/p.KW, r%p.KW
		d.offs[r] = int32(c*d.plane + kh*p.DilationH*p.W + kw*p.DilationW)
		d.inOffs[r] = int32(c*p.H*p.W + (kh*p.DilationH-p.PadTop)*p.W + kw*p.DilationW - p.PadLeft)
	}
	// A sliver's masks keep the lanes whose tap reads a pixel inside the
	// input, row and column, so that the kernel can read the input in
	// place. Slivers with equal masks share a table: interior rows all
	// do, so there are a few tables, not one per sliver.
	var tables []int // their starts in d.masks
	m := make([]uint32, p.crs)
	for j := 0; j < nsl; j++ {
		for r := range m {
			_, t := p.tap(r)
			m[r] = 0
			for i := 0; i < w; i++ {
				q := j*w + i
				oh, ow := int32(q/p.ow), int32(q%p.ow)
				if q < P && oh >= t.oh0 && oh < t.oh1 && ow >= t.ow0 && ow < t.ow1 {
					m[r] |= 1 << i
				}
			}
		}
		at := -1
		for _, t := range tables {
			if slices.Equal(d.masks[t:][:len(m)], m) {
				at = t
				break
			}
		}
		if at < 0 {
			if len(d.masks)+len(m) > convDirectMaxMasks {
				return
			}
			at = len(d.masks)
			tables = append(tables, at)
			d.masks = append(d.masks, m...)
		}
		d.phase[j] = int32(at)
	}
	p.direct = d
}

// buildDirectWide sets p.direct to the wide form (see convDirect) for
// kernel tiles w columns wide, or with phases to the phase form of a
// convolution with strides 2 and no dilation, unless the dropped columns
// would more than double the kernel's work.
func (p *Conv2DParams) buildDirectWide(w int, phases bool) {
	rowW, rows := p.PadLeft+p.W+p.PadRight, p.PadTop+p.H+p.PadBottom
	d := &convDirect{front: p.PadTop*rowW + p.PadLeft}
	if phases {
		rowW, rows = (rowW+1)/2, (rows+1)/2
		d.front, d.phaseHW = 0, rows*rowW
	}
	span := (p.oh-1)*rowW + p.ow
	if p.oh < 1 || p.ow < 1 || span > 2*p.oh*p.ow {
		return
	}
	d.rowW, d.span, d.plane = rowW, span, rows*rowW
	if phases {
		d.plane *= 4
	}
	if int64(p.cg)*int64(d.plane)+int64(w) > math.MaxInt32 {
		return
	}
	d.offs, d.masks, d.phase = make([]int32, p.crs), make([]uint32, p.crs), make([]int32, (span+w-1)/w)
	khw := p.KH * p.KW
	for r := range d.offs {
		c, kh, kw := r/khw, r%khw/p.KW, r%p.KW
		off := kh*p.DilationH*rowW + kw*p.DilationW
		if phases {
			off = ((kh&1)*2+kw&1)*d.phaseHW + kh/2*rowW + kw/2
		}
		d.offs[r] = int32(c*d.plane + off)
		d.masks[r] = ^uint32(0)
	}
	p.direct = d
}

// convTap is what im2col needs about one kernel tap (kh, kw): the shift
// from output position to input pixel, and the output rows [oh0, oh1) and
// columns [ow0, ow1) whose input pixel lies inside the input (the rest read
// padding). With unitSame, output position q reads plane[q+shift] for q in
// [qa, qb) outside the padding columns, and 0 elsewhere.
type convTap struct {
	offH, offW         int32
	oh0, oh1, ow0, ow1 int32
	shift, qa, qb      int32
}

// buildTaps fills p.taps from the geometry (Init and transposed).
func (p *Conv2DParams) buildTaps() {
	p.unitSame = p.StrideH == 1 && p.StrideW == 1 && p.W == p.ow
	p.taps = make([]convTap, p.KH*p.KW)
	for r := range p.taps {
		kh, kw := r/p.KW, r%p.KW
		offH := kh*p.DilationH - p.PadTop
		offW := kw*p.DilationW - p.PadLeft
		oh0, oh1 := convSpan(offH, p.StrideH, p.H, p.oh)
		ow0, ow1 := convSpan(offW, p.StrideW, p.W, p.ow)
		t := convTap{
			offH: int32(offH), offW: int32(offW),
			oh0: int32(oh0), oh1: int32(oh1), ow0: int32(ow0), ow1: int32(ow1),
			shift: int32(offH*p.W + offW),
		}
		if oh0 < oh1 && ow0 < ow1 {
			t.qa, t.qb = int32(oh0*p.ow+ow0), int32((oh1-1)*p.ow+ow1)
		}
		p.taps[r] = t
	}
}

// tap returns im2col row r's input channel (within the group) and tap.
func (p *Conv2DParams) tap(r int) (c int, t *convTap) {
	khw := len(p.taps)
	c = r / khw
	return c, &p.taps[r-c*khw]
}

// Init validates the geometry and derives the output size.
func (p *Conv2DParams) Init() error {
	p.ok = false
	if p.C < 1 || p.H < 1 || p.W < 1 || p.K < 1 || p.KH < 1 || p.KW < 1 {
		return fmt.Errorf("conv: C %d H %d W %d K %d kernel %dx%d: want all >= 1", p.C, p.H, p.W, p.K, p.KH, p.KW)
	}
	if p.StrideH < 1 || p.StrideW < 1 {
		return fmt.Errorf("conv: strides %dx%d: want >= 1", p.StrideH, p.StrideW)
	}
	if p.DilationH < 1 || p.DilationW < 1 {
		return fmt.Errorf("conv: dilations %dx%d: want >= 1", p.DilationH, p.DilationW)
	}
	if p.PadTop < 0 || p.PadLeft < 0 || p.PadBottom < 0 || p.PadRight < 0 {
		return fmt.Errorf("conv: pads top %d left %d bottom %d right %d: want >= 0", p.PadTop, p.PadLeft, p.PadBottom, p.PadRight)
	}
	if p.Groups < 1 {
		return fmt.Errorf("conv: groups %d: want >= 1", p.Groups)
	}
	if p.C%p.Groups != 0 || p.K%p.Groups != 0 {
		return fmt.Errorf("conv: %d input and %d output channels are not both divisible by %d groups", p.C, p.K, p.Groups)
	}
	extH, extW := (p.KH-1)*p.DilationH+1, (p.KW-1)*p.DilationW+1
	padH, padW := p.H+p.PadTop+p.PadBottom, p.W+p.PadLeft+p.PadRight
	if extH > padH || extW > padW {
		return fmt.Errorf("conv: dilated kernel %dx%d is larger than the padded input %dx%d", extH, extW, padH, padW)
	}
	if err := p.Epilogue.Validate(); err != nil {
		return fmt.Errorf("conv: %w", err)
	}
	p.oh = (padH-extH)/p.StrideH + 1
	p.ow = (padW-extW)/p.StrideW + 1
	p.cg, p.kg = p.C/p.Groups, p.K/p.Groups
	p.crs = p.cg * p.KH * p.KW
	p.pointwise = p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 &&
		p.PadTop == 0 && p.PadLeft == 0 && p.PadBottom == 0 && p.PadRight == 0
	p.depthwise = p.Groups == p.C && p.C > 1
	if int64(p.C)*int64(p.H)*int64(p.W) > math.MaxInt32 || int64(p.oh)*int64(p.ow) > math.MaxInt32 {
		return fmt.Errorf("conv: input %dx%dx%d or output %dx%d has more than 2^31-1 elements per sample", p.C, p.H, p.W, p.oh, p.ow)
	}
	p.taps = nil
	if !p.pointwise && !p.depthwise {
		p.buildTaps()
	}
	p.buildDirect()
	p.buildWino()
	p.dwRow3 = p.depthwise && p.KW == 3 && p.StrideW == 1 && p.DilationW == 1
	p.tconv = &convLazyT{}
	p.ok = true
	return nil
}

// convLazyT is Conv2DParams.tconv: the transposed geometry, or nil when
// none applies, once built.
type convLazyT struct {
	once sync.Once
	t    *Conv2DParams
}

// transposedConv returns p.tconv's geometry, building it on the first call
// (safe for concurrent callers).
func (p *Conv2DParams) transposedConv() *Conv2DParams {
	p.tconv.once.Do(func() { p.tconv.t = p.transposed() })
	return p.tconv.t
}

// transposed returns the geometry whose forward pass is p's input
// gradient, or nil. With unit strides, dx[c][h][w] = Σ w[k][c][kh][kw] ·
// dy[k][h+PadTop-kh*DilationH][w+PadLeft-kw*DilationW], which is a
// convolution of dy ([K, OH, OW]) with the filters flipped in both spatial
// axes and with K and C swapped (convTransposeWeights), padded by
// (KH-1)*DilationH-PadTop on top and so on: pads that are negative (a
// padding wider than the dilated kernel) leave it to col2im.
func (p *Conv2DParams) transposed() *Conv2DParams {
	if p.StrideH != 1 || p.StrideW != 1 || p.pointwise || p.depthwise {
		return nil
	}
	// A "valid" convolution (no padding) shrinks its input: the transpose
	// then pads dy by the kernel extent, and its im2col is mostly zeros
	// (LeNet-5's second conv: 12x12 from 8x8, a 400 x 144 matrix against
	// the 150 x 64 of the GEMM + col2im path, with 2.2 times the FLOPs).
	// Keep it for outputs about as large as the input, or when the
	// transpose runs the direct kernel, which builds no im2col matrix.
	shrinks := 4*p.H*p.W > 5*p.oh*p.ow
	eh, ew := (p.KH-1)*p.DilationH, (p.KW-1)*p.DilationW
	t := &Conv2DParams{
		C: p.K, H: p.oh, W: p.ow, K: p.C, KH: p.KH, KW: p.KW,
		StrideH: 1, StrideW: 1,
		PadTop: eh - p.PadTop, PadLeft: ew - p.PadLeft, PadBottom: eh - p.PadBottom, PadRight: ew - p.PadRight,
		DilationH: p.DilationH, DilationW: p.DilationW, Groups: p.Groups,
	}
	if t.PadTop < 0 || t.PadLeft < 0 || t.PadBottom < 0 || t.PadRight < 0 {
		return nil
	}
	// t's own Init would build its transpose in turn: derive its fields
	// here, the way Init does, and check the output is the input size.
	t.oh = p.oh + t.PadTop + t.PadBottom - eh
	t.ow = p.ow + t.PadLeft + t.PadRight - ew
	if t.oh != p.H || t.ow != p.W {
		return nil
	}
	t.cg, t.kg = t.C/t.Groups, t.K/t.Groups
	t.crs = t.cg * t.KH * t.KW
	t.buildTaps()
	t.buildDirect()
	if shrinks && t.direct == nil {
		return nil
	}
	t.ok = true
	return t
}

// convTransposeWeights writes into wt the filters of p.transposedConv(): wt[g][c][k]
// [kh][kw] = w[g][k][c][KH-1-kh][KW-1-kw] for each group g, input channel
// c and output channel k of the group.
func (p *Conv2DParams) convTransposeWeights(wt, w []float32) {
	khw := p.KH * p.KW
	for g := 0; g < p.Groups; g++ {
		for k := 0; k < p.kg; k++ {
			for c := 0; c < p.cg; c++ {
				src := w[((g*p.kg+k)*p.cg+c)*khw:][:khw]
				dst := wt[((g*p.cg+c)*p.kg+k)*khw:][:khw]
				for i, v := range src {
					dst[khw-1-i] = v
				}
			}
		}
	}
}

// OutH returns the output height computed by Init.
func (p *Conv2DParams) OutH() int { return p.oh }

// OutW returns the output width computed by Init.
func (p *Conv2DParams) OutW() int { return p.ow }

// Conv2D computes y = conv(x, w) + b followed by p.Epilogue for a batch of n
// samples: x is [n, C, H, W], w is [K, C/Groups, KH, KW], b is [K] or nil for
// no bias, and y is [n, K, OutH, OutW] (overwritten).
//
// The results depend only on the inputs, n and the worker count: when the
// workers share the batch by sample (n at least Workers()), 3x3
// convolutions that suit it are computed with Winograd's F(2x2, 3x3)
// (fwdWino), whose roundings differ from the direct form's, which smaller
// batches use; the two agree to float32's usual error.
func Conv2D(p *Conv2DParams, n int, y, x, w, b []float32) {
	p.check("Conv2D", n)
	if b != nil {
		b = convNeed("Conv2D", "b", b, p.K)
	}
	p.forward("Conv2D", n, y, x, w, nil, b, nil)
}

// Conv2DResidual is Conv2D with a residual r ([n, K, OutH, OutW], the
// shape of y) added before the epilogue: y = act(conv(x, w) + b + r), the
// end of a residual block in one pass over y. r must not overlap y.
func Conv2DResidual(p *Conv2DParams, n int, y, x, w, b, r []float32) {
	p.check("Conv2DResidual", n)
	if b != nil {
		b = convNeed("Conv2DResidual", "b", b, p.K)
	}
	r = convNeed("Conv2DResidual", "r", r, n*p.K*p.oh*p.ow)
	p.forward("Conv2DResidual", n, y, x, w, nil, b, r)
}

// forward is Conv2D with an optional per-channel scale: with mul, output
// channel k is conv(x, w)·mul[k] + add[k] before the epilogue; without,
// conv(x, w) + add[k] (add may be nil). A residual res, when not nil, is
// added before the epilogue too.
func (p *Conv2DParams) forward(op string, n int, y, x, w, mul, add, res []float32) {
	y = convNeed(op, "y", y, n*p.K*p.oh*p.ow)
	x = convNeed(op, "x", x, n*p.C*p.H*p.W)
	w = convNeed(op, "w", w, p.K*p.crs)
	if n == 0 {
		return
	}
	t := convTasks.get()
	t.start(p, convOpFwd, n, y, x, w, add)
	t.mul, t.res = mul, res
	switch {
	case p.depthwise:
		t.op = convOpFwdDW
		ParallelFor(n*p.K, p.dwGrain(), t)
	case n*p.Groups >= Workers():
		ParallelFor(n*p.Groups, 1, t)
	default:
		// Too few (sample, group) items to go round: parallelise each GEMM.
		gs, cs := convScratchesGet()
		for it := 0; it < n*p.Groups; it++ {
			p.fwdItem(gs, cs, true, it/p.Groups, it%p.Groups, y, x, w, mul, add, res)
		}
		gemmScratches.put(gs)
		convScratches.put(cs)
	}
	t.finish()
}

// Conv2DBNParams is a convolution followed by inference batch
// normalisation, which Conv2DBatchNorm applies as the convolution's
// epilogue: the statistics are folded into a per-channel scale and shift
// at every call, since a trainable model's change as it trains.
type Conv2DBNParams struct {
	Conv    Conv2DParams
	Epsilon float32 // the BatchNormalization's epsilon

	mul, add []float32 // the folded scale and shift, per output channel
}

// Init validates the convolution and sizes the folded statistics.
func (p *Conv2DBNParams) Init() error {
	if err := p.Conv.Init(); err != nil {
		return err
	}
	if !(p.Epsilon >= 0) || math.IsInf(float64(p.Epsilon), 0) {
		return fmt.Errorf("conv: batch norm epsilon %v: want finite and >= 0", p.Epsilon)
	}
	p.mul, p.add = make([]float32, p.Conv.K), make([]float32, p.Conv.K)
	return nil
}

// Conv2DBatchNorm computes y = act(scale·(conv(x, w) + b − mean) /
// sqrt(variance + Epsilon) + shift) per output channel, act being
// p.Conv.Epilogue, in the convolution's own output pass: the normalisation
// and the activation cost no pass over memory of their own. b may be nil.
// Without b the result has the same bits as Conv2D followed by
// BatchNormInference (the fold is BatchNormFold's, the affine map the
// same multiply then add); with b, the bias is folded into the shift.
// Like BatchNormInference, one p must not serve two calls at once.
func Conv2DBatchNorm(p *Conv2DBNParams, n int, y, x, w, b, scale, shift, mean, variance []float32) {
	p.forward("Conv2DBatchNorm", n, y, x, w, b, scale, shift, mean, variance, nil)
}

// Conv2DBatchNormResidual is Conv2DBatchNorm with a residual r ([n, K,
// OutH, OutW]) added after the normalisation and before the epilogue: the
// end of a ResNet block, y = act(bn(conv(x, w) + b) + r), in one pass over
// y. r must not overlap y.
func Conv2DBatchNormResidual(p *Conv2DBNParams, n int, y, x, w, b, scale, shift, mean, variance, r []float32) {
	const op = "Conv2DBatchNormResidual"
	p.Conv.check(op, n)
	r = convNeed(op, "r", r, n*p.Conv.K*p.Conv.oh*p.Conv.ow)
	p.forward(op, n, y, x, w, b, scale, shift, mean, variance, r)
}

// forward checks the statistics, folds them and runs the convolution with
// them (and the residual r, if not nil) as its epilogue.
func (p *Conv2DBNParams) forward(op string, n int, y, x, w, b, scale, shift, mean, variance, r []float32) {
	c := &p.Conv
	c.check(op, n)
	if len(p.mul) != c.K {
		panic("runtime: " + op + ": Conv2DBNParams not initialised")
	}
	k := c.K
	scale, shift = convNeed(op, "scale", scale, k), convNeed(op, "shift", shift, k)
	mean, variance = convNeed(op, "mean", mean, k), convNeed(op, "variance", variance, k)
	if b != nil {
		b = convNeed(op, "b", b, k)
	}
	bnFold(p.mul, p.add, scale, shift, mean, variance, b, p.Epsilon)
	c.forward(op, n, y, x, w, p.mul, p.add, r)
}

// Conv2DGradInput computes dx, the gradient of the loss with respect to x,
// from dy ([n, K, OutH, OutW]) and w; dx ([n, C, H, W]) is overwritten.
func Conv2DGradInput(p *Conv2DParams, n int, dx, dy, w []float32) {
	p.check("Conv2DGradInput", n)
	dx = convNeed("Conv2DGradInput", "dx", dx, n*p.C*p.H*p.W)
	dy = convNeed("Conv2DGradInput", "dy", dy, n*p.K*p.oh*p.ow)
	w = convNeed("Conv2DGradInput", "w", w, p.K*p.crs)
	if n == 0 {
		return
	}
	t := convTasks.get()
	t.start(p, convOpGradIn, n, dx, dy, w, nil)
	if p.transposedConv() != nil {
		t.wt = gemmGrow(t.wt, len(w))
		p.convTransposeWeights(t.wt, w)
		t.d = t.wt
	}
	switch {
	case p.depthwise:
		t.op = convOpGradInDW
		ParallelFor(n*p.C, p.dwGrain(), t)
	case n*p.Groups >= Workers():
		ParallelFor(n*p.Groups, 1, t)
	default:
		gs, cs := convScratchesGet()
		for it := 0; it < n*p.Groups; it++ {
			p.gradInItem(gs, cs, true, it/p.Groups, it%p.Groups, dx, dy, w, t.d)
		}
		gemmScratches.put(gs)
		convScratches.put(cs)
	}
	t.finish()
}

// Conv2DGradFilter computes dw, the gradient of the loss with respect to w
// summed over the batch, from x ([n, C, H, W]) and dy ([n, K, OutH, OutW]);
// dw ([K, C/Groups, KH, KW]) is overwritten.
//
// The result is deterministic for a fixed GOMAXPROCS, whatever else runs on
// the worker pool: the batch is cut into min(n, Workers()) fixed chunks whose
// partial sums are added in chunk order (the depthwise kernel sums each
// channel's batch in order and does not depend on GOMAXPROCS at all).
func Conv2DGradFilter(p *Conv2DParams, n int, dw, x, dy []float32) {
	p.check("Conv2DGradFilter", n)
	dw = convNeed("Conv2DGradFilter", "dw", dw, p.K*p.crs)
	x = convNeed("Conv2DGradFilter", "x", x, n*p.C*p.H*p.W)
	dy = convNeed("Conv2DGradFilter", "dy", dy, n*p.K*p.oh*p.ow)
	if n == 0 {
		clear(dw)
		return
	}
	t := convTasks.get()
	t.start(p, convOpGradFilter, n, dw, x, dy, nil)
	if p.depthwise {
		t.op = convOpGradFilterDW
		ParallelFor(p.K, max(1, p.dwGrain()/n), t)
		t.finish()
		return
	}
	nch := min(n, Workers())
	if nch == 1 {
		gs, cs := convScratchesGet()
		p.gradFilterChunk(gs, cs, true, 0, n, dw, x, dy)
		gemmScratches.put(gs)
		convScratches.put(cs)
		t.finish()
		return
	}
	t.nch = nch
	t.part = gemmGrow(t.part, (nch-1)*len(dw))
	ParallelFor(nch, 1, t)
	for c := 1; c < nch; c++ {
		part := t.part[(c-1)*len(dw):][:len(dw)]
		for i, v := range part {
			dw[i] += v
		}
	}
	t.finish()
}

// Conv2DGradBias computes db ([K], overwritten), the gradient of the loss
// with respect to the bias: dy ([n, K, OutH, OutW]) summed over the batch and
// the spatial positions. Each channel's sum runs in a fixed order, so the
// result does not depend on GOMAXPROCS.
func Conv2DGradBias(p *Conv2DParams, n int, db, dy []float32) {
	p.check("Conv2DGradBias", n)
	db = convNeed("Conv2DGradBias", "db", db, p.K)
	dy = convNeed("Conv2DGradBias", "dy", dy, n*p.K*p.oh*p.ow)
	t := convTasks.get()
	t.start(p, convOpGradBias, n, db, dy, nil, nil)
	ParallelFor(p.K, max(1, 1<<15/max(1, n*p.oh*p.ow)), t)
	t.finish()
}

func (p *Conv2DParams) check(kernel string, n int) {
	if !p.ok {
		panic("runtime." + kernel + ": Conv2DParams not initialised (call Init and check its error)")
	}
	if n < 0 {
		panic("runtime." + kernel + ": negative batch size " + strconv.Itoa(n))
	}
}

// convNeed checks that buf holds want elements and returns exactly those, so
// the loops below can trust their bounds.
func convNeed(kernel, arg string, buf []float32, want int) []float32 {
	if len(buf) < want {
		panic("runtime." + kernel + ": " + arg + " has " + strconv.Itoa(len(buf)) +
			" elements, want at least " + strconv.Itoa(want))
	}
	return buf[:want]
}

// dwGrain is the number of depthwise planes worth handing to one worker.
func (p *Conv2DParams) dwGrain() int {
	return max(1, 1<<14/max(1, p.oh*p.ow*p.KH*p.KW))
}

// Operations of convTask.
const (
	convOpFwd = iota
	convOpFwdDW
	convOpGradIn
	convOpGradInDW
	convOpGradFilter
	convOpGradFilterDW
	convOpGradBias
)

// convTask carries one kernel call to the pool. Tasks come from a free list,
// not from the params, so that concurrent calls sharing a Conv2DParams do not
// race; part (GradFilter's per-chunk partial sums) stays with the task so it
// is allocated only once.
type convTask struct {
	p          *Conv2DParams
	op         int
	n          int
	a, b, c, d []float32 // the kernel's slices in argument order
	nch        int
	part       []float32
	wt         []float32 // GradInput's transposed filters (Conv2DParams.tconv)
	mul        []float32 // the forward pass's per-channel scale, or nil
	res        []float32 // the forward pass's residual, or nil
}

// convScratch is one worker's im2col buffer, depthwise accumulators and
// the im2col panel sources of its GEMMs (kept here so that passing them
// allocates nothing).
type convScratch struct {
	col   []float32
	pad   []float32 // a zero-bordered input plane (depthwise 3x3)
	wide  []float32 // a wide-form direct convolution's output, before compaction
	wx    []float32 // gradFilterWide's zero-bordered inputs
	wdy   []float32 // gradFilterWide's widened dy
	wacc  []float32 // gradFilterWide's lane sums
	acc   []float64
	colB  convColPanel
	colTB convColTPanel
	dirT  convDirectTPanel
	epi   convEpi
	wv    []float32 // fwdWino's transformed input
	wm    []float32 // fwdWino's products
	ones  []float32 // 1s, a missing scale for gemmConvEpiKernel
	negz  []float32 // -0s, a missing shift for it
}

// convEpi is one group's epilogue for the direct kernel: per output channel
// of the group a scale (mul, nil for none) and a shift or bias (add, nil
// for none), the group's residual planes (res, nil for none) and the
// activation's bounds.
type convEpi struct {
	mul, add, res []float32
	lo, hi        float32
}

var (
	convTasks     gemmFreeList[convTask]
	convScratches gemmFreeList[convScratch]
)

// convScratchesGet takes a worker's scratches for one Conv2D call. The
// filters a direct convolution packed into gs.a during an earlier call are
// forgotten: the same weight buffer may hold other values now (training
// updates it in place, fused SMH inference reuses it for every layer).
func convScratchesGet() (*gemmScratch, *convScratch) {
	gs := gemmScratches.get()
	gs.aFor = nil
	return gs, convScratches.get()
}

func (t *convTask) start(p *Conv2DParams, op, n int, a, b, c, d []float32) {
	t.p, t.op, t.n = p, op, n
	t.a, t.b, t.c, t.d = a, b, c, d
	t.nch = 0
}

// finish drops the references to the caller's tensors and returns the task.
func (t *convTask) finish() {
	t.p = nil
	t.a, t.b, t.c, t.d, t.mul, t.res = nil, nil, nil, nil, nil, nil
	convTasks.put(t)
}

// Run implements Task.
func (t *convTask) Run(lo, hi int) {
	p := t.p
	gs, cs := convScratchesGet()
	if t.op == convOpFwd && p.wino != nil && p.wino.ns > 1 {
		// Winograd on small planes: ns samples at a time.
		for it := lo; it < hi; it += p.wino.ns {
			p.fwdItems(gs, cs, it, min(p.wino.ns, hi-it), t.a, t.b, t.c, t.mul, t.d, t.res)
		}
		gemmScratches.put(gs)
		convScratches.put(cs)
		return
	}
	for it := lo; it < hi; it++ {
		switch t.op {
		case convOpFwd:
			p.fwdItem(gs, cs, false, it/p.Groups, it%p.Groups, t.a, t.b, t.c, t.mul, t.d, t.res)
		case convOpFwdDW:
			p.dwFwdPlane(cs, it/p.K, it%p.K, t.a, t.b, t.c, t.mul, t.d, t.res)
		case convOpGradIn:
			p.gradInItem(gs, cs, false, it/p.Groups, it%p.Groups, t.a, t.b, t.c, t.d)
		case convOpGradInDW:
			p.dwGradInPlane(cs, it/p.C, it%p.C, t.a, t.b, t.c)
		case convOpGradFilter:
			n0, n1 := it*t.n/t.nch, (it+1)*t.n/t.nch
			dst := t.a
			if it > 0 {
				dst = t.part[(it-1)*len(t.a):][:len(t.a)]
			}
			p.gradFilterChunk(gs, cs, false, n0, n1, dst, t.b, t.c)
		case convOpGradFilterDW:
			p.dwGradFilterChannel(cs, t.n, it, t.a, t.b, t.c)
		case convOpGradBias:
			p.gradBiasChannel(t.n, it, t.a, t.b)
		}
	}
	gemmScratches.put(gs)
	convScratches.put(cs)
}

// convGemm runs a unit-alpha Sgemm either on this goroutine (inside a pool
// task) or spread over the pool (when the caller had too few items to split).
func convGemm(gs *gemmScratch, par, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if par {
		sgemmAuto(gemmUse, transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gs.sgemm(gemmUse, transA, transB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// convGemmB is convGemm with op(B) from a panel source.
func convGemmB(gs *gemmScratch, par, transA bool, m, n, k int, a []float32, lda int, bp gemmPanelB, beta float32, c []float32, ldc int) {
	if par {
		sgemmAutoB(gemmUse, transA, m, n, k, 1, a, lda, bp, beta, c, ldc)
		return
	}
	gs.sgemmB(gemmUse, transA, m, n, k, 1, a, lda, bp, 0, beta, c, ldc)
}

// fwdItem computes group g of sample ni: y_g = W_g · im2col(x_g), then the
// per-channel scale (mul, when not nil), bias, residual (res, when not
// nil) and epilogue row by row while the output is still in cache. The
// im2col matrix goes straight into the GEMM's packed panels
// (convColPanel).
func (p *Conv2DParams) fwdItem(gs *gemmScratch, cs *convScratch, par bool, ni, g int, y, x, w, mul, b, res []float32) {
	hw, P := p.H*p.W, p.oh*p.ow
	xg := x[(ni*p.C+g*p.cg)*hw:][:p.cg*hw]
	yg := y[(ni*p.K+g*p.kg)*P:][:p.kg*P]
	wg := w[g*p.kg*p.crs:][:p.kg*p.crs]
	if p.pointwise {
		convGemm(gs, par, false, false, p.kg, P, p.crs, wg, p.crs, xg, P, 0, yg, P)
	} else if par || p.wino == nil || p.wino.ns > 1 || !p.fwdWino(gs, cs, xg, yg, wg, 1) {
		// The direct kernel can apply the group's epilogue as it stores.
		ep := &cs.epi
		*ep = convEpi{lo: p.Epilogue.lo(), hi: p.Epilogue.hi()}
		if mul != nil {
			ep.mul = mul[g*p.kg:][:p.kg]
		}
		if b != nil {
			ep.add = b[g*p.kg:][:p.kg]
		}
		if res != nil {
			ep.res = res[(ni*p.K+g*p.kg)*P:][:p.kg*P]
		}
		done, epiDone := p.fwdDirect(gs, cs, par, xg, yg, wg, ep)
		*ep = convEpi{}
		if epiDone {
			return
		}
		if !done {
			cs.colB = convColPanel{p: p, x: xg}
			convGemmB(gs, par, false, p.kg, P, p.crs, wg, p.crs, &cs.colB, 0, yg, P)
			cs.colB = convColPanel{}
		}
	}
	for k := 0; k < p.kg; k++ {
		p.channelEpilogue(yg[k*P:(k+1)*P], mul, b, convPlane(res, ni, p.K, g*p.kg+k, P), g*p.kg+k)
	}
}

// fwdItems is fwdItem for the ns samples from ni of an ungrouped
// convolution whose Winograd form takes them together (convWino.ns).
func (p *Conv2DParams) fwdItems(gs *gemmScratch, cs *convScratch, ni, ns int, y, x, w, mul, b, res []float32) {
	hw, P := p.H*p.W, p.oh*p.ow
	if !p.fwdWino(gs, cs, x[ni*p.C*hw:][:ns*p.C*hw], y[ni*p.K*P:][:ns*p.K*P], w, ns) {
		for s := 0; s < ns; s++ {
			p.fwdItem(gs, cs, false, ni+s, 0, y, x, w, mul, b, res)
		}
		return
	}
	for s := 0; s < ns; s++ {
		for k := 0; k < p.K; k++ {
			p.channelEpilogue(y[((ni+s)*p.K+k)*P:][:P], mul, b, convPlane(res, ni+s, p.K, k, P), k)
		}
	}
}

// convPlane returns plane k of sample ni of res ([n, K, P]), or nil when
// res is nil.
func convPlane(res []float32, ni, K, k, P int) []float32 {
	if res == nil {
		return nil
	}
	return res[(ni*K+k)*P:][:P]
}

// channelEpilogue applies output channel k's scale (mul, if not nil), its
// bias (b, if not nil), the residual plane rp (if not nil) and the
// activation to one of its planes.
func (p *Conv2DParams) channelEpilogue(yp, mul, b, rp []float32, k int) {
	if rp != nil {
		switch {
		case mul != nil:
			if !vecBnAffine(yp, yp, mul[k], b[k]) {
				bnAffineGo(yp, yp, mul[k], b[k])
			}
		case b != nil:
			Epilogue{}.applyBias(yp, b[k], true)
		}
		gemmAdd(yp, rp)
		p.Epilogue.Apply(yp)
		return
	}
	switch {
	case mul != nil:
		if !vecBnAffine(yp, yp, mul[k], b[k]) {
			bnAffineGo(yp, yp, mul[k], b[k])
		}
		p.Epilogue.Apply(yp)
	case b != nil:
		p.Epilogue.applyBias(yp, b[k], true)
	case p.Epilogue.Kind != EpilogueNone:
		p.Epilogue.Apply(yp)
	}
}

// gradInItem computes group g of sample ni: dx_g = col2im(W_gᵀ · dy_g), or
// with unit strides the forward pass of p.tconv, whose filters wt holds.
func (p *Conv2DParams) gradInItem(gs *gemmScratch, cs *convScratch, par bool, ni, g int, dx, dy, w, wt []float32) {
	hw, P := p.H*p.W, p.oh*p.ow
	dxg := dx[(ni*p.C+g*p.cg)*hw:][:p.cg*hw]
	dyg := dy[(ni*p.K+g*p.kg)*P:][:p.kg*P]
	wg := w[g*p.kg*p.crs:][:p.kg*p.crs]
	if tp := p.tconv.t; tp != nil { // built by Conv2DGradInput
		wtg := wt[g*p.cg*tp.crs:][:p.cg*tp.crs]
		if done, _ := tp.fwdDirect(gs, cs, par, dyg, dxg, wtg, nil); done {
			return
		}
		cs.colB = convColPanel{p: tp, x: dyg}
		convGemmB(gs, par, false, p.cg, hw, tp.crs, wtg, tp.crs, &cs.colB, 0, dxg, hw)
		cs.colB = convColPanel{}
		return
	}
	if p.pointwise {
		convGemm(gs, par, true, false, p.cg, P, p.kg, wg, p.crs, dyg, P, 0, dxg, P)
		return
	}
	cs.col = gemmGrow(cs.col, p.crs*P)
	convGemm(gs, par, true, false, p.crs, P, p.kg, wg, p.crs, dyg, P, 0, cs.col, P)
	clear(dxg)
	p.col2im(dxg, cs.col)
}

// gradFilterChunk writes into dst ([K, crs]) the filter gradient summed over
// samples n0..n1-1 in order: dW_g = Σ dy_g · im2col(x_g)ᵀ, with the im2col
// matrix built and transposed into the GEMM's packed panels a sliver at a
// time (convColTPanel).
func (p *Conv2DParams) gradFilterChunk(gs *gemmScratch, cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) {
	if p.gradFilterDirect(gs, cs, par, n0, n1, dst, x, dy) || p.gradFilterWide(cs, par, n0, n1, dst, x, dy) {
		return
	}
	hw, P := p.H*p.W, p.oh*p.ow
	for ni := n0; ni < n1; ni++ {
		beta := float32(1)
		if ni == n0 {
			beta = 0
		}
		for g := 0; g < p.Groups; g++ {
			xg := x[(ni*p.C+g*p.cg)*hw:][:p.cg*hw]
			dyg := dy[(ni*p.K+g*p.kg)*P:][:p.kg*P]
			dwg := dst[g*p.kg*p.crs:][:p.kg*p.crs]
			if p.pointwise {
				convGemm(gs, par, false, true, p.kg, p.crs, P, dyg, P, xg, P, beta, dwg, p.crs)
				continue
			}
			cs.colTB = convColTPanel{p: p, x: xg}
			convGemmB(gs, par, false, p.kg, p.crs, P, dyg, P, &cs.colTB, beta, dwg, p.crs)
			cs.colTB = convColTPanel{}
		}
	}
}

// gradBiasChannel sums channel k of dy over the batch, in sample order.
func (p *Conv2DParams) gradBiasChannel(n, k int, db, dy []float32) {
	P := p.oh * p.ow
	var s float64
	for ni := 0; ni < n; ni++ {
		s += convSum(dy[(ni*p.K+k)*P:][:P])
	}
	db[k] = float32(s)
}

// convSum adds x with four float32 accumulators (for speed) and returns the
// total in float64, so a sum over a whole batch loses little precision.
func convSum(x []float32) float64 {
	var s0, s1, s2, s3 float32
	for len(x) >= 4 {
		q := (*[4]float32)(x)
		s0 += q[0]
		s1 += q[1]
		s2 += q[2]
		s3 += q[3]
		x = x[4:]
	}
	for _, v := range x {
		s0 += v
	}
	return float64(s0) + float64(s1) + float64(s2) + float64(s3)
}

// convSpan returns the range [q0, q1) of output positions q < out whose input
// coordinate q*s + off lies inside [0, size); positions outside it read
// padding.
func convSpan(off, s, size, out int) (q0, q1 int) {
	if off < 0 {
		q0 = (-off + s - 1) / s
	}
	if last := size - 1 - off; last >= 0 {
		q1 = last/s + 1
	}
	q1 = min(q1, out)
	q0 = min(q0, q1)
	return q0, q1
}

// convColPanel is the im2col matrix of one group of one sample, x ([cg,
// H, W]), as the B operand of the forward GEMM: row (c, kh, kw) holds the
// input pixel that kernel tap sees at each output position, or 0 in the
// padding. It goes into the GEMM's packed panels a row at a time through a
// row-sized buffer that stays in L1, so the whole matrix (crs x OH*OW) is
// never stored and read back.
type convColPanel struct {
	p *Conv2DParams
	x []float32
}

func (b *convColPanel) packB(g *gemmImpl, s *gemmScratch, pc, jc, kc, kcp, nc int) {
	w := g.nr
	if b.p.unitSame {
		for r := pc; r < pc+kc; r++ {
			b.p.packTapSame(g, s.b[(r-pc)*w:], b.x, r, jc, nc, kcp)
		}
		return
	}
	s.tmp = gemmGrow(s.tmp, nc)
	for r := pc; r < pc+kc; r++ {
		b.p.im2colSeg(s.tmp, b.x, r, jc)
		g.packCopy(s.b[(r-pc)*w:], s.tmp, nc, w, nc, 1, kcp, 1)
	}
}

// packTapSame packs entries jc..jc+nc-1 of im2col row r of x (unitSame
// geometry) straight from the input plane: entry jc+u goes to dst[u/w*w*kcp
// + u%w] for the GEMM's sliver width w, and the last sliver's entries past
// nc are zeroed. Compared with building the row in a buffer and packing
// that (im2colSeg, then packCopy), it moves every element once instead of
// twice: with the 16 to 64 output channels of CIFAR-style networks, the
// packing costs about as much as the multiply-adds.
func (p *Conv2DParams) packTapSame(g *gemmImpl, dst, x []float32, r, jc, nc, kcp int) {
	c, t := p.tap(r)
	w := g.nr
	ss := w * kcp
	end := (nc + w - 1) / w * w
	ua := min(max(int(t.qa)-jc, 0), nc)
	ub := max(min(int(t.qb)-jc, nc), ua)
	if ua == ub {
		packZero(dst, w, ss, 0, end)
		return
	}
	// xs[u-ua] is the input pixel of entry jc+u, for u in [ua, ub).
	xs := x[c*p.H*p.W+jc+int(t.shift)+ua:]
	packZero(dst, w, ss, 0, ua)
	u := ua
	if rem := u % w; rem != 0 {
		e := min(ub, u-rem+w)
		copy(dst[u/w*ss+rem:][:e-u], xs[u-ua:e-ua])
		u = e
	}
	if full := (ub - u) / w; full > 0 {
		g.packCopy(dst[u/w*ss:], xs[u-ua:u-ua+full*w], full*w, w, full*w, 1, kcp, 1)
		u += full * w
	}
	if u < ub {
		copy(dst[u/w*ss:][:ub-u], xs[u-ua:ub-ua])
	}
	packZero(dst, w, ss, ub, end)
	// The padding columns inside [ua, ub) got the neighbouring row's
	// pixels: one strided pass per padding column.
	OW := p.ow
	ow0, ow1 := int(t.ow0), int(t.ow1)
	if ow0 == 0 && ow1 == OW {
		return
	}
	if w&(w-1) != 0 {
		panic("runtime: packTapSame needs a power-of-two sliver width")
	}
	// Entry u sits at dst[u>>sh*ss + u&(w-1)]: every implementation's
	// width is a power of two, so no divisions.
	zeroPadColumns(dst, bits.TrailingZeros(uint(w)), w-1, ss, jc, jc+ua, jc+ub, ow0, ow1, OW)
}

// zeroPadColumns zeroes the entries q in [qa, qb) whose output column
// q%OW lies outside [ow0, ow1) (a tap's padding columns, which a shifted
// copy of the input filled with the neighbouring row's pixels), one strided
// pass per column. Entry q sits at dst[u>>sh*ss + u&mask] with u = q-q0.
func zeroPadColumns(dst []float32, sh, mask, ss, q0, qa, qb, ow0, ow1, OW int) {
	row := qa - qa%OW
	for j := 0; j < OW; j++ {
		if j == ow0 {
			j = ow1
			if j == OW {
				break
			}
		}
		q := row + j
		if q < qa {
			q += OW
		}
		for ; q < qb; q += OW {
			u := q - q0
			dst[u>>sh*ss+u&mask] = 0
		}
	}
}

// packZero zeroes entries u0..u1-1 of a packed row: entry u is at
// dst[u/w*ss + u%w].
func packZero(dst []float32, w, ss, u0, u1 int) {
	for u0 < u1 {
		e := min(u1, u0-u0%w+w)
		clear(dst[u0/w*ss+u0%w:][:e-u0])
		u0 = e
	}
}

// convColTPanel is the transposed im2col matrix, the B operand of the
// filter-gradient GEMM (k runs over output positions, n over (c, kh, kw)).
// A sliver's k step takes one element from each of its nr im2col rows, so
// the rows are built contiguously in s.tmp (a sliver's worth, which stays
// in cache) and transposed into place by the implementation's gather
// packer.
type convColTPanel struct {
	p *Conv2DParams
	x []float32
}

func (b *convColTPanel) packB(g *gemmImpl, s *gemmScratch, pc, jc, kc, kcp, nc int) {
	w := g.nr
	for j0 := 0; j0 < nc; j0 += w {
		rows := min(w, nc-j0)
		s.tmp = gemmGrow(s.tmp, rows*kc)
		for i := 0; i < rows; i++ {
			b.p.im2colSeg(s.tmp[i*kc:][:kc], b.x, jc+j0+i, pc)
		}
		g.packGather(s.b[j0*kcp:], s.tmp, kc, w, rows, kc, kcp, 1)
	}
}

// im2colSeg writes entries q0..q0+len(d)-1 of row r = (c, kh, kw) of the
// im2col matrix of x (one group of one sample) into d: entry q is the input
// pixel tap (kh, kw) sees at output position q, or 0 in the padding.
func (p *Conv2DParams) im2colSeg(d, x []float32, r, q0 int) {
	c, t := p.tap(r)
	H, W, OW := p.H, p.W, p.ow
	sh, sw := p.StrideH, p.StrideW
	xc := x[c*H*W:][:H*W]
	offH, offW := int(t.offH), int(t.offW)
	oh0, oh1, ow0, ow1 := int(t.oh0), int(t.oh1), int(t.ow0), int(t.ow1)
	q1 := q0 + len(d)
	if p.unitSame {
		// Position q reads x[q + shift] across row boundaries, so the
		// valid span is one copy. The entries it gets wrong, the padding
		// columns at the ends of each row, are zeroed after it, one
		// strided pass per column; the rows above and below the input are
		// cleared.
		qa, qb := max(q0, int(t.qa)), min(q1, int(t.qb))
		if qa >= qb {
			clear(d)
			return
		}
		clear(d[:qa-q0])
		copy(d[qa-q0:qb-q0], xc[qa+int(t.shift):])
		clear(d[qb-q0:])
		if ow0 > 0 || ow1 < OW {
			// d is a single "sliver" holding every entry: u>>63 is 0.
			zeroPadColumns(d, 63, -1, 0, q0, qa, qb, ow0, ow1, OW)
		}
		return
	}
	if sh == 1 && sw == 1 && oh0 == 0 && oh1 == p.oh && ow0 == 0 && ow1 == OW {
		// Unit strides and a tap that stays inside the input at every output
		// (any tap of an unpadded convolution): each output row's run is
		// one copy, the next one W further on.
		oh, ow := q0/OW, q0%OW
		src := (oh+offH)*W + ow + offW
		for q := q0; q < q1; {
			seg := min(OW-ow, q1-q)
			copy(d[q-q0:q-q0+seg], xc[src:src+seg])
			q += seg
			src += seg + W - OW
			ow = 0
		}
		return
	}
	// General geometry: output row by output row. Rows are short (OW
	// floats), so the padding is zeroed by plain loops rather than clear,
	// whose call costs more than the few elements it stores.
	oh, ow := q0/OW, q0%OW
	for q := q0; q < q1; oh, ow = oh+1, 0 {
		seg := min(OW-ow, q1-q)
		dst := d[q-q0:][:seg]
		lo, hi := max(ow, ow0), min(ow+seg, ow1)
		if oh < oh0 || oh >= oh1 || lo >= hi {
			clear(dst)
			q += seg
			continue
		}
		for i := range dst[:lo-ow] {
			dst[i] = 0
		}
		// src runs on to the end of the plane: gemmGather2 reads whole
		// vectors, one element past the last it keeps.
		src := xc[(oh*sh+offH)*W+lo*sw+offW:]
		mid := dst[lo-ow : hi-ow]
		switch sw {
		case 1:
			copy(mid, src)
		case 2:
			gemmGather2(mid, src)
		default:
			for i := range mid {
				mid[i] = src[i*sw]
			}
		}
		for i := range dst[hi-ow:] {
			dst[hi-ow+i] = 0
		}
		q += seg
	}
}

// col2im is the adjoint of im2col: it adds every entry of col ([cg*KH*KW,
// OH*OW]) into the input pixel it was read from; padding entries are dropped.
func (p *Conv2DParams) col2im(dx, col []float32) {
	H, W, OH, OW := p.H, p.W, p.oh, p.ow
	sh, sw := p.StrideH, p.StrideW
	P := OH * OW
	r := 0
	for c := 0; c < p.cg; c++ {
		dxc := dx[c*H*W : (c+1)*H*W]
		for kh := 0; kh < p.KH; kh++ {
			offH := kh*p.DilationH - p.PadTop
			oh0, oh1 := convSpan(offH, sh, H, OH)
			for kw := 0; kw < p.KW; kw++ {
				offW := kw*p.DilationW - p.PadLeft
				ow0, ow1 := convSpan(offW, sw, W, OW)
				row := col[r*P : (r+1)*P]
				r++
				if ow0 == ow1 || oh0 == oh1 {
					continue
				}
				if sh == 1 && sw == 1 && W == OW {
					// "Same" geometry, as in im2colSeg: entry q goes to
					// dxc[q + offH*W + offW] across row boundaries, so the
					// valid span is one vector add once the entries that
					// belong to the padding columns (which would land on
					// the neighbouring row) are zeroed in col, our scratch.
					qa, qb := oh0*OW+ow0, (oh1-1)*OW+ow1
					if ow0 > 0 || ow1 < OW {
						// A column or two per row: loops, not clear calls.
						for rowStart := oh0 * OW; rowStart < qb; rowStart += OW {
							for q := max(qa, rowStart); q < min(qb, rowStart+ow0); q++ {
								row[q] = 0
							}
							for q := max(qa, rowStart+ow1); q < min(qb, rowStart+OW); q++ {
								row[q] = 0
							}
						}
					}
					gemmAdd(dxc[qa+offH*W+offW:][:qb-qa], row[qa:qb])
					continue
				}
				for oh := oh0; oh < oh1; oh++ {
					src := row[oh*OW : (oh+1)*OW]
					dst := dxc[(oh*sh+offH)*W : (oh*sh+offH+1)*W]
					if sw == 1 {
						gemmAdd(dst[ow0+offW:][:ow1-ow0], src[ow0:ow1])
						continue
					}
					for q := ow0; q < ow1; q++ {
						dst[q*sw+offW] += src[q]
					}
				}
			}
		}
	}
}
