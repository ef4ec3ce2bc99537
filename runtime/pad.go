package runtime

import "fmt"

// PadMode selects how Pad fills the border.
type PadMode int

// Pad modes, as ONNX Pad's mode attribute.
const (
	// PadConstant fills with PadParams.Value.
	PadConstant PadMode = iota
	// PadReflect mirrors without repeating the edge (numpy "reflect",
	// PyTorch ReflectionPad): pads must be smaller than the dimension.
	PadReflect
	// PadEdge repeats the edge value (numpy "edge", PyTorch ReplicationPad).
	PadEdge
)

// PadParams describes padding a tensor of Shape (dimension 0 may be BatchDim;
// the batch axis itself cannot be padded then) by Pads, in ONNX layout
// [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}], all >= 0. For NCHW
// spatial padding only the H and W entries are non-zero.
type PadParams struct {
	Shape []int   // input shape, batch axis included
	Pads  []int   // ONNX layout: all begins, then all ends
	Mode  PadMode // how the border is filled
	Value float32 // PadConstant only

	ok      bool
	rank    int
	batched bool
	out     []int
	inStr   []int
	outStr  []int
	src     [][]int32 // per axis: output index -> input index, -1 for the constant
	preOff  [][]int32 // per axis: CSR of input index -> output indices reading it
	preIdx  [][]int32 // (used for the outer axes of the backward pass)
	t       nnPadTask
}

// Init validates the pads against the mode and precomputes index maps.
func (p *PadParams) Init() error {
	p.ok = false
	r := len(p.Shape)
	if r == 0 {
		return fmt.Errorf("pad: empty shape")
	}
	if err := nnCheckShape("pad: shape", p.Shape); err != nil {
		return err
	}
	if len(p.Pads) != 2*r {
		return fmt.Errorf("pad: %d pads for rank %d, want %d", len(p.Pads), r, 2*r)
	}
	if p.Mode < PadConstant || p.Mode > PadEdge {
		return fmt.Errorf("pad: unknown mode %d", p.Mode)
	}
	p.rank = r
	p.batched = nnBatched(p.Shape)
	p.out = make([]int, r)
	p.src = make([][]int32, r)
	p.preOff = make([][]int32, r)
	p.preIdx = make([][]int32, r)
	for d := 0; d < r; d++ {
		b, e := p.Pads[d], p.Pads[r+d]
		if b < 0 || e < 0 {
			return fmt.Errorf("pad: axis %d pads %d,%d: negative pads are not supported", d, b, e)
		}
		if d == 0 && p.batched {
			if b != 0 || e != 0 {
				return fmt.Errorf("pad: cannot pad the batch axis")
			}
			p.out[0] = BatchDim
			continue
		}
		size := p.Shape[d]
		if p.Mode == PadReflect && (b >= size || e >= size) {
			return fmt.Errorf("pad: reflect pads %d,%d on axis %d of size %d: want smaller than the size", b, e, d, size)
		}
		o := size + b + e
		p.out[d] = o
		src := make([]int32, o)
		cnt := make([]int32, size+1)
		for i := range src {
			s := i - b
			switch {
			case s >= 0 && s < size:
			case p.Mode == PadConstant:
				s = -1
			case p.Mode == PadEdge:
				s = min(max(s, 0), size-1)
			default: // reflect
				if s < 0 {
					s = -s
				} else {
					s = 2*(size-1) - s
				}
			}
			src[i] = int32(s)
			if s >= 0 {
				cnt[s+1]++
			}
		}
		for i := 1; i <= size; i++ {
			cnt[i] += cnt[i-1]
		}
		idx := make([]int32, cnt[size])
		fill := append([]int32(nil), cnt[:size]...)
		for i, s := range src {
			if s >= 0 {
				idx[fill[s]] = int32(i)
				fill[s]++
			}
		}
		p.src[d], p.preOff[d], p.preIdx[d] = src, cnt, idx
	}
	p.inStr = nnStrides(p.Shape)
	p.outStr = nnStrides(p.out)
	p.t.p = p
	p.ok = true
	return nil
}

// OutShape returns the padded shape.
func (p *PadParams) OutShape() []int { return nnCopyShape(p.out) }

type nnPadTask struct {
	p    *PadParams
	back bool
	n    int
	y, x []float32 // forward: y, x; backward: y = dx, x = dy
}

// lastDim returns the size and pads of the last axis at batch size n.
func (p *PadParams) lastDim(n int) (size, begin, outSize int) {
	d := p.rank - 1
	size = nnDim(p.Shape, d, n)
	begin = p.Pads[d]
	return size, begin, size + begin + p.Pads[p.rank+d]
}

