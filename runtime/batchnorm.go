package runtime

import (
	"fmt"
	"math"
)

// BatchNormParams describes batch normalisation over tensors [N, C, spatial...]
// with statistics per channel.
//
// Momentum follows PyTorch, not ONNX: after a training step
//
//	running = (1-Momentum)*running + Momentum*batchStatistic
//
// so PyTorch's default is 0.1. ONNX's momentum attribute weights the running
// value instead (running = m*running + (1-m)*batch, default 0.9); convert it
// with MomentumFromONNX.
type BatchNormParams struct {
	C       int     // channels
	Spatial int     // product of the dimensions after C: H*W for NCHW, 1 for [N, C]
	Epsilon float32 // added to the variance (ONNX and PyTorch default 1e-5)
	// Momentum is the weight of the batch statistic in the running update,
	// in [0, 1] (PyTorch convention, see above).
	Momentum float32

	ok       bool
	mul, add []float32 // per-channel scale and shift of the current step
	coef     []float32 // backward: per-channel dy, (x-mean) and constant coefficients
	t        nnBNTask
}

// MomentumFromONNX converts ONNX BatchNormalization's momentum attribute
// (weight of the running value) into BatchNormParams.Momentum (weight of the
// batch statistic).
func MomentumFromONNX(m float32) float32 { return 1 - m }

// Init validates the geometry and allocates the per-channel scratch.
func (p *BatchNormParams) Init() error {
	p.ok = false
	if p.C < 1 || p.Spatial < 1 {
		return fmt.Errorf("batchnorm: C %d, Spatial %d: want both >= 1", p.C, p.Spatial)
	}
	if !(p.Epsilon >= 0) || math.IsInf(float64(p.Epsilon), 0) {
		return fmt.Errorf("batchnorm: epsilon %v: want finite and >= 0", p.Epsilon)
	}
	if !(p.Momentum >= 0 && p.Momentum <= 1) {
		return fmt.Errorf("batchnorm: momentum %v: want in [0, 1] (PyTorch convention; MomentumFromONNX converts)", p.Momentum)
	}
	p.mul = make([]float32, p.C)
	p.add = make([]float32, p.C)
	p.coef = make([]float32, 3*p.C)
	p.t.p = p
	p.ok = true
	return nil
}

// Phases of nnBNTask.
const (
	nnBNStats    = iota // per channel: batch mean and variance, running update, mul/add
	nnBNAffine          // per (sample, channel) row: y = x*mul + add
	nnBNGradSums        // per channel: sums of dy and dy*xhat, dx coefficients
	nnBNGradX           // per row: dx from the coefficients
)

type nnBNTask struct {
	p     *BatchNormParams
	phase int
	n     int

	y, x, dy, dx           []float32
	scale, bias            []float32
	mean, invStd           []float32
	runMean, runVar        []float32
	dscale, dbias          []float32
	mul, add               []float32
	momentum, eps, unbiasK float64
}

// Run implements Task.
func (t *nnBNTask) Run(lo, hi int) {
	C, S := t.p.C, t.p.Spatial
	switch t.phase {
	case nnBNStats:
		for c := lo; c < hi; c++ {
			t.stats(c)
		}
	case nnBNAffine:
		for r := lo; r < hi; r++ {
			c := r % C
			m, a := t.mul[c], t.add[c]
			x := t.x[r*S : (r+1)*S]
			y := t.y[r*S : (r+1)*S]
			if !vecBnAffine(y, x, m, a) {
				bnAffineGo(y, x, m, a)
			}
		}
	case nnBNGradSums:
		for c := lo; c < hi; c++ {
			t.gradSums(c)
		}
	case nnBNGradX:
		coef := t.p.coef
		for r := lo; r < hi; r++ {
			c := r % C
			ka, kb, kd, m := coef[3*c], coef[3*c+1], coef[3*c+2], t.mean[c]
			x := t.x[r*S : (r+1)*S]
			dy := t.dy[r*S : (r+1)*S]
			dx := t.dx[r*S : (r+1)*S]
			if !vecBnGradX(dx, dy, x, ka, kb, kd, m) {
				bnGradXGo(dx, dy, x, ka, kb, kd, m)
			}
		}
	}
}

// bnGatherBelow is the plane size below which a channel's planes are
// gathered into one row before its sums: the lane kernels take rows of 8
// or more, and a call per 2x2 plane costs more than the copy.
const bnGatherBelow = 8

