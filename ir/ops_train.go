package ir

import (
	"fmt"
	"math"
)

// Training ops: the train-mode forward of BatchNorm, the loss, parameter
// updates and the backward kernels that gradient rules (grads.go) build.
// Backward ops record the shapes they need in attributes rather than
// reading the forward values, so that those values need not stay alive.
// All are legal only at StageTraining.

// ConvGradAttrs describe a convolution for its backward ops: the forward
// attributes plus the per-sample input shape (C, H, W) and the weight shape
// (K, C/group, KH, KW).
type ConvGradAttrs struct {
	Strides   []int `ir:"strides"`
	Pads      []int `ir:"pads"`
	Dilations []int `ir:"dilations"`
	Group     int   `ir:"group"`
	Input     []int `ir:"input"`
	Weight    []int `ir:"weight"`
}

// GemmGradAttrs describe a Gemm for the gradient with respect to argument
// Wrt (0: A, 1: B, 2: C); shapes as in the forward graph, -1 for the batch.
type GemmGradAttrs struct {
	Alpha  float32 `ir:"alpha"`
	Beta   float32 `ir:"beta"`
	TransA bool    `ir:"trans_a"`
	TransB bool    `ir:"trans_b"`
	Wrt    int     `ir:"wrt"`
	A      []int   `ir:"a"`
	B      []int   `ir:"b"`
	C      []int   `ir:"c"`
}

// BinaryGradAttrs describe a broadcasting binary op (Op is "Add", "Sub",
// "Mul" or "Div") for the gradient with respect to argument Wrt.
type BinaryGradAttrs struct {
	Op  string `ir:"op"`
	Wrt int    `ir:"wrt"`
	A   []int  `ir:"a"`
	B   []int  `ir:"b"`
}

// BatchNormRunAttrs describe the running-statistics update of a BatchNorm:
// Momentum in ONNX convention, Spatial the product of the dimensions after
// the channel.
type BatchNormRunAttrs struct {
	Epsilon  float32 `ir:"epsilon"`
	Momentum float32 `ir:"momentum"`
	Spatial  int     `ir:"spatial"`
}

// ClipGradAttrs hold the bounds of the Clip being differentiated.
type ClipGradAttrs struct {
	Min float32 `ir:"min"`
	Max float32 `ir:"max"`
}

// PoolGradAttrs describe a 2-D pooling for its backward op, with the
// per-sample input shape (C, H, W).
type PoolGradAttrs struct {
	KernelShape     []int `ir:"kernel_shape"`
	Strides         []int `ir:"strides"`
	Pads            []int `ir:"pads"`
	Dilations       []int `ir:"dilations"`
	CeilMode        bool  `ir:"ceil_mode"`
	CountIncludePad bool  `ir:"count_include_pad"`
	Input           []int `ir:"input"`
}

// InputShapeAttrs hold the full input shape (-1 for the batch) of a
// backward op that needs nothing else.
type InputShapeAttrs struct {
	Input []int `ir:"input"`
}

// PadGradAttrs: the forward Pad's mode and pads (begins, then ends) and
// input shape.
type PadGradAttrs struct {
	Mode  string `ir:"mode"`
	Pads  []int  `ir:"pads"`
	Input []int  `ir:"input"`
}

// SliceGradAttrs: the forward Slice resolved per axis, and its input shape.
type SliceGradAttrs struct {
	Input  []int `ir:"input"`
	Starts []int `ir:"starts"`
	Ends   []int `ir:"ends"`
	Axes   []int `ir:"axes"`
	Steps  []int `ir:"steps"`
}

// GatherGradAttrs: the forward Gather's axis and constant indices.
type GatherGradAttrs struct {
	Input        []int `ir:"input"`
	Axis         int   `ir:"axis"`
	Indices      []int `ir:"indices"`
	IndicesShape []int `ir:"indices_shape"`
}