// Run implements Task over output rows (forward) or input rows (backward).
func (t *nnPadTask) Run(lo, hi int) {
	if t.back {
		for r := lo; r < hi; r++ {
			t.backRow(r)
		}
		return
	}
	for r := lo; r < hi; r++ {
		t.fwdRow(r)
	}
}

func (t *nnPadTask) fwdRow(r int) {
	p := t.p
	size, begin, oSize := p.lastDim(t.n)
	y := t.y[r*oSize : (r+1)*oSize]
	off := 0
	for d, rem := p.rank-2, r; d >= 0; d-- {
		od := nnDim(p.out, d, t.n)
		o := rem % od
		rem /= od
		s := o
		if p.src[d] != nil {
			s = int(p.src[d][o])
		}
		if s < 0 {
			for i := range y {
				y[i] = p.Value
			}
			return
		}
		off += s * p.inStr[d]
	}
	x := t.x[off : off+size]
	copy(y[begin:begin+size], x)
	src := p.src[p.rank-1]
	if src == nil {
		return
	}
	for i := 0; i < begin; i++ {
		y[i] = p.value(x, src[i])
	}
	for i := begin + size; i < oSize; i++ {
		y[i] = p.value(x, src[i])
	}
}

func (p *PadParams) value(x []float32, s int32) float32 {
	if s < 0 {
		return p.Value
	}
	return x[s]
}

// backRow writes one row of dx: the sum of dy over every output position
// that reads each input element, in a fixed order.
func (t *nnPadTask) backRow(r int) {
	p := t.p
	size, begin, oSize := p.lastDim(t.n)
	dx := t.y[r*size : (r+1)*size]
	clear(dx)
	// The input index along each outer axis and its preimage list.
	var idx, cur, lo, hi [nnMaxDims]int
	for d, rem := p.rank-2, r; d >= 0; d-- {
		sd := nnDim(p.Shape, d, t.n)
		idx[d] = rem % sd
		rem /= sd
		if p.preOff[d] == nil {
			lo[d], hi[d] = -1, -1 // identity axis
		} else {
			lo[d], hi[d] = int(p.preOff[d][idx[d]]), int(p.preOff[d][idx[d]+1])
			if lo[d] == hi[d] {
				return // unreachable: every input index is read at least once
			}
		}
		cur[d] = lo[d]
	}
	last := p.rank - 1
	src := p.src[last]
	for {
		off := 0
		for d := 0; d < last; d++ {
			o := idx[d]
			if lo[d] >= 0 {
				o = int(p.preIdx[d][cur[d]])
			}
			off += o * (p.outStr[d] / oSize)
		}
		dy := t.x[off*oSize : (off+1)*oSize]
		row := dy[begin : begin+size]
		for j := range dx {
			dx[j] += row[j]
		}
		if src != nil && p.Mode != PadConstant {
			// The border copies of this row, in output order.
			for o := 0; o < begin; o++ {
				dx[src[o]] += dy[o]
			}
			for o := begin + size; o < oSize; o++ {
				dx[src[o]] += dy[o]
			}
		}
		d := last - 1
		for ; d >= 0; d-- {
			if lo[d] < 0 {
				continue
			}
			cur[d]++
			if cur[d] < hi[d] {
				break
			}
			cur[d] = lo[d]
		}
		if d < 0 {
			return
		}
	}
}

func (p *PadParams) run(kernel string, back bool, n int, y, x []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	inLen, outLen := nnNumel(p.Shape, n), nnNumel(p.out, n)
	t := &p.t
	t.back, t.n = back, n
	size, _, oSize := p.lastDim(n)
	if back {
		t.y, t.x = nnNeed(kernel, "dx", y, inLen), nnNeed(kernel, "dy", x, outLen)
		if size > 0 {
			ParallelFor(inLen/size, max(1, (1<<14)/oSize), t)
		}
		return
	}
	t.y, t.x = nnNeed(kernel, "y", y, outLen), nnNeed(kernel, "x", x, inLen)
	if oSize > 0 {
		ParallelFor(outLen/oSize, max(1, (1<<15)/oSize), t)
	}
}

// Pad writes y = x padded per PadParams.
func Pad(p *PadParams, n int, y, x []float32) { p.run("Pad", false, n, y, x) }

// PadBackward writes dx = the sum of dy over every output position that
// copies each input element (for PadConstant, the interior of dy).
func PadBackward(p *PadParams, n int, dx, dy []float32) { p.run("PadBackward", true, n, dx, dy) }
