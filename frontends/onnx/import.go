// Package onnx lowers ONNX model files into smhgen's IR.
//
// Decoding goes through github.com/owulveryck/onnx-go with our own Backend,
// which collects the operations and their attributes in node order and the
// initializer tensors. A small protobuf reader supplies what onnx-go drops or
// misreads: the opset, node names and domains, the order of node inputs,
// symbolic graph dimensions, and the layout of every tensor, which is
// validated before onnx-go sees it so that a malformed file gets an error
// naming the tensor instead of a panic or a huge allocation.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/smhgen/smhgen/ir"
	"gorgonia.org/tensor"
)

// Options bound what a model file may ask of the compiler.
type Options struct {
	// MaxElems is the largest element count of any one tensor; 0 means
	// DefaultMaxElems.
	MaxElems int64
	// NoBatch reads every graph input dimension as a static size instead of
	// taking dimension 0 as the symbolic batch: for models that are not
	// batch-first, such as ONNX's node tests, whose inputs include
	// broadcast operands like [5] beside a [3,4,5]. A symbolic dimension is
	// then an error, and the graph's ExportBatch stays 0.
	NoBatch bool
}

// DefaultMaxElems allows tensors of up to 256M elements (1 GiB of float32).
const DefaultMaxElems = 1 << 28

// constParamThreshold: float constants with more elements than this become
// (non-trainable) parameters rather than constants printed in the IR.
const constParamThreshold = 64

// ImportFile reads and imports a model file.
func ImportFile(path string, opts Options) (*ir.Graph, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Import(data, filepath.Base(path), opts)
}

// Import lowers an ONNX model to a graph at ir.StageImported. name is the
// model file's name; the graph is named after it, without the extension. Errors name the node (its name and op type) or tensor
// at fault; the caller adds the file name.
func Import(data []byte, name string, opts Options) (g *ir.Graph, err error) {
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("internal error while importing: %v", r)
		}
	}()
	if opts.MaxElems <= 0 {
		opts.MaxElems = DefaultMaxElems
	}
	if len(data) == 0 {
		return nil, errors.New("not an ONNX model: the file is empty")
	}
	pm, err := parseModel(data)
	if err != nil {
		return nil, notONNX(err)
	}
	imp := &importer{pm: pm, opts: opts, vals: map[string]*ir.Value{}, unsupported: map[string]string{}}
	if err := imp.check(); err != nil {
		return nil, err
	}
	b, err := decodeWithOnnxGo(data)
	if err != nil {
		return nil, err
	}
	if len(b.ops) != len(pm.graph.nodes) {
		return nil, fmt.Errorf("onnx-go reported %d operations for %d nodes", len(b.ops), len(pm.graph.nodes))
	}
	imp.be = b
	imp.tensors = b.tensorsByName()
	// The file's name, not the graph's: PyTorch names every graph
	// "torch_jit", and the name reaches generated code's header.
	imp.g = ir.New(strings.TrimSuffix(name, filepath.Ext(name)), int(imp.opset))
	if err := imp.build(); err != nil {
		return nil, err
	}
	return imp.g, nil
}

func notONNX(err error) error {
	return fmt.Errorf("not a valid ONNX model: %v", err)
}

type importer struct {
	pm      *protoModel
	opts    Options
	opset   int64
	be      *backend
	tensors map[string]tensor.Tensor
	g       *ir.Graph
	vals    map[string]*ir.Value
	// unsupported says, for outputs the compiler does not produce (MaxPool
	// indices, Dropout masks), which node they come from.
	unsupported map[string]string
}

