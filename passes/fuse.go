package passes

import (
	"math"
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// Fuse merges into a Conv what its runtime kernel can apply as an
// epilogue, so that it costs no extra pass over memory: an inference
// BatchNormalization that reads the Conv alone (Conv2DBatchNorm folds the
// statistics at run time, for the weights a trainable or SMH-compressed
// model computes or updates, which BNFold cannot fold at compile time), then
// a residual Add of a tensor of the same shape (the end of a ResNet
// block), then an activation (ReLU, and Clip with finite or infinite
// constant bounds, which covers ReLU6). The normalisation and the residual
// are fused outside training only: autodiff differentiates neither form.
//
// Needs: StageTyped. Guarantees: StageLowered; no Relu or Clip that reads a
// single-use Conv remains, nor, outside training, a BatchNormalization or
// an Add of two same-shaped tensors one of which a single-use Conv
// computes after the other.
var Fuse = &Pass{
	Name:  "fuse",
	Doc:   "fuse Conv with a following inference BatchNorm, then a residual Add, then Relu or Clip",
	Stage: ir.StageLowered,
	After: []string{"fold"},
	Run: func(g *ir.Graph, c *Context) error {
		rules := []rewrite{{"conv-act", fuseConvAct}}
		if !c.Training {
			rules = append([]rewrite{{"conv-bn", fuseConvBN}, {"conv-add", fuseConvAdd}}, rules...)
		}
		return applyRewrites(g, c, "fuse", rules)
	},
}

// fusableConv returns the Conv that alone reads v and can take an
// epilogue, or nil.
func fusableConv(g *ir.Graph, v *ir.Value) *ir.Node {
	conv := v.Def
	if conv == nil || conv.Op != ir.OpConv || conv.Results[0].Uses() != 1 || g.IsOutput(conv.Results[0]) {
		return nil
	}
	if conv.Attrs.(*ir.ConvAttrs).Act != "" {
		return nil
	}
	return conv
}

func fuseConvBN(g *ir.Graph, bn *ir.Node) bool {
	if bn.Op != ir.OpBatchNorm {
		return false
	}
	conv := fusableConv(g, bn.Args[0])
	if conv == nil || conv.Attrs.(*ir.ConvAttrs).BN {
		return false
	}
	a := conv.Attrs.(*ir.ConvAttrs)
	a.BN, a.BNEpsilon = true, bn.Attrs.(*ir.BatchNormAttrs).Epsilon
	for len(conv.Args) < 3 { // a nil bias slot, which counts no use
		conv.Args = append(conv.Args, nil)
	}
	conv.Args = append(conv.Args, nil, nil, nil, nil)
	for i, v := range bn.Args[1:5] {
		g.SetArg(conv, 3+i, v)
	}
	g.ReplaceAllUses(bn.Results[0], conv.Results[0])
	g.Remove(bn)
	return true
}

// fuseConvAdd makes an Add of two same-shaped tensors the residual of the
// Conv that computes one of them, when the other is ready before that
// Conv runs (a graph input, or a node earlier in the schedule): of two
// candidate Convs, the later one.
func fuseConvAdd(g *ir.Graph, add *ir.Node) bool {
	if add.Op != ir.OpAdd || !add.Args[0].Type.Equal(add.Args[1].Type) {
		return false
	}
	pos := func(v *ir.Value) int {
		if v.Def == nil {
			return -1
		}
		return slices.Index(g.Nodes, v.Def)
	}
	order := []int{0, 1}
	if pos(add.Args[1]) > pos(add.Args[0]) {
		order = []int{1, 0}
	}
	for _, i := range order {
		conv, other := fusableConv(g, add.Args[i]), add.Args[1-i]
		if conv == nil || conv.Attrs.(*ir.ConvAttrs).Residual || other == conv.Results[0] {
			continue
		}
		if pos(other) >= slices.Index(g.Nodes, conv) && !hoistAbove(g, other.Def, conv) {
			continue
		}
		conv.Attrs.(*ir.ConvAttrs).Residual = true
		for len(conv.Args) < 3 { // a nil bias slot, which counts no use
			conv.Args = append(conv.Args, nil)
		}
		conv.Args = append(conv.Args, nil)
		g.SetArg(conv, len(conv.Args)-1, other)
		g.ReplaceAllUses(add.Results[0], conv.Results[0])
		g.Remove(add)
		return true
	}
	return false
}

// hoistAbove moves n, with the nodes after at that it depends on, to just
// before at, keeping their order, and reports whether it did: not when
// any of them reads a result of at. A ResNet's "option A" shortcut
// (subsample, pad the channels) is computed after the block's second
// convolution in the exported graph; moved above it, the Add can fuse.
func hoistAbove(g *ir.Graph, n, at *ir.Node) bool {
	start := slices.Index(g.Nodes, at)
	need := map[*ir.Node]bool{}
	var visit func(m *ir.Node) bool
	visit = func(m *ir.Node) bool {
		if m == at {
			return false
		}
		if need[m] || slices.Index(g.Nodes, m) < start {
			return true
		}
		need[m] = true
		for _, a := range m.Args {
			if a != nil && a.Def != nil && !visit(a.Def) {
				return false
			}
		}
		return true
	}
	if !visit(n) {
		return false
	}
	for _, m := range slices.Clone(g.Nodes[start+1:]) {
		if need[m] {
			g.MoveBefore(m, at)
		}
	}
	return true
}

func fuseConvAct(g *ir.Graph, act *ir.Node) bool {
	if act.Op != ir.OpRelu && act.Op != ir.OpClip {
		return false
	}
	conv := fusableConv(g, act.Args[0])
	if conv == nil {
		return false
	}
	a := conv.Attrs.(*ir.ConvAttrs)
	if act.Op == ir.OpRelu {
		a.Act = "relu"
	} else {
		lo, hi := ir.ClipBounds(act)
		a.Act, a.ActMin, a.ActMax = "clip", clamp32(lo), clamp32(hi)
	}
	g.ReplaceAllUses(act.Results[0], conv.Results[0])
	g.Remove(act)
	return true
}

// clamp32 maps a bound to float32, keeping infinities.
func clamp32(v float64) float32 {
	if v > math.MaxFloat32 {
		return float32(math.Inf(1))
	}
	if v < -math.MaxFloat32 {
		return float32(math.Inf(-1))
	}
	return float32(v)
}
