package passes

import (
	"fmt"
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// Fold infers every value's type in graph order and, as it goes, evaluates
// nodes whose arguments are constants (and Shape, which needs only its
// argument's type) into constants. The two are one walk because each needs
// the other: PyTorch computes reshape targets and pads from shapes
// (Shape→Gather→Unsqueeze→Concat→Reshape; ConstantOfShape→Concat→Reshape→
// Slice→Transpose→Cast→Pad for option-A shortcuts), and a value's shape is
// known only once those are constants. It also resolves auto_pad and
// negative axes, drops casts to the same type, and reads a model's baked-in
// export batch size in reshape targets as the symbolic batch.
//
// Needs: an imported graph with Identity gone. Guarantees: StageTyped (every
// value typed with static shapes apart from the batch, no shape ops left).
var Fold = &Pass{
	Name:  "fold",
	Doc:   "infer shapes and fold constant (shape) subgraphs",
	Stage: ir.StageTyped,
	After: []string{"cleanup"},
	Run:   runFold,
}

func runFold(g *ir.Graph, c *Context) error {
	for _, n := range slices.Clone(g.Nodes) {
		def := n.Op.Def()
		if n.Op == ir.OpReshape && g.ExportBatch > 0 {
			symbolicExportBatch(g, n, c)
		}
		if err := ir.InferNode(n); err != nil {
			return err
		}
		if def.Canonicalize != nil {
			if err := def.Canonicalize(n); err != nil {
				return &ir.NodeError{Node: n, Err: err}
			}
		}
		if n.Op == ir.OpCast && n.Args[0].Kind != ir.KindConst && n.Args[0].Type.DType == n.Results[0].Type.DType {
			g.ReplaceAllUses(n.Results[0], n.Args[0])
			g.Remove(n)
			continue
		}
		if !foldable(n) {
			continue
		}
		ts, err := def.Fold(n)
		if err != nil {
			if def.MaxStage < ir.StageTyped {
				return &ir.NodeError{Node: n, Err: fmt.Errorf("cannot fold to a constant: %v", err)}
			}
			continue
		}
		for i, t := range ts {
			k := g.AddConst(n.Results[i].Name, t)
			g.ReplaceAllUses(n.Results[i], k)
		}
		g.Remove(n)
	}
	g.RemoveDead()
	return nil
}

func foldable(n *ir.Node) bool {
	def := n.Op.Def()
	if def.Fold == nil {
		return false
	}
	if def.FoldsFromTypes {
		return true
	}
	for _, a := range n.Args {
		if a != nil && a.Kind != ir.KindConst {
			return false
		}
	}
	return true
}

// symbolicExportBatch rewrites a reshape target that starts with the batch
// size the model was exported with, applied to batched data, so that it
// names the symbolic batch: PyTorch folds x.view(x.size(0), -1) into the
// constant [2, -1] when exporting at batch 2. A static leading dimension on
// batched data would be an error anyway, so the rewrite cannot change a
// valid program.
func symbolicExportBatch(g *ir.Graph, n *ir.Node, c *Context) {
	x, s := n.Args[0], n.Args[1]
	if !x.Type.Known() || x.Type.Shape.Rank() == 0 || x.Type.Shape[0] != ir.BatchDim {
		return
	}
	if s.Kind != ir.KindConst || s.Const.DType != ir.I64 || len(s.Const.I64) == 0 || s.Const.I64[0] != int64(g.ExportBatch) {
		return
	}
	t := s.Const.Clone()
	t.I64[0] = ir.SymBatch
	g.SetArg(n, 1, g.AddConst(s.Name, t))
	c.logf("fold: reshape target %v of %q starts with the export batch %d: read as the batch", s.Const.I64, n.Name, g.ExportBatch)
}