// check validates everything onnx-go would trip over, before it runs.
func (imp *importer) check() error {
	pm := imp.pm
	for dom, v := range pm.opsets {
		if dom == "" || dom == "ai.onnx" {
			imp.opset = v
		}
	}
	if imp.opset == 0 {
		if len(pm.opsets) == 0 && pm.irVersion == 0 {
			return notONNX(errors.New("no ir_version and no opset_import"))
		}
		return errors.New("the model imports no version of the default ONNX operator set")
	}
	if imp.opset < 7 {
		return fmt.Errorf("opset %d is not supported (want 7 or newer)", imp.opset)
	}
	g := &pm.graph
	if len(g.nodes) == 0 {
		return errors.New("the graph has no nodes")
	}
	if len(g.outputs) == 0 {
		return errors.New("the graph has no outputs")
	}
	for i := range g.initializers {
		t := &g.initializers[i]
		if t.name == "" {
			return fmt.Errorf("initializer %d has no name", i)
		}
		if err := checkTensor(t, imp.opts.MaxElems); err != nil {
			return err
		}
	}
	for _, vi := range append(append([]protoValueInfo{}, g.inputs...), g.outputs...) {
		if err := imp.checkValueInfo(vi); err != nil {
			return err
		}
	}
	for i := range g.nodes {
		n := &g.nodes[i]
		if n.domain != "" && n.domain != "ai.onnx" {
			return nodeErr(n, imp.opset, fmt.Errorf("operator domain %q is not supported", n.domain))
		}
		if _, ok := importers[n.opType]; !ok {
			return nodeErr(n, imp.opset, errors.New("unsupported op"))
		}
		for j := range n.attrs {
			a := &n.attrs[j]
			if a.hasSub {
				return nodeErr(n, imp.opset, fmt.Errorf("attribute %q holds a subgraph, which is not supported", a.name))
			}
			for k := range a.tensors {
				if err := checkTensor(&a.tensors[k], imp.opts.MaxElems); err != nil {
					return nodeErr(n, imp.opset, fmt.Errorf("attribute %q: %v", a.name, err))
				}
			}
		}
	}
	return nil
}

func (imp *importer) checkValueInfo(vi protoValueInfo) error {
	switch vi.elemType {
	case dtFloat, dtInt64, dtInt32, dtDouble, dtBool, dtUint8, dtInt8, dtInt16, dtUint16:
	default:
		return fmt.Errorf("value %q: element type %s is not supported", vi.name, dtypeName(vi.elemType))
	}
	n := int64(1)
	for _, d := range vi.dims {
		if d.symbolic {
			continue
		}
		if d.value <= 0 {
			return fmt.Errorf("value %q: dimension %d is not positive", vi.name, d.value)
		}
		if n > imp.opts.MaxElems/d.value {
			return fmt.Errorf("value %q: shape exceeds the limit of %d elements (see -max-params)", vi.name, imp.opts.MaxElems)
		}
		n *= d.value
	}
	return nil
}

// NodeError reports a problem with one ONNX node.
type NodeError struct {
	Name, OpType string
	Opset        int64
	Err          error
}

