package runtime

import (
	"fmt"
	"math"
	"sync"
)

// Activations work on flat buffers: the element count is len(y) (len(dx) for
// backward kernels) and the inputs must be at least that long. Each backward
// kernel reads whichever of x or y gives the exact derivative with the least
// work, and says which; at non-differentiable points they follow PyTorch.

// Activation kernels of nnFlatTask.
const (
	nnActRelu = iota
	nnActReluB
	nnActClip
	nnActClipB
	nnActSigmoid
	nnActSigmoidB
	nnActHardSigmoid
	nnActHardSigmoidB
	nnActHardSwish
	nnActHardSwishB
	nnActSiLU
	nnActSiLUB
)

// nnFlatTask applies one activation kernel to a range of a flat buffer:
// y = f(x) forward, y = dx from (x = dy, z = x or y) backward.
type nnFlatTask struct {
	kind    int
	y, x, z []float32
	a, b    float32
}

// nnFlatTasks recycles tasks for kernels without a params struct to hold
// one, so that parallel calls allocate nothing once warm.
var nnFlatTasks struct {
	mu   sync.Mutex
	free []*nnFlatTask
}

// nnRunFlat runs kind over len(y) elements; cheap kernels need larger chunks
// before splitting them over workers pays.
func nnRunFlat(kind int, y, x, z []float32, a, b float32, grain int) {
	if len(y) <= grain {
		t := nnFlatTask{kind: kind, y: y, x: x, z: z, a: a, b: b}
		t.Run(0, len(y))
		return
	}
	nnFlatTasks.mu.Lock()
	var t *nnFlatTask
	if k := len(nnFlatTasks.free); k > 0 {
		t = nnFlatTasks.free[k-1]
		nnFlatTasks.free = nnFlatTasks.free[:k-1]
	}
	nnFlatTasks.mu.Unlock()
	if t == nil {
		t = new(nnFlatTask)
	}
	*t = nnFlatTask{kind: kind, y: y, x: x, z: z, a: a, b: b}
	ParallelFor(len(y), grain, t)
	*t = nnFlatTask{} // drop references to the caller's buffers
	nnFlatTasks.mu.Lock()
	nnFlatTasks.free = append(nnFlatTasks.free, t)
	nnFlatTasks.mu.Unlock()
}

const (
	nnGrainCheap = 1 << 15 // memory-bound kernels
	nnGrainExp   = 1 << 12 // kernels calling exp
)

func nnFlat(kernel string, y, x []float32) []float32 {
	return nnNeed(kernel, "input", x, len(y))
}

// Run implements Task.
func (t *nnFlatTask) Run(lo, hi int) {
	y := t.y[lo:hi]
	x := t.x[lo:hi]
	var z []float32
	if t.z != nil {
		z = t.z[lo:hi]
	}
	switch t.kind {
	case nnActRelu:
		if vecClamp(y, x, negZero, 0, float32(math.Inf(1))) {
			return
		}
		for i, v := range x {
			if v < 0 {
				v = 0
			}
			y[i] = v
		}
	case nnActReluB:
		if vecReluGrad(y, x, z) {
			return
		}
		for i, g := range x {
			if !(z[i] > 0) {
				g = 0
			}
			y[i] = g
		}
	case nnActClip:
		lo, hi := t.a, t.b
		if lo <= hi && vecClamp(y, x, negZero, lo, hi) {
			return
		}
		for i, v := range x {
			if v < lo {
				v = lo
			}
			if v > hi {
				v = hi
			}
			y[i] = v
		}
	case nnActClipB:
		lo, hi := t.a, t.b
		if vecClipGrad(y, x, z, lo, hi) {
			return
		}
		for i, g := range x {
			if !(z[i] > lo && z[i] < hi) {
				g = 0
			}
			y[i] = g
		}
	case nnActSigmoid, nnActSiLU:
		nnSigmoidFamily(t.kind == nnActSiLU, y, x)
	case nnActSigmoidB:
		for i, g := range x {
			s := z[i]
			y[i] = g * s * (1 - s)
		}
	case nnActHardSigmoid:
		al, be := t.a, t.b
		for i, v := range x {
			y[i] = max(0, min(1, al*v+be))
		}
	case nnActHardSigmoidB:
		al := t.a
		for i, g := range x {
			if s := z[i]; s > 0 && s < 1 {
				y[i] = g * al
			} else {
				y[i] = 0
			}
		}
	case nnActHardSwish:
		for i, v := range x {
			// PyTorch's formula, so results match its fixtures bit for bit.
			y[i] = v * min(max(v+3, 0), 6) / 6
		}
	case nnActHardSwishB:
		for i, g := range x {
			v := z[i]
			switch {
			case v < -3:
				y[i] = 0
			case v <= 3:
				y[i] = g * (v/3 + 0.5)
			default:
				y[i] = g
			}
		}
	case nnActSiLUB:
		var buf [nnChunk]float64
		for len(z) > 0 {
			b := buf[:min(len(z), nnChunk)]
			nnWiden(b, z)
			for i, v := range b {
				s := 1 / (1 + nnExp(-v))
				b[i] = s * (1 + v*(1-s))
			}
			g := x[:len(b)]
			for i, v := range b {
				y[i] = float32(float64(g[i]) * v)
			}
			x, y, z = x[len(b):], y[len(b):], z[len(b):]
		}
	}
}

