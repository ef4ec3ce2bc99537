package onnx

import (
	"fmt"
	"math"
	"slices"

	"github.com/smhgen/smhgen/ir"
	"gorgonia.org/tensor"
)

// ctx is one ONNX node being lowered.
type ctx struct {
	imp   *importer
	pn    *protoNode
	attrs map[string]any
	args  []*ir.Value
	used  map[string]bool
}

// importFunc lowers one ONNX node and returns the values of its outputs, in
// order; fewer values than outputs means the rest are unsupported (an error
// only if something reads them).
type importFunc func(c *ctx) ([]*ir.Value, error)

// importers maps ONNX op types to their lowering. Ops whose inputs moved
// between attributes and inputs across opsets always lower to the input
// form, with constants made from the attributes.
var importers map[string]importFunc

func init() {
	importers = map[string]importFunc{
		"Conv":               importConv,
		"Gemm":               importGemm,
		"MatMul":             plain(ir.OpMatMul),
		"BatchNormalization": importBatchNorm,
		"Relu":               plain(ir.OpRelu),
		"Sigmoid":            plain(ir.OpSigmoid),
		"HardSwish":          plain(ir.OpHardSwish),
		"HardSigmoid":        importHardSigmoid,
		"Clip":               importClip,
		"Add":                plain(ir.OpAdd),
		"Sub":                plain(ir.OpSub),
		"Mul":                plain(ir.OpMul),
		"Div":                plain(ir.OpDiv),
		"GlobalAveragePool":  plain(ir.OpGlobalAveragePool),
		"AveragePool":        importPool(ir.OpAveragePool),
		"MaxPool":            importPool(ir.OpMaxPool),
		"Flatten":            importAxis(ir.OpFlatten, 1),
		"Reshape":            importReshape,
		"Squeeze":            importSqueeze(ir.OpSqueeze),
		"Unsqueeze":          importSqueeze(ir.OpUnsqueeze),
		"Concat":             importConcat,
		"Softmax":            importSoftmax(ir.OpSoftmax),
		"LogSoftmax":         importSoftmax(ir.OpLogSoftmax),
		"Dropout":            importDropout,
		"Identity":           plain(ir.OpIdentity),
		"Pad":                importPad,
		"ReduceMean":         importReduceMean,
		"Transpose":          importTranspose,
		"Gather":             importAxis(ir.OpGather, 0),
		"Shape":              importShape,
		"Constant":           importConstant,
		"ConstantOfShape":    importConstantOfShape,
		"Slice":              importSlice,
		"Cast":               importCast,
	}
}