func (e *NodeError) Error() string {
	name := e.Name
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("node %q (%s, opset %d): %v", name, e.OpType, e.Opset, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

func nodeErr(n *protoNode, opset int64, err error) error {
	return &NodeError{Name: n.name, OpType: n.opType, Opset: opset, Err: err}
}

func (imp *importer) build() error {
	g := imp.g
	pm := imp.pm
	inits := map[string]*protoTensor{}
	for i := range pm.graph.initializers {
		inits[pm.graph.initializers[i].name] = &pm.graph.initializers[i]
	}
	for _, vi := range pm.graph.inputs {
		if inits[vi.name] != nil {
			continue // IR version < 4 lists initializers as inputs too
		}
		if err := imp.addInput(vi); err != nil {
			return err
		}
	}
	for i := range pm.graph.initializers {
		t := &pm.graph.initializers[i]
		if _, dup := imp.vals[t.name]; dup {
			return fmt.Errorf("initializer %q is defined twice", t.name)
		}
		v, err := imp.tensorValue(t.name, t)
		if err != nil {
			return err
		}
		imp.vals[t.name] = v
	}
	for i := range pm.graph.nodes {
		pn := &pm.graph.nodes[i]
		op := imp.be.ops[i].op
		if op.Name != pn.opType {
			return nodeErr(pn, imp.opset, fmt.Errorf("onnx-go reported op %q at this position", op.Name))
		}
		if err := imp.node(pn, op.Attributes); err != nil {
			var ne *NodeError
			if errors.As(err, &ne) {
				return err
			}
			return nodeErr(pn, imp.opset, err)
		}
	}
	for _, vi := range pm.graph.outputs {
		// Generated code returns []float32: an output declared with another
		// element type would come back reinterpreted.
		if vi.elemType != dtFloat && vi.elemType != 0 {
			return fmt.Errorf("graph output %q: element type %s is not supported (want FLOAT)", vi.name, dtypeName(vi.elemType))
		}
		v, ok := imp.vals[vi.name]
		if !ok {
			return fmt.Errorf("graph output %q is not computed by any node", vi.name)
		}
		if v == nil {
			return fmt.Errorf("graph output %q is an output the compiler does not support (%s)", vi.name, imp.unsupported[vi.name])
		}
		g.AddOutput(vi.name, v)
	}
	imp.untieNormParams()
	imp.assignRoles()
	return nil
}

func (imp *importer) addInput(vi protoValueInfo) error {
	if vi.elemType != dtFloat {
		return fmt.Errorf("graph input %q: element type %s is not supported (want FLOAT)", vi.name, dtypeName(vi.elemType))
	}
	if imp.opts.NoBatch {
		if !vi.hasShape {
			return fmt.Errorf("graph input %q: needs a shape", vi.name)
		}
	} else if !vi.hasShape || len(vi.dims) == 0 {
		return fmt.Errorf("graph input %q: needs a shape with a leading batch dimension", vi.name)
	}
	shape := make(ir.Shape, len(vi.dims))
	for i, d := range vi.dims {
		switch {
		case imp.opts.NoBatch && d.symbolic:
			return fmt.Errorf("graph input %q: dimension %d (%q) is symbolic; without a batch dimension every dimension must be static", vi.name, i, d.param)
		case i == 0 && !imp.opts.NoBatch:
			// The leading dimension is the batch, symbolic or not: PyTorch
			// exports a static batch unless told otherwise, and generated
			// code takes any batch size.
			shape[0] = ir.BatchDim
			if !d.symbolic {
				if b := int(d.value); imp.g.ExportBatch == 0 || imp.g.ExportBatch == b {
					imp.g.ExportBatch = b
				} else {
					return fmt.Errorf("graph input %q: batch %d differs from another input's %d", vi.name, b, imp.g.ExportBatch)
				}
			}
		case d.symbolic:
			return fmt.Errorf("graph input %q: dimension %d (%q) is symbolic; only the leading batch dimension may be", vi.name, i, d.param)
		default:
			shape[i] = int(d.value)
		}
	}
	if _, dup := imp.vals[vi.name]; dup {
		return fmt.Errorf("graph input %q is declared twice", vi.name)
	}
	imp.vals[vi.name] = imp.g.AddInput(vi.name, ir.TensorType{DType: ir.F32, Shape: shape})
	return nil
}

// tensorValue turns an initializer into a parameter (float data) or a
// constant (integer data).
func (imp *importer) tensorValue(name string, pt *protoTensor) (*ir.Value, error) {
	t, ok := imp.tensors[name]
	if !ok {
		return nil, fmt.Errorf("initializer %q: onnx-go decoded no data", name)
	}
	return imp.decoded(name, pt.dims, t, true)
}

// maxIntConst bounds integer constants, which the IR prints in full.
const maxIntConst = 1 << 16

// decoded converts a tensor onnx-go decoded. Float initializers become
// parameters; float constants from Constant nodes become constants when
// small, non-trainable parameters when large; integers become constants.
func (imp *importer) decoded(name string, dims []int64, t tensor.Tensor, initializer bool) (*ir.Value, error) {
	f32, i64, err := tensorData(t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %v", name, err)
	}
	shape := make(ir.Shape, len(dims))
	for i, d := range dims {
		shape[i] = int(d)
	}
	want := shape.Static()
	if f32 != nil {
		if len(f32) != want {
			return nil, fmt.Errorf("tensor %q: decoded %d values for shape %v", name, len(f32), shape)
		}
		if initializer || len(f32) > constParamThreshold {
			return imp.g.AddParam(name, ir.TensorType{DType: ir.F32, Shape: shape}, &ir.Param{Data: f32, Trainable: initializer}), nil
		}
		return imp.g.AddConst(name, ir.FloatTensor(f32, shape...)), nil
	}
	if len(i64) != want {
		return nil, fmt.Errorf("tensor %q: decoded %d values for shape %v", name, len(i64), shape)
	}
	if len(i64) > maxIntConst {
		return nil, fmt.Errorf("tensor %q: integer tensors above %d elements are not supported", name, maxIntConst)
	}
	for i, v := range i64 {
		if v == ir.SymBatch {
			// The IR reserves the smallest int64 for the symbolic batch;
			// every op that reads an int64 this small (Slice ends)
			// treats its successor the same.
			i64[i] = ir.SymBatch + 1
		}
	}
	return imp.g.AddConst(name, ir.IntTensor(i64, shape...)), nil
}
