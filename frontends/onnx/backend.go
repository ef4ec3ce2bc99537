package onnx

import (
	"fmt"

	onnxgo "github.com/owulveryck/onnx-go"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gorgonia.org/tensor"
)

// backend is the onnx.Backend that onnx-go decodes a model into. It keeps
// what onnx-go reports reliably, the operations with their decoded
// attributes (in node order) and the tensors of initializers, and leaves the
// rest (ordering, names, opsets) to the protobuf reader: onnx-go passes
// argument order only as edge weights, which collapse when a node reads the
// same value twice.
type backend struct {
	*simple.WeightedDirectedGraph
	byID map[int64]*backendNode
	ops  []appliedOp
}

type appliedOp struct {
	op      onnxgo.Operation
	outputs []int64
}

// backendNode is a value in onnx-go's view: a name and maybe a tensor.
type backendNode struct {
	id     int64
	name   string
	tensor tensor.Tensor
}

var (
	_ onnxgo.Backend     = (*backend)(nil)
	_ onnxgo.Namer       = (*backendNode)(nil)
	_ onnxgo.DataCarrier = (*backendNode)(nil)
)

func newBackend() *backend {
	return &backend{
		WeightedDirectedGraph: simple.NewWeightedDirectedGraph(0, 0),
		byID:                  map[int64]*backendNode{},
	}
}

func (n *backendNode) ID() int64                       { return n.id }
func (n *backendNode) SetName(s string)                { n.name = s }
func (n *backendNode) GetName() string                 { return n.name }
func (n *backendNode) SetTensor(t tensor.Tensor) error { n.tensor = t; return nil }
func (n *backendNode) GetTensor() tensor.Tensor        { return n.tensor }

// NewNode returns a fresh value node.
func (b *backend) NewNode() graph.Node {
	n := &backendNode{id: b.WeightedDirectedGraph.NewNode().ID()}
	b.byID[n.id] = n
	return n
}

// ApplyOperation records an operation and the nodes it defines.
func (b *backend) ApplyOperation(op onnxgo.Operation, outs ...graph.Node) error {
	ids := make([]int64, len(outs))
	for i, o := range outs {
		ids[i] = o.ID()
	}
	b.ops = append(b.ops, appliedOp{op: op, outputs: ids})
	return nil
}

// tensorsByName indexes the decoded tensors of named value nodes.
func (b *backend) tensorsByName() map[string]tensor.Tensor {
	out := map[string]tensor.Tensor{}
	for _, n := range b.byID {
		if n.tensor != nil && n.name != "" {
			out[n.name] = n.tensor
		}
	}
	return out
}

// decodeWithOnnxGo runs onnx-go over data, turning its panics (gorgonia's
// tensor constructors panic on inconsistent input) into errors.
func decodeWithOnnxGo(data []byte) (b *backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("onnx-go: %v", r)
		}
	}()
	b = newBackend()
	m := onnxgo.NewModel(b)
	if err := m.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("onnx-go: %v", err)
	}
	return b, nil
}

// tensorData converts a decoded tensor to our element slices. Scalars come
// back from gorgonia as bare values rather than slices.
func tensorData(t tensor.Tensor) (f32 []float32, i64 []int64, err error) {
	switch d := t.Data().(type) {
	case []float32:
		return append([]float32{}, d...), nil, nil
	case float32:
		return []float32{d}, nil, nil
	case []int64:
		return nil, append([]int64{}, d...), nil
	case int64:
		return nil, []int64{d}, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return nil, out, nil
	case int32:
		return nil, []int64{int64(d)}, nil
	}
	return nil, nil, fmt.Errorf("unsupported tensor data %T", t.Data())
}