// SupportedOps lists the ONNX op types the frontend lowers, sorted.
func SupportedOps() []string {
	var out []string
	for k := range importers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// producer returns the node that outputs name, or nil.
func (imp *importer) producer(name string) *protoNode {
	for i := range imp.pm.graph.nodes {
		if slices.Contains(imp.pm.graph.nodes[i].outputs, name) {
			return &imp.pm.graph.nodes[i]
		}
	}
	return nil
}

func (imp *importer) node(pn *protoNode, attrs map[string]any) error {
	c := &ctx{imp: imp, pn: pn, attrs: attrs, used: map[string]bool{}}
	for _, name := range pn.inputs {
		if name == "" {
			c.args = append(c.args, nil)
			continue
		}
		v, ok := imp.vals[name]
		if !ok {
			if later := imp.producer(name); later != nil {
				return fmt.Errorf("input %q is the output of node %q (%s), which comes later: the graph has a cycle or is not in topological order", name, later.name, later.opType)
			}
			return fmt.Errorf("input %q is not an initializer, a graph input or the output of an earlier node", name)
		}
		if v == nil {
			return fmt.Errorf("input %q is an output the compiler does not support (%s)", name, imp.unsupported[name])
		}
		c.args = append(c.args, v)
	}
	outs, err := importers[pn.opType](c)
	if err != nil {
		return err
	}
	for name := range attrs {
		if !c.used[name] {
			return fmt.Errorf("attribute %q is not supported", name)
		}
	}
	for i, name := range pn.outputs {
		if name == "" {
			continue
		}
		if _, dup := imp.vals[name]; dup {
			return fmt.Errorf("output %q is defined twice", name)
		}
		if i >= len(outs) {
			imp.vals[name] = nil
			imp.unsupported[name] = fmt.Sprintf("output %d of node %q (%s)", i, pn.name, pn.opType)
			continue
		}
		if outs[i].Name == "" {
			outs[i].Name = name
		}
		imp.vals[name] = outs[i]
	}
	return nil
}

// add appends a node named after the ONNX node. Float initializers in
// positions the op needs constant (clip bounds, pad values) become constants.
func (c *ctx) add(op ir.Op, attrs any, args ...*ir.Value) *ir.Node {
	def := op.Def()
	for i, a := range args {
		if a != nil && a.Kind == ir.KindParam && def.IsStatic(i) && a.Type.Shape.Static() <= constParamThreshold {
			args[i] = c.imp.g.AddConst(a.Name, ir.FloatTensor(slices.Clone(a.Param.Data), a.Type.Shape...))
		}
	}
	return c.imp.g.Append().Add(op, c.pn.name, attrs, args...)
}

func (c *ctx) arity(min, max int) error {
	if len(c.args) < min || len(c.args) > max {
		if min == max {
			return fmt.Errorf("want %d inputs, have %d", min, len(c.args))
		}
		return fmt.Errorf("want %d to %d inputs, have %d", min, max, len(c.args))
	}
	for i := 0; i < min; i++ {
		if c.args[i] == nil {
			return fmt.Errorf("required input %d is empty", i)
		}
	}
	return nil
}

func (c *ctx) has(name string) bool {
	_, ok := c.attrs[name]
	return ok
}

func (c *ctx) int(name string, def int64) (int64, error) {
	v, ok := c.attrs[name]
	if !ok {
		return def, nil
	}
	c.used[name] = true
	i, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("attribute %q: want an int, have %T", name, v)
	}
	return i, nil
}

func (c *ctx) ints(name string, def []int) ([]int, error) {
	v, ok := c.attrs[name]
	if !ok {
		return def, nil
	}
	c.used[name] = true
	l, ok := v.([]int64)
	if !ok {
		return nil, fmt.Errorf("attribute %q: want ints, have %T", name, v)
	}
	out := make([]int, len(l))
	for i, x := range l {
		if x > math.MaxInt32 || x < math.MinInt32 {
			return nil, fmt.Errorf("attribute %q: value %d out of range", name, x)
		}
		out[i] = int(x)
	}
	return out, nil
}

func (c *ctx) int64s(name string) ([]int64, bool, error) {
	v, ok := c.attrs[name]
	if !ok {
		return nil, false, nil
	}
	c.used[name] = true
	l, ok := v.([]int64)
	if !ok {
		return nil, false, fmt.Errorf("attribute %q: want ints, have %T", name, v)
	}
	return l, true, nil
}

func (c *ctx) float(name string, def float32) (float32, error) {
	v, ok := c.attrs[name]
	if !ok {
		return def, nil
	}
	c.used[name] = true
	f, ok := v.(float32)
	if !ok {
		return 0, fmt.Errorf("attribute %q: want a float, have %T", name, v)
	}
	return f, nil
}

func (c *ctx) str(name, def string) (string, error) {
	v, ok := c.attrs[name]
	if !ok {
		return def, nil
	}
	c.used[name] = true
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("attribute %q: want a string, have %T", name, v)
	}
	return s, nil
}

// ignore marks attributes whose value does not change our semantics when it
// equals want.
func (c *ctx) ignore(name string, want int64) error {
	v, err := c.int(name, want)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("attribute %s=%d is not supported (want %d)", name, v, want)
	}
	return nil
}

// intConst makes a constant from attribute data.
func (c *ctx) intConst(vals []int64) *ir.Value {
	return c.imp.g.AddConst("", ir.IntTensor(slices.Clone(vals)))
}

func (c *ctx) floatConst(v float32) *ir.Value {
	return c.imp.g.AddConst("", ir.FloatTensor([]float32{v}, []int{}...))
}

