package passes

import (
	"math"

	"github.com/smhgen/smhgen/ir"
)

// Fuse merges an activation into the Conv that feeds it when the runtime's
// convolution can apply it as an epilogue (ReLU, and Clip with finite or
// infinite constant bounds, which covers ReLU6), so the activation costs no
// extra pass over memory.
//
// Needs: StageTyped. Guarantees: StageLowered; no Relu or Clip that reads a
// single-use Conv remains.
var Fuse = &Pass{
	Name:  "fuse",
	Doc:   "fuse Conv with a following Relu or Clip",
	Stage: ir.StageLowered,
	After: []string{"fold"},
	Run: func(g *ir.Graph, c *Context) error {
		return applyRewrites(g, c, "fuse", []rewrite{{"conv-act", fuseConvAct}})
	},
}

func fuseConvAct(g *ir.Graph, act *ir.Node) bool {
	if act.Op != ir.OpRelu && act.Op != ir.OpClip {
		return false
	}
	conv := act.Args[0].Def
	if conv == nil || conv.Op != ir.OpConv || conv.Results[0].Uses() != 1 || g.IsOutput(conv.Results[0]) {
		return false
	}
	a := conv.Attrs.(*ir.ConvAttrs)
	if a.Act != "" {
		return false
	}
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
