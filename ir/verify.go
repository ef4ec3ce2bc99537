package ir

import (
	"errors"
	"fmt"
	"reflect"
)

// Verify checks the invariants of a graph at a stage: unique IDs, arguments
// defined before use, arity and attribute types from the op table, ops legal
// at the stage, use counts, and from StageTyped on that every recorded type is
// known, static apart from the batch, and equal to what shape inference
// recomputes. It reports every problem it finds, each naming the offending
// node or value.
func Verify(g *Graph, stage Stage) error {
	v := &verifier{g: g, stage: stage, defined: map[*Value]bool{}, ids: map[int]bool{}}
	v.run()
	return errors.Join(v.errs...)
}

type verifier struct {
	g       *Graph
	stage   Stage
	defined map[*Value]bool
	ids     map[int]bool
	errs    []error
}

func (v *verifier) errf(format string, args ...any) {
	if len(v.errs) < 50 {
		v.errs = append(v.errs, fmt.Errorf(format, args...))
	}
}

func (v *verifier) nodeErr(n *Node, format string, args ...any) {
	if len(v.errs) < 50 {
		v.errs = append(v.errs, &NodeError{n, fmt.Errorf(format+"\n\t%s", append(args, FormatNode(n))...)})
	}
}

func (v *verifier) define(val *Value, kind ValueKind, where string) {
	switch {
	case val == nil:
		v.errf("%s: nil value", where)
		return
	case val.Kind != kind:
		v.errf("%s v%d: kind %s, want %s", where, val.ID, kindName(val.Kind), kindName(kind))
	case v.ids[val.ID]:
		v.errf("%s v%d: ID used twice", where, val.ID)
	case val.ID >= v.g.nextValue:
		v.errf("%s v%d: ID beyond the graph's counter %d", where, val.ID, v.g.nextValue)
	}
	v.ids[val.ID] = true
	v.defined[val] = true
	if v.stage >= StageTyped {
		v.checkType(val, where)
	}
}

func (v *verifier) checkType(val *Value, where string) {
	t := val.Type
	if !t.Known() {
		v.errf("%s v%d: type not inferred", where, val.ID)
		return
	}
	for i, d := range t.Shape {
		if d < 0 && d != BatchDim {
			v.errf("%s v%d: dimension %d is %d in %v", where, val.ID, i, d, t)
		}
	}
	switch {
	case val.Kind == KindInput && (t.DType == F32 || t.DType == I32):
		// Labels for training are int32 inputs.
	case val.Kind != KindConst && t.DType != F32:
		v.errf("%s v%d: want f32, have %v", where, val.ID, t)
	}
}

func (v *verifier) run() {
	g := v.g
	for _, in := range g.Inputs {
		v.define(in, KindInput, "input")
		if in != nil && in.Type.Known() && in.Type.Shape.HasBatch() && in.Type.Shape[0] != BatchDim {
			v.errf("input v%d: batch dimension must come first, have %v", in.ID, in.Type)
		}
	}
	for _, p := range g.Params {
		v.define(p, KindParam, "param")
		if p == nil {
			continue
		}
		switch {
		case p.Param == nil:
			v.errf("param v%d: no parameter payload", p.ID)
		case p.Type.Shape.HasBatch():
			v.errf("param v%d: has a batch dimension: %v", p.ID, p.Type)
		case p.Param.Data != nil && len(p.Param.Data) != p.Type.Shape.Static():
			v.errf("param v%d: holds %d values, type %v wants %d", p.ID, len(p.Param.Data), p.Type, p.Type.Shape.Static())
		}
	}
	for _, c := range g.Consts {
		v.define(c, KindConst, "const")
		if c == nil {
			continue
		}
		if c.Const == nil {
			v.errf("const v%d: no data", c.ID)
			continue
		}
		if err := c.Const.check(); err != nil {
			v.errf("const v%d: %v", c.ID, err)
		} else if !c.Const.Type().Equal(c.Type) {
			v.errf("const v%d: recorded type %v, data is %v", c.ID, c.Type, c.Const.Type())
		}
	}
	uses := map[*Value]int{}
	nodeIDs := map[int]bool{}
	for _, n := range g.Nodes {
		v.node(n, uses, nodeIDs)
	}
	for i, o := range g.Outputs {
		if o == nil || !v.defined[o] {
			v.errf("output %d: value not defined in the graph", i)
			continue
		}
		uses[o]++
	}
	if len(g.OutputNames) != len(g.Outputs) {
		v.errf("graph has %d outputs and %d output names", len(g.Outputs), len(g.OutputNames))
	}
	if len(g.Outputs) == 0 {
		v.errf("graph has no outputs")
	}
	for val := range v.defined {
		if val.uses != uses[val] {
			v.errf("v%d: recorded %d uses, counted %d", val.ID, val.uses, uses[val])
		}
	}
	if v.stage == StageTraining {
		v.checkUpdates()
	}
	if g.Planned && len(v.errs) == 0 {
		for _, err := range verifyPlan(g) {
			v.errf("memory plan: %v", err)
		}
	}
}

