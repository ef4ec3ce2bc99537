package ir

import "fmt"

// Gradient rules, one per differentiable op, in the manner of a derivative
// table: each builds the backward nodes for one forward node. They are
// attached to the op table here so that the table stays the one place that
// says what an op is, while the rules read together.

// gb wraps a Builder for gradient rules: every node is typed as it is made
// and named after the forward node it differentiates.
type gb struct {
	b    *Builder
	n    *Node
	err  error
	made int
}

func (g *gb) add(op Op, attrs any, args ...*Value) *Value {
	vs := g.addN(op, attrs, args...)
	if vs == nil {
		return nil
	}
	return vs[0]
}

func (g *gb) addN(op Op, attrs any, args ...*Value) []*Value {
	if g.err != nil {
		return nil
	}
	name := g.n.Name
	if name != "" {
		name += "/grad"
	}
	nd, err := g.b.AddInfer(op, name, attrs, args...)
	if err != nil {
		g.err = fmt.Errorf("gradient of %s: %w", g.n.Op, err)
		return nil
	}
	g.made++
	return nd.Results
}

// constOf adds a constant to the graph the builder works on.
func (g *gb) constOf(t *Tensor) *Value { return g.b.g.AddConst("", t) }

// symShape is a shape as a Reshape target, the batch as SymBatch.
func symShape(s Shape) *Tensor {
	out := make([]int64, len(s))
	for i, d := range s {
		if d == BatchDim {
			out[i] = SymBatch
		} else {
			out[i] = int64(d)
		}
	}
	return IntTensor(out)
}

