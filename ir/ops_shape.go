package ir

import (
	"fmt"
	"math"
	"slices"
)

// Data-movement ops. Those marked View reinterpret their input's buffer;
// the rest move data and have runtime kernels. Every one folds when its
// arguments are constants, which is how PyTorch's shape subgraphs
// (Shape→Gather→Unsqueeze→Concat→Reshape, the option-A shortcut's pads)
// disappear before code generation.

// maxFoldElems bounds constants that folding creates, so a hostile model
// cannot make the compiler allocate without limit.
const maxFoldElems = 1 << 20

func init() {
	register(OpFlatten, OpDef{
		Name: "Flatten", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newAxis1Attrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer: inferFlatten, Fold: foldView, View: true, Cost: viewCost,
	})
	register(OpReshape, OpDef{
		Name: "Reshape", MinArgs: 2, MaxArgs: 2, Results: 1,
		NewAttrs: newReshapeAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b10,
		Infer:      inferReshape, Fold: foldView, View: true, Cost: viewCost,
	})
	register(OpSqueeze, OpDef{
		Name: "Squeeze", MinArgs: 1, MaxArgs: 2, Results: 1,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b10,
		Infer:      inferSqueeze, Fold: foldView, View: true, Cost: viewCost,
	})
	register(OpUnsqueeze, OpDef{
		Name: "Unsqueeze", MinArgs: 2, MaxArgs: 2, Results: 1,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b10,
		Infer:      inferUnsqueeze, Fold: foldView, View: true, Cost: viewCost,
	})
	register(OpConcat, OpDef{
		Name: "Concat", MinArgs: 1, MaxArgs: math.MaxInt32, Results: 1,
		NewAttrs: newAxis0Attrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer: inferConcat, Fold: foldConcat, Canonicalize: canonAxis,
		Kernel: "Concat", Call: callConcat, Cost: elemCost(0),
	})
	register(OpTranspose, OpDef{
		Name: "Transpose", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newTransposeAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer: inferTranspose, Fold: foldTranspose, Canonicalize: canonTranspose,
		Kernel: "Transpose", Cost: elemCost(0),
		Call: func(n *Node) (*KernelCall, error) {
			x := n.Args[0].Type.Shape
			return &KernelCall{
				Func:   "Transpose",
				Params: &Struct{Type: "TransposeParams", Fields: []Field{{"Shape", runtimeShape(x)}, {"Perm", append([]int{}, TransposePerm(n)...)}}},
				HasN:   true, N: batchN(x),
				Bufs: []BufRef{R(0), A(0)},
			}, nil
		},
	})
	register(OpGather, OpDef{
		Name: "Gather", MinArgs: 2, MaxArgs: 2, Results: 1,
		NewAttrs: newAxis0Attrs,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b10,
		Infer:      inferGather, Fold: foldGather, Canonicalize: canonAxis,
		Kernel: "Gather", Call: callGather, Cost: elemCost(0),
	})
	register(OpSlice, OpDef{
		Name: "Slice", MinArgs: 3, MaxArgs: 5, Results: 1,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b11110,
		Infer:      inferSlice, Fold: foldSlice,
		Kernel: "Slice", Call: callSlice, Cost: elemCost(0),
	})
	register(OpPad, OpDef{
		Name: "Pad", MinArgs: 2, MaxArgs: 4, Results: 1,
		NewAttrs: newPadAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b1110,
		Infer:      inferPad, Fold: foldPad,
		Kernel: "Pad", Call: callPad, Cost: elemCost(0),
	})
	register(OpIdentity, OpDef{
		Name: "Identity", MinArgs: 1, MaxArgs: 1, Results: 1,
		MinStage: StageImported, MaxStage: StageImported,
		Infer: same, Fold: foldView, Cost: viewCost,
	})
	register(OpShape, OpDef{
		Name: "Shape", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newShapeAttrs,
		MinStage: StageImported, MaxStage: StageImported,
		Infer: inferShape, Fold: foldShape, FoldsFromTypes: true, Cost: viewCost,
	})
	register(OpConstantOfShape, OpDef{
		Name: "ConstantOfShape", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newConstantOfShapeAttrs,
		MinStage: StageImported, MaxStage: StageImported,
		StaticArgs: 0b1,
		Infer:      inferConstantOfShape, Fold: foldConstantOfShape, Cost: viewCost,
	})
	register(OpCast, OpDef{
		Name: "Cast", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newCastAttrs,
		MinStage: StageImported, MaxStage: StageImported,
		Infer: func(n *Node) ([]TensorType, error) {
			to := n.Attrs.(*CastAttrs).To
			if to == Unknown || to > Bool {
				return nil, fmt.Errorf("cast to unsupported type %v", to)
			}
			return []TensorType{{DType: to, Shape: n.Args[0].Type.Shape.Clone()}}, nil
		},
		Fold: foldCast, Cost: elemCost(0),
	})
}

