package passes

import (
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// rewrite is one local rewrite rule: it inspects a node and, if it applies,
// changes the graph and reports true.
type rewrite struct {
	name  string
	apply func(g *ir.Graph, n *ir.Node) bool
}

// Simplify removes data-movement nodes that do nothing: the zero Pad that
// PyTorch emits before avg_pool2d, full-range Slices, views to the same
// shape and identity Transposes.
//
// Needs: StageTyped. Guarantees: none of those no-ops remain.
var Simplify = &Pass{
	Name:  "simplify",
	Doc:   "remove no-op pads, slices, views and transposes",
	Stage: ir.StageTyped,
	After: []string{"fold"},
	Run: func(g *ir.Graph, c *Context) error {
		return applyRewrites(g, c, "simplify", simplifyRules)
	},
}

var simplifyRules = []rewrite{
	{"noop-pad", func(g *ir.Graph, n *ir.Node) bool {
		if n.Op != ir.OpPad {
			return false
		}
		begin, end, err := ir.PadAmounts(n)
		if err != nil || slices.ContainsFunc(begin, nonZero) || slices.ContainsFunc(end, nonZero) {
			return false
		}
		return forward(g, n)
	}},
	{"noop-slice", func(g *ir.Graph, n *ir.Node) bool {
		if n.Op != ir.OpSlice {
			return false
		}
		specs, err := ir.SliceSpecs(n)
		if err != nil {
			return false
		}
		in := n.Args[0].Type.Shape
		for i, s := range specs {
			if in[i] != ir.BatchDim && (s.Start != 0 || s.Step != 1 || s.Count != in[i]) {
				return false
			}
		}
		return forward(g, n)
	}},
	{"noop-view", func(g *ir.Graph, n *ir.Node) bool {
		if !n.Op.Def().View || !n.Results[0].Type.Equal(n.Args[0].Type) {
			return false
		}
		return forward(g, n)
	}},
	{"noop-transpose", func(g *ir.Graph, n *ir.Node) bool {
		if n.Op != ir.OpTranspose {
			return false
		}
		for i, p := range ir.TransposePerm(n) {
			if p != i {
				return false
			}
		}
		return forward(g, n)
	}},
}

func nonZero(v int) bool { return v != 0 }

// forward replaces n's single result by its first argument and removes n.
func forward(g *ir.Graph, n *ir.Node) bool {
	g.ReplaceAllUses(n.Results[0], n.Args[0])
	g.Remove(n)
	return true
}

// applyRewrites tries the rules in order on every node, once per node, and
// logs each rewrite by rule name.
func applyRewrites(g *ir.Graph, c *Context, pass string, rules []rewrite) error {
	for _, n := range slices.Clone(g.Nodes) {
		for _, r := range rules {
			name := n.Name
			if r.apply(g, n) {
				c.logf("%s: %s on %q", pass, r.name, name)
				break
			}
		}
	}
	return nil
}
