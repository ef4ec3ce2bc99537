package passes

import (
	"errors"
	"fmt"
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// TrainMode gives a graph training semantics: each BatchNormalization
// becomes a BatchNormTrain (batch statistics) whose running statistics a
// BatchNormRunningUpdate at the end of the program commits, once the step is
// known to succeed; each Dropout gets its own seed offset so that layers
// draw different masks.
//
// Needs: StageTyped, Dropout kept (Context.Training). Guarantees: no
// inference-mode BatchNormalization.
var TrainMode = &Pass{
	Name:  "trainmode",
	Doc:   "BatchNorm with batch statistics and deferred running updates; seeded dropout",
	Stage: ir.StageTraining,
	After: []string{"fold"},
	Run:   runTrainMode,
}

func runTrainMode(g *ir.Graph, c *Context) error {
	seed := 0
	for _, n := range slices.Clone(g.Nodes) {
		switch n.Op {
		case ir.OpDropout:
			seed++
			if a := n.Attrs.(*ir.DropoutAttrs); a.Seed == 0 {
				a.Seed = seed
			}
		case ir.OpBatchNorm:
			a := n.Attrs.(*ir.BatchNormAttrs)
			t, err := g.Before(n).AddInfer(ir.OpBatchNormTrain, n.Name, &ir.BatchNormAttrs{Epsilon: a.Epsilon, Momentum: a.Momentum}, n.Args[0], n.Args[1], n.Args[2])
			if err != nil {
				return err
			}
			x := n.Args[0].Type.Shape
			if _, err := g.Append().AddInfer(ir.OpBatchNormRunningUpdate, n.Name, &ir.BatchNormRunAttrs{Epsilon: a.Epsilon, Momentum: a.Momentum, Spatial: x[2:].Static()},
				t.Results[1], t.Results[2], n.Args[3], n.Args[4]); err != nil {
				return err
			}
			g.ReplaceAllUses(n.Results[0], t.Results[0])
			g.Remove(n)
		}
	}
	return nil
}

// Autodiff appends the loss and the backward program to a training graph:
// softmax cross-entropy between the model's logits (the input of a final
// Softmax or LogSoftmax, if the model ends in one) and an int32 labels
// input; then, in reverse, each node's gradient rule, summing the gradients
// of values used more than once; then an Update for every trainable
// parameter. Only values a trainable parameter flows into get gradients. The
// graph's output becomes the loss. All of it goes before the side effects
// TrainMode put at the end, so that a failed step changes nothing.
//
// Needs: TrainMode. Guarantees: every trainable parameter has exactly one
// Update; a parameter that gets no gradient is an error.
var Autodiff = &Pass{
	Name:  "autodiff",
	Doc:   "loss, reverse-mode gradients and parameter updates",
	Stage: ir.StageTraining,
	After: []string{"trainmode"},
	Run:   runAutodiff,
}

// ErrNotClassifier reports a model that Autodiff cannot train: training
// minimises cross-entropy, which needs one output of class logits.
var ErrNotClassifier = errors.New("not a classifier")

func runAutodiff(g *ir.Graph, c *Context) error {
	if len(g.Outputs) != 1 {
		return fmt.Errorf("%w: training needs a model with one output (the logits), this one has %d", ErrNotClassifier, len(g.Outputs))
	}
	logits := g.Outputs[0]
	if d := logits.Def; d != nil && (d.Op == ir.OpSoftmax || d.Op == ir.OpLogSoftmax) && d.Attrs.(*ir.AxisAttrs).Axis == d.Args[0].Type.Shape.Rank()-1 {
		logits = d.Args[0]
	}
	if t := logits.Type; t.DType != ir.F32 || t.Shape.Rank() != 2 || t.Shape[0] != ir.BatchDim {
		return fmt.Errorf("%w: training needs logits of shape [N, classes], the model's output is %v", ErrNotClassifier, t)
	}
	var forward []*ir.Node
	var b *ir.Builder
	for _, n := range g.Nodes {
		if n.Op.Def().SideEffect {
			b = g.Before(n)
			break
		}
		forward = append(forward, n)
	}
	if b == nil {
		b = g.Append()
	}
	labels := g.AddInput("labels", ir.Of(ir.I32, ir.BatchDim))
	loss, err := b.AddInfer(ir.OpSoftmaxCrossEntropy, "loss", nil, logits, labels)
	if err != nil {
		return err
	}

	requires := map[*ir.Value]bool{}
	for _, p := range g.Params {
		requires[p] = p.Param.Trainable
	}
	for _, n := range forward {
		for _, a := range n.Args {
			if a != nil && requires[a] {
				for _, r := range n.Results {
					requires[r] = true
				}
				break
			}
		}
	}

	grads := map[*ir.Value][]*ir.Value{logits: {loss.Results[1]}}
	sum := func(v *ir.Value) (*ir.Value, error) {
		gs := grads[v]
		if len(gs) == 0 {
			return nil, nil
		}
		acc := gs[0]
		for _, x := range gs[1:] {
			n, err := b.AddInfer(ir.OpAdd, "", nil, acc, x)
			if err != nil {
				return nil, err
			}
			acc = n.Results[0]
		}
		grads[v] = []*ir.Value{acc}
		return acc, nil
	}
	for i := len(forward) - 1; i >= 0; i-- {
		n := forward[i]
		dys := make([]*ir.Value, len(n.Results))
		any := false
		for j, r := range n.Results {
			d, err := sum(r)
			if err != nil {
				return err
			}
			dys[j], any = d, any || d != nil
		}
		if !any {
			continue
		}
		need := make([]bool, len(n.Args))
		anyNeed := false
		for j, a := range n.Args {
			need[j] = a != nil && requires[a] && !n.Op.Def().IsStatic(j)
			anyNeed = anyNeed || need[j]
		}
		if !anyNeed {
			continue
		}
		rule := n.Op.Def().Grad
		if rule == nil {
			return &ir.NodeError{Node: n, Err: fmt.Errorf("op %s has no gradient rule", n.Op)}
		}
		dargs, err := rule(b, n, dys, need)
		if err != nil {
			return &ir.NodeError{Node: n, Err: err}
		}
		for j, d := range dargs {
			if d != nil && j < len(need) && need[j] {
				grads[n.Args[j]] = append(grads[n.Args[j]], d)
			}
		}
	}
	updates := 0
	for _, p := range g.Params {
		if !p.Param.Trainable {
			continue
		}
		d, err := sum(p)
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("parameter %q gets no gradient from the loss", p.Name)
		}
		if _, err := b.AddInfer(ir.OpUpdate, "", nil, p, d); err != nil {
			return err
		}
		updates++
	}
	g.SetOutputs([]string{"loss"}, loss.Results[:1])
	c.logf("autodiff: %d parameters updated", updates)
	return nil
}
