package passes

import (
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// Cleanup removes the no-ops of an imported graph. Identity nodes go; an
// Identity that forwards a parameter is how PyTorch merges initializers with
// equal values (two zero biases), so each such use gets its own copy of the
// parameter, named by the Identity's output, and trains independently. In
// inference, Dropout is the identity and goes too.
//
// Needs: an imported graph. Guarantees: no Identity, and no Dropout unless
// training.
var Cleanup = &Pass{
	Name:  "cleanup",
	Doc:   "remove Identity (untying parameters PyTorch merged behind it) and, for inference, Dropout",
	Stage: ir.StageImported,
	Run:   runCleanup,
}

func runCleanup(g *ir.Graph, c *Context) error {
	for _, n := range slices.Clone(g.Nodes) {
		switch {
		case n.Op == ir.OpIdentity:
			src := n.Args[0]
			if src.Kind == ir.KindParam {
				p := *src.Param
				p.Data = slices.Clone(src.Param.Data)
				name := n.Results[0].Name
				if name == "" {
					name = src.Name
				}
				src = g.AddParam(name, src.Type, &p)
				c.logf("cleanup: untied parameter %q from %q", name, n.Args[0].Name)
			}
			g.ReplaceAllUses(n.Results[0], src)
			g.Remove(n)
		case n.Op == ir.OpDropout && !c.Training:
			g.ReplaceAllUses(n.Results[0], n.Args[0])
			g.Remove(n)
		}
	}
	g.RemoveDead()
	return nil
}