func results(n *ir.Node) ([]*ir.Value, error) { return n.Results, nil }

func plain(op ir.Op) importFunc {
	return func(c *ctx) ([]*ir.Value, error) {
		d := op.Def()
		if err := c.arity(d.MinArgs, d.MaxArgs); err != nil {
			return nil, err
		}
		return results(c.add(op, nil, c.args...))
	}
}

func importConv(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(2, 3); err != nil {
		return nil, err
	}
	a := &ir.ConvAttrs{}
	var err error
	if a.Strides, err = c.ints("strides", []int{1, 1}); err != nil {
		return nil, err
	}
	if a.Pads, err = c.ints("pads", []int{0, 0, 0, 0}); err != nil {
		return nil, err
	}
	if a.Dilations, err = c.ints("dilations", []int{1, 1}); err != nil {
		return nil, err
	}
	g, err := c.int("group", 1)
	if err != nil {
		return nil, err
	}
	a.Group = int(g)
	if a.AutoPad, err = c.str("auto_pad", "NOTSET"); err != nil {
		return nil, err
	}
	ks, err := c.ints("kernel_shape", nil)
	if err != nil {
		return nil, err
	}
	if len(ks) != 0 && len(ks) != 2 || len(a.Strides) != 2 || len(a.Dilations) != 2 || len(a.Pads) != 4 {
		return nil, fmt.Errorf("only 2-D convolution is supported (kernel_shape %v, strides %v, pads %v)", ks, a.Strides, a.Pads)
	}
	if w := c.args[1]; ks != nil && w.Type.Known() && (w.Type.Shape.Rank() != 4 || !w.Type.Shape[2:].Equal(ir.Shape(ks))) {
		return nil, fmt.Errorf("kernel_shape %v disagrees with the weight %v", ks, w.Type)
	}
	return results(c.add(ir.OpConv, a, c.args...))
}

func importGemm(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(2, 3); err != nil {
		return nil, err
	}
	a := &ir.GemmAttrs{}
	var err error
	if a.Alpha, err = c.float("alpha", 1); err != nil {
		return nil, err
	}
	if a.Beta, err = c.float("beta", 1); err != nil {
		return nil, err
	}
	ta, err := c.int("transA", 0)
	if err != nil {
		return nil, err
	}
	tb, err := c.int("transB", 0)
	if err != nil {
		return nil, err
	}
	a.TransA, a.TransB = ta != 0, tb != 0
	return results(c.add(ir.OpGemm, a, c.args...))
}

func importBatchNorm(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(5, 5); err != nil {
		return nil, err
	}
	a := &ir.BatchNormAttrs{}
	var err error
	if a.Epsilon, err = c.float("epsilon", 1e-5); err != nil {
		return nil, err
	}
	if a.Momentum, err = c.float("momentum", 0.9); err != nil {
		return nil, err
	}
	if err := c.ignore("training_mode", 0); err != nil {
		return nil, fmt.Errorf("%v: export the model in eval mode", err)
	}
	if err := c.ignore("spatial", 1); err != nil {
		return nil, err
	}
	if err := c.ignore("is_test", 1); c.has("is_test") && err != nil {
		return nil, err
	}
	return results(c.add(ir.OpBatchNorm, a, c.args...))
}

func importHardSigmoid(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	a := &ir.HardSigmoidAttrs{}
	var err error
	if a.Alpha, err = c.float("alpha", 0.2); err != nil {
		return nil, err
	}
	if a.Beta, err = c.float("beta", 0.5); err != nil {
		return nil, err
	}
	return results(c.add(ir.OpHardSigmoid, a, c.args...))
}

func importClip(c *ctx) ([]*ir.Value, error) {
	if c.imp.opset >= 11 {
		if err := c.arity(1, 3); err != nil {
			return nil, err
		}
		return results(c.add(ir.OpClip, nil, c.args...))
	}
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	lo, err := c.float("min", -math.MaxFloat32)
	if err != nil {
		return nil, err
	}
	hi, err := c.float("max", math.MaxFloat32)
	if err != nil {
		return nil, err
	}
	return results(c.add(ir.OpClip, nil, c.args[0], c.floatConst(lo), c.floatConst(hi)))
}