// ReduceGradAttrs: the forward reduction's axes and input shape.
type ReduceGradAttrs struct {
	Input    []int `ir:"input"`
	Axes     []int `ir:"axes"`
	KeepDims bool  `ir:"keepdims"`
}

// DropoutGradAttrs: the forward Dropout's ratio and seed.
type DropoutGradAttrs struct {
	Ratio float32 `ir:"ratio"`
	Seed  int     `ir:"seed"`
}

func newConvGradAttrs() any {
	return &ConvGradAttrs{Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, Group: 1}
}
func newGemmGradAttrs() any     { return &GemmGradAttrs{Alpha: 1, Beta: 1} }
func newBinaryGradAttrs() any   { return &BinaryGradAttrs{} }
func newBatchNormRunAttrs() any { return &BatchNormRunAttrs{Epsilon: 1e-5, Momentum: 0.9, Spatial: 1} }
func newClipGradAttrs() any {
	return &ClipGradAttrs{Min: float32(math.Inf(-1)), Max: float32(math.Inf(1))}
}
func newPoolGradAttrs() any         { return &PoolGradAttrs{} }
func newInputShapeAttrs() any       { return &InputShapeAttrs{} }
func newPadGradAttrs() any          { return &PadGradAttrs{Mode: "constant"} }
func newSliceGradAttrs() any        { return &SliceGradAttrs{} }
func newGatherGradAttrs() any       { return &GatherGradAttrs{} }
func newReduceGradAttrs() any       { return &ReduceGradAttrs{KeepDims: true} }
func newDropoutGradAttrs() any      { return &DropoutGradAttrs{Ratio: 0.5} }
func shapeOf(dims []int) TensorType { return TensorType{DType: F32, Shape: append(Shape{}, dims...)} }

// trainOp registers an op legal only in training graphs.
func trainOp(op Op, d OpDef) {
	d.MinStage, d.MaxStage = StageTraining, StageTraining
	register(op, d)
}

// batchOf is the batch (or static leading size) of a gradient's shape, the
// n its kernel takes.
func batchOf(n *Node) int { return batchN(n.Args[0].Type.Shape) }