// nnChunk is the length of the float64 stack buffers that exp-based loops
// work through. Converting float32 to float64 inside the loop that calls
// nnExp makes Go's CVTSS2SD, which merges into its destination register,
// chain each iteration to the previous exp and serialises the loop (about
// twice slower); converting a chunk first keeps the exps independent.
const nnChunk = 64

// nnWiden converts src[:len(dst)] to float64.
func nnWiden(dst []float64, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// nnSigmoidFamily writes y = sigmoid(x), or x*sigmoid(x) when silu, in
// float64, where 1/(1+exp(-x)) neither overflows harmfully nor loses
// precision for any float32 x.
func nnSigmoidFamily(silu bool, y, x []float32) {
	var buf [nnChunk]float64
	for len(x) > 0 {
		b := buf[:min(len(x), nnChunk)]
		nnWiden(b, x)
		if silu {
			for i, v := range b {
				b[i] = v / (1 + nnExp(-v))
			}
		} else {
			for i, v := range b {
				b[i] = 1 / (1 + nnExp(-v))
			}
		}
		for i, v := range b {
			y[i] = float32(v)
		}
		x, y = x[len(b):], y[len(b):]
	}
}

// nnExpShifted returns the float64 sum of exp(x[i]-m) and, when y is not
// nil, stores each term in y, chunk by chunk (see nnChunk).
func nnExpShifted(y, x []float32, m float64) float64 {
	var buf [nnChunk]float64
	var s float64
	for len(x) > 0 {
		b := buf[:min(len(x), nnChunk)]
		nnWiden(b, x)
		for i, v := range b {
			e := nnExp(v - m)
			b[i] = e
			s += e
		}
		if y != nil {
			for i, v := range b {
				y[i] = float32(v)
			}
			y = y[len(b):]
		}
		x = x[len(b):]
	}
	return s
}

// nnExpTab[j] = 2^(j/32).
var nnExpTab = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return t
}()

const (
	nnExpShift = 6755399441055744.0 // 1.5*2^52: adding it rounds to an integer
	nnExpInvL  = 32 / math.Ln2
	// ln(2)/32 split so that k*nnExpLHi is exact for |k| < 2^20 (Go's
	// math.Exp split of ln 2, divided by 32).
	nnExpLHi = 6.93147180369123816490e-01 / 32
	nnExpLLo = 1.90821492927058770002e-10 / 32
)

// nnExp is exp(x) with a relative error of a few 1e-16: x = (32m+j)*ln2/32
// + r with |r| <= ln2/64, exp(x) = 2^m * 2^(j/32) * p(r), p a degree-6
// Taylor polynomial. It is about three times faster than math.Exp, which
// matters for the sigmoid family and softmax; arguments whose result would
// be subnormal or overflow go to math.Exp.
func nnExp(x float64) float64 {
	if !(x > -708 && x < 709) {
		return math.Exp(x)
	}
	kf := x*nnExpInvL + nnExpShift
	k := kf - nnExpShift
	r := x - k*nnExpLHi - k*nnExpLLo
	ki := int64(k)
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
	scale := math.Float64frombits(uint64(ki>>5+1023) << 52)
	return scale * (nnExpTab[ki&31] * p)
}

// Relu writes y = max(x, 0); NaN passes through as in PyTorch.
func Relu(y, x []float32) {
	nnRunFlat(nnActRelu, y, nnFlat("Relu", y, x), nil, 0, 0, nnGrainCheap)
}

// ReluBackward writes dx = dy where y > 0 and 0 elsewhere, from the output y
// (y > 0 exactly when x > 0, so relu'(0) = 0 as in PyTorch), which lets the
// input buffer be reused once the forward pass is done.
func ReluBackward(dx, dy, y []float32) {
	nnRunFlat(nnActReluB, dx, nnFlat("ReluBackward", dx, dy), nnFlat("ReluBackward", dx, y), 0, 0, nnGrainCheap)
}

// ClipParams holds the bounds of Clip (ReLU6 is Min 0, Max 6).
type ClipParams struct {
	Min, Max float32 // inclusive bounds; ONNX's defaults are ∓max float32
}

