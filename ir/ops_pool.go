package ir

import (
	"fmt"
	"slices"
)

func init() {
	register(OpGlobalAveragePool, OpDef{
		Name: "GlobalAveragePool", MinArgs: 1, MaxArgs: 1, Results: 1,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer: func(n *Node) ([]TensorType, error) {
			if err := wantF32(n, 0); err != nil {
				return nil, err
			}
			if err := wantRank(n, 0, 4); err != nil {
				return nil, err
			}
			if err := wantBatchFirst(n, 0); err != nil {
				return nil, err
			}
			x := n.Args[0].Type.Shape
			return []TensorType{Of(F32, x[0], x[1], 1, 1)}, nil
		},
		Kernel: "GlobalAveragePool",
		Call: func(n *Node) (*KernelCall, error) {
			x := n.Args[0].Type.Shape
			return &KernelCall{
				Func:   "GlobalAveragePool",
				Params: &Struct{Type: "ChannelParams", Fields: []Field{{"C", x[1]}, {"Spatial", x[2] * x[3]}}},
				HasN:   true, N: batchN(x),
				Bufs: []BufRef{R(0), A(0)},
			}, nil
		},
		Cost: func(n *Node) Cost {
			x := int64(n.Args[0].Type.Shape.Static())
			return Cost{FLOPs: x, Bytes: 4 * (x + int64(n.Results[0].Type.Shape.Static()))}
		},
	})
	for _, p := range []struct {
		op     Op
		name   string
		kernel string
	}{{OpAveragePool, "AveragePool", "AveragePool2D"}, {OpMaxPool, "MaxPool", "MaxPool2D"}} {
		register(p.op, OpDef{
			Name: p.name, MinArgs: 1, MaxArgs: 1, Results: 1,
			NewAttrs: newPoolAttrs,
			MinStage: StageImported, MaxStage: StageTraining,
			Infer:        inferPool,
			Canonicalize: canonPool,
			Kernel:       p.kernel,
			Call: func(n *Node) (*KernelCall, error) {
				x := n.Args[0].Type.Shape
				return &KernelCall{Func: p.kernel, Params: poolParams(n.Attrs.(*PoolAttrs), x[1:]),
					HasN: true, N: batchN(x), Bufs: []BufRef{R(0), A(0)}}, nil
			},
			Cost: func(n *Node) Cost {
				k := n.Attrs.(*PoolAttrs).KernelShape
				y := int64(n.Results[0].Type.Shape.Static())
				return Cost{FLOPs: y * int64(k[0]*k[1]), Bytes: 4 * (y + int64(n.Args[0].Type.Shape.Static()))}
			},
		})
	}
	register(OpReduceMean, OpDef{
		Name: "ReduceMean", MinArgs: 1, MaxArgs: 2, Results: 1,
		NewAttrs: newReduceAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b10,
		Infer:      inferReduce,
		Kernel:     "ReduceMean",
		Call: func(n *Node) (*KernelCall, error) {
			axes, err := ReduceAxes(n)
			if err != nil {
				return nil, err
			}
			if len(axes) == 0 {
				return nil, fmt.Errorf("a reduction over no axes is the identity; simplify removes it")
			}
			x := n.Args[0].Type.Shape
			return &KernelCall{
				Func:   "ReduceMean",
				Params: &Struct{Type: "ReduceParams", Fields: []Field{{"Shape", runtimeShape(x)}, {"Axes", axes}, {"KeepDims", n.Attrs.(*ReduceAttrs).KeepDims}}},
				HasN:   true, N: batchN(x),
				Bufs: []BufRef{R(0), A(0)},
			}, nil
		},
		Cost: elemCost(1),
	})
}

func inferPool(n *Node) ([]TensorType, error) {
	a := n.Attrs.(*PoolAttrs)
	if err := wantF32(n, 0); err != nil {
		return nil, err
	}
	if err := wantRank(n, 0, 4); err != nil {
		return nil, fmt.Errorf("%v (only 2-D pooling is supported)", err)
	}
	if err := wantBatchFirst(n, 0); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name string
		v    []int
	}{{"kernel_shape", a.KernelShape}, {"strides", a.Strides}, {"dilations", a.Dilations}} {
		if err := checkPair(c.name, c.v); err != nil {
			return nil, err
		}
	}
	x := n.Args[0].Type.Shape
	pads, err := autoPads(a.AutoPad, x[2:], a.KernelShape, a.Strides, a.Dilations, a.Pads)
	if err != nil {
		return nil, err
	}
	for i := 0; i < 2; i++ {
		k := (a.KernelShape[i]-1)*a.Dilations[i] + 1
		if pads[i] >= k || pads[i+2] >= k {
			return nil, fmt.Errorf("pads %v must be smaller than the kernel %v", pads, a.KernelShape)
		}
	}
	oh, err := window(x[2], a.KernelShape[0], a.Strides[0], a.Dilations[0], pads[0], pads[2], a.CeilMode)
	if err != nil {
		return nil, err
	}
	ow, err := window(x[3], a.KernelShape[1], a.Strides[1], a.Dilations[1], pads[1], pads[3], a.CeilMode)
	if err != nil {
		return nil, err
	}
	return []TensorType{Of(F32, x[0], x[1], oh, ow)}, nil
}

func canonPool(n *Node) error {
	a := n.Attrs.(*PoolAttrs)
	x := n.Args[0].Type.Shape
	pads, err := autoPads(a.AutoPad, x[2:], a.KernelShape, a.Strides, a.Dilations, a.Pads)
	if err != nil {
		return err
	}
	a.Pads, a.AutoPad = pads, "NOTSET"
	return nil
}

// ReduceAxes returns the sorted, non-negative axes a reduction node reduces.
func ReduceAxes(n *Node) ([]int, error) {
	x := n.Args[0].Type.Shape
	a := n.Attrs.(*ReduceAttrs)
	axes, err := constInts(n.Arg(1))
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		if a.NoopWithEmptyAxes {
			return nil, nil
		}
		for i := range x {
			axes = append(axes, i)
		}
	}
	out := make([]int, 0, len(axes))
	for _, ax := range axes {
		ax, err := normAxis(ax, x.Rank())
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, ax) {
			return nil, fmt.Errorf("axis %d repeated", ax)
		}
		out = append(out, ax)
	}
	slices.Sort(out)
	return out, nil
}

func inferReduce(n *Node) ([]TensorType, error) {
	if err := wantF32(n, 0); err != nil {
		return nil, err
	}
	axes, err := ReduceAxes(n)
	if err != nil {
		return nil, err
	}
	x := n.Args[0].Type.Shape
	var out Shape
	for i, d := range x {
		if !slices.Contains(axes, i) {
			out = append(out, d)
			continue
		}
		if d == BatchDim {
			return nil, fmt.Errorf("reducing over the batch dimension is not supported")
		}
		if n.Attrs.(*ReduceAttrs).KeepDims {
			out = append(out, 1)
		}
	}
	if out == nil {
		out = Shape{}
	}
	return []TensorType{{DType: F32, Shape: out}}, nil
}
