// Package irinterp evaluates an IR graph directly, in float64, one op at a
// time with the plainest loops. It is the compiler's test oracle: fixtures'
// IR against PyTorch's outputs, rewritten graphs against their originals,
// generated code against the graph it came from. Nothing here is fast.
package irinterp

import (
	"fmt"
	"math"

	"github.com/smhgen/smhgen/ir"
)

// Tensor is a concrete value: a static shape (the batch substituted) and
// row-major data.
type Tensor struct {
	Shape []int
	Data  []float64
}

func (t *Tensor) String() string { return fmt.Sprintf("tensor%v", t.Shape) }

func size(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func newTensor(s []int) *Tensor {
	return &Tensor{Shape: append([]int{}, s...), Data: make([]float64, size(s))}
}

// concrete substitutes the batch size into a shape.
func concrete(s ir.Shape, n int) []int {
	out := make([]int, len(s))
	for i, d := range s {
		if d == ir.BatchDim {
			d = n
		}
		out[i] = d
	}
	return out
}

// Run evaluates g in inference mode on the inputs (float32 data, batch n),
// returning the outputs. Parameters must hold data.
func Run(g *ir.Graph, n int, inputs ...[]float32) ([]*Tensor, error) {
	if len(inputs) != len(g.Inputs) {
		return nil, fmt.Errorf("want %d inputs, have %d", len(g.Inputs), len(inputs))
	}
	vals := map[*ir.Value]*Tensor{}
	for i, v := range g.Inputs {
		t := newTensor(concrete(v.Type.Shape, n))
		if len(inputs[i]) != len(t.Data) {
			return nil, fmt.Errorf("input %d: want %d values for %v, have %d", i, len(t.Data), t.Shape, len(inputs[i]))
		}
		for j, x := range inputs[i] {
			t.Data[j] = float64(x)
		}
		vals[v] = t
	}
	for _, v := range g.Params {
		if v.Param.Data == nil {
			return nil, fmt.Errorf("param %q has no data", v.Name)
		}
		t := newTensor(v.Type.Shape)
		for j, x := range v.Param.Data {
			t.Data[j] = float64(x)
		}
		vals[v] = t
	}
	for _, v := range g.Consts {
		t := newTensor(v.Const.Shape)
		for j := range t.Data {
			t.Data[j] = v.Const.Float(j)
		}
		vals[v] = t
	}
	for _, nd := range g.Nodes {
		args := make([]*Tensor, max(len(nd.Args), 5)) // optional arguments read as nil
		for i, a := range nd.Args {
			if a != nil {
				args[i] = vals[a]
			}
		}
		out, err := eval(nd, args, n)
		if err != nil {
			return nil, &ir.NodeError{Node: nd, Err: err}
		}
		if want := concrete(nd.Results[0].Type.Shape, n); size(want) != len(out.Data) {
			return nil, &ir.NodeError{Node: nd, Err: fmt.Errorf("interpreter made %v, type says %v", out.Shape, want)}
		}
		out.Shape = concrete(nd.Results[0].Type.Shape, n)
		vals[nd.Results[0]] = out
	}
	outs := make([]*Tensor, len(g.Outputs))
	for i, o := range g.Outputs {
		outs[i] = vals[o]
	}
	return outs, nil
}

func unary(x *Tensor, f func(float64) float64) *Tensor {
	y := newTensor(x.Shape)
	for i, v := range x.Data {
		y.Data[i] = f(v)
	}
	return y
}

func eval(nd *ir.Node, a []*Tensor, n int) (*Tensor, error) {
	switch nd.Op {
	case ir.OpRelu:
		return unary(a[0], func(v float64) float64 { return math.Max(v, 0) }), nil
	case ir.OpSigmoid:
		return unary(a[0], sigmoid), nil
	case ir.OpHardSigmoid:
		at := nd.Attrs.(*ir.HardSigmoidAttrs)
		return unary(a[0], func(v float64) float64 {
			return math.Max(0, math.Min(1, float64(at.Alpha)*v+float64(at.Beta)))
		}), nil
	case ir.OpHardSwish:
		return unary(a[0], func(v float64) float64 { return v * math.Max(0, math.Min(1, v/6+0.5)) }), nil
	case ir.OpClip:
		lo, hi := ir.ClipBounds(nd)
		return unary(a[0], func(v float64) float64 { return math.Max(lo, math.Min(hi, v)) }), nil
	case ir.OpDropout:
		return a[0], nil
	case ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv:
		return binary(nd.Op, a[0], a[1]), nil
	case ir.OpConv:
		at := nd.Attrs.(*ir.ConvAttrs)
		var bn []*Tensor
		if at.BN {
			bn = a[3:7]
		}
		var res *Tensor
		if at.Residual {
			res = a[len(nd.Args)-1]
		}
		return conv(at, a[0], a[1], a[2], bn, res), nil
	case ir.OpGemm:
		return gemm(nd.Attrs.(*ir.GemmAttrs), a[0], a[1], a[2]), nil
	case ir.OpMatMul:
		return matmul(a[0], a[1]), nil
	case ir.OpBatchNorm:
		return batchNorm(nd.Attrs.(*ir.BatchNormAttrs), a), nil
	case ir.OpGlobalAveragePool:
		x := a[0]
		y := newTensor([]int{x.Shape[0], x.Shape[1], 1, 1})
		hw := x.Shape[2] * x.Shape[3]
		for i := range y.Data {
			var s float64
			for _, v := range x.Data[i*hw : (i+1)*hw] {
				s += v
			}
			y.Data[i] = s / float64(hw)
		}
		return y, nil
	case ir.OpAveragePool, ir.OpMaxPool:
		return pool(nd, a[0], concrete(nd.Results[0].Type.Shape, n)), nil
	case ir.OpFlatten, ir.OpReshape, ir.OpSqueeze, ir.OpUnsqueeze:
		return &Tensor{Shape: concrete(nd.Results[0].Type.Shape, n), Data: a[0].Data}, nil
	case ir.OpSoftmax, ir.OpLogSoftmax:
		return softmax(a[0], nd.Attrs.(*ir.AxisAttrs).Axis, nd.Op == ir.OpLogSoftmax), nil
	}
	return generic(nd, a, n)
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// index helpers for broadcasting: the flat index into x of the output
// coordinate c.
func bindex(x *Tensor, c []int) int {
	off := len(c) - len(x.Shape)
	idx := 0
	for d, s := range x.Shape {
		k := c[d+off]
		if s == 1 {
			k = 0
		}
		idx = idx*s + k
	}
	return idx
}

func next(c, shape []int) {
	for d := len(shape) - 1; d >= 0; d-- {
		c[d]++
		if c[d] < shape[d] {
			return
		}
		c[d] = 0
	}
}

func broadcastShape(a, b []int) []int {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := range out {
		da, db := 1, 1
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		out[i] = max(da, db)
	}
	return out
}

func binary(op ir.Op, a, b *Tensor) *Tensor {
	y := newTensor(broadcastShape(a.Shape, b.Shape))
	c := make([]int, len(y.Shape))
	for i := range y.Data {
		x, z := a.Data[bindex(a, c)], b.Data[bindex(b, c)]
		switch op {
		case ir.OpAdd:
			y.Data[i] = x + z
		case ir.OpSub:
			y.Data[i] = x - z
		case ir.OpMul:
			y.Data[i] = x * z
		case ir.OpDiv:
			y.Data[i] = x / z
		}
		next(c, y.Shape)
	}
	return y
}

// conv is Conv; bn, when not nil, holds a fused batch normalisation's
// scale, shift, mean and variance, and res a fused residual, applied in
// that order before the activation.
func conv(at *ir.ConvAttrs, x, w, b *Tensor, bn []*Tensor, res *Tensor) *Tensor {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	k, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	sh, sw := at.Strides[0], at.Strides[1]
	dh, dw := at.Dilations[0], at.Dilations[1]
	pt, pl, pb, pr := at.Pads[0], at.Pads[1], at.Pads[2], at.Pads[3]
	oh := (h+pt+pb-dh*(kh-1)-1)/sh + 1
	ow := (wd+pl+pr-dw*(kw-1)-1)/sw + 1
	y := newTensor([]int{n, k, oh, ow})
	kg := k / at.Group
	for s := 0; s < n; s++ {
		for o := 0; o < k; o++ {
			g := o / kg
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var acc float64
					if b != nil {
						acc = b.Data[o]
					}
					for ci := 0; ci < cg; ci++ {
						ch := g*cg + ci
						for u := 0; u < kh; u++ {
							r := i*sh - pt + u*dh
							if r < 0 || r >= h {
								continue
							}
							for v := 0; v < kw; v++ {
								q := j*sw - pl + v*dw
								if q < 0 || q >= wd {
									continue
								}
								acc += x.Data[((s*c+ch)*h+r)*wd+q] * w.Data[((o*cg+ci)*kh+u)*kw+v]
							}
						}
					}
					if bn != nil {
						acc = bn[0].Data[o]*(acc-bn[2].Data[o])/math.Sqrt(bn[3].Data[o]+float64(at.BNEpsilon)) + bn[1].Data[o]
					}
					if res != nil {
						acc += res.Data[((s*k+o)*oh+i)*ow+j]
					}
					switch at.Act {
					case "relu":
						acc = math.Max(acc, 0)
					case "clip":
						acc = math.Max(float64(at.ActMin), math.Min(float64(at.ActMax), acc))
					}
					y.Data[((s*k+o)*oh+i)*ow+j] = acc
				}
			}
		}
	}
	return y
}