func ints64(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func rule(op Op, f func(g *gb, n *Node, dy []*Value, need []bool) []*Value) {
	opTable[op].Grad = func(b *Builder, n *Node, dy []*Value, need []bool) ([]*Value, error) {
		g := &gb{b: b, n: n}
		out := f(g, n, dy, need)
		if g.err != nil {
			return nil, g.err
		}
		return out, nil
	}
}

func init() {
	rule(OpConv, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		a := n.Attrs.(*ConvAttrs)
		if a.Act != "" || a.BN || a.Residual {
			g.err = fmt.Errorf("differentiate before fusing activations, batch normalisations or residuals into convolutions")
			return nil
		}
		x, w := n.Args[0].Type.Shape, n.Args[1].Type.Shape
		ga := &ConvGradAttrs{Strides: a.Strides, Pads: a.Pads, Dilations: a.Dilations, Group: a.Group,
			Input: []int(x[1:].Clone()), Weight: []int(w.Clone())}
		out := make([]*Value, len(n.Args))
		if need[0] {
			out[0] = g.add(OpConvGradInput, ga, dy[0], n.Args[1])
		}
		if need[1] {
			out[1] = g.add(OpConvGradFilter, ga, n.Args[0], dy[0])
		}
		if len(need) > 2 && need[2] {
			out[2] = g.add(OpConvGradBias, ga, dy[0])
		}
		return out
	})
	rule(OpGemm, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		a := n.Attrs.(*GemmAttrs)
		ga := func(wrt int) *GemmGradAttrs {
			at := &GemmGradAttrs{Alpha: a.Alpha, Beta: a.Beta, TransA: a.TransA, TransB: a.TransB, Wrt: wrt,
				A: []int(n.Args[0].Type.Shape.Clone()), B: []int(n.Args[1].Type.Shape.Clone())}
			if c := n.Arg(2); c != nil {
				at.C = []int(c.Type.Shape.Clone())
			}
			return at
		}
		out := make([]*Value, len(n.Args))
		if need[0] {
			out[0] = g.add(OpGemmGrad, ga(0), dy[0], nil, n.Args[1])
		}
		if need[1] {
			out[1] = g.add(OpGemmGrad, ga(1), dy[0], n.Args[0], nil)
		}
		if len(need) > 2 && need[2] {
			out[2] = g.add(OpGemmGrad, ga(2), dy[0])
		}
		return out
	})
	rule(OpMatMul, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		at := func(wrt int) *BinaryGradAttrs {
			return &BinaryGradAttrs{Op: "MatMul", Wrt: wrt, A: []int(n.Args[0].Type.Shape.Clone()), B: []int(n.Args[1].Type.Shape.Clone())}
		}
		out := make([]*Value, 2)
		if need[0] {
			out[0] = g.add(OpMatMulGrad, at(0), dy[0], nil, n.Args[1])
		}
		if need[1] {
			out[1] = g.add(OpMatMulGrad, at(1), dy[0], n.Args[0], nil)
		}
		return out
	})
	rule(OpBatchNormTrain, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		if dy[0] == nil {
			return make([]*Value, 3) // only the statistics are read: no gradient flows
		}
		vs := g.addN(OpBatchNormGrad, n.Attrs, dy[0], n.Args[0], n.Args[1], n.Results[1], n.Results[2])
		if vs == nil {
			return nil
		}
		return vs
	})
	act := func(op, gradOp Op, fromInput bool, attrs func(n *Node) any) {
		rule(op, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
			src := n.Results[0]
			if fromInput {
				src = n.Args[0]
			}
			var at any
			if attrs != nil {
				at = attrs(n)
			}
			out := make([]*Value, len(n.Args))
			out[0] = g.add(gradOp, at, dy[0], src)
			return out
		})
	}
	act(OpRelu, OpReluGrad, false, nil)
	act(OpSigmoid, OpSigmoidGrad, false, nil)
	act(OpHardSwish, OpHardSwishGrad, true, nil)
	act(OpHardSigmoid, OpHardSigmoidGrad, false, func(n *Node) any { a := *n.Attrs.(*HardSigmoidAttrs); return &a })
	act(OpClip, OpClipGrad, false, func(n *Node) any {
		lo, hi := clipBounds(n)
		return &ClipGradAttrs{Min: f32(lo), Max: f32(hi)}
	})
	for _, op := range []Op{OpAdd, OpSub, OpMul, OpDiv} {
		rule(op, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
			sa, sb, sy := n.Args[0].Type.Shape, n.Args[1].Type.Shape, n.Results[0].Type.Shape
			out := make([]*Value, 2)
			for wrt := 0; wrt < 2; wrt++ {
				if !need[wrt] {
					continue
				}
				// An operand of the result's shape takes dy as it is for
				// Add, and for Sub's left side.
				if (n.Op == OpAdd || n.Op == OpSub && wrt == 0) && n.Args[wrt].Type.Shape.Equal(sy) {
					out[wrt] = dy[0]
					continue
				}
				at := &BinaryGradAttrs{Op: n.Op.String(), Wrt: wrt, A: []int(sa.Clone()), B: []int(sb.Clone())}
				if n.Op == OpMul || n.Op == OpDiv {
					out[wrt] = g.add(OpBroadcastGrad, at, dy[0], n.Args[0], n.Args[1])
				} else {
					out[wrt] = g.add(OpBroadcastGrad, at, dy[0])
				}
			}
			return out
		})
	}
	rule(OpGlobalAveragePool, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		return []*Value{g.add(OpGlobalAveragePoolGrad, &InputShapeAttrs{Input: []int(n.Args[0].Type.Shape.Clone())}, dy[0])}
	})
	for _, p := range []struct{ op, gradOp Op }{{OpMaxPool, OpMaxPoolGrad}, {OpAveragePool, OpAveragePoolGrad}} {
		p := p
		rule(p.op, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
			a := n.Attrs.(*PoolAttrs)
			at := &PoolGradAttrs{KernelShape: a.KernelShape, Strides: a.Strides, Pads: a.Pads, Dilations: a.Dilations,
				CeilMode: a.CeilMode, CountIncludePad: a.CountIncludePad, Input: []int(n.Args[0].Type.Shape[1:].Clone())}
			if p.op == OpMaxPool {
				return []*Value{g.add(OpMaxPoolGrad, at, dy[0], n.Args[0])}
			}
			return []*Value{g.add(OpAveragePoolGrad, at, dy[0])}
		})
	}
	// Views: the gradient is dy viewed in the input's shape.
	for _, op := range []Op{OpFlatten, OpReshape, OpSqueeze, OpUnsqueeze} {
		rule(op, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
			out := make([]*Value, len(n.Args))
			out[0] = g.add(OpReshape, nil, dy[0], g.constOf(symShape(n.Args[0].Type.Shape)))
			return out
		})
	}
	rule(OpConcat, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		ax := n.Attrs.(*AxisAttrs).Axis
		out := make([]*Value, len(n.Args))
		off := 0
		for i, a := range n.Args {
			d := a.Type.Shape[ax]
			if need[i] {
				out[i] = g.add(OpSlice, nil, dy[0], g.constOf(IntTensor([]int64{int64(off)})),
					g.constOf(IntTensor([]int64{int64(off + d)})), g.constOf(IntTensor([]int64{int64(ax)})))
			}
			off += d
		}
		return out
	})
	rule(OpTranspose, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		p := TransposePerm(n)
		inv := make([]int, len(p))
		for i, ax := range p {
			inv[ax] = i
		}
		return []*Value{g.add(OpTranspose, &TransposeAttrs{Perm: inv}, dy[0])}
	})
	rule(OpGather, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		ax := n.Attrs.(*AxisAttrs).Axis
		ic := n.Args[1].Const
		idx := make([]int, len(ic.I64))
		for i, v := range ic.I64 {
			if v < 0 {
				v += int64(n.Args[0].Type.Shape[ax])
			}
			idx[i] = int(v)
		}
		return []*Value{g.add(OpGatherGrad, &GatherGradAttrs{Input: []int(n.Args[0].Type.Shape.Clone()), Axis: ax, Indices: idx,
			IndicesShape: append([]int{}, ic.Shape...)}, dy[0]), nil}
	})
	rule(OpSlice, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		kc, err := callSlice(n)
		if err != nil {
			g.err = err
			return nil
		}
		f := kc.Params.Fields
		out := make([]*Value, len(n.Args))
		out[0] = g.add(OpSliceGrad, &SliceGradAttrs{Input: f[0].Value.([]int), Starts: f[1].Value.([]int), Ends: f[2].Value.([]int),
			Axes: f[3].Value.([]int), Steps: f[4].Value.([]int)}, dy[0])
		return out
	})
	rule(OpPad, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		begin, end, err := PadAmounts(n)
		if err != nil {
			g.err = err
			return nil
		}
		out := make([]*Value, len(n.Args))
		out[0] = g.add(OpPadGrad, &PadGradAttrs{Mode: n.Attrs.(*PadAttrs).Mode, Pads: append(begin, end...),
			Input: []int(n.Args[0].Type.Shape.Clone())}, dy[0])
		return out
	})
	rule(OpReduceMean, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		axes, err := ReduceAxes(n)
		if err != nil {
			g.err = err
			return nil
		}
		out := make([]*Value, len(n.Args))
		out[0] = g.add(OpReduceMeanGrad, &ReduceGradAttrs{Input: []int(n.Args[0].Type.Shape.Clone()), Axes: axes,
			KeepDims: n.Attrs.(*ReduceAttrs).KeepDims}, dy[0])
		return out
	})
	for _, s := range []struct{ op, gradOp Op }{{OpSoftmax, OpSoftmaxGrad}, {OpLogSoftmax, OpLogSoftmaxGrad}} {
		s := s
		rule(s.op, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
			a := *n.Attrs.(*AxisAttrs)
			return []*Value{g.add(s.gradOp, &a, dy[0], n.Results[0])}
		})
	}
	rule(OpDropout, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		out := make([]*Value, len(n.Args))
		out[0] = g.add(OpDropoutGrad, &DropoutGradAttrs{Ratio: float32(DropoutRatio(n)), Seed: n.Attrs.(*DropoutAttrs).Seed}, dy[0])
		return out
	})
}