// bnScratch holds a channel's gathered planes (nnBNTask.rows).
type bnScratch struct{ x, dy []float32 }

var bnScratches gemmFreeList[bnScratch]

// rows returns channel c of v ([n, C, Spatial]) as rows rows of w floats,
// stride apart from the start of the returned slice: the channel's planes
// in place, or, when they are shorter than bnGatherBelow, one row of
// all of them gathered into *buf. The sums' lanes follow the rows, so
// both forms give the same bits on every platform, though not the same
// as each other.
func (t *nnBNTask) rows(buf *[]float32, v []float32, c int) (x []float32, rows, stride, w int) {
	C, S := t.p.C, t.p.Spatial
	if S >= bnGatherBelow || t.n == 1 {
		return v[c*S:], t.n, C * S, S
	}
	*buf = gemmGrow(*buf, t.n*S)
	g := *buf
	for b := 0; b < t.n; b++ {
		copy(g[b*S:][:S], v[(b*C+c)*S:][:S])
	}
	return g, 1, 0, t.n * S
}

// stats computes channel c's batch statistics in two float64 passes (mean,
// then squared deviations), which stays accurate when |mean| >> std. The
// sums run in eight lanes (bnSum) in a fixed order.
func (t *nnBNTask) stats(c int) {
	S := t.p.Spatial
	sc := bnScratches.get()
	x, rows, stride, w := t.rows(&sc.x, t.x, c)
	var acc [8]float64
	for b := 0; b < rows; b++ {
		bnSum(x[b*stride:][:w], &acc)
	}
	M := float64(t.n * S)
	mean := bnReduce(&acc) / M
	acc = [8]float64{}
	for b := 0; b < rows; b++ {
		bnSqDev(x[b*stride:][:w], mean, &acc)
	}
	bnScratches.put(sc)
	v := bnReduce(&acc) / M
	inv := 1 / math.Sqrt(v+t.eps)
	t.mean[c] = float32(mean)
	t.invStd[c] = float32(inv)
	if t.runMean != nil {
		t.runMean[c] = float32((1-t.momentum)*float64(t.runMean[c]) + t.momentum*mean)
	}
	if t.runVar != nil {
		t.runVar[c] = float32((1-t.momentum)*float64(t.runVar[c]) + t.momentum*v*t.unbiasK)
	}
	m := float64(t.scale[c]) * inv
	t.mul[c] = float32(m)
	t.add[c] = float32(float64(t.bias[c]) - mean*m)
}

// gradSums computes channel c's sums of dy and dy*xhat (in eight lanes,
// bnGrad) and from them the coefficients of dx.
func (t *nnBNTask) gradSums(c int) {
	S := t.p.Spatial
	mean, inv := float64(t.mean[c]), float64(t.invStd[c])
	sc := bnScratches.get()
	x, rows, stride, w := t.rows(&sc.x, t.x, c)
	dy, _, _, _ := t.rows(&sc.dy, t.dy, c)
	var acc [16]float64
	for b := 0; b < rows; b++ {
		bnGrad(dy[b*stride:][:w], x[b*stride:][:w], mean, &acc)
	}
	bnScratches.put(sc)
	sdy := bnReduce((*[8]float64)(acc[:8]))
	sdyx := bnReduce((*[8]float64)(acc[8:]))
	sdyx *= inv // sum(dy * xhat)
	if t.dbias != nil {
		t.dbias[c] = float32(sdy)
	}
	if t.dscale != nil {
		t.dscale[c] = float32(sdyx)
	}
	if t.dx != nil {
		// dx = scale*inv*(dy - sum(dy)/M - xhat*sum(dy*xhat)/M)
		M := float64(t.n * S)
		a := float64(t.scale[c]) * inv
		coef := t.p.coef
		coef[3*c] = float32(a)
		coef[3*c+1] = float32(-a * inv * sdyx / M)
		coef[3*c+2] = float32(-a * sdy / M)
	}
}

// The BatchNorm sums run in eight float64 lanes: element i of a row with
// i < len&^7 goes to lane i%8, the row's last len%8 elements to lane 0,
// and bnReduce adds the lanes in a fixed order. The vector kernels
// (vecBnSum and friends) do the same operations in the same order, so every
// path gives the same bits, and the sums' dependency chains are eight
// times shorter than one running total's. The explicit conversions keep
// compilers that fuse multiply-adds from doing so.