func (v *verifier) node(n *Node, uses map[*Value]int, nodeIDs map[int]bool) {
	if n.Op == OpInvalid || n.Op >= numOps {
		v.nodeErr(n, "invalid op")
		return
	}
	def := n.Op.Def()
	if nodeIDs[n.ID] || n.ID >= v.g.nextNode {
		v.nodeErr(n, "node ID %d duplicated or beyond the counter", n.ID)
	}
	nodeIDs[n.ID] = true
	if v.stage < def.MinStage || v.stage > def.MaxStage {
		v.nodeErr(n, "op %s is not legal at stage %s (want %s..%s)", n.Op, v.stage, def.MinStage, def.MaxStage)
	}
	if err := checkArity(n); err != nil {
		v.nodeErr(n, "%v", err)
	}
	wantAttrs := reflect.TypeOf(nil)
	if def.NewAttrs != nil {
		wantAttrs = reflect.TypeOf(def.NewAttrs())
	}
	if have := reflect.TypeOf(n.Attrs); have != wantAttrs {
		v.nodeErr(n, "attributes: want %v, have %v", wantAttrs, have)
		return
	}
	for i, a := range n.Args {
		if a == nil {
			continue
		}
		uses[a]++
		if !v.defined[a] {
			v.nodeErr(n, "argument %d (v%d) is not defined before its use", i, a.ID)
		}
		if v.stage >= StageTyped && def.IsStatic(i) && a.Kind != KindConst {
			v.nodeErr(n, "argument %d (v%d) must be a constant", i, a.ID)
		}
	}
	if len(n.Results) != def.Results {
		v.nodeErr(n, "want %d results, have %d", def.Results, len(n.Results))
	}
	for _, r := range n.Results {
		if r != nil && r.Def != n {
			v.nodeErr(n, "result v%d names another defining node", r.ID)
		}
		v.define(r, KindResult, "result")
	}
	if v.stage < StageTyped {
		return
	}
	if n.Op == OpConv && n.Attrs.(*ConvAttrs).Act != "" && v.stage < StageLowered {
		v.nodeErr(n, "fused activations appear only from stage lowered on")
	}
	if n.Op == OpConv && n.Attrs.(*ConvAttrs).BN && v.stage < StageLowered {
		v.nodeErr(n, "fused batch normalisations appear only from stage lowered on")
	}
	if n.Op == OpConv && n.Attrs.(*ConvAttrs).Residual && v.stage < StageLowered {
		v.nodeErr(n, "fused residuals appear only from stage lowered on")
	}
	if n.Op == OpConv && n.Attrs.(*ConvAttrs).AutoPad != "NOTSET" || (n.Op == OpMaxPool || n.Op == OpAveragePool) && n.Attrs.(*PoolAttrs).AutoPad != "NOTSET" {
		v.nodeErr(n, "auto_pad must be resolved into pads")
	}
	for _, a := range n.Args {
		if a != nil && !a.Type.Known() {
			return // already reported
		}
	}
	want, err := inferTypes(n)
	if err != nil {
		var ne *NodeError
		if errors.As(err, &ne) {
			err = ne.Err
		}
		v.nodeErr(n, "shape inference fails: %v", err)
		return
	}
	for i, r := range n.Results {
		if r != nil && !r.Type.Equal(want[i]) {
			v.nodeErr(n, "result v%d: want %v, have %v", r.ID, want[i], r.Type)
		}
	}
}

// checkUpdates: once a graph has a loss, every trainable parameter is
// updated exactly once.
func (v *verifier) checkUpdates() {
	hasLoss := false
	updates := map[*Value]int{}
	for _, n := range v.g.Nodes {
		switch n.Op {
		case OpSoftmaxCrossEntropy:
			hasLoss = true
		case OpUpdate:
			updates[n.Args[0]]++
		}
	}
	if !hasLoss {
		return
	}
	for _, p := range v.g.Params {
		switch c := updates[p]; {
		case p.Param.Trainable && c == 0:
			v.errf("param v%d %q is trainable but has no gradient and no update", p.ID, p.Name)
		case c > 1:
			v.errf("param v%d %q is updated %d times", p.ID, p.Name, c)
		}
	}
}