func gemm(at *ir.GemmAttrs, a, b, c *Tensor) *Tensor {
	m, kk := a.Shape[0], a.Shape[1]
	if at.TransA {
		m, kk = kk, m
	}
	nn := b.Shape[1]
	if at.TransB {
		nn = b.Shape[0]
	}
	y := newTensor([]int{m, nn})
	for i := 0; i < m; i++ {
		for j := 0; j < nn; j++ {
			var s float64
			for k := 0; k < kk; k++ {
				av := a.Data[i*kk+k]
				if at.TransA {
					av = a.Data[k*m+i]
				}
				bv := b.Data[k*nn+j]
				if at.TransB {
					bv = b.Data[j*kk+k]
				}
				s += av * bv
			}
			s *= float64(at.Alpha)
			if c != nil {
				s += float64(at.Beta) * c.Data[bindex(c, []int{i, j})]
			}
			y.Data[i*nn+j] = s
		}
	}
	return y
}

func matmul(a, b *Tensor) *Tensor {
	ra, rb := len(a.Shape), len(b.Shape)
	m, k, nn := a.Shape[ra-2], a.Shape[ra-1], b.Shape[rb-1]
	lead := broadcastShape(a.Shape[:ra-2], b.Shape[:rb-2])
	y := newTensor(append(append([]int{}, lead...), m, nn))
	al := &Tensor{Shape: a.Shape[:ra-2]}
	bl := &Tensor{Shape: b.Shape[:rb-2]}
	c := make([]int, len(lead))
	for o := 0; o < size(lead); o++ {
		ao, bo := bindex(al, c)*m*k, bindex(bl, c)*k*nn
		for i := 0; i < m; i++ {
			for j := 0; j < nn; j++ {
				var s float64
				for q := 0; q < k; q++ {
					s += a.Data[ao+i*k+q] * b.Data[bo+q*nn+j]
				}
				y.Data[(o*m+i)*nn+j] = s
			}
		}
		next(c, lead)
	}
	return y
}