func viewCost(*Node) Cost { return Cost{} }

// foldView reinterprets constant data with the result's shape.
func foldView(n *Node) ([]*Tensor, error) {
	c := n.Args[0].Const.Clone()
	c.Shape = n.Results[0].Type.Shape.Clone()
	return []*Tensor{c}, nil
}

// gatherTensor builds a tensor of the given shape whose element i is
// element idx[i] of src.
func gatherTensor(src *Tensor, shape Shape, idx []int) *Tensor {
	out := &Tensor{DType: src.DType, Shape: shape.Clone()}
	if src.DType == F32 {
		out.F32 = make([]float32, len(idx))
		for i, j := range idx {
			out.F32[i] = src.F32[j]
		}
	} else {
		out.I64 = make([]int64, len(idx))
		for i, j := range idx {
			out.I64[i] = src.I64[j]
		}
	}
	return out
}

func inferFlatten(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	r := t.Shape.Rank()
	ax := n.Attrs.(*AxisAttrs).Axis
	if ax < -r || ax > r {
		return nil, fmt.Errorf("axis %d out of range for rank %d", ax, r)
	}
	if ax < 0 {
		ax += r
	}
	outer, inner := t.Shape[:ax], t.Shape[ax:]
	d0, d1 := outer.Static(), inner.Static()
	switch {
	case inner.HasBatch():
		return nil, fmt.Errorf("flattening the batch into the inner dimension (axis %d of %v) is not supported", ax, t.Shape)
	case outer.HasBatch() && d0 != 1:
		return nil, fmt.Errorf("flattening the batch with other dimensions (axis %d of %v) is not supported", ax, t.Shape)
	case outer.HasBatch():
		d0 = BatchDim
	}
	return []TensorType{Of(t.DType, d0, d1)}, nil
}

// ReshapeTarget resolves a Reshape's target shape against its input: 0
// copies an input dimension, -1 takes what is left, and the symbolic batch
// may be spelt out (x.size(0)) or absorbed by -1.
func ReshapeTarget(n *Node) (Shape, error) {
	in := n.Args[0].Type.Shape
	c := n.Args[1].Const
	if c.DType != I64 || c.Shape.Rank() != 1 {
		return nil, fmt.Errorf("shape must be a 1-D i64 constant, have %v", c.Type())
	}
	allowZero := n.Attrs.(*ReshapeAttrs).AllowZero
	out := make(Shape, len(c.I64))
	infer := -1
	for i, v := range c.I64 {
		switch {
		case v == SymBatch:
			out[i] = BatchDim
		case v == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("0 at position %d copies a dimension the input %v lacks", i, in)
			}
			out[i] = in[i]
		case v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("more than one -1 in %v", c.I64)
			}
			infer = i
		case v < 0 || v > math.MaxInt32:
			return nil, fmt.Errorf("invalid dimension %d in %v", v, c.I64)
		default:
			out[i] = int(v)
		}
	}
	inB, outB := in.HasBatch(), false
	known := 1
	for i, d := range out {
		if i == infer {
			continue
		}
		if d == BatchDim {
			if outB {
				return nil, fmt.Errorf("target %v names the batch twice", c.I64)
			}
			outB = true
			continue
		}
		known *= d
	}
	total := in.Static()
	switch {
	case infer >= 0 && inB && !outB:
		// -1 absorbs the batch: legal only if nothing else joins it.
		if known != total {
			return nil, fmt.Errorf("reshape of %v to %v would mix the batch with other dimensions", in, c.I64)
		}
		out[infer] = BatchDim
	case infer >= 0:
		if inB != outB {
			return nil, fmt.Errorf("reshape of %v to %v adds a batch dimension", in, c.I64)
		}
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v (%d elements per sample) to %v", in, total, c.I64)
		}
		out[infer] = total / known
	default:
		if inB != outB || known != total {
			return nil, fmt.Errorf("cannot reshape %v to %v", in, c.I64)
		}
	}
	if outB && out[0] != BatchDim {
		return nil, fmt.Errorf("reshape of %v to %v moves the batch away from the front", in, c.I64)
	}
	return out, nil
}