// bnSum adds x into the lanes.
func bnSum(x []float32, acc *[8]float64) {
	n8 := len(x) &^ 7
	if !vecBnSum(x[:n8], acc) {
		bnSumGo(x[:n8], acc)
	}
	for _, v := range x[n8:] {
		acc[0] += float64(v)
	}
}

// bnSqDev adds (x-mean)² into the lanes.
func bnSqDev(x []float32, mean float64, acc *[8]float64) {
	n8 := len(x) &^ 7
	if !vecBnSqDev(x[:n8], mean, acc) {
		bnSqDevGo(x[:n8], mean, acc)
	}
	for _, v := range x[n8:] {
		d := float64(v) - mean
		acc[0] += float64(d * d)
	}
}

// bnGrad adds dy into the lanes acc[0:8] and dy*(x-mean) into acc[8:16].
func bnGrad(dy, x []float32, mean float64, acc *[16]float64) {
	n8 := len(dy) &^ 7
	if !vecBnGrad(dy[:n8], x[:n8], mean, acc) {
		bnGradGo(dy[:n8], x[:n8], mean, acc)
	}
	for i := n8; i < len(dy); i++ {
		g := float64(dy[i])
		acc[0] += g
		acc[8] += float64(g * (float64(x[i]) - mean))
	}
}

// bnSumGo, bnSqDevGo and bnGradGo are the lane loops of bnSum, bnSqDev
// and bnGrad over a multiple of 8 elements.
func bnSumGo(x []float32, acc *[8]float64) {
	for i, v := range x {
		acc[i&7] += float64(v)
	}
}

func bnSqDevGo(x []float32, mean float64, acc *[8]float64) {
	for i, v := range x {
		d := float64(v) - mean
		acc[i&7] += float64(d * d)
	}
}

func bnGradGo(dy, x []float32, mean float64, acc *[16]float64) {
	for i, g := range dy {
		acc[i&7] += float64(g)
		acc[8+(i&7)] += float64(float64(g) * (float64(x[i]) - mean))
	}
}

// bnAffineGo sets y = x*m + a.
func bnAffineGo(y, x []float32, m, a float32) {
	for i, v := range x[:len(y)] {
		y[i] = float32(v*m) + a
	}
}

// bnGradXGo sets dx = ka*dy + kb*(x-m) + kd.
func bnGradXGo(dx, dy, x []float32, ka, kb, kd, m float32) {
	for i := range dx {
		dx[i] = float32(float32(ka*dy[i])+float32(kb*(x[i]-m))) + kd
	}
}