func batchNorm(at *ir.BatchNormAttrs, a []*Tensor) *Tensor {
	x, scale, bias, mean, vr := a[0], a[1], a[2], a[3], a[4]
	y := newTensor(x.Shape)
	c := x.Shape[1]
	inner := size(x.Shape[2:])
	for i := range y.Data {
		ch := (i / inner) % c
		y.Data[i] = scale.Data[ch]*(x.Data[i]-mean.Data[ch])/math.Sqrt(vr.Data[ch]+float64(at.Epsilon)) + bias.Data[ch]
	}
	return y
}

func pool(nd *ir.Node, x *Tensor, out []int) *Tensor {
	at := nd.Attrs.(*ir.PoolAttrs)
	isMax := nd.Op == ir.OpMaxPool
	y := newTensor(out)
	h, w := x.Shape[2], x.Shape[3]
	oh, ow := out[2], out[3]
	planes := x.Shape[0] * x.Shape[1]
	for p := 0; p < planes; p++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				acc, cnt := 0.0, 0
				if isMax {
					acc = math.Inf(-1)
				}
				for u := 0; u < at.KernelShape[0]; u++ {
					r := i*at.Strides[0] - at.Pads[0] + u*at.Dilations[0]
					for v := 0; v < at.KernelShape[1]; v++ {
						q := j*at.Strides[1] - at.Pads[1] + v*at.Dilations[1]
						inPadded := r < h+at.Pads[2] && q < w+at.Pads[3]
						if r < 0 || r >= h || q < 0 || q >= w {
							if at.CountIncludePad && inPadded && r >= -at.Pads[0] && q >= -at.Pads[1] {
								cnt++
							}
							continue
						}
						xv := x.Data[(p*h+r)*w+q]
						if isMax {
							acc = math.Max(acc, xv)
						} else {
							acc += xv
						}
						cnt++
					}
				}
				if !isMax {
					acc /= float64(cnt)
				}
				y.Data[(p*oh+i)*ow+j] = acc
			}
		}
	}
	return y
}