func inferReshape(n *Node) ([]TensorType, error) {
	s, err := ReshapeTarget(n)
	if err != nil {
		return nil, err
	}
	return []TensorType{{DType: n.Args[0].Type.DType, Shape: s}}, nil
}

func inferSqueeze(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	axes, err := constInts(n.Arg(1))
	if err != nil {
		return nil, err
	}
	drop := make([]bool, t.Shape.Rank())
	if n.Arg(1) == nil {
		for i, d := range t.Shape {
			drop[i] = d == 1
		}
	}
	for _, ax := range axes {
		ax, err := normAxis(ax, t.Shape.Rank())
		if err != nil {
			return nil, err
		}
		if t.Shape[ax] != 1 {
			return nil, fmt.Errorf("cannot squeeze axis %d of %v", ax, t.Shape)
		}
		drop[ax] = true
	}
	out := Shape{}
	for i, d := range t.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func inferUnsqueeze(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	axes, err := constInts(n.Args[1])
	if err != nil {
		return nil, err
	}
	r := t.Shape.Rank() + len(axes)
	ins := make([]bool, r)
	for _, ax := range axes {
		ax, err := normAxis(ax, r)
		if err != nil {
			return nil, err
		}
		if ins[ax] {
			return nil, fmt.Errorf("axis %d repeated", ax)
		}
		ins[ax] = true
	}
	out := make(Shape, 0, r)
	j := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, t.Shape[j])
			j++
		}
	}
	if out.HasBatch() && out[0] != BatchDim {
		return nil, fmt.Errorf("unsqueeze of %v by %v moves the batch away from the front", t.Shape, axes)
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func inferConcat(n *Node) ([]TensorType, error) {
	t0 := n.Args[0].Type
	ax, err := normAxis(n.Attrs.(*AxisAttrs).Axis, t0.Shape.Rank())
	if err != nil {
		return nil, err
	}
	out := t0.Shape.Clone()
	for i, a := range n.Args {
		if a == nil {
			return nil, fmt.Errorf("argument %d is missing", i)
		}
		t := a.Type
		if t.DType != t0.DType || t.Shape.Rank() != t0.Shape.Rank() {
			return nil, fmt.Errorf("argument %d is %v, argument 0 is %v", i, t, t0)
		}
		for d := range t.Shape {
			if d != ax && t.Shape[d] != t0.Shape[d] {
				return nil, fmt.Errorf("argument %d is %v, argument 0 is %v: they differ off axis %d", i, t, t0, ax)
			}
		}
		if t.Shape[ax] == BatchDim {
			return nil, fmt.Errorf("concatenating along the batch dimension is not supported")
		}
		if i > 0 {
			out[ax] += t.Shape[ax]
		}
	}
	return []TensorType{{DType: t0.DType, Shape: out}}, nil
}

func foldConcat(n *Node) ([]*Tensor, error) {
	out := &Tensor{DType: n.Results[0].Type.DType, Shape: n.Results[0].Type.Shape.Clone()}
	ax := n.Attrs.(*AxisAttrs).Axis
	if ax < 0 {
		ax += out.Shape.Rank()
	}
	outer := out.Shape[:ax].Static()
	for o := 0; o < outer; o++ {
		for _, a := range n.Args {
			c := a.Const
			inner := c.Shape[ax:].Static()
			if c.DType == F32 {
				out.F32 = append(out.F32, c.F32[o*inner:(o+1)*inner]...)
			} else {
				out.I64 = append(out.I64, c.I64[o*inner:(o+1)*inner]...)
			}
		}
	}
	if out.DType == F32 && out.F32 == nil {
		out.F32 = []float32{}
	}
	if out.DType != F32 && out.I64 == nil {
		out.I64 = []int64{}
	}
	return []*Tensor{out}, nil
}

// TransposePerm returns the permutation, the reversal when the attribute is
// empty.
func TransposePerm(n *Node) []int {
	p := n.Attrs.(*TransposeAttrs).Perm
	if len(p) > 0 {
		return p
	}
	r := n.Args[0].Type.Shape.Rank()
	p = make([]int, r)
	for i := range p {
		p[i] = r - 1 - i
	}
	return p
}

func inferTranspose(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	p := TransposePerm(n)
	if len(p) != t.Shape.Rank() {
		return nil, fmt.Errorf("perm %v for rank %d", p, t.Shape.Rank())
	}
	seen := make([]bool, len(p))
	out := make(Shape, len(p))
	for i, ax := range p {
		if ax < 0 || ax >= len(p) || seen[ax] {
			return nil, fmt.Errorf("perm %v is not a permutation", p)
		}
		seen[ax] = true
		out[i] = t.Shape[ax]
	}
	if out.HasBatch() && out[0] != BatchDim {
		return nil, fmt.Errorf("transpose %v of %v moves the batch away from the front", p, t.Shape)
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func canonTranspose(n *Node) error {
	a := n.Attrs.(*TransposeAttrs)
	a.Perm = slices.Clone(TransposePerm(n))
	return nil
}

func foldTranspose(n *Node) ([]*Tensor, error) {
	src := n.Args[0].Const
	p := TransposePerm(n)
	out := n.Results[0].Type.Shape
	st := stridesOf(src.Shape)
	idx := make([]int, out.Static())
	coord := make([]int, len(out))
	for f := range idx {
		s := 0
		for d, ax := range p {
			s += coord[d] * st[ax]
		}
		idx[f] = s
		nextCoord(coord, out)
	}
	return []*Tensor{gatherTensor(src, out, idx)}, nil
}

func inferGather(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	ax, err := normAxis(n.Attrs.(*AxisAttrs).Axis, t.Shape.Rank())
	if err != nil {
		return nil, err
	}
	if t.Shape[ax] == BatchDim {
		return nil, fmt.Errorf("gathering along the batch dimension is not supported")
	}
	ic := n.Args[1].Const
	if ic.DType != I64 && ic.DType != I32 {
		return nil, fmt.Errorf("indices must be integers, have %v", ic.DType)
	}
	for _, i := range ic.I64 {
		if i < -int64(t.Shape[ax]) || i >= int64(t.Shape[ax]) {
			return nil, fmt.Errorf("index %d out of range for axis %d of %v", i, ax, t.Shape)
		}
	}
	out := append(append(t.Shape[:ax:ax], ic.Shape...), t.Shape[ax+1:]...)
	if out.HasBatch() && out[0] != BatchDim {
		return nil, fmt.Errorf("gather result %v has the batch away from the front", out)
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func foldGather(n *Node) ([]*Tensor, error) {
	src := n.Args[0].Const
	ic := n.Args[1].Const
	ax := n.Attrs.(*AxisAttrs).Axis
	if ax < 0 {
		ax += src.Shape.Rank()
	}
	outer, dim, inner := src.Shape[:ax].Static(), src.Shape[ax], src.Shape[ax+1:].Static()
	var idx []int
	for o := 0; o < outer; o++ {
		for _, i := range ic.I64 {
			if i < 0 {
				i += int64(dim)
			}
			for j := 0; j < inner; j++ {
				idx = append(idx, (o*dim+int(i))*inner+j)
			}
		}
	}
	return []*Tensor{gatherTensor(src, n.Results[0].Type.Shape, idx)}, nil
}

// SliceSpec is a resolved Slice on one axis: Count elements from Start in
// steps of Step.
type SliceSpec struct {
	Start, Step, Count int
}

// SliceSpecs resolves a Slice node's starts/ends/axes/steps against its input
// shape with ONNX's clamping rules; axes it does not name get the full range.
func SliceSpecs(n *Node) ([]SliceSpec, error) {
	in := n.Args[0].Type.Shape
	get := func(i int) ([]int64, error) {
		a := n.Arg(i)
		if a == nil {
			return nil, nil
		}
		if a.Kind != KindConst || (a.Const.DType != I64 && a.Const.DType != I32) || a.Const.Shape.Rank() != 1 {
			return nil, fmt.Errorf("argument %d must be a 1-D integer constant", i)
		}
		return a.Const.I64, nil
	}
	starts, err := get(1)
	if err != nil {
		return nil, err
	}
	ends, err := get(2)
	if err != nil {
		return nil, err
	}
	axes, err := get(3)
	if err != nil {
		return nil, err
	}
	steps, err := get(4)
	if err != nil {
		return nil, err
	}
	if len(ends) != len(starts) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("starts, ends, axes and steps differ in length")
	}
	specs := make([]SliceSpec, in.Rank())
	for i, d := range in {
		specs[i] = SliceSpec{Start: 0, Step: 1, Count: d}
	}
	done := make([]bool, in.Rank())
	for i := range starts {
		ax := i
		if axes != nil {
			if axes[i] < -int64(in.Rank()) || axes[i] >= int64(in.Rank()) {
				return nil, fmt.Errorf("axis %d out of range for %v", axes[i], in)
			}
			ax = int(axes[i])
			if ax < 0 {
				ax += in.Rank()
			}
		}
		if ax >= in.Rank() {
			return nil, fmt.Errorf("more slice entries than dimensions of %v", in)
		}
		if done[ax] {
			return nil, fmt.Errorf("axis %d sliced twice", ax)
		}
		done[ax] = true
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return nil, fmt.Errorf("slice step 0")
		}
		if starts[i] == SymBatch || ends[i] == SymBatch {
			return nil, fmt.Errorf("slice bounds on the symbolic batch size are not supported")
		}
		if in[ax] == BatchDim {
			if starts[i] == 0 && ends[i] >= math.MaxInt32 && step == 1 {
				continue // the whole batch: a no-op on this axis
			}
			return nil, fmt.Errorf("slicing the batch dimension is not supported")
		}
		dim := int64(in[ax])
		s, e := starts[i], ends[i]
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		var cnt int64
		if step > 0 {
			s, e = min(max(s, 0), dim), min(max(e, 0), dim)
			if e > s {
				cnt = (e - s + step - 1) / step
			}
		} else {
			s, e = min(max(s, -1), dim-1), min(max(e, -1), dim-1)
			if s > e {
				cnt = (s - e + (-step) - 1) / (-step)
			}
		}
		if cnt == 0 {
			s = 0
		}
		if step > math.MaxInt32 || step < -math.MaxInt32 {
			step = max(min(step, dim), -dim)
		}
		specs[ax] = SliceSpec{Start: int(s), Step: int(step), Count: int(cnt)}
	}
	return specs, nil
}

func inferSlice(n *Node) ([]TensorType, error) {
	specs, err := SliceSpecs(n)
	if err != nil {
		return nil, err
	}
	t := n.Args[0].Type
	out := make(Shape, len(specs))
	for i, s := range specs {
		out[i] = s.Count
		if t.Shape[i] == BatchDim {
			out[i] = BatchDim
		}
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func foldSlice(n *Node) ([]*Tensor, error) {
	src := n.Args[0].Const
	specs, err := SliceSpecs(n)
	if err != nil {
		return nil, err
	}
	out := n.Results[0].Type.Shape
	st := stridesOf(src.Shape)
	idx := make([]int, out.Static())
	coord := make([]int, len(out))
	for f := range idx {
		s := 0
		for d, sp := range specs {
			s += (sp.Start + coord[d]*sp.Step) * st[d]
		}
		idx[f] = s
		nextCoord(coord, out)
	}
	return []*Tensor{gatherTensor(src, out, idx)}, nil
}

// PadAmounts returns a Pad node's begin and end pads per axis.
func PadAmounts(n *Node) (begin, end []int, err error) {
	in := n.Args[0].Type.Shape
	p, err := constInts(n.Args[1])
	if err != nil {
		return nil, nil, fmt.Errorf("pads: %v", err)
	}
	axes := make([]int, in.Rank())
	for i := range axes {
		axes[i] = i
	}
	if a := n.Arg(3); a != nil {
		if axes, err = constInts(a); err != nil {
			return nil, nil, fmt.Errorf("axes: %v", err)
		}
	}
	if len(p) != 2*len(axes) {
		return nil, nil, fmt.Errorf("have %d pads for %d axes", len(p), len(axes))
	}
	begin, end = make([]int, in.Rank()), make([]int, in.Rank())
	for i, ax := range axes {
		ax, err := normAxis(ax, in.Rank())
		if err != nil {
			return nil, nil, err
		}
		begin[ax], end[ax] = p[i], p[i+len(axes)]
		if begin[ax] < 0 || end[ax] < 0 {
			return nil, nil, fmt.Errorf("negative pads %v are not supported", p)
		}
		if in[ax] == BatchDim && (begin[ax] != 0 || end[ax] != 0) {
			return nil, nil, fmt.Errorf("padding the batch dimension is not supported")
		}
	}
	return begin, end, nil
}

// PadValue returns a constant-mode Pad's fill value (0 when absent).
func PadValue(n *Node) (float64, error) {
	if v := n.Arg(2); v != nil {
		return constScalar(v)
	}
	return 0, nil
}

func inferPad(n *Node) ([]TensorType, error) {
	t := n.Args[0].Type
	switch m := n.Attrs.(*PadAttrs).Mode; m {
	case "constant", "reflect", "edge":
	default:
		return nil, fmt.Errorf("unsupported pad mode %q", m)
	}
	begin, end, err := PadAmounts(n)
	if err != nil {
		return nil, err
	}
	if _, err := PadValue(n); err != nil {
		return nil, fmt.Errorf("constant_value: %v", err)
	}
	out := t.Shape.Clone()
	for i := range out {
		if out[i] != BatchDim {
			out[i] += begin[i] + end[i]
		}
	}
	if m := n.Attrs.(*PadAttrs).Mode; m != "constant" {
		for i, d := range t.Shape {
			if (begin[i] > 0 || end[i] > 0) && (d == 0 || (m == "reflect" && (begin[i] >= d || end[i] >= d))) {
				return nil, fmt.Errorf("%s padding of %d, %d on a dimension of size %d", m, begin[i], end[i], d)
			}
		}
	}
	return []TensorType{{DType: t.DType, Shape: out}}, nil
}

func foldPad(n *Node) ([]*Tensor, error) {
	if n.Attrs.(*PadAttrs).Mode != "constant" {
		return nil, fmt.Errorf("folding %s padding of a constant is not supported", n.Attrs.(*PadAttrs).Mode)
	}
	src := n.Args[0].Const
	begin, _, err := PadAmounts(n)
	if err != nil {
		return nil, err
	}
	val, err := PadValue(n)
	if err != nil {
		return nil, err
	}
	out := n.Results[0].Type.Shape
	total := out.Static()
	if total > maxFoldElems {
		return nil, fmt.Errorf("padded constant %v is too large to fold", out)
	}
	res := &Tensor{DType: src.DType, Shape: out.Clone()}
	if src.DType == F32 {
		res.F32 = make([]float32, total)
	} else {
		res.I64 = make([]int64, total)
	}
	st := stridesOf(src.Shape)
	coord := make([]int, len(out))
	for f := 0; f < total; f++ {
		s, inside := 0, true
		for d := range out {
			c := coord[d] - begin[d]
			if c < 0 || c >= src.Shape[d] {
				inside = false
				break
			}
			s += c * st[d]
		}
		switch {
		case src.DType == F32 && inside:
			res.F32[f] = src.F32[s]
		case src.DType == F32:
			res.F32[f] = float32(val)
		case inside:
			res.I64[f] = src.I64[s]
		default:
			res.I64[f] = int64(val)
		}
		nextCoord(coord, out)
	}
	return []*Tensor{res}, nil
}

func shapeRange(n *Node) (int, int) {
	r := n.Args[0].Type.Shape.Rank()
	a := n.Attrs.(*ShapeAttrs)
	clamp := func(v int) int {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	return clamp(a.Start), clamp(a.End)
}

func inferShape(n *Node) ([]TensorType, error) {
	s, e := shapeRange(n)
	return []TensorType{Of(I64, max(e-s, 0))}, nil
}

func foldShape(n *Node) ([]*Tensor, error) {
	s, e := shapeRange(n)
	data := []int64{}
	for _, d := range n.Args[0].Type.Shape[s:max(e, s)] {
		if d == BatchDim {
			data = append(data, SymBatch)
		} else {
			data = append(data, int64(d))
		}
	}
	return []*Tensor{IntTensor(data)}, nil
}

func inferConstantOfShape(n *Node) ([]TensorType, error) {
	c := n.Args[0].Const
	if c.DType != I64 || c.Shape.Rank() != 1 {
		return nil, fmt.Errorf("shape must be a 1-D i64 constant, have %v", c.Type())
	}
	out := make(Shape, len(c.I64))
	for i, v := range c.I64 {
		switch {
		case v == SymBatch && i == 0:
			out[i] = BatchDim
		case v < 0 || v > math.MaxInt32:
			return nil, fmt.Errorf("invalid dimension %d", v)
		default:
			out[i] = int(v)
		}
	}
	return []TensorType{{DType: n.Attrs.(*ConstantOfShapeAttrs).DType, Shape: out}}, nil
}

func foldConstantOfShape(n *Node) ([]*Tensor, error) {
	a := n.Attrs.(*ConstantOfShapeAttrs)
	out := n.Results[0].Type.Shape
	if out.HasBatch() {
		return nil, fmt.Errorf("a constant of batch-dependent shape %v cannot be folded", out)
	}
	total, err := numel(out)
	if err != nil || total > maxFoldElems {
		return nil, fmt.Errorf("constant of shape %v is too large", out)
	}
	t := &Tensor{DType: a.DType, Shape: out.Clone()}
	if a.DType == F32 {
		t.F32 = make([]float32, total)
		for i := range t.F32 {
			t.F32[i] = float32(a.Value)
		}
	} else {
		t.I64 = make([]int64, total)
		for i := range t.I64 {
			t.I64[i] = int64(a.Value)
		}
	}
	return []*Tensor{t}, nil
}

func foldCast(n *Node) ([]*Tensor, error) {
	src := n.Args[0].Const
	to := n.Attrs.(*CastAttrs).To
	out := &Tensor{DType: to, Shape: src.Shape.Clone()}
	switch {
	case to == F32 && src.DType == F32:
		out.F32 = slices.Clone(src.F32)
	case to == F32:
		out.F32 = make([]float32, len(src.I64))
		for i, v := range src.I64 {
			if v == SymBatch {
				return nil, fmt.Errorf("cast of the symbolic batch size to float")
			}
			out.F32[i] = float32(v)
		}
	case src.DType == F32:
		out.I64 = make([]int64, len(src.F32))
		for i, v := range src.F32 {
			f := float64(v)
			if math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
				return nil, fmt.Errorf("cast of %v to an integer", v)
			}
			out.I64[i] = castInt(int64(f), to)
		}
	default:
		out.I64 = make([]int64, len(src.I64))
		for i, v := range src.I64 {
			if v == SymBatch {
				out.I64[i] = v
				continue
			}
			out.I64[i] = castInt(v, to)
		}
	}
	return []*Tensor{out}, nil
}

func castInt(v int64, to DType) int64 {
	switch to {
	case I32:
		return int64(int32(v))
	case Bool:
		if v != 0 {
			return 1
		}
		return 0
	}
	return v
}

func callConcat(n *Node) (*KernelCall, error) {
	shapes := make([][]int, len(n.Args))
	bufs := []BufRef{R(0)}
	for i, a := range n.Args {
		shapes[i] = runtimeShape(a.Type.Shape)
		bufs = append(bufs, A(i))
	}
	return &KernelCall{
		Func:   "Concat",
		Params: &Struct{Type: "ConcatParams", Fields: []Field{{"Shapes", shapes}, {"Axis", n.Attrs.(*AxisAttrs).Axis}}},
		HasN:   true, N: batchN(n.Results[0].Type.Shape),
		Bufs: bufs,
	}, nil
}

func callGather(n *Node) (*KernelCall, error) {
	x := n.Args[0].Type.Shape
	ax := n.Attrs.(*AxisAttrs).Axis
	if ax < 0 {
		ax += x.Rank()
	}
	ic := n.Args[1].Const
	idx := make([]int, len(ic.I64))
	for i, v := range ic.I64 {
		if v < 0 {
			v += int64(x[ax])
		}
		idx[i] = int(v)
	}
	return &KernelCall{
		Func: "Gather",
		Params: &Struct{Type: "GatherParams", Fields: []Field{
			{"Shape", runtimeShape(x)}, {"Axis", ax}, {"Indices", idx}, {"IndicesShape", append([]int{}, ic.Shape...)},
		}},
		HasN: true, N: batchN(x),
		Bufs: []BufRef{R(0), A(0)},
	}, nil
}

// callSlice passes the slice resolved per axis, so that no INT64 sentinel
// reaches generated code.
func callSlice(n *Node) (*KernelCall, error) {
	x := n.Args[0].Type.Shape
	specs, err := SliceSpecs(n)
	if err != nil {
		return nil, err
	}
	var starts, ends, axes, steps []int
	for ax, sp := range specs {
		if x[ax] == BatchDim {
			continue
		}
		end := sp.Start + sp.Count*sp.Step
		if end < 0 {
			// Past the front: ONNX adds the dimension to a negative end,
			// so go far enough that the sum stays below zero.
			end = -x[ax] - 1
		}
		starts, ends = append(starts, sp.Start), append(ends, end)
		axes, steps = append(axes, ax), append(steps, sp.Step)
	}
	return &KernelCall{
		Func: "Slice",
		Params: &Struct{Type: "SliceParams", Fields: []Field{
			{"Shape", runtimeShape(x)}, {"Starts", starts}, {"Ends", ends}, {"Axes", axes}, {"Steps", steps},
		}},
		HasN: true, N: batchN(x),
		Bufs: []BufRef{R(0), A(0)},
	}, nil
}

func callPad(n *Node) (*KernelCall, error) {
	x := n.Args[0].Type.Shape
	begin, end, err := PadAmounts(n)
	if err != nil {
		return nil, err
	}
	val, err := PadValue(n)
	if err != nil {
		return nil, err
	}
	mode := map[string]Sym{"constant": "PadConstant", "reflect": "PadReflect", "edge": "PadEdge"}[n.Attrs.(*PadAttrs).Mode]
	return &KernelCall{
		Func: "Pad",
		Params: &Struct{Type: "PadParams", Fields: []Field{
			{"Shape", runtimeShape(x)}, {"Pads", append(begin, end...)}, {"Mode", mode}, {"Value", f32(val)},
		}},
		HasN: true, N: batchN(x),
		Bufs: []BufRef{R(0), A(0)},
	}, nil
}