// Init checks Min <= Max, which ONNX leaves undefined otherwise.
func (p *ClipParams) Init() error {
	if !(p.Min <= p.Max) {
		return fmt.Errorf("clip: min %v > max %v", p.Min, p.Max)
	}
	return nil
}

// Clip writes y = min(max(x, Min), Max).
func Clip(p *ClipParams, y, x []float32) {
	nnRunFlat(nnActClip, y, nnFlat("Clip", y, x), nil, p.Min, p.Max, nnGrainCheap)
}

// ClipBackward writes dx = dy where Min < y < Max and 0 elsewhere. It reads
// the output y: Min < y < Max exactly when Min < x < Max, PyTorch's rule of
// passing the gradient strictly inside the bounds only.
func ClipBackward(p *ClipParams, dx, dy, y []float32) {
	nnRunFlat(nnActClipB, dx, nnFlat("ClipBackward", dx, dy), nnFlat("ClipBackward", dx, y), p.Min, p.Max, nnGrainCheap)
}

// Sigmoid writes y = 1/(1+exp(-x)), computed in float64.
func Sigmoid(y, x []float32) {
	nnRunFlat(nnActSigmoid, y, nnFlat("Sigmoid", y, x), nil, 0, 0, nnGrainExp)
}

// SigmoidBackward writes dx = dy*y*(1-y) from the output y, which is exact
// and needs no exp.
func SigmoidBackward(dx, dy, y []float32) {
	nnRunFlat(nnActSigmoidB, dx, nnFlat("SigmoidBackward", dx, dy), nnFlat("SigmoidBackward", dx, y), 0, 0, nnGrainCheap)
}

// HardSigmoidParams holds ONNX HardSigmoid's alpha and beta (ONNX defaults
// 0.2 and 0.5; PyTorch's hardsigmoid is 1/6 and 0.5).
type HardSigmoidParams struct {
	Alpha, Beta float32 // slope and offset of the line before clamping
}

// Init rejects non-finite coefficients.
func (p *HardSigmoidParams) Init() error {
	for _, v := range []float32{p.Alpha, p.Beta} {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("hardsigmoid: alpha %v, beta %v: want finite values", p.Alpha, p.Beta)
		}
	}
	return nil
}

// HardSigmoid writes y = max(0, min(1, Alpha*x + Beta)).
func HardSigmoid(p *HardSigmoidParams, y, x []float32) {
	nnRunFlat(nnActHardSigmoid, y, nnFlat("HardSigmoid", y, x), nil, p.Alpha, p.Beta, nnGrainCheap)
}

// HardSigmoidBackward writes dx = dy*Alpha where 0 < y < 1 and 0 elsewhere.
// It reads the output y, which is strictly inside (0, 1) exactly where the
// line is not clamped; the endpoints get 0 as in PyTorch.
func HardSigmoidBackward(p *HardSigmoidParams, dx, dy, y []float32) {
	nnRunFlat(nnActHardSigmoidB, dx, nnFlat("HardSigmoidBackward", dx, dy), nnFlat("HardSigmoidBackward", dx, y), p.Alpha, 0, nnGrainCheap)
}

// HardSwish writes y = x*min(max(x+3, 0), 6)/6, which is x*HardSigmoid(x)
// with alpha 1/6 and beta 0.5, in PyTorch's operation order.
func HardSwish(y, x []float32) {
	nnRunFlat(nnActHardSwish, y, nnFlat("HardSwish", y, x), nil, 0, 0, nnGrainCheap)
}

// HardSwishBackward writes dx from the input x (y does not determine x near
// the minimum): 0 for x < -3, dy*(x/3+0.5) for -3 <= x <= 3 and dy for
// x > 3, PyTorch's choice at the kinks.
func HardSwishBackward(dx, dy, x []float32) {
	nnRunFlat(nnActHardSwishB, dx, nnFlat("HardSwishBackward", dx, dy), nnFlat("HardSwishBackward", dx, x), 0, 0, nnGrainCheap)
}

// SiLU writes y = x*sigmoid(x) (also called Swish).
func SiLU(y, x []float32) {
	nnRunFlat(nnActSiLU, y, nnFlat("SiLU", y, x), nil, 0, 0, nnGrainExp)
}

// SiLUBackward writes dx = dy*s*(1 + x*(1-s)) with s = sigmoid(x), from the
// input x (y = x*s cannot be inverted cheaply), in float64.
func SiLUBackward(dx, dy, x []float32) {
	nnRunFlat(nnActSiLUB, dx, nnFlat("SiLUBackward", dx, dy), nnFlat("SiLUBackward", dx, x), 0, 0, nnGrainExp)
}