func importPool(op ir.Op) importFunc {
	return func(c *ctx) ([]*ir.Value, error) {
		if err := c.arity(1, 1); err != nil {
			return nil, err
		}
		a := &ir.PoolAttrs{}
		var err error
		if a.KernelShape, err = c.ints("kernel_shape", nil); err != nil {
			return nil, err
		}
		if a.Strides, err = c.ints("strides", []int{1, 1}); err != nil {
			return nil, err
		}
		if a.Pads, err = c.ints("pads", []int{0, 0, 0, 0}); err != nil {
			return nil, err
		}
		if a.Dilations, err = c.ints("dilations", []int{1, 1}); err != nil {
			return nil, err
		}
		if a.AutoPad, err = c.str("auto_pad", "NOTSET"); err != nil {
			return nil, err
		}
		ceil, err := c.int("ceil_mode", 0)
		if err != nil {
			return nil, err
		}
		a.CeilMode = ceil != 0
		if op == ir.OpAveragePool {
			cip, err := c.int("count_include_pad", 0)
			if err != nil {
				return nil, err
			}
			a.CountIncludePad = cip != 0
		} else if err := c.ignore("storage_order", 0); err != nil {
			return nil, err
		}
		if len(a.KernelShape) != 2 || len(a.Strides) != 2 || len(a.Dilations) != 2 || len(a.Pads) != 4 {
			return nil, fmt.Errorf("only 2-D pooling is supported (kernel_shape %v, strides %v, pads %v)", a.KernelShape, a.Strides, a.Pads)
		}
		return results(c.add(op, a, c.args...))
	}
}

func importAxis(op ir.Op, def int64) importFunc {
	return func(c *ctx) ([]*ir.Value, error) {
		d := op.Def()
		if err := c.arity(d.MinArgs, d.MaxArgs); err != nil {
			return nil, err
		}
		ax, err := c.int("axis", def)
		if err != nil {
			return nil, err
		}
		return results(c.add(op, &ir.AxisAttrs{Axis: int(ax)}, c.args...))
	}
}

func importConcat(c *ctx) ([]*ir.Value, error) {
	if !c.has("axis") {
		return nil, fmt.Errorf("attribute \"axis\" is required")
	}
	if len(c.args) == 0 {
		return nil, fmt.Errorf("want at least one input")
	}
	return importAxis(ir.OpConcat, 0)(c)
}

func importReshape(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(2, 2); err != nil {
		return nil, err
	}
	az, err := c.int("allowzero", 0)
	if err != nil {
		return nil, err
	}
	return results(c.add(ir.OpReshape, &ir.ReshapeAttrs{AllowZero: az != 0}, c.args...))
}

// importSqueeze takes axes as an attribute before opset 13 and as an input
// from 13 on.
func importSqueeze(op ir.Op) importFunc {
	return func(c *ctx) ([]*ir.Value, error) {
		if c.imp.opset >= 13 {
			if err := c.arity(op.Def().MinArgs, 2); err != nil {
				return nil, err
			}
			return results(c.add(op, nil, c.args...))
		}
		if err := c.arity(1, 1); err != nil {
			return nil, err
		}
		axes, ok, err := c.int64s("axes")
		if err != nil {
			return nil, err
		}
		args := []*ir.Value{c.args[0]}
		if ok {
			args = append(args, c.intConst(axes))
		} else if op == ir.OpUnsqueeze {
			return nil, fmt.Errorf("attribute \"axes\" is required")
		}
		return results(c.add(op, nil, args...))
	}
}

