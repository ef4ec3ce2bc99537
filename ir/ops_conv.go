package ir

import "fmt"

func init() {
	register(OpConv, OpDef{
		Name: "Conv", MinArgs: 2, MaxArgs: 8, Results: 1,
		NewAttrs: newConvAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer:        inferConv,
		Canonicalize: canonConv,
		Kernel:       "Conv2D",
		Call:         callConv,
		Cost:         costConv,
	})
}

// window computes one spatial output size, ONNX/PyTorch style: floor by
// default, ceil with ceilMode, where a ceil window must start inside the
// input or its leading pad.
func window(in, k, stride, dil, padBegin, padEnd int, ceilMode bool) (int, error) {
	if stride < 1 || dil < 1 || k < 1 {
		return 0, fmt.Errorf("kernel %d, stride %d and dilation %d must be positive", k, stride, dil)
	}
	if padBegin < 0 || padEnd < 0 {
		return 0, fmt.Errorf("negative pads %d, %d", padBegin, padEnd)
	}
	span := dil*(k-1) + 1
	avail := in + padBegin + padEnd - span
	if avail < 0 {
		return 0, fmt.Errorf("kernel extent %d exceeds padded input %d", span, in+padBegin+padEnd)
	}
	out := avail/stride + 1
	if ceilMode {
		out = (avail+stride-1)/stride + 1
		if (out-1)*stride >= in+padBegin {
			out--
		}
	}
	return out, nil
}

