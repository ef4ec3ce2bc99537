package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is the element type of a value. The zero DType means "not yet
// inferred", which is legal only before shape inference.
type DType uint8

// The element types the IR carries. Data flows in F32; I64 and I32 appear in
// shape computations that constant folding removes; Bool only in constants.
const (
	Unknown DType = iota
	F32
	I64
	I32
	Bool
)

var dtypeNames = [...]string{Unknown: "?", F32: "f32", I64: "i64", I32: "i32", Bool: "bool"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// ParseDType is the inverse of DType.String for the known element types.
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if n == s && i != int(Unknown) {
			return DType(i), nil
		}
	}
	return Unknown, fmt.Errorf("unknown dtype %q", s)
}

// BatchDim marks the symbolic batch dimension in a Shape. Every other
// dimension is a static size >= 0 once shapes are inferred.
const BatchDim = -1

// Shape is a list of dimensions, BatchDim standing for the batch size that
// generated code receives at run time. A nil Shape with a known DType is a
// scalar only when it was made with Scalar(); use Rank to ask.
type Shape []int

// Rank is the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// HasBatch reports whether a dimension is the symbolic batch.
func (s Shape) HasBatch() bool {
	for _, d := range s {
		if d == BatchDim {
			return true
		}
	}
	return false
}

// Static reports the product of the static dimensions: the element count of
// one sample when the shape has a batch dimension, of the whole tensor when
// it has none.
func (s Shape) Static() int {
	n := 1
	for _, d := range s {
		if d != BatchDim {
			n *= d
		}
	}
	return n
}

// Equal compares dimension by dimension.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that does not alias s; the copy of an empty shape is
// empty but non-nil so that it still reads as a scalar.
func (s Shape) Clone() Shape {
	c := make(Shape, len(s))
	copy(c, s)
	return c
}

func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		if d == BatchDim {
			b.WriteByte('N')
		} else {
			b.WriteString(strconv.Itoa(d))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// TensorType is the static type of a value.
type TensorType struct {
	DType DType
	Shape Shape
}

// Known reports whether shape inference has assigned the type.
func (t TensorType) Known() bool { return t.DType != Unknown }

// Equal compares element type and shape.
func (t TensorType) Equal(u TensorType) bool {
	return t.DType == u.DType && t.Shape.Equal(u.Shape)
}

func (t TensorType) String() string {
	if !t.Known() {
		return "?"
	}
	return t.DType.String() + t.Shape.String()
}

// Of is shorthand for a TensorType literal.
func Of(d DType, dims ...int) TensorType {
	return TensorType{DType: d, Shape: append(Shape{}, dims...)}
}
