package ir

import (
	"fmt"
	"math"
)

// unary describes a float activation: its function drives constant folding
// and the reference tests; flops is its cost per element.
type unary struct {
	op     Op
	name   string
	kernel string
	attrs  func() any
	f      func(n *Node, x float64) float64
	flops  int64
	args   int
	static uint32
	// params builds the runtime parameter struct, nil for kernels that
	// take none.
	params func(n *Node) *Struct
}

func init() {
	for _, u := range []unary{
		{op: OpRelu, name: "Relu", kernel: "Relu", flops: 1, f: func(_ *Node, x float64) float64 { return math.Max(x, 0) }},
		{op: OpSigmoid, name: "Sigmoid", kernel: "Sigmoid", flops: 4, f: func(_ *Node, x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		{op: OpHardSigmoid, name: "HardSigmoid", kernel: "HardSigmoid", flops: 3, attrs: newHardSigmoidAttrs, f: func(n *Node, x float64) float64 {
			a := n.Attrs.(*HardSigmoidAttrs)
			return math.Max(0, math.Min(1, float64(a.Alpha)*x+float64(a.Beta)))
		}, params: func(n *Node) *Struct {
			a := n.Attrs.(*HardSigmoidAttrs)
			return &Struct{Type: "HardSigmoidParams", Fields: []Field{{"Alpha", a.Alpha}, {"Beta", a.Beta}}}
		}},
		{op: OpHardSwish, name: "HardSwish", kernel: "HardSwish", flops: 4, f: func(_ *Node, x float64) float64 {
			return x * math.Max(0, math.Min(1, x/6+0.5))
		}},
		// Clip's bounds are optional static arguments; absent means no bound.
		{op: OpClip, name: "Clip", kernel: "Clip", flops: 2, args: 2, static: 0b110, f: func(n *Node, x float64) float64 {
			lo, hi := clipBounds(n)
			return math.Max(lo, math.Min(hi, x))
		}, params: func(n *Node) *Struct {
			lo, hi := clipBounds(n)
			return &Struct{Type: "ClipParams", Fields: []Field{{"Min", f32(lo)}, {"Max", f32(hi)}}}
		}},
	} {
		u := u
		register(u.op, OpDef{
			Name: u.name, MinArgs: 1, MaxArgs: 1 + u.args, Results: 1,
			NewAttrs: u.attrs,
			MinStage: StageImported, MaxStage: StageTraining,
			StaticArgs: u.static,
			Infer: func(n *Node) ([]TensorType, error) {
				if err := wantF32(n, 0); err != nil {
					return nil, err
				}
				if n.Op == OpClip {
					for i := 1; i < len(n.Args); i++ {
						if a := n.Args[i]; a != nil {
							if _, err := constScalar(a); err != nil {
								return nil, fmt.Errorf("bound %d: %v", i, err)
							}
						}
					}
				}
				return same(n)
			},
			Fold: func(n *Node) ([]*Tensor, error) {
				x := n.Args[0].Const
				out := &Tensor{DType: F32, Shape: x.Shape.Clone(), F32: make([]float32, len(x.F32))}
				for i, v := range x.F32 {
					out.F32[i] = float32(u.f(n, float64(v)))
				}
				return []*Tensor{out}, nil
			},
			Kernel: u.kernel,
			Call: func(n *Node) (*KernelCall, error) {
				var p *Struct
				if u.params != nil {
					p = u.params(n)
				}
				return flatCall(u.kernel, p), nil
			},
			Cost: elemCost(u.flops),
		})
	}

	for _, b := range []struct {
		op     Op
		name   string
		kernel string
		f      func(a, b float64) float64
		i      func(a, b int64) (int64, error)
	}{
		{OpAdd, "Add", "Add", func(a, b float64) float64 { return a + b }, func(a, b int64) (int64, error) { return a + b, nil }},
		{OpSub, "Sub", "Sub", func(a, b float64) float64 { return a - b }, func(a, b int64) (int64, error) { return a - b, nil }},
		{OpMul, "Mul", "Mul", func(a, b float64) float64 { return a * b }, func(a, b int64) (int64, error) { return a * b, nil }},
		{OpDiv, "Div", "Div", func(a, b float64) float64 { return a / b }, func(a, b int64) (int64, error) {
			if b == 0 {
				return 0, fmt.Errorf("integer division by zero")
			}
			return a / b, nil
		}},
	} {
		b := b
		register(b.op, OpDef{
			Name: b.name, MinArgs: 2, MaxArgs: 2, Results: 1,
			MinStage: StageImported, MaxStage: StageTraining,
			Infer:  inferBinary,
			Fold:   func(n *Node) ([]*Tensor, error) { return foldBinary(n, b.f, b.i) },
			Kernel: b.kernel,
			Call: func(n *Node) (*KernelCall, error) {
				return &KernelCall{
					Func:   b.kernel,
					Params: &Struct{Type: "BroadcastParams", Fields: []Field{{"A", runtimeShape(n.Args[0].Type.Shape)}, {"B", runtimeShape(n.Args[1].Type.Shape)}}},
					HasN:   true, N: batchN(n.Results[0].Type.Shape),
					Bufs: []BufRef{R(0), A(0), A(1)},
				}, nil
			},
			Cost: elemCost(1),
		})
	}
}

func clipBounds(n *Node) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if a := n.Arg(1); a != nil {
		lo, _ = constScalar(a)
	}
	if a := n.Arg(2); a != nil {
		hi, _ = constScalar(a)
	}
	return lo, hi
}

// ClipBounds returns a Clip node's bounds, ±Inf where absent.
func ClipBounds(n *Node) (lo, hi float64) { return clipBounds(n) }

func inferBinary(n *Node) ([]TensorType, error) {
	ta, tb := n.Args[0].Type, n.Args[1].Type
	if ta.DType != tb.DType {
		return nil, fmt.Errorf("element types differ: %v and %v", ta, tb)
	}
	if ta.DType == Bool {
		return nil, fmt.Errorf("arithmetic on bool")
	}
	s, err := broadcastShapes(ta.Shape, tb.Shape)
	if err != nil {
		return nil, err
	}
	if s.HasBatch() {
		// The batch must stay in front, so a batched operand needs the
		// result's full rank.
		for i, t := range []TensorType{ta, tb} {
			if t.Shape.HasBatch() && (len(t.Shape) != len(s) || t.Shape[0] != BatchDim) {
				return nil, fmt.Errorf("operand %d %v puts the batch away from the front of %v", i, t.Shape, s)
			}
		}
	}
	return []TensorType{{DType: ta.DType, Shape: s}}, nil
}

// broadcastIndex maps each flat index of out to the flat index of an operand
// of shape in broadcast to it (both static).
func broadcastIndex(out, in Shape) []int {
	total := out.Static()
	idx := make([]int, total)
	ist := stridesOf(in)
	off := len(out) - len(in)
	coord := make([]int, len(out))
	for f := 0; f < total; f++ {
		s := 0
		for d := range in {
			if in[d] != 1 {
				s += coord[d+off] * ist[d]
			}
		}
		idx[f] = s
		nextCoord(coord, out)
	}
	return idx
}

func foldBinary(n *Node, f func(a, b float64) float64, fi func(a, b int64) (int64, error)) ([]*Tensor, error) {
	x, y := n.Args[0].Const, n.Args[1].Const
	shape := n.Results[0].Type.Shape
	ix, iy := broadcastIndex(shape, x.Shape), broadcastIndex(shape, y.Shape)
	out := &Tensor{DType: x.DType, Shape: shape.Clone()}
	if x.DType == F32 {
		out.F32 = make([]float32, len(ix))
		for i := range ix {
			out.F32[i] = float32(f(float64(x.F32[ix[i]]), float64(y.F32[iy[i]])))
		}
		return []*Tensor{out}, nil
	}
	out.I64 = make([]int64, len(ix))
	for i := range ix {
		a, b := x.I64[ix[i]], y.I64[iy[i]]
		if a == SymBatch || b == SymBatch {
			return nil, fmt.Errorf("arithmetic on the symbolic batch size is not supported")
		}
		v, err := fi(a, b)
		if err != nil {
			return nil, err
		}
		out.I64[i] = v
	}
	return []*Tensor{out}, nil
}