func softmax(x *Tensor, axis int, log bool) *Tensor {
	y := newTensor(x.Shape)
	d := x.Shape[axis]
	inner := size(x.Shape[axis+1:])
	outer := size(x.Shape[:axis])
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			at := func(k int) int { return (o*d+k)*inner + in }
			m := math.Inf(-1)
			for k := 0; k < d; k++ {
				m = math.Max(m, x.Data[at(k)])
			}
			var s float64
			for k := 0; k < d; k++ {
				s += math.Exp(x.Data[at(k)] - m)
			}
			for k := 0; k < d; k++ {
				if log {
					y.Data[at(k)] = x.Data[at(k)] - m - math.Log(s)
				} else {
					y.Data[at(k)] = math.Exp(x.Data[at(k)]-m) / s
				}
			}
		}
	}
	return y
}

// generic evaluates the data-movement ops by computing, for each output
// element, the input element it comes from.
func generic(nd *ir.Node, a []*Tensor, n int) (*Tensor, error) {
	out := concrete(nd.Results[0].Type.Shape, n)
	y := newTensor(out)
	x := a[0]
	c := make([]int, len(out))
	src := make([]int, len(x.Shape))
	switch nd.Op {
	case ir.OpTranspose:
		perm := ir.TransposePerm(nd)
		for i := range y.Data {
			for d, p := range perm {
				src[p] = c[d]
			}
			y.Data[i] = x.Data[flat(x.Shape, src)]
			next(c, out)
		}
	case ir.OpSlice:
		specs, err := ir.SliceSpecs(nd)
		if err != nil {
			return nil, err
		}
		for i := range y.Data {
			for d, s := range specs {
				src[d] = s.Start + c[d]*s.Step
			}
			y.Data[i] = x.Data[flat(x.Shape, src)]
			next(c, out)
		}
	case ir.OpPad:
		begin, _, err := ir.PadAmounts(nd)
		if err != nil {
			return nil, err
		}
		val, _ := ir.PadValue(nd)
		mode := nd.Attrs.(*ir.PadAttrs).Mode
		for i := range y.Data {
			inside := true
			for d := range src {
				k := c[d] - begin[d]
				dim := x.Shape[d]
				switch {
				case k >= 0 && k < dim:
				case mode == "edge":
					k = min(max(k, 0), dim-1)
				case mode == "reflect":
					for k < 0 || k >= dim {
						if k < 0 {
							k = -k
						}
						if k >= dim {
							k = 2*(dim-1) - k
						}
					}
				default:
					inside = false
				}
				src[d] = k
			}
			if inside {
				y.Data[i] = x.Data[flat(x.Shape, src)]
			} else {
				y.Data[i] = val
			}
			next(c, out)
		}
	case ir.OpConcat:
		ax := nd.Attrs.(*ir.AxisAttrs).Axis
		for i := range y.Data {
			k := c[ax]
			for _, t := range a[:len(nd.Args)] {
				if k < t.Shape[ax] {
					copy(src, c)
					src[ax] = k
					y.Data[i] = t.Data[flat(t.Shape, src)]
					break
				}
				k -= t.Shape[ax]
			}
			next(c, out)
		}
	case ir.OpGather:
		ax := nd.Attrs.(*ir.AxisAttrs).Axis
		idx := a[1]
		ri := len(idx.Shape)
		for i := range y.Data {
			copy(src[:ax], c[:ax])
			q := int(idx.Data[flat(idx.Shape, c[ax:ax+ri])])
			if q < 0 {
				q += x.Shape[ax]
			}
			src[ax] = q
			copy(src[ax+1:], c[ax+ri:])
			y.Data[i] = x.Data[flat(x.Shape, src)]
			next(c, out)
		}
	case ir.OpReduceMean:
		axes, err := ir.ReduceAxes(nd)
		if err != nil {
			return nil, err
		}
		keep := make([]int, len(x.Shape))
		copy(keep, x.Shape)
		cnt := 1
		for _, ax := range axes {
			keep[ax] = 1
			cnt *= x.Shape[ax]
		}
		kt := &Tensor{Shape: keep}
		xc := make([]int, len(x.Shape))
		for i := range x.Data {
			y.Data[bindex(kt, xc)] += x.Data[i] / float64(cnt)
			next(xc, x.Shape)
		}
	default:
		return nil, fmt.Errorf("the interpreter does not evaluate %s", nd.Op)
	}
	return y, nil
}

func flat(shape, c []int) int {
	idx := 0
	for d, s := range shape {
		idx = idx*s + c[d]
	}
	return idx
}
