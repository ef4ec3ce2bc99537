package ir

import (
	"fmt"
	"math"
)

// broadcastShapes applies ONNX multidirectional broadcasting. The batch
// dimension broadcasts against 1 only: against a static size it would fix
// the batch, which generated code cannot honour.
func broadcastShapes(a, b Shape) (Shape, error) {
	r := max(len(a), len(b))
	out := make(Shape, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := len(a) - r + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - r + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

// constInts reads a static integer argument.
func constInts(v *Value) ([]int, error) {
	if v == nil {
		return nil, nil
	}
	if v.Kind != KindConst {
		return nil, fmt.Errorf("v%d must be a constant", v.ID)
	}
	return v.Const.Ints()
}

// constScalar reads a static scalar (or one-element) argument as float64.
func constScalar(v *Value) (float64, error) {
	if v.Kind != KindConst {
		return 0, fmt.Errorf("v%d must be a constant", v.ID)
	}
	if v.Const.Len() != 1 {
		return 0, fmt.Errorf("v%d must hold one element, have shape %v", v.ID, v.Const.Shape)
	}
	if v.Const.DType != F32 && v.Const.I64[0] == SymBatch {
		return 0, fmt.Errorf("v%d is the symbolic batch size", v.ID)
	}
	return v.Const.Float(0), nil
}

// wantF32 checks that argument i is a float tensor.
func wantF32(n *Node, i int) error {
	if t := n.Args[i].Type; t.DType != F32 {
		return fmt.Errorf("argument %d: want f32, have %v", i, t)
	}
	return nil
}

// wantRank checks the rank of argument i.
func wantRank(n *Node, i, rank int) error {
	if t := n.Args[i].Type; len(t.Shape) != rank {
		return fmt.Errorf("argument %d: want rank %d, have %v", i, rank, t)
	}
	return nil
}

// wantBatchFirst checks that a data argument carries the batch in front and
// static dimensions elsewhere, the layout the runtime kernels take.
func wantBatchFirst(n *Node, i int) error {
	s := n.Args[i].Type.Shape
	for j, d := range s {
		if j > 0 && d == BatchDim {
			return fmt.Errorf("argument %d: batch dimension must come first, have %v", i, s)
		}
	}
	return nil
}

// same returns the type of argument 0, for shape-preserving ops.
func same(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	return []TensorType{{DType: t.DType, Shape: t.Shape.Clone()}}, nil
}

// numel is the element count of a static shape, or an error on overflow.
func numel(s Shape) (int, error) {
	n := 1
	for _, d := range s {
		if d < 0 {
			return 0, fmt.Errorf("shape %v is not static", s)
		}
		if d != 0 && n > math.MaxInt32/d {
			return 0, fmt.Errorf("shape %v has too many elements", s)
		}
		n *= d
	}
	return n, nil
}

// stridesOf returns row-major strides.
func stridesOf(s Shape) []int {
	st := make([]int, len(s))
	acc := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = acc
		acc *= s[i]
	}
	return st
}

// elemCost is the cost of an elementwise op over a per-sample tensor.
func elemCost(flopsPerElem int64) func(n *Node) Cost {
	return func(n *Node) Cost {
		e := int64(n.Results[0].Type.Shape.Static())
		var in int64
		for _, a := range n.Args {
			if a != nil {
				in += int64(a.Type.Shape.Static())
			}
		}
		return Cost{FLOPs: flopsPerElem * e, Bytes: 4 * (e + in)}
	}
}

// paramElems counts the elements of the param arguments of n.
func paramElems(n *Node) int64 {
	var p int64
	for _, a := range n.Args {
		if a != nil && a.Kind == KindParam {
			p += int64(a.Type.Shape.Static())
		}
	}
	return p
}

// nextCoord advances a row-major coordinate within shape, wrapping to zero
// after the last element.
func nextCoord(coord []int, shape Shape) {
	for d := len(shape) - 1; d >= 0; d-- {
		coord[d]++
		if coord[d] < shape[d] {
			return
		}
		coord[d] = 0
	}
}
