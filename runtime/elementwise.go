package runtime

// Binary elementwise arithmetic with numpy/ONNX broadcasting. The operand
// shapes live in a BroadcastParams; see broadcast.go for the batch marker and
// buffer conventions. Backward kernels take the output gradient dy and write
// the gradient of each operand reduced (summed, in float64) back to that
// operand's shape; either gradient buffer may be nil to skip it (a constant
// operand needs none).

// Add writes y = a + b.
func Add(p *BroadcastParams, n int, y, a, b []float32) { p.forward("Add", nnEwAdd, n, y, a, b) }

// Sub writes y = a - b.
func Sub(p *BroadcastParams, n int, y, a, b []float32) { p.forward("Sub", nnEwSub, n, y, a, b) }

// Mul writes y = a * b.
func Mul(p *BroadcastParams, n int, y, a, b []float32) { p.forward("Mul", nnEwMul, n, y, a, b) }

// Div writes y = a / b (IEEE semantics: division by zero gives ±Inf or NaN).
func Div(p *BroadcastParams, n int, y, a, b []float32) { p.forward("Div", nnEwDiv, n, y, a, b) }

// checkGrad validates the buffers of a backward call and returns them cut to
// size (nil stays nil).
func (p *BroadcastParams) checkGrad(kernel string, n int, da, db, dy, a, b []float32, needA, needB bool) ([]float32, []float32, []float32, []float32, []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	dy = nnNeed(kernel, "dy", dy, p.OutLen(n))
	if da != nil {
		da = nnNeed(kernel, "da", da, p.ALen(n))
	}
	if db != nil {
		db = nnNeed(kernel, "db", db, p.BLen(n))
	}
	if needA {
		a = nnNeed(kernel, "a", a, p.ALen(n))
	}
	if needB {
		b = nnNeed(kernel, "b", b, p.BLen(n))
	}
	return da, db, dy, a, b
}

// AddBackward writes da = sum(dy) and db = sum(dy), each summed down to its
// operand's shape.
func AddBackward(p *BroadcastParams, n int, da, db, dy []float32) {
	da, db, dy, _, _ = p.checkGrad("AddBackward", n, da, db, dy, nil, nil, false, false)
	if da != nil {
		p.grad(n, 1, nnRdSum, 1, da, dy, nil, nil, -1, -1)
	}
	if db != nil {
		p.grad(n, 2, nnRdSum, 1, db, dy, nil, nil, -1, -1)
	}
}

// SubBackward writes da = sum(dy) and db = -sum(dy).
func SubBackward(p *BroadcastParams, n int, da, db, dy []float32) {
	da, db, dy, _, _ = p.checkGrad("SubBackward", n, da, db, dy, nil, nil, false, false)
	if da != nil {
		p.grad(n, 1, nnRdSum, 1, da, dy, nil, nil, -1, -1)
	}
	if db != nil {
		p.grad(n, 2, nnRdSum, -1, db, dy, nil, nil, -1, -1)
	}
}

// MulBackward writes da = sum(dy*b) and db = sum(dy*a). Only the operands
// that the requested gradients need are read: a may be nil when db is, and b
// when da is.
func MulBackward(p *BroadcastParams, n int, da, db, dy, a, b []float32) {
	da, db, dy, a, b = p.checkGrad("MulBackward", n, da, db, dy, a, b, db != nil, da != nil)
	if da != nil {
		p.grad(n, 1, nnRdMul, 1, da, dy, b, nil, 2, -1)
	}
	if db != nil {
		p.grad(n, 2, nnRdMul, 1, db, dy, a, nil, 1, -1)
	}
}

// DivBackward writes da = sum(dy/b) and db = -sum(dy*a/b²), from the
// operands rather than the quotient so that no rounding of y enters the
// gradient. a may be nil when db is.
func DivBackward(p *BroadcastParams, n int, da, db, dy, a, b []float32) {
	da, db, dy, a, b = p.checkGrad("DivBackward", n, da, db, dy, a, b, db != nil, true)
	if da != nil {
		p.grad(n, 1, nnRdDiv, 1, da, dy, b, nil, 2, -1)
	}
	if db != nil {
		p.grad(n, 2, nnRdDivB, -1, db, dy, a, b, 1, 2)
	}
}