func init() {
	trainOp(OpBatchNormTrain, OpDef{
		Name: "BatchNormTrain", MinArgs: 3, MaxArgs: 3, Results: 3,
		NewAttrs: newBatchNormAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			x := n.Args[0].Type.Shape
			if x.Rank() < 2 {
				return nil, fmt.Errorf("input %v needs a channel dimension", x)
			}
			for i := 1; i < 3; i++ {
				if !n.Args[i].Type.Shape.Equal(Shape{x[1]}) {
					return nil, fmt.Errorf("argument %d has shape %v, want [%d]", i, n.Args[i].Type.Shape, x[1])
				}
			}
			return []TensorType{{DType: F32, Shape: x.Clone()}, Of(F32, x[1]), Of(F32, x[1])}, nil
		},
		Kernel: "BatchNormTraining",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BatchNormAttrs)
			x := n.Args[0].Type.Shape
			return &KernelCall{
				Func:   "BatchNormTraining",
				Params: bnParams(x[1], x[2:].Static(), a.Epsilon, a.Momentum),
				HasN:   true, N: batchN(x),
				// Running statistics are committed by BatchNormRunningUpdate
				// once the step is known to succeed.
				Bufs: []BufRef{R(0), R(1), R(2), Nil, Nil, A(0), A(1), A(2)},
			}, nil
		},
		Cost: elemCost(6),
	})
	trainOp(OpBatchNormRunningUpdate, OpDef{
		Name: "BatchNormRunningUpdate", MinArgs: 4, MaxArgs: 4, SideEffect: true,
		NewAttrs: newBatchNormRunAttrs,
		Infer:    func(n *Node) ([]TensorType, error) { return []TensorType{}, nil },
		Kernel:   "BatchNormUpdateRunning",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BatchNormRunAttrs)
			return &KernelCall{
				Func:   "BatchNormUpdateRunning",
				Params: bnParams(n.Args[0].Type.Shape[0], a.Spatial, a.Epsilon, a.Momentum),
				HasN:   true, N: RuntimeBatch,
				Bufs: []BufRef{A(2), A(3), A(0), A(1)},
			}, nil
		},
		Cost: func(n *Node) Cost { return Cost{FLOPs: 6 * int64(n.Args[0].Type.Shape.Static())} },
	})
	trainOp(OpSoftmaxCrossEntropy, OpDef{
		Name: "SoftmaxCrossEntropy", MinArgs: 2, MaxArgs: 2, Results: 2,
		Infer: func(n *Node) ([]TensorType, error) {
			l, y := n.Args[0].Type, n.Args[1].Type
			if l.DType != F32 || l.Shape.Rank() != 2 || l.Shape[0] != BatchDim {
				return nil, fmt.Errorf("logits must be f32[N,classes], have %v", l)
			}
			if y.DType != I32 || !y.Shape.Equal(Shape{BatchDim}) {
				return nil, fmt.Errorf("labels must be i32[N], have %v", y)
			}
			return []TensorType{Of(F32), {DType: F32, Shape: l.Shape.Clone()}}, nil
		},
		Kernel: "SoftmaxCrossEntropy",
		Call: func(n *Node) (*KernelCall, error) {
			return &KernelCall{
				Func:   "SoftmaxCrossEntropy",
				Params: &Struct{Type: "SoftmaxCrossEntropyParams", Fields: []Field{{"Classes", n.Args[0].Type.Shape[1]}}},
				HasN:   true, N: RuntimeBatch,
				Bufs: []BufRef{R(1), A(0), A(1)},
			}, nil
		},
		Cost: elemCost(8),
	})
	trainOp(OpUpdate, OpDef{
		Name: "Update", MinArgs: 2, MaxArgs: 2, SideEffect: true,
		Infer: func(n *Node) ([]TensorType, error) {
			p, g := n.Args[0], n.Args[1]
			if p.Kind != KindParam || !p.Param.Trainable {
				return nil, fmt.Errorf("argument 0 (v%d) must be a trainable parameter", p.ID)
			}
			if !p.Type.Equal(g.Type) {
				return nil, fmt.Errorf("gradient %v for parameter %v", g.Type, p.Type)
			}
			return []TensorType{}, nil
		},
		// The optimizer steps every parameter at once; code generation
		// collects the Update nodes into its parameter list.
		Kernel: "",
		Cost:   func(n *Node) Cost { return Cost{FLOPs: 4 * int64(n.Args[0].Type.Shape.Static())} },
	})

	convGrad := func(op Op, name, kernel string, args int, result func(n *Node) TensorType, bufs []BufRef) {
		trainOp(op, OpDef{
			Name: name, MinArgs: args, MaxArgs: args, Results: 1,
			NewAttrs: newConvGradAttrs,
			Infer: func(n *Node) ([]TensorType, error) {
				a := n.Attrs.(*ConvGradAttrs)
				if len(a.Input) != 3 || len(a.Weight) != 4 {
					return nil, fmt.Errorf("input %v and weight %v shapes are incomplete", a.Input, a.Weight)
				}
				return []TensorType{result(n)}, nil
			},
			Kernel: kernel,
			Call: func(n *Node) (*KernelCall, error) {
				a := n.Attrs.(*ConvGradAttrs)
				return &KernelCall{Func: kernel, Params: convParams(a), HasN: true, N: batchOf(n), Bufs: bufs}, nil
			},
			Cost: elemCost(2),
		})
	}
	// dx from dy and w; dw from x and dy; db from dy.
	convGrad(OpConvGradInput, "ConvGradInput", "Conv2DGradInput", 2, func(n *Node) TensorType {
		a := n.Attrs.(*ConvGradAttrs)
		return TensorType{DType: F32, Shape: append(Shape{n.Args[0].Type.Shape[0]}, a.Input...)}
	}, []BufRef{R(0), A(0), A(1)})
	convGrad(OpConvGradFilter, "ConvGradFilter", "Conv2DGradFilter", 2, func(n *Node) TensorType {
		return shapeOf(n.Attrs.(*ConvGradAttrs).Weight)
	}, []BufRef{R(0), A(0), A(1)})
	convGrad(OpConvGradBias, "ConvGradBias", "Conv2DGradBias", 1, func(n *Node) TensorType {
		return Of(F32, n.Attrs.(*ConvGradAttrs).Weight[0])
	}, []BufRef{R(0), A(0)})

	trainOp(OpGemmGrad, OpDef{
		Name: "GemmGrad", MinArgs: 1, MaxArgs: 3, Results: 1,
		NewAttrs: newGemmGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			a := n.Attrs.(*GemmGradAttrs)
			switch a.Wrt {
			case 0:
				return []TensorType{shapeOf(a.A)}, nil
			case 1:
				return []TensorType{shapeOf(a.B)}, nil
			case 2:
				return []TensorType{shapeOf(a.C)}, nil
			}
			return nil, fmt.Errorf("wrt %d", a.Wrt)
		},
		Kernel: "GemmBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*GemmGradAttrs)
			p, nArg, err := gemmParams(&GemmAttrs{Alpha: a.Alpha, Beta: a.Beta, TransA: a.TransA, TransB: a.TransB}, Shape(a.A), Shape(a.B), Shape(a.C), a.C != nil)
			if err != nil {
				return nil, err
			}
			out := []BufRef{Nil, Nil, Nil}
			out[a.Wrt] = R(0)
			return &KernelCall{Func: "GemmBackward", Params: p, HasN: true, N: nArg,
				Bufs: append(out, A(0), ArgOrNil(n, 1), ArgOrNil(n, 2))}, nil
		},
		Cost: elemCost(2),
	})
	trainOp(OpMatMulGrad, OpDef{
		Name: "MatMulGrad", MinArgs: 1, MaxArgs: 3, Results: 1,
		NewAttrs: newBinaryGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			a := n.Attrs.(*BinaryGradAttrs)
			if a.Wrt == 0 {
				return []TensorType{shapeOf(a.A)}, nil
			}
			return []TensorType{shapeOf(a.B)}, nil
		},
		Kernel: "MatMulBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BinaryGradAttrs)
			p, nArg, err := matmulParams(Shape(a.A), Shape(a.B))
			if err != nil {
				return nil, err
			}
			out := []BufRef{Nil, Nil}
			out[a.Wrt] = R(0)
			return &KernelCall{Func: "MatMulBackward", Params: p, HasN: true, N: nArg,
				Bufs: append(out, A(0), ArgOrNil(n, 1), ArgOrNil(n, 2))}, nil
		},
		Cost: elemCost(2),
	})
	trainOp(OpBatchNormGrad, OpDef{
		Name: "BatchNormGrad", MinArgs: 5, MaxArgs: 5, Results: 3,
		NewAttrs: newBatchNormAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			x := n.Args[1].Type.Shape
			return []TensorType{{DType: F32, Shape: x.Clone()}, Of(F32, x[1]), Of(F32, x[1])}, nil
		},
		Kernel: "BatchNormBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BatchNormAttrs)
			x := n.Args[1].Type.Shape
			return &KernelCall{Func: "BatchNormBackward", Params: bnParams(x[1], x[2:].Static(), a.Epsilon, a.Momentum),
				HasN: true, N: batchN(x),
				Bufs: []BufRef{R(0), R(1), R(2), A(0), A(1), A(2), A(3), A(4)}}, nil
		},
		Cost: elemCost(8),
	})

	// Activation gradients: dx from dy and the forward output (or input for
	// HardSwish, whose derivative is not a function of its output).
	actGrad := func(op Op, name, kernel string, attrs func() any, params func(n *Node) *Struct) {
		trainOp(op, OpDef{
			Name: name, MinArgs: 2, MaxArgs: 2, Results: 1,
			NewAttrs: attrs,
			Infer:    same,
			Kernel:   kernel,
			Call: func(n *Node) (*KernelCall, error) {
				var p *Struct
				if params != nil {
					p = params(n)
				}
				return &KernelCall{Func: kernel, Params: p, Bufs: []BufRef{R(0), A(0), A(1)}}, nil
			},
			Cost: elemCost(2),
		})
	}
	actGrad(OpReluGrad, "ReluGrad", "ReluBackward", nil, nil)
	actGrad(OpSigmoidGrad, "SigmoidGrad", "SigmoidBackward", nil, nil)
	actGrad(OpHardSwishGrad, "HardSwishGrad", "HardSwishBackward", nil, nil)
	actGrad(OpClipGrad, "ClipGrad", "ClipBackward", newClipGradAttrs, func(n *Node) *Struct {
		a := n.Attrs.(*ClipGradAttrs)
		return &Struct{Type: "ClipParams", Fields: []Field{{"Min", a.Min}, {"Max", a.Max}}}
	})
	actGrad(OpHardSigmoidGrad, "HardSigmoidGrad", "HardSigmoidBackward", newHardSigmoidAttrs, func(n *Node) *Struct {
		a := n.Attrs.(*HardSigmoidAttrs)
		return &Struct{Type: "HardSigmoidParams", Fields: []Field{{"Alpha", a.Alpha}, {"Beta", a.Beta}}}
	})

	trainOp(OpBroadcastGrad, OpDef{
		Name: "BroadcastGrad", MinArgs: 1, MaxArgs: 3, Results: 1,
		NewAttrs: newBinaryGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			a := n.Attrs.(*BinaryGradAttrs)
			switch a.Op {
			case "Add", "Sub", "Mul", "Div":
			default:
				return nil, fmt.Errorf("unknown op %q", a.Op)
			}
			if a.Wrt == 0 {
				return []TensorType{shapeOf(a.A)}, nil
			}
			return []TensorType{shapeOf(a.B)}, nil
		},
		Kernel: "AddBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*BinaryGradAttrs)
			out := []BufRef{Nil, Nil}
			out[a.Wrt] = R(0)
			bufs := append(out, A(0))
			if a.Op == "Mul" || a.Op == "Div" {
				bufs = append(bufs, ArgOrNil(n, 1), ArgOrNil(n, 2))
			}
			return &KernelCall{Func: a.Op + "Backward",
				Params: &Struct{Type: "BroadcastParams", Fields: []Field{{"A", append([]int{}, a.A...)}, {"B", append([]int{}, a.B...)}}},
				HasN:   true, N: batchOf(n), Bufs: bufs}, nil
		},
		Cost: elemCost(2),
	})

	poolGrad := func(op Op, name, kernel string, args int, bufs []BufRef) {
		trainOp(op, OpDef{
			Name: name, MinArgs: args, MaxArgs: args, Results: 1,
			NewAttrs: newPoolGradAttrs,
			Infer: func(n *Node) ([]TensorType, error) {
				return []TensorType{{DType: F32, Shape: append(Shape{n.Args[0].Type.Shape[0]}, n.Attrs.(*PoolGradAttrs).Input...)}}, nil
			},
			Kernel: kernel,
			Call: func(n *Node) (*KernelCall, error) {
				a := n.Attrs.(*PoolGradAttrs)
				return &KernelCall{Func: kernel, Params: poolParams(&PoolAttrs{KernelShape: a.KernelShape, Strides: a.Strides, Pads: a.Pads,
					Dilations: a.Dilations, CeilMode: a.CeilMode, CountIncludePad: a.CountIncludePad}, a.Input),
					HasN: true, N: batchOf(n), Bufs: bufs}, nil
			},
			Cost: elemCost(2),
		})
	}
	poolGrad(OpMaxPoolGrad, "MaxPoolGrad", "MaxPool2DBackward", 2, []BufRef{R(0), A(0), A(1)})
	poolGrad(OpAveragePoolGrad, "AveragePoolGrad", "AveragePool2DBackward", 1, []BufRef{R(0), A(0)})

	trainOp(OpGlobalAveragePoolGrad, OpDef{
		Name: "GlobalAveragePoolGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newInputShapeAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			return []TensorType{shapeOf(n.Attrs.(*InputShapeAttrs).Input)}, nil
		},
		Kernel: "GlobalAveragePoolBackward",
		Call: func(n *Node) (*KernelCall, error) {
			in := n.Attrs.(*InputShapeAttrs).Input
			return &KernelCall{Func: "GlobalAveragePoolBackward",
				Params: &Struct{Type: "ChannelParams", Fields: []Field{{"C", in[1]}, {"Spatial", Shape(in[2:]).Static()}}},
				HasN:   true, N: batchOf(n), Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
	trainOp(OpPadGrad, OpDef{
		Name: "PadGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newPadGradAttrs,
		Infer:    func(n *Node) ([]TensorType, error) { return []TensorType{shapeOf(n.Attrs.(*PadGradAttrs).Input)}, nil },
		Kernel:   "PadBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*PadGradAttrs)
			mode := map[string]Sym{"constant": "PadConstant", "reflect": "PadReflect", "edge": "PadEdge"}[a.Mode]
			return &KernelCall{Func: "PadBackward",
				Params: &Struct{Type: "PadParams", Fields: []Field{{"Shape", append([]int{}, a.Input...)}, {"Pads", append([]int{}, a.Pads...)}, {"Mode", mode}}},
				HasN:   true, N: batchN(Shape(a.Input)), Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
	trainOp(OpSliceGrad, OpDef{
		Name: "SliceGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newSliceGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			return []TensorType{shapeOf(n.Attrs.(*SliceGradAttrs).Input)}, nil
		},
		Kernel: "SliceBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*SliceGradAttrs)
			return &KernelCall{Func: "SliceBackward",
				Params: &Struct{Type: "SliceParams", Fields: []Field{{"Shape", append([]int{}, a.Input...)}, {"Starts", a.Starts}, {"Ends", a.Ends}, {"Axes", a.Axes}, {"Steps", a.Steps}}},
				HasN:   true, N: batchN(Shape(a.Input)), Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
	trainOp(OpGatherGrad, OpDef{
		Name: "GatherGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newGatherGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			return []TensorType{shapeOf(n.Attrs.(*GatherGradAttrs).Input)}, nil
		},
		Kernel: "GatherBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*GatherGradAttrs)
			return &KernelCall{Func: "GatherBackward",
				Params: &Struct{Type: "GatherParams", Fields: []Field{{"Shape", append([]int{}, a.Input...)}, {"Axis", a.Axis}, {"Indices", a.Indices}, {"IndicesShape", append([]int{}, a.IndicesShape...)}}},
				HasN:   true, N: batchN(Shape(a.Input)), Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
	trainOp(OpReduceMeanGrad, OpDef{
		Name: "ReduceMeanGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newReduceGradAttrs,
		Infer: func(n *Node) ([]TensorType, error) {
			return []TensorType{shapeOf(n.Attrs.(*ReduceGradAttrs).Input)}, nil
		},
		Kernel: "ReduceMeanBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*ReduceGradAttrs)
			return &KernelCall{Func: "ReduceMeanBackward",
				Params: &Struct{Type: "ReduceParams", Fields: []Field{{"Shape", append([]int{}, a.Input...)}, {"Axes", a.Axes}, {"KeepDims", a.KeepDims}}},
				HasN:   true, N: batchN(Shape(a.Input)), Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
	for _, s := range []struct {
		op           Op
		name, kernel string
	}{{OpSoftmaxGrad, "SoftmaxGrad", "SoftmaxBackward"}, {OpLogSoftmaxGrad, "LogSoftmaxGrad", "LogSoftmaxBackward"}} {
		trainOp(s.op, OpDef{
			Name: s.name, MinArgs: 2, MaxArgs: 2, Results: 1,
			NewAttrs: newAxis1Attrs,
			Infer:    same,
			Kernel:   s.kernel,
			Call: func(n *Node) (*KernelCall, error) {
				y := n.Args[1].Type.Shape
				ax := n.Attrs.(*AxisAttrs).Axis
				if ax != y.Rank()-1 {
					return nil, fmt.Errorf("softmax over axis %d of %v: the runtime takes only the last axis", ax, y)
				}
				return &KernelCall{Func: s.kernel,
					Params: &Struct{Type: "SoftmaxParams", Fields: []Field{{"Outer", y[:ax].Static()}, {"Inner", y[ax]}}},
					HasN:   true, N: batchN(y), Bufs: []BufRef{R(0), A(0), A(1)}}, nil
			},
			Cost: elemCost(3),
		})
	}
	trainOp(OpDropoutGrad, OpDef{
		Name: "DropoutGrad", MinArgs: 1, MaxArgs: 1, Results: 1,
		NewAttrs: newDropoutGradAttrs,
		Infer:    same,
		Kernel:   "DropoutBackward",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*DropoutGradAttrs)
			return &KernelCall{Func: "DropoutBackward", Params: dropoutParams(float64(a.Ratio), a.Seed), HasStep: true, Bufs: []BufRef{R(0), A(0)}}, nil
		},
		Cost: elemCost(1),
	})
}

func bnParams(c, spatial int, eps, onnxMomentum float32) *Struct {
	return &Struct{Type: "BatchNormParams", Fields: []Field{
		{"C", c}, {"Spatial", spatial}, {"Epsilon", eps}, {"Momentum", 1 - onnxMomentum},
	}}
}

func dropoutParams(ratio float64, seed int) *Struct {
	return &Struct{Type: "DropoutParams", Fields: []Field{{"Ratio", float32(ratio)}, {"Seed", SeedOffset(uint64(seed))}}}
}

func convParams(a *ConvGradAttrs) *Struct {
	return &Struct{Type: "Conv2DParams", Fields: []Field{
		{"C", a.Input[0]}, {"H", a.Input[1]}, {"W", a.Input[2]}, {"K", a.Weight[0]}, {"KH", a.Weight[2]}, {"KW", a.Weight[3]},
		{"StrideH", a.Strides[0]}, {"StrideW", a.Strides[1]},
		{"PadTop", a.Pads[0]}, {"PadLeft", a.Pads[1]}, {"PadBottom", a.Pads[2]}, {"PadRight", a.Pads[3]},
		{"DilationH", a.Dilations[0]}, {"DilationW", a.Dilations[1]}, {"Groups", a.Group},
	}}
}

func poolParams(a *PoolAttrs, in []int) *Struct {
	return &Struct{Type: "PoolParams", Fields: []Field{
		{"C", in[0]}, {"H", in[1]}, {"W", in[2]},
		{"KernelH", a.KernelShape[0]}, {"KernelW", a.KernelShape[1]},
		{"StrideH", a.Strides[0]}, {"StrideW", a.Strides[1]},
		{"PadTop", a.Pads[0]}, {"PadLeft", a.Pads[1]}, {"PadBottom", a.Pads[2]}, {"PadRight", a.Pads[3]},
		{"DilationH", a.Dilations[0]}, {"DilationW", a.Dilations[1]},
		{"CeilMode", a.CeilMode}, {"CountIncludePad", a.CountIncludePad},
	}}
}
