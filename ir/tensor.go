package ir

import (
	"fmt"
	"math"
)

// SymBatch is the element an integer constant holds where it stands for the
// symbolic batch size, as in the shape that x.view(x.size(0), -1) computes.
const SymBatch int64 = math.MinInt64

// Tensor is the data of a compile-time constant: small integer tensors from
// shape computations, and scalar or small float operands. Integer and boolean
// element types are stored widened in I64; F32 data in F32.
type Tensor struct {
	DType DType
	Shape Shape // static: never contains BatchDim
	F32   []float32
	I64   []int64
}

// Len is the element count the shape implies.
func (t *Tensor) Len() int { return t.Shape.Static() }

// Type is the TensorType of the constant.
func (t *Tensor) Type() TensorType { return TensorType{DType: t.DType, Shape: t.Shape.Clone()} }

// check reports data whose length disagrees with the shape or element type.
func (t *Tensor) check() error {
	if t.Shape.HasBatch() {
		return fmt.Errorf("constant shape %v has a batch dimension", t.Shape)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("constant shape %v has a negative dimension", t.Shape)
		}
	}
	switch t.DType {
	case F32:
		if len(t.F32) != t.Len() || t.I64 != nil {
			return fmt.Errorf("constant %v holds %d f32 elements, want %d", t.Shape, len(t.F32), t.Len())
		}
	case I64, I32, Bool:
		if len(t.I64) != t.Len() || t.F32 != nil {
			return fmt.Errorf("constant %v holds %d integer elements, want %d", t.Shape, len(t.I64), t.Len())
		}
	default:
		return fmt.Errorf("constant of dtype %v", t.DType)
	}
	return nil
}

// Ints returns integer data as ints, failing on the symbolic batch so that
// callers needing plain numbers (axes, pads, kernel sizes) never see it.
func (t *Tensor) Ints() ([]int, error) {
	if t.DType == F32 {
		return nil, fmt.Errorf("want integer constant, have %v", t.DType)
	}
	out := make([]int, len(t.I64))
	for i, v := range t.I64 {
		if v == SymBatch {
			return nil, fmt.Errorf("constant element %d is the symbolic batch size", i)
		}
		if v > math.MaxInt32 || v < math.MinInt32 {
			// Slice ends use INT64_MAX sentinels; callers that accept those
			// clamp before calling Ints.
			return nil, fmt.Errorf("constant element %d = %d is out of range", i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// Float returns element i as float64 whatever the element type.
func (t *Tensor) Float(i int) float64 {
	if t.DType == F32 {
		return float64(t.F32[i])
	}
	return float64(t.I64[i])
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: t.Shape.Clone()}
	if t.F32 != nil {
		c.F32 = append([]float32{}, t.F32...)
	}
	if t.I64 != nil {
		c.I64 = append([]int64{}, t.I64...)
	}
	return c
}

// IntTensor makes an I64 constant of the given shape (a vector when shape is
// omitted).
func IntTensor(data []int64, shape ...int) *Tensor {
	if shape == nil {
		shape = []int{len(data)}
	}
	return &Tensor{DType: I64, Shape: append(Shape{}, shape...), I64: data}
}

// FloatTensor makes an F32 constant of the given shape (a vector when shape
// is omitted).
func FloatTensor(data []float32, shape ...int) *Tensor {
	if shape == nil {
		shape = []int{len(data)}
	}
	return &Tensor{DType: F32, Shape: append(Shape{}, shape...), F32: data}
}