// autoPads resolves auto_pad for a 2-D window op into explicit
// [top, left, bottom, right] pads.
func autoPads(mode string, in, k, strides, dil []int, pads []int) ([]int, error) {
	switch mode {
	case "NOTSET", "":
		if len(pads) != 4 {
			return nil, fmt.Errorf("want 4 pads, have %v", pads)
		}
		return pads, nil
	case "VALID":
		return []int{0, 0, 0, 0}, nil
	case "SAME_UPPER", "SAME_LOWER":
		out := make([]int, 4)
		for i := 0; i < 2; i++ {
			if strides[i] < 1 {
				return nil, fmt.Errorf("stride %d must be positive", strides[i])
			}
			o := (in[i] + strides[i] - 1) / strides[i]
			total := max((o-1)*strides[i]+(k[i]-1)*dil[i]+1-in[i], 0)
			small, big := total/2, total-total/2
			if mode == "SAME_UPPER" {
				out[i], out[i+2] = small, big
			} else {
				out[i], out[i+2] = big, small
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown auto_pad %q", mode)
}

func checkPair(name string, v []int) error {
	if len(v) != 2 {
		return fmt.Errorf("want 2 %s, have %v (only 2-D is supported)", name, v)
	}
	return nil
}

func inferConv(n *Node) ([]TensorType, error) {
	a := n.Attrs.(*ConvAttrs)
	for i := range n.Args {
		if n.Args[i] != nil {
			if err := wantF32(n, i); err != nil {
				return nil, err
			}
		}
	}
	if err := wantRank(n, 0, 4); err != nil {
		return nil, fmt.Errorf("%v (only 2-D convolution is supported)", err)
	}
	if err := wantRank(n, 1, 4); err != nil {
		return nil, err
	}
	if err := wantBatchFirst(n, 0); err != nil {
		return nil, err
	}
	x, w := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	if w.HasBatch() {
		return nil, fmt.Errorf("weight %v has a batch dimension", w)
	}
	if err := checkPair("strides", a.Strides); err != nil {
		return nil, err
	}
	if err := checkPair("dilations", a.Dilations); err != nil {
		return nil, err
	}
	c, k := x[1], w[0]
	if a.Group < 1 || c%a.Group != 0 || k%a.Group != 0 {
		return nil, fmt.Errorf("group %d must divide input channels %d and output channels %d", a.Group, c, k)
	}
	if w[1]*a.Group != c {
		return nil, fmt.Errorf("weight %v has %d input channels per group, want %d/%d", w, w[1], c, a.Group)
	}
	if b := n.Arg(2); b != nil && !b.Type.Shape.Equal(Shape{k}) {
		return nil, fmt.Errorf("bias %v, want [%d]", b.Type.Shape, k)
	}
	nargs, bnArgs := len(n.Args), 7
	if a.Residual {
		bnArgs++
	}
	switch {
	case a.BN && nargs != bnArgs:
		return nil, fmt.Errorf("%d arguments: want %d with a fused batch normalisation (bn)", nargs, bnArgs)
	case !a.BN && a.Residual && nargs != 4:
		return nil, fmt.Errorf("%d arguments: want 4 with a fused residual and no batch normalisation", nargs)
	case !a.BN && !a.Residual && nargs > 3:
		return nil, fmt.Errorf("%d arguments: want at most 3 without a fused batch normalisation or residual", nargs)
	}
	if a.BN {
		for i, name := range []string{"scale", "shift", "mean", "variance"} {
			if v := n.Args[3+i]; v == nil || !v.Type.Shape.Equal(Shape{k}) {
				return nil, fmt.Errorf("fused batch normalisation's %s must be [%d]", name, k)
			}
		}
	}
	pads, err := autoPads(a.AutoPad, x[2:], w[2:], a.Strides, a.Dilations, a.Pads)
	if err != nil {
		return nil, err
	}
	oh, err := window(x[2], w[2], a.Strides[0], a.Dilations[0], pads[0], pads[2], false)
	if err != nil {
		return nil, err
	}
	ow, err := window(x[3], w[3], a.Strides[1], a.Dilations[1], pads[1], pads[3], false)
	if err != nil {
		return nil, err
	}
	y := Of(F32, x[0], k, oh, ow)
	if a.Residual {
		if r := n.Args[len(n.Args)-1]; r == nil || !r.Type.Shape.Equal(y.Shape) {
			return nil, fmt.Errorf("fused residual must have the result's shape %v", y.Shape)
		}
	}
	return []TensorType{y}, nil
}

func canonConv(n *Node) error {
	a := n.Attrs.(*ConvAttrs)
	x, w := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	pads, err := autoPads(a.AutoPad, x[2:], w[2:], a.Strides, a.Dilations, a.Pads)
	if err != nil {
		return err
	}
	a.Pads, a.AutoPad = pads, "NOTSET"
	return nil
}

func costConv(n *Node) Cost {
	w := n.Args[1].Type.Shape
	y := n.Results[0].Type.Shape
	macs := int64(y.Static()) * int64(w[1]*w[2]*w[3])
	x := int64(n.Args[0].Type.Shape.Static())
	if n.Attrs.(*ConvAttrs).Residual { // read as well as y written
		x += int64(y.Static())
	}
	return Cost{FLOPs: 2 * macs, Bytes: 4 * (x + int64(y.Static()) + paramElems(n)), Params: paramElems(n)}
}

func callConv(n *Node) (*KernelCall, error) {
	a := n.Attrs.(*ConvAttrs)
	x, w := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	epi := &Struct{Type: "Epilogue"}
	switch a.Act {
	case "":
		epi.Fields = []Field{{"Kind", Sym("EpilogueNone")}}
	case "relu":
		epi.Fields = []Field{{"Kind", Sym("EpilogueRelu")}}
	case "clip":
		epi.Fields = []Field{{"Kind", Sym("EpilogueClip")}, {"Min", a.ActMin}, {"Max", a.ActMax}}
	default:
		return nil, fmt.Errorf("unknown fused activation %q", a.Act)
	}
	conv := &Struct{Type: "Conv2DParams", Fields: []Field{
		{"C", x[1]}, {"H", x[2]}, {"W", x[3]}, {"K", w[0]}, {"KH", w[2]}, {"KW", w[3]},
		{"StrideH", a.Strides[0]}, {"StrideW", a.Strides[1]},
		{"PadTop", a.Pads[0]}, {"PadLeft", a.Pads[1]}, {"PadBottom", a.Pads[2]}, {"PadRight", a.Pads[3]},
		{"DilationH", a.Dilations[0]}, {"DilationW", a.Dilations[1]},
		{"Groups", a.Group}, {"Epilogue", epi},
	}}
	call := &KernelCall{
		Func: "Conv2D", Params: conv,
		HasN: true, N: batchN(x),
		Bufs: []BufRef{R(0), A(0), A(1), ArgOrNil(n, 2)},
	}
	if a.BN {
		call.Func = "Conv2DBatchNorm"
		call.Params = &Struct{Type: "Conv2DBNParams", Fields: []Field{{"Conv", conv}, {"Epsilon", a.BNEpsilon}}}
		call.Bufs = append(call.Bufs, A(3), A(4), A(5), A(6))
	}
	if a.Residual {
		call.Func += "Residual"
		call.Bufs = append(call.Bufs, A(len(n.Args)-1))
	}
	return call, nil
}
