package passes

import "github.com/smhgen/smhgen/ir"

// DCE removes nodes, parameters and constants that no graph output depends
// on, then renumbers values densely so the printed IR reads like a freshly
// built graph.
//
// Needs: nothing. Guarantees: every node, parameter and constant is used;
// value IDs are 0..n-1 in printing order.
var DCE = &Pass{
	Name:  "dce",
	Doc:   "remove dead nodes, parameters and constants",
	Stage: ir.StageTyped,
	After: []string{"fold"},
	Run: func(g *ir.Graph, c *Context) error {
		if n := g.RemoveDead(); n > 0 {
			c.logf("dce: removed %d nodes", n)
		}
		g.Renumber()
		return nil
	},
}
