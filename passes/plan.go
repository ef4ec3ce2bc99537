package passes

import (
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// Plan assigns every node result a place in one of two arenas: the batched
// one, laid out in elements per sample so that one plan serves every batch
// size (generated code scales offsets by the batch), and a fixed one for
// values without a batch dimension. Buffers whose lifetimes do not overlap
// share memory; views share their root's buffer. Placement is greedy,
// largest buffer first, each at the lowest offset that is free for its
// whole lifetime.
//
// Needs: a graph that will not change any more. Guarantees: Graph.Planned,
// and Verify checks that no two live buffers overlap.
var Plan = &Pass{
	Name:  "plan",
	Doc:   "plan activation memory by liveness",
	Stage: ir.StageTyped,
	After: []string{"dce"},
	Run: func(g *ir.Graph, c *Context) error {
		lts := ir.Lifetimes(g)
		order := slices.Clone(lts)
		slices.SortStableFunc(order, func(a, b *ir.Lifetime) int {
			if a.Size != b.Size {
				return b.Size - a.Size
			}
			return a.Start - b.Start
		})
		var placed []*ir.Lifetime
		g.Arena, g.Fixed = 0, 0
		var naive int
		for _, lt := range order {
			off := 0
			for {
				moved := false
				for _, p := range placed {
					if p.Batched != lt.Batched || p.End < lt.Start || lt.End < p.Start {
						continue
					}
					if off < p.Root.Offset+p.Size && p.Root.Offset < off+lt.Size {
						off = p.Root.Offset + p.Size
						moved = true
					}
				}
				if !moved {
					break
				}
			}
			lt.Root.Offset = off
			placed = append(placed, lt)
			if lt.Batched {
				g.Arena = max(g.Arena, off+lt.Size)
				naive += lt.Size
			} else {
				g.Fixed = max(g.Fixed, off+lt.Size)
			}
		}
		for _, n := range g.Nodes {
			for _, r := range n.Results {
				r.Offset = ir.Root(r).Offset
			}
		}
		g.Planned = true
		c.logf("plan: %d buffers in %d elements per sample (%d without reuse), %d fixed", len(lts), g.Arena, naive, g.Fixed)
		return nil
	},
}