// importSoftmax handles the opset-13 change: before it, softmax coerced the
// input to 2-D at axis (default 1); that is Flatten, softmax over axis 1,
// and a Reshape back to the input's shape.
func importSoftmax(op ir.Op) importFunc {
	return func(c *ctx) ([]*ir.Value, error) {
		if err := c.arity(1, 1); err != nil {
			return nil, err
		}
		if c.imp.opset >= 13 {
			ax, err := c.int("axis", -1)
			if err != nil {
				return nil, err
			}
			return results(c.add(op, &ir.AxisAttrs{Axis: int(ax)}, c.args...))
		}
		ax, err := c.int("axis", 1)
		if err != nil {
			return nil, err
		}
		x := c.args[0]
		flat := c.add(ir.OpFlatten, &ir.AxisAttrs{Axis: int(ax)}, x)
		sm := c.add(op, &ir.AxisAttrs{Axis: 1}, flat.Results[0])
		shape := c.add(ir.OpShape, nil, x)
		return results(c.add(ir.OpReshape, nil, sm.Results[0], shape.Results[0]))
	}
}

func importDropout(c *ctx) ([]*ir.Value, error) {
	seed, err := c.int("seed", 0)
	if err != nil {
		return nil, err
	}
	a := &ir.DropoutAttrs{Seed: int(seed)}
	if c.imp.opset >= 12 {
		if err := c.arity(1, 3); err != nil {
			return nil, err
		}
		return results(c.add(ir.OpDropout, a, c.args...))
	}
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	ratio, err := c.float("ratio", 0.5)
	if err != nil {
		return nil, err
	}
	if c.has("is_test") {
		if _, err := c.int("is_test", 0); err != nil {
			return nil, err
		}
	}
	return results(c.add(ir.OpDropout, a, c.args[0], c.floatConst(ratio)))
}

func importPad(c *ctx) ([]*ir.Value, error) {
	mode, err := c.str("mode", "constant")
	if err != nil {
		return nil, err
	}
	a := &ir.PadAttrs{Mode: mode}
	if c.imp.opset >= 11 {
		if err := c.arity(2, 4); err != nil {
			return nil, err
		}
		return results(c.add(ir.OpPad, a, c.args...))
	}
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	pads, ok, err := c.int64s("pads")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("attribute \"pads\" is required")
	}
	val, err := c.float("value", 0)
	if err != nil {
		return nil, err
	}
	return results(c.add(ir.OpPad, a, c.args[0], c.intConst(pads), c.floatConst(val)))
}

func importReduceMean(c *ctx) ([]*ir.Value, error) {
	kd, err := c.int("keepdims", 1)
	if err != nil {
		return nil, err
	}
	noop, err := c.int("noop_with_empty_axes", 0)
	if err != nil {
		return nil, err
	}
	a := &ir.ReduceAttrs{KeepDims: kd != 0, NoopWithEmptyAxes: noop != 0}
	if c.imp.opset >= 18 {
		if err := c.arity(1, 2); err != nil {
			return nil, err
		}
		return results(c.add(ir.OpReduceMean, a, c.args...))
	}
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	args := []*ir.Value{c.args[0]}
	axes, ok, err := c.int64s("axes")
	if err != nil {
		return nil, err
	}
	if ok {
		args = append(args, c.intConst(axes))
	}
	return results(c.add(ir.OpReduceMean, a, args...))
}

func importTranspose(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	perm, err := c.ints("perm", nil)
	if err != nil {
		return nil, err
	}
	return results(c.add(ir.OpTranspose, &ir.TransposeAttrs{Perm: perm}, c.args...))
}

func importShape(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	start, err := c.int("start", 0)
	if err != nil {
		return nil, err
	}
	end, err := c.int("end", ir.ShapeEndAll)
	if err != nil {
		return nil, err
	}
	clamp := func(v int64) int { return int(max(min(v, ir.ShapeEndAll), -ir.ShapeEndAll)) }
	return results(c.add(ir.OpShape, &ir.ShapeAttrs{Start: clamp(start), End: clamp(end)}, c.args...))
}

// attrTensor returns a tensor attribute as onnx-go decoded it, with the dims
// the protobuf reader saw.
func (c *ctx) attrTensor(name string) (tensor.Tensor, []int64, error) {
	v := c.attrs[name]
	c.used[name] = true
	t, ok := v.(tensor.Tensor)
	if !ok {
		return nil, nil, fmt.Errorf("attribute %q: want a tensor, have %T", name, v)
	}
	for _, a := range c.pn.attrs {
		if a.name == name && len(a.tensors) == 1 {
			return t, a.tensors[0].dims, nil
		}
	}
	return nil, nil, fmt.Errorf("attribute %q: tensor not found", name)
}

