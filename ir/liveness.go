package ir

import "fmt"

// Lifetime is the span of node positions during which a buffer must hold
// its value: from the node that writes it to the last node that reads it
// (or through the end, for graph outputs), both inclusive.
type Lifetime struct {
	Root       *Value
	Start, End int
	Size       int  // elements: per sample when Batched, in all otherwise
	Batched    bool // lives in the batched arena
}

// Lifetimes lists, in definition order, the buffers that node results
// need: one per root (views share their root's buffer, and values rooted at
// inputs, parameters or constants need none).
func Lifetimes(g *Graph) []*Lifetime {
	byRoot := map[*Value]*Lifetime{}
	var out []*Lifetime
	for i, n := range g.Nodes {
		end := i
		if n.Op.Def().SideEffect {
			// Side effects may be carried out together at the end (one
			// optimizer step for every update), so their operands live
			// through it.
			end = len(g.Nodes)
		}
		for _, a := range n.Args {
			if a == nil {
				continue
			}
			if lt := byRoot[Root(a)]; lt != nil {
				lt.End = max(lt.End, end)
			}
		}
		cached := n.Op == OpSMHReconstruct && n.Attrs.(*SMHAttrs).Cached
		for _, r := range n.Results {
			root := Root(r)
			if root != r {
				continue
			}
			lt := &Lifetime{Root: r, Start: i, End: i, Size: r.Type.Shape.Static(), Batched: r.Type.Shape.HasBatch()}
			if cached {
				// Computed once when the weights change and read by every
				// run: its memory is its own for the whole program.
				lt.Start, lt.End = 0, len(g.Nodes)
			}
			byRoot[r] = lt
			out = append(out, lt)
		}
	}
	for _, o := range g.Outputs {
		if lt := byRoot[Root(o)]; lt != nil {
			lt.End = len(g.Nodes)
		}
	}
	return out
}

// verifyPlan checks a planned graph: every buffer inside its arena, views at
// their root's offset, and no two buffers that are live at the same time
// sharing memory.
func verifyPlan(g *Graph) []error {
	var errs []error
	lts := Lifetimes(g)
	for _, lt := range lts {
		limit, arena := g.Fixed, "fixed"
		if lt.Batched {
			limit, arena = g.Arena, "batched"
		}
		if lt.Root.Offset < 0 || lt.Root.Offset+lt.Size > limit {
			errs = append(errs, fmt.Errorf("v%d at %d+%d lies outside the %s arena of %d", lt.Root.ID, lt.Root.Offset, lt.Size, arena, limit))
		}
	}
	for _, n := range g.Nodes {
		for _, r := range n.Results {
			if root := Root(r); root != r && root.Kind == KindResult && r.Offset != root.Offset {
				errs = append(errs, fmt.Errorf("view v%d at %d, its root v%d at %d", r.ID, r.Offset, root.ID, root.Offset))
			}
		}
	}
	for i, a := range lts {
		for _, b := range lts[i+1:] {
			if a.Batched != b.Batched || a.End < b.Start || b.End < a.Start {
				continue
			}
			if a.Root.Offset < b.Root.Offset+b.Size && b.Root.Offset < a.Root.Offset+a.Size {
				errs = append(errs, fmt.Errorf("v%d [%d,%d) and v%d [%d,%d) share memory while both are live", a.Root.ID, a.Root.Offset, a.Root.Offset+a.Size, b.Root.ID, b.Root.Offset, b.Root.Offset+b.Size))
			}
		}
	}
	return errs
}
