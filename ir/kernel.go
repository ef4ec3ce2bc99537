package ir

import (
	"fmt"
	"math"
)

// KernelCall describes the runtime call that computes a node, as data: the
// function, its parameter struct literal, and which buffers it takes in
// which order. Code generation renders it without knowing any op.
//
// The call it stands for is
//
//	runtime.Func(&params, n, bufs...)
//
// where &params is present when Params is set and n when HasN is set: the
// run-time batch size when N is RuntimeBatch, the literal N otherwise (a
// value without a batch dimension).
type KernelCall struct {
	Func   string
	Params *Struct
	HasN   bool
	N      int
	// HasStep passes the model's training step counter (a uint64) after
	// n, for kernels whose randomness depends on it (dropout masks).
	HasStep bool
	Bufs    []BufRef
}

// RuntimeBatch as KernelCall.N passes the batch size generated code
// receives.
const RuntimeBatch = -1

// batchN is the n to pass for a kernel whose leading dimension is shape's
// first: the run-time batch, or the static size.
func batchN(s Shape) int {
	if len(s) == 0 {
		return 1
	}
	return s[0]
}

// Struct is a runtime struct literal: the type name and its fields in
// order.
type Struct struct {
	Type   string
	Fields []Field
}

// Field is one field of a struct literal. Value is an int, bool, float32,
// uint64, []int, [][]int, Sym or *Struct.
type Field struct {
	Name  string
	Value any
}

// Sym names an exported identifier of the runtime package, such as
// EpilogueRelu.
type Sym string

// SeedOffset as a field value is the model's seed (chosen when the model is
// created) plus this offset, so that each random op draws its own stream.
type SeedOffset uint64

// BufRef names one buffer argument of a kernel call.
type BufRef struct {
	Kind  BufKind
	Index int
}

// BufKind says where a buffer argument comes from.
type BufKind uint8

// The sources of a kernel's buffer arguments.
const (
	BufResult BufKind = iota // the node's result Index
	BufArg                   // the node's argument Index
	BufNil                   // a nil slice (an absent optional input)
)

// R, A and Nil build buffer references.
func R(i int) BufRef { return BufRef{BufResult, i} }

// A references argument i of the node.
func A(i int) BufRef { return BufRef{BufArg, i} }

// Nil is an absent optional buffer.
var Nil = BufRef{Kind: BufNil}

// ArgOrNil references argument i when the node has it, nil otherwise.
func ArgOrNil(n *Node, i int) BufRef {
	if n.Arg(i) == nil {
		return Nil
	}
	return A(i)
}

// Call returns the runtime call that computes n, or an error when the
// runtime cannot compute this instance of the op. View ops have no call.
func Call(n *Node) (*KernelCall, error) {
	def := n.Op.Def()
	if def.Call == nil {
		return nil, &NodeError{n, fmt.Errorf("op %s has no runtime kernel", n.Op)}
	}
	c, err := def.Call(n)
	if err != nil {
		return nil, &NodeError{n, err}
	}
	return c, nil
}

// flatCall is a kernel over flat buffers: Func(y, x) or Func(&p, y, x).
func flatCall(fn string, params *Struct) *KernelCall {
	return &KernelCall{Func: fn, Params: params, Bufs: []BufRef{R(0), A(0)}}
}

// perSample strips the batch dimension from a batch-first shape.
func perSample(s Shape) []int {
	if len(s) > 0 && s[0] == BatchDim {
		return append([]int{}, s[1:]...)
	}
	return append([]int{}, s...)
}

// runtimeShape is a shape as the runtime's parameter structs take it: the
// batch stays as -1 (the runtime's BatchDim has the same value).
func runtimeShape(s Shape) []int { return append([]int{}, s...) }

// f32 converts a bound that may be infinite to float32, saturating finite
// values beyond float32's range.
func f32(v float64) float32 {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return float32(v)
	case v > math.MaxFloat32:
		return float32(math.Inf(1))
	case v < -math.MaxFloat32:
		return float32(math.Inf(-1))
	}
	return float32(v)
}