func importConstant(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(0, 0); err != nil {
		return nil, err
	}
	if len(c.attrs) != 1 {
		return nil, fmt.Errorf("want exactly one value attribute, have %d", len(c.attrs))
	}
	name := ""
	if len(c.pn.outputs) > 0 {
		name = c.pn.outputs[0]
	}
	g := c.imp.g
	switch {
	case c.has("value"):
		t, dims, err := c.attrTensor("value")
		if err != nil {
			return nil, err
		}
		v, err := c.imp.decoded(name, dims, t, false)
		if err != nil {
			return nil, err
		}
		return []*ir.Value{v}, nil
	case c.has("value_float"):
		f, err := c.float("value_float", 0)
		if err != nil {
			return nil, err
		}
		return []*ir.Value{g.AddConst(name, ir.FloatTensor([]float32{f}, []int{}...))}, nil
	case c.has("value_int"):
		i, err := c.int("value_int", 0)
		if err != nil {
			return nil, err
		}
		return []*ir.Value{g.AddConst(name, ir.IntTensor([]int64{i}, []int{}...))}, nil
	case c.has("value_ints"):
		l, _, err := c.int64s("value_ints")
		if err != nil {
			return nil, err
		}
		return []*ir.Value{g.AddConst(name, ir.IntTensor(slices.Clone(l)))}, nil
	case c.has("value_floats"):
		c.used["value_floats"] = true
		l, ok := c.attrs["value_floats"].([]float32)
		if !ok {
			return nil, fmt.Errorf("attribute \"value_floats\": want floats")
		}
		return []*ir.Value{g.AddConst(name, ir.FloatTensor(slices.Clone(l)))}, nil
	}
	for k := range c.attrs {
		return nil, fmt.Errorf("attribute %q is not supported", k)
	}
	return nil, nil
}

func importConstantOfShape(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	a := &ir.ConstantOfShapeAttrs{DType: ir.F32}
	if c.has("value") {
		t, _, err := c.attrTensor("value")
		if err != nil {
			return nil, err
		}
		f32, i64, err := tensorData(t)
		if err != nil {
			return nil, err
		}
		switch {
		case len(f32) == 1:
			a.Value = float64(f32[0])
		case len(i64) == 1:
			a.Value, a.DType = float64(i64[0]), ir.I64
		default:
			return nil, fmt.Errorf("attribute \"value\" must hold one element")
		}
	}
	return results(c.add(ir.OpConstantOfShape, a, c.args...))
}

func importSlice(c *ctx) ([]*ir.Value, error) {
	if c.imp.opset >= 10 {
		if err := c.arity(3, 5); err != nil {
			return nil, err
		}
		return results(c.add(ir.OpSlice, nil, c.args...))
	}
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	args := []*ir.Value{c.args[0]}
	for _, name := range []string{"starts", "ends", "axes"} {
		l, ok, err := c.int64s(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			if name == "axes" {
				break
			}
			return nil, fmt.Errorf("attribute %q is required", name)
		}
		args = append(args, c.intConst(l))
	}
	return results(c.add(ir.OpSlice, nil, args...))
}

func importCast(c *ctx) ([]*ir.Value, error) {
	if err := c.arity(1, 1); err != nil {
		return nil, err
	}
	to, err := c.int("to", 0)
	if err != nil {
		return nil, err
	}
	var d ir.DType
	switch to {
	case dtFloat:
		d = ir.F32
	case dtInt64:
		d = ir.I64
	case dtInt32:
		d = ir.I32
	case dtBool:
		d = ir.Bool
	default:
		return nil, fmt.Errorf("cast to %s is not supported", dtypeName(to))
	}
	return results(c.add(ir.OpCast, &ir.CastAttrs{To: d}, c.args...))
}

