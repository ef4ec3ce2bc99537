package ir

import "fmt"

func init() {
	register(OpBatchNorm, OpDef{
		Name: "BatchNormalization", MinArgs: 5, MaxArgs: 5, Results: 1,
		NewAttrs: newBatchNormAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer:  inferBatchNorm,
		Kernel: "BatchNormInference",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BatchNormAttrs)
			x := n.Args[0].Type.Shape
			return &KernelCall{
				Func:   "BatchNormInference",
				Params: bnParams(x[1], x[2:].Static(), a.Epsilon, a.Momentum),
				HasN:   true, N: batchN(x),
				Bufs: []BufRef{R(0), A(0), A(1), A(2), A(3), A(4)},
			}, nil
		},
		Cost: func(n *Node) Cost {
			e := int64(n.Results[0].Type.Shape.Static())
			return Cost{FLOPs: 2 * e, Bytes: 8 * e, Params: paramElems(n)}
		},
	})
	for _, s := range []struct {
		op     Op
		name   string
		kernel string
	}{{OpSoftmax, "Softmax", "Softmax"}, {OpLogSoftmax, "LogSoftmax", "LogSoftmax"}} {
		register(s.op, OpDef{
			Name: s.name, MinArgs: 1, MaxArgs: 1, Results: 1,
			NewAttrs: func() any { return &AxisAttrs{Axis: -1} },
			MinStage: StageImported, MaxStage: StageTraining,
			Infer: func(n *Node) ([]TensorType, error) {
				if err := wantF32(n, 0); err != nil {
					return nil, err
				}
				s := n.Args[0].Type.Shape
				ax, err := normAxis(n.Attrs.(*AxisAttrs).Axis, s.Rank())
				if err != nil {
					return nil, err
				}
				if s[ax] == BatchDim {
					return nil, fmt.Errorf("softmax over the batch dimension is not supported")
				}
				return same(n)
			},
			Canonicalize: canonAxis,
			Kernel:       s.kernel,
			Call: func(n *Node) (*KernelCall, error) {
				x := n.Args[0].Type.Shape
				ax := n.Attrs.(*AxisAttrs).Axis
				if ax != x.Rank()-1 {
					return nil, fmt.Errorf("softmax over axis %d of %v: the runtime takes only the last axis", ax, x)
				}
				// The kernel runs n·Outer rows. A batched shape gives rows
				// per sample (Static skips the batch) and the run-time n;
				// a static one gives all its rows and n = 1, since
				// dimension 0 is then part of Outer, or (a 1-D input) the
				// softmax axis itself.
				outer, nArg := x[:ax].Static(), 1
				if x.HasBatch() {
					nArg = RuntimeBatch
				}
				return &KernelCall{
					Func:   s.kernel,
					Params: &Struct{Type: "SoftmaxParams", Fields: []Field{{"Outer", outer}, {"Inner", x[ax]}}},
					HasN:   true, N: nArg,
					Bufs: []BufRef{R(0), A(0)},
				}, nil
			},
			Cost: elemCost(5),
		})
	}
	register(OpDropout, OpDef{
		Name: "Dropout", MinArgs: 1, MaxArgs: 3, Results: 1,
		NewAttrs: newDropoutAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		StaticArgs: 0b110,
		Infer: func(n *Node) ([]TensorType, error) {
			if err := wantF32(n, 0); err != nil {
				return nil, err
			}
			if r := n.Arg(1); r != nil {
				v, err := constScalar(r)
				if err != nil {
					return nil, fmt.Errorf("ratio: %v", err)
				}
				if v < 0 || v >= 1 {
					return nil, fmt.Errorf("ratio %v outside [0, 1)", v)
				}
			}
			return same(n)
		},
		Kernel: "Dropout",
		Call: func(n *Node) (*KernelCall, error) {
			// Inference removes Dropout: this is the training kernel, whose
			// mask depends on the model's seed and step.
			return &KernelCall{Func: "Dropout", Params: dropoutParams(DropoutRatio(n), n.Attrs.(*DropoutAttrs).Seed),
				HasStep: true, Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(2),
	})
}

// DropoutRatio returns a Dropout node's ratio (0.5 when absent, the ONNX
// default).
func DropoutRatio(n *Node) float64 {
	if r := n.Arg(1); r != nil {
		v, _ := constScalar(r)
		return v
	}
	return 0.5
}

func inferBatchNorm(n *Node) ([]TensorType, error) {
	for i := range n.Args {
		if err := wantF32(n, i); err != nil {
			return nil, err
		}
	}
	x := n.Args[0].Type.Shape
	if x.Rank() < 2 {
		return nil, fmt.Errorf("input %v needs a channel dimension", x)
	}
	if err := wantBatchFirst(n, 0); err != nil {
		return nil, err
	}
	c := x[1]
	for i := 1; i < 5; i++ {
		if s := n.Args[i].Type.Shape; !s.Equal(Shape{c}) {
			return nil, fmt.Errorf("argument %d has shape %v, want [%d]", i, s, c)
		}
	}
	if e := n.Attrs.(*BatchNormAttrs).Epsilon; !(e >= 0) {
		return nil, fmt.Errorf("epsilon %v must be non-negative", e)
	}
	return same(n)
}

func canonAxis(n *Node) error {
	a := n.Attrs.(*AxisAttrs)
	ax, err := normAxis(a.Axis, n.Args[0].Type.Shape.Rank())
	if err != nil {
		return err
	}
	a.Axis = ax
	return nil
}