// bnReduce adds the eight lanes.
func bnReduce(acc *[8]float64) float64 {
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

// nnSum64 sums in float64 with four accumulators, a fixed order that keeps
// the dependency chain short.
func nnSum64(x []float32) float64 {
	var a0, a1, a2, a3 float64
	k := 0
	for ; k+4 <= len(x); k += 4 {
		a0 += float64(x[k])
		a1 += float64(x[k+1])
		a2 += float64(x[k+2])
		a3 += float64(x[k+3])
	}
	for ; k < len(x); k++ {
		a0 += float64(x[k])
	}
	return (a0 + a1) + (a2 + a3)
}

func (p *BatchNormParams) check(kernel string, n int) int {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	return n * p.C * p.Spatial
}

func (p *BatchNormParams) runRows(n int) {
	rows := n * p.C
	ParallelFor(rows, max(1, (1<<15)/p.Spatial), &p.t)
}

func (p *BatchNormParams) runChannels(n int) {
	ParallelFor(p.C, max(1, (1<<15)/max(1, n*p.Spatial)), &p.t)
}

// BatchNormInference writes y = scale*(x-mean)/sqrt(variance+Epsilon) + bias
// with the given (running) statistics.
func BatchNormInference(p *BatchNormParams, n int, y, x, scale, bias, mean, variance []float32) {
	const k = "BatchNormInference"
	size := p.check(k, n)
	BatchNormFold(p, p.mul, p.add, scale, bias, mean, variance)
	t := &p.t
	t.phase = nnBNAffine
	t.y = nnNeed(k, "y", y, size)
	t.x = nnNeed(k, "x", x, size)
	t.mul, t.add = p.mul, p.add
	p.runRows(n)
}

// BatchNormFold folds inference batch normalisation into a per-channel
// affine map y = x*mul + add (mul = scale/sqrt(variance+Epsilon),
// add = bias - mean*mul, computed in float64), for ChannelAffine or for
// folding into a preceding convolution.
func BatchNormFold(p *BatchNormParams, mul, add, scale, bias, mean, variance []float32) {
	const k = "BatchNormFold"
	if !p.ok {
		nnPanicInit(k)
	}
	C := p.C
	mul, add = nnNeed(k, "mul", mul, C), nnNeed(k, "add", add, C)
	scale, bias = nnNeed(k, "scale", scale, C), nnNeed(k, "bias", bias, C)
	mean, variance = nnNeed(k, "mean", mean, C), nnNeed(k, "variance", variance, C)
	bnFold(mul, add, scale, bias, mean, variance, nil, p.Epsilon)
}

// bnFold is BatchNormFold's arithmetic on checked slices, with the bias
// convBias (nil for none) of a preceding convolution folded into add too:
// mul = scale/sqrt(variance+eps), add = bias - (mean-convBias)*mul, in
// float64.
func bnFold(mul, add, scale, bias, mean, variance, convBias []float32, eps float32) {
	for c := range mul {
		m := float64(scale[c]) / math.Sqrt(float64(variance[c])+float64(eps))
		mu := float64(mean[c])
		if convBias != nil {
			mu -= float64(convBias[c])
		}
		mul[c] = float32(m)
		add[c] = float32(float64(bias[c]) - mu*m)
	}
}

// BatchNormTraining normalises x with the statistics of the batch (mean and
// biased variance over N and the spatial dimensions, per channel) and writes
// y; savedMean and savedInvStd (1/sqrt(var+Epsilon)) receive what
// BatchNormBackward needs. runningMean and runningVar are updated in place
// with the Momentum convention of BatchNormParams, the variance term being
// the unbiased batch variance (times M/(M-1), M = n*Spatial) as in PyTorch;
// when M is 1 the unbiased variance is undefined and the biased one (0) is
// used. Either running buffer may be nil to skip its update.
func BatchNormTraining(p *BatchNormParams, n int, y, savedMean, savedInvStd, runningMean, runningVar, x, scale, bias []float32) {
	const k = "BatchNormTraining"
	size := p.check(k, n)
	if n == 0 {
		return
	}
	C := p.C
	t := &p.t
	t.n = n
	t.y = nnNeed(k, "y", y, size)
	t.x = nnNeed(k, "x", x, size)
	t.mean = nnNeed(k, "savedMean", savedMean, C)
	t.invStd = nnNeed(k, "savedInvStd", savedInvStd, C)
	t.runMean, t.runVar = nil, nil
	if runningMean != nil {
		t.runMean = nnNeed(k, "runningMean", runningMean, C)
	}
	if runningVar != nil {
		t.runVar = nnNeed(k, "runningVar", runningVar, C)
	}
	t.scale = nnNeed(k, "scale", scale, C)
	t.bias = nnNeed(k, "bias", bias, C)
	t.mul, t.add = p.mul, p.add
	t.momentum, t.eps = float64(p.Momentum), float64(p.Epsilon)
	M := n * p.Spatial
	t.unbiasK = 1
	if M > 1 {
		t.unbiasK = float64(M) / float64(M-1)
	}
	t.phase = nnBNStats
	p.runChannels(n)
	t.phase = nnBNAffine
	p.runRows(n)
}

// BatchNormBackward writes, for a BatchNormTraining step, dx, dscale = sum of
// dy*xhat and dbias = sum of dy per channel (xhat = (x-mean)*invStd), using
// the savedMean and savedInvStd of the forward call. Any of dx, dscale and
// dbias may be nil to skip it.
func BatchNormBackward(p *BatchNormParams, n int, dx, dscale, dbias, dy, x, scale, savedMean, savedInvStd []float32) {
	const k = "BatchNormBackward"
	size := p.check(k, n)
	C := p.C
	t := &p.t
	t.n = n
	t.dx, t.dscale, t.dbias = nil, nil, nil
	if dx != nil {
		t.dx = nnNeed(k, "dx", dx, size)
	}
	if dscale != nil {
		t.dscale = nnNeed(k, "dscale", dscale, C)
	}
	if dbias != nil {
		t.dbias = nnNeed(k, "dbias", dbias, C)
	}
	t.dy = nnNeed(k, "dy", dy, size)
	t.x = nnNeed(k, "x", x, size)
	t.scale = nnNeed(k, "scale", scale, C)
	t.mean = nnNeed(k, "savedMean", savedMean, C)
	t.invStd = nnNeed(k, "savedInvStd", savedInvStd, C)
	if n == 0 {
		// Sums over an empty batch are zero.
		for c := range C {
			if t.dscale != nil {
				t.dscale[c] = 0
			}
			if t.dbias != nil {
				t.dbias[c] = 0
			}
		}
		return
	}
	t.phase = nnBNGradSums
	p.runChannels(n)
	if t.dx != nil {
		t.phase = nnBNGradX
		p.runRows(n)
	}
}

// ChannelParams describes a tensor [N, C, spatial...] for per-channel
// kernels (ChannelAffine, GlobalAveragePool).
type ChannelParams struct {
	C       int // channels
	Spatial int // product of the dimensions after C (H*W for NCHW)

	ok bool
	t  nnChanTask
}

// Init validates the geometry.
func (p *ChannelParams) Init() error {
	p.ok = false
	if p.C < 1 || p.Spatial < 1 {
		return fmt.Errorf("channel params: C %d, Spatial %d: want both >= 1", p.C, p.Spatial)
	}
	p.t.p = p
	p.ok = true
	return nil
}

func (p *ChannelParams) check(kernel string, n int) int {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	return n * p.C * p.Spatial
}

// Phases of nnChanTask.
const (
	nnChAffine = iota
	nnChGAP
	nnChGAPBack
)

type nnChanTask struct {
	p        *ChannelParams
	phase    int
	y, x     []float32
	mul, add []float32
}

// Run implements Task over (sample, channel) rows.
func (t *nnChanTask) Run(lo, hi int) {
	C, S := t.p.C, t.p.Spatial
	switch t.phase {
	case nnChAffine:
		for r := lo; r < hi; r++ {
			m, a := t.mul[r%C], t.add[r%C]
			x, y := t.x[r*S:(r+1)*S], t.y[r*S:(r+1)*S]
			for i, v := range x {
				y[i] = v*m + a
			}
		}
	case nnChGAP:
		inv := 1 / float64(S)
		for r := lo; r < hi; r++ {
			t.y[r] = float32(nnSum64(t.x[r*S:(r+1)*S]) * inv)
		}
	case nnChGAPBack:
		// x holds dy (one value per row), y holds dx.
		inv := 1 / float32(S)
		for r := lo; r < hi; r++ {
			g := t.x[r] * inv
			dx := t.y[r*S : (r+1)*S]
			for i := range dx {
				dx[i] = g
			}
		}
	}
}

// ChannelAffine writes y = x*mul[c] + add[c] for every element of channel c:
// inference batch normalisation after BatchNormFold.
func ChannelAffine(p *ChannelParams, n int, y, x, mul, add []float32) {
	const k = "ChannelAffine"
	size := p.check(k, n)
	t := &p.t
	t.phase = nnChAffine
	t.y, t.x = nnNeed(k, "y", y, size), nnNeed(k, "x", x, size)
	t.mul, t.add = nnNeed(k, "mul", mul, p.C), nnNeed(k, "add", add, p.C)
	ParallelFor(n*p.C, max(1, (1<<15)/p.Spatial), t)
}

// BatchNormUpdateRunning applies a training step's batch statistics to the
// running mean and variance, as BatchNormTraining does when given running
// buffers: running = (1-Momentum)·running + Momentum·batch, with the
// unbiased batch variance (times M/(M-1), M = n·Spatial). It takes the
// variance back from savedInvStd, so a step can run BatchNormTraining
// without running buffers and commit the statistics only once it knows the
// step succeeded.
func BatchNormUpdateRunning(p *BatchNormParams, n int, runningMean, runningVar, savedMean, savedInvStd []float32) {
	const k = "BatchNormUpdateRunning"
	p.check(k, n)
	C := p.C
	rm, rv := nnNeed(k, "runningMean", runningMean, C), nnNeed(k, "runningVar", runningVar, C)
	sm, si := nnNeed(k, "savedMean", savedMean, C), nnNeed(k, "savedInvStd", savedInvStd, C)
	M := n * p.Spatial
	unbias := 1.0
	if M > 1 {
		unbias = float64(M) / float64(M-1)
	}
	mom := float64(p.Momentum)
	for c := 0; c < C; c++ {
		inv := float64(si[c])
		v := max(1/(inv*inv)-float64(p.Epsilon), 0)
		rm[c] = float32((1-mom)*float64(rm[c]) + mom*float64(sm[c]))
		rv[c] = float32((1-mom)*float64(rv[c]) + mom*v*unbias)
	}
}