// untieNormParams gives every BatchNormalization its own scale, bias, mean
// and variance. PyTorch's exporter merges initializers with equal values,
// and freshly initialised BatchNorm layers are all alike (scale and
// variance ones, bias and mean zeros), so an untrained export shares them
// between layers and even between roles (one tensor of ones serving as a
// scale and as a variance). Shared, they would train as one tied scale and
// mix every layer's running statistics; the model the file came from has
// separate ones. A copy takes the name of the value the BatchNorm read (the
// exporter's Identity output), or the param's with "#2", "#3", ... when
// that name is taken.
func (imp *importer) untieNormParams() {
	g := imp.g
	taken := map[string]bool{}
	for _, p := range g.Params {
		taken[p.Name] = true
	}
	clone := func(n *ir.Node, i int, p *ir.Value) {
		v := n.Args[i]
		name := v.Name
		for k := 2; taken[name]; k++ {
			name = fmt.Sprintf("%s#%d", v.Name, k)
		}
		taken[name] = true
		c := g.AddParam(name, p.Type, &ir.Param{Data: append([]float32(nil), p.Param.Data...), Trainable: p.Param.Trainable, Role: p.Param.Role})
		g.SetArg(n, i, c)
	}
	// First the uses through the exporter's Identity nodes, which are named
	// after the tensors the merge replaced: each becomes a param of that
	// name.
	for _, n := range g.Nodes {
		if n.Op != ir.OpBatchNorm {
			continue
		}
		for i := 1; i <= 4 && i < len(n.Args); i++ {
			p := n.Args[i]
			for p != nil && p.Kind == ir.KindResult && p.Def.Op == ir.OpIdentity {
				p = p.Def.Args[0]
			}
			if p != nil && p != n.Args[i] && p.Kind == ir.KindParam {
				clone(n, i, p)
			}
		}
	}
	// Then params a BatchNorm reads directly but shares with another live
	// reader: each such use but the last gets a copy named param#2, #3, ...
	dead := map[*ir.Value]int{} // readers of a param that are now unused Identity nodes
	outputs := map[*ir.Value]bool{}
	for _, o := range g.Outputs {
		outputs[o] = true
	}
	for _, n := range g.Nodes {
		if n.Op == ir.OpIdentity && n.Results[0].Uses() == 0 && !outputs[n.Results[0]] {
			dead[n.Args[0]]++
		}
	}
	for _, n := range g.Nodes {
		if n.Op != ir.OpBatchNorm {
			continue
		}
		for i := 1; i <= 4 && i < len(n.Args); i++ {
			if p := n.Args[i]; p != nil && p.Kind == ir.KindParam && p.Uses()-dead[p] > 1 {
				clone(n, i, p)
			}
		}
	}
}

// assignRoles sets each parameter's role from its first consumer and keeps
// normalisation statistics out of training.
func (imp *importer) assignRoles() {
	set := func(v *ir.Value, r ir.Role) {
		if v != nil && v.Kind == ir.KindParam && v.Param.Role == ir.RoleOther {
			v.Param.Role = r
		}
	}
	for _, n := range imp.g.Nodes {
		switch n.Op {
		case ir.OpConv, ir.OpGemm:
			set(n.Arg(1), ir.RoleWeight)
			set(n.Arg(2), ir.RoleBias)
			if n.Op == ir.OpGemm && n.Arg(0).Kind == ir.KindParam {
				set(n.Arg(0), ir.RoleWeight)
			}
		case ir.OpMatMul:
			set(n.Arg(1), ir.RoleWeight)
			set(n.Arg(0), ir.RoleWeight)
		case ir.OpAdd:
			// MatMul followed by Add of a parameter is a dense layer's bias.
			for i := 0; i < 2; i++ {
				if d := n.Args[1-i].Def; d != nil && d.Op == ir.OpMatMul {
					set(n.Args[i], ir.RoleBias)
				}
			}
		case ir.OpBatchNorm:
			set(n.Args[1], ir.RoleNormScale)
			set(n.Args[2], ir.RoleNormBias)
			set(n.Args[3], ir.RoleNormMean)
			set(n.Args[4], ir.RoleNormVar)
		}
	}
	for _, p := range imp.g.Params {
		if p.Param.Role == ir.RoleNormMean || p.Param.Role == ir.RoleNormVar {
			p.Param.Trainable = false
		}
	}
}
