package passes

import "github.com/smhgen/smhgen/ir"

// SMHPrefetch lets a fused Forward reconstruct each compressed weight
// while the layer before it runs. Every SMHReconstruct of the product
// variant that is not cached, after the first, moves to just before the
// first node that reads the previous one, and becomes Async: generated
// code starts it there (runtime.SMHWeightStart, whose work the worker
// pool's helpers take up whenever the current layer's kernels leave them
// waiting) and waits for it just before its own first reader. So
//
//	w0 = SMHReconstruct; y0 = Conv(x, w0); w1 = SMHReconstruct; y1 = Conv(y0, w1)
//
// becomes w0, w1 (async), y0, y1, with w1's wait before y1. The moved
// weight's buffer is live from its start, so the plan gives it memory of
// its own: a fused Forward holds two reconstructed tensors at a time
// rather than one.
//
// Needs: a graph that will not change any more except by planning.
// Guarantees: an Async reconstruction is never the first of its graph,
// and its arguments (the pool and the scales) are defined before it.
var SMHPrefetch = &Pass{
	Name:  "smh-prefetch",
	Doc:   "start each fused weight reconstruction during the previous layer",
	Stage: ir.StageLowered,
	After: []string{"dce"},
	Run: func(g *ir.Graph, c *Context) error {
		var recon []*ir.Node
		for _, n := range g.Nodes {
			if n.Op != ir.OpSMHReconstruct {
				continue
			}
			if a := n.Attrs.(*ir.SMHAttrs); !a.Cached && a.Variant == "product" {
				recon = append(recon, n)
			}
		}
		pos := make(map[*ir.Node]int, len(g.Nodes))
		moved := 0
		for i := 1; i < len(recon); i++ {
			for j, n := range g.Nodes {
				pos[n] = j
			}
			first := firstReader(g, recon[i-1])
			n := recon[i]
			if first == nil || pos[first] >= pos[n] || !definedBefore(n, first, pos) {
				continue
			}
			g.MoveBefore(n, first)
			n.Attrs.(*ir.SMHAttrs).Async = true
			moved++
		}
		if moved > 0 {
			g.Renumber()
			c.logf("smh-prefetch: %d of %d reconstructions start a layer early", moved, len(recon))
		}
		return nil
	},
}

// firstReader is the first node that reads n's result, or nil.
func firstReader(g *ir.Graph, n *ir.Node) *ir.Node {
	if users := g.Users(n.Results[0]); len(users) > 0 {
		return users[0]
	}
	return nil
}

// definedBefore reports whether every argument of n is an input, a
// parameter or a constant, or the result of a node placed before at.
func definedBefore(n, at *ir.Node, pos map[*ir.Node]int) bool {
	for _, a := range n.Args {
		if a != nil && a.Def != nil && pos[a.Def] >= pos[at] {
			return false
		}
	}
	return true
}
