package passes

import (
	"fmt"
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// SMHGrad merges the per-tensor SMHGradSum nodes that autodiff made for one
// pool, and the Adds that sum them, into a single SMHGradSum over every
// compressed tensor: one pool-sized gradient buffer instead of one per
// tensor, written in one pass that accumulates each tensor's share.
//
// Needs: autodiff. Guarantees: the pool and the scales are updated from one
// SMHGradSum.
var SMHGrad = &Pass{
	Name:  "smhgrad",
	Doc:   "merge the SMH pool's gradient contributions into one kernel",
	Stage: ir.StageTraining,
	After: []string{"autodiff"},
	Run:   runSMHGrad,
}

// addLeaves returns the values an Add tree sums.
func addLeaves(v *ir.Value) []*ir.Value {
	if d := v.Def; d != nil && d.Op == ir.OpAdd {
		return append(addLeaves(d.Args[0]), addLeaves(d.Args[1])...)
	}
	return []*ir.Value{v}
}

func runSMHGrad(g *ir.Graph, c *Context) error {
	var poolUp, scaleUp *ir.Node
	for _, n := range g.Nodes {
		if n.Op != ir.OpUpdate {
			continue
		}
		switch n.Args[0].Param.Role {
		case ir.RoleSMHPool:
			poolUp = n
		case ir.RoleSMHScale:
			scaleUp = n
		}
	}
	if poolUp == nil {
		return nil
	}
	if scaleUp == nil {
		return fmt.Errorf("the SMH pool is updated but its scales are not")
	}
	var parts []*ir.Node
	for _, leaf := range addLeaves(poolUp.Args[1]) {
		d := leaf.Def
		if d == nil || d.Op != ir.OpSMHGradSum || d.Results[0] != leaf || d.Args[0] != poolUp.Args[0] {
			return fmt.Errorf("the pool's gradient has a contribution that is not an SMH gradient: v%d", leaf.ID)
		}
		parts = append(parts, d)
	}
	for _, leaf := range addLeaves(scaleUp.Args[1]) {
		if d := leaf.Def; d == nil || !slices.Contains(parts, d) || d.Results[1] != leaf {
			return fmt.Errorf("the scales' gradient has a contribution from outside the pool's: v%d", leaf.ID)
		}
	}
	slices.SortFunc(parts, func(a, b *ir.Node) int {
		return a.Attrs.(*ir.SMHGradAttrs).Tensors[0] - b.Attrs.(*ir.SMHGradAttrs).Tensors[0]
	})
	first := parts[0].Attrs.(*ir.SMHGradAttrs)
	merged := &ir.SMHGradAttrs{Variant: first.Variant, D: first.D, Rank: first.Rank, Seed: first.Seed}
	args := []*ir.Value{poolUp.Args[0], scaleUp.Args[0]}
	for _, p := range parts {
		a := p.Attrs.(*ir.SMHGradAttrs)
		merged.Offsets = append(merged.Offsets, a.Offsets...)
		merged.Counts = append(merged.Counts, a.Counts...)
		merged.Scales = append(merged.Scales, a.Scales...)
		merged.Tensors = append(merged.Tensors, a.Tensors...)
		args = append(args, p.Args[2:]...)
	}
	// Before every side effect: the step's updates happen together at the
	// end, after all the gradients.
	at := poolUp
	for _, n := range g.Nodes {
		if n.Op.Def().SideEffect {
			at = n
			break
		}
	}
	n, err := g.Before(at).AddInfer(ir.OpSMHGradSum, "smh", merged, args...)
	if err != nil {
		return err
	}
	g.SetArg(poolUp, 1, n.Results[0])
	g.SetArg(scaleUp, 1, n.Results[1])
	g.RemoveDead()
	c.logf("smhgrad: %d tensors' gradients in one SMHGradSum", len(merged.Counts))
	return nil
}
