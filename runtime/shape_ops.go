package runtime

import (
	"fmt"
	"math"
)

// Data movement and reductions over full shapes (dimension 0 may be
// BatchDim; see broadcast.go). Copies move float32 values unchanged, so these
// kernels are exact; reductions sum in float64.

// TransposeParams describes permuting the axes of a tensor of Shape:
// output axis i is input axis Perm[i]. An empty Perm reverses the axes, as in
// ONNX. The batch axis may move; the output shape then has BatchDim at the
// position it moved to.
type TransposeParams struct {
	Shape []int // input shape, batch axis included
	Perm  []int // output axis i is input axis Perm[i]; empty reverses

	ok   bool
	perm []int
	out  []int
	ew   nnEwTask
}

// Init validates the permutation.
func (p *TransposeParams) Init() error {
	p.ok = false
	if err := nnCheckShape("transpose: shape", p.Shape); err != nil {
		return err
	}
	r := len(p.Shape)
	perm := nnCopyShape(p.Perm)
	if len(perm) == 0 {
		perm = make([]int, r)
		for i := range perm {
			perm[i] = r - 1 - i
		}
	}
	if len(perm) != r {
		return fmt.Errorf("transpose: perm %v for rank %d", p.Perm, r)
	}
	seen := make([]bool, r)
	for _, a := range perm {
		if a < 0 || a >= r || seen[a] {
			return fmt.Errorf("transpose: perm %v is not a permutation of 0..%d", p.Perm, r-1)
		}
		seen[a] = true
	}
	p.perm = perm
	p.out = make([]int, r)
	for i, a := range perm {
		p.out[i] = p.Shape[a]
	}
	p.ok = true
	return nil
}

// OutShape returns the permuted shape.
func (p *TransposeParams) OutShape() []int { return nnCopyShape(p.out) }

// space returns the iteration space over the output for batch size n:
// array "out" walks the output contiguously, array 1-out the input permuted.
func (p *TransposeParams) space(n, out int) nnSpace {
	var sp nnSpace
	r := len(p.Shape)
	sp.rank = r
	inStr := 1
	var is [nnMaxDims]int
	for d := r - 1; d >= 0; d-- {
		is[d] = inStr
		inStr *= nnDim(p.Shape, d, n)
	}
	c := 1
	for i := r - 1; i >= 0; i-- {
		a := p.perm[i]
		sp.dims[i] = nnDim(p.Shape, a, n)
		sp.str[out][i] = c
		sp.str[1-out][i] = is[a]
		c *= sp.dims[i]
	}
	return sp
}

func (p *TransposeParams) run(kernel string, back bool, n int, y, x []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	size := nnNumel(p.Shape, n)
	t := &p.ew
	t.op, t.scale, t.b = nnEwScale, 1, nil
	if back {
		// dx (input layout) is written through permuted strides while dy
		// (output layout) is read contiguously.
		t.y, t.a = nnNeed(kernel, "dx", y, size), nnNeed(kernel, "dy", x, size)
		t.sp = p.space(n, 1)
	} else {
		t.y, t.a = nnNeed(kernel, "y", y, size), nnNeed(kernel, "x", x, size)
		t.sp = p.space(n, 0)
	}
	if size == 0 {
		return
	}
	t.sp.simplify(2)
	t.run()
}

// Transpose writes y = x with its axes permuted.
func Transpose(p *TransposeParams, n int, y, x []float32) { p.run("Transpose", false, n, y, x) }

// TransposeBackward writes dx = dy with the inverse permutation.
func TransposeBackward(p *TransposeParams, n int, dx, dy []float32) {
	p.run("TransposeBackward", true, n, dx, dy)
}

// ConcatParams describes joining tensors of Shapes along Axis (negative
// counts from the end). The shapes must agree except along Axis, and be all
// batched or all static; a batched concat cannot join along the batch axis.
type ConcatParams struct {
	Shapes [][]int // input shapes in order, batch axis included
	Axis   int     // joining axis; negative counts from the end

	ok     bool
	axis   int
	out    []int
	chunks []int // per input: elements per outer index
	total  int   // sum of chunks
	outer  int   // outer count per sample (batched) or in total (static)
}

// Init validates the shapes.
func (p *ConcatParams) Init() error {
	p.ok = false
	if len(p.Shapes) == 0 {
		return fmt.Errorf("concat: no inputs")
	}
	s0 := p.Shapes[0]
	r := len(s0)
	axis, err := nnNormAxis(p.Axis, r)
	if err != nil {
		return fmt.Errorf("concat: %w", err)
	}
	batched := nnBatched(s0)
	if batched && axis == 0 {
		return fmt.Errorf("concat: cannot join along the batch axis")
	}
	p.out = nnCopyShape(s0)
	p.out[axis] = 0
	p.chunks = make([]int, len(p.Shapes))
	p.total = 0
	for k, s := range p.Shapes {
		if err := nnCheckShape("concat: shape", s); err != nil {
			return err
		}
		if len(s) != r || nnBatched(s) != batched {
			return fmt.Errorf("concat: shape %v does not match %v", s, s0)
		}
		for d := range s {
			if d != axis && s[d] != s0[d] {
				return fmt.Errorf("concat: shape %v does not match %v outside axis %d", s, s0, axis)
			}
		}
		p.out[axis] += s[axis]
		c := 1
		for d := axis; d < r; d++ {
			c *= s[d]
		}
		p.chunks[k] = c
		p.total += c
	}
	p.outer = 1
	for d := 0; d < axis; d++ {
		if d > 0 || !batched {
			p.outer *= s0[d]
		}
	}
	p.axis = axis
	p.ok = true
	return nil
}

// OutShape returns the joined shape.
func (p *ConcatParams) OutShape() []int { return nnCopyShape(p.out) }

func (p *ConcatParams) outerN(n int) int {
	if nnBatched(p.out) {
		return n * p.outer
	}
	return p.outer
}

// Concat writes y = the inputs xs joined along Axis, one input per shape.
func Concat(p *ConcatParams, n int, y []float32, xs ...[]float32) {
	const k = "Concat"
	if !p.ok {
		nnPanicInit(k)
	}
	nnCheckN(k, n)
	if len(xs) != len(p.chunks) {
		panic(fmt.Sprintf("runtime.Concat: %d inputs, want %d", len(xs), len(p.chunks)))
	}
	outer := p.outerN(n)
	y = nnNeed(k, "y", y, outer*p.total)
	off := 0
	for i, x := range xs {
		c := p.chunks[i]
		x = nnNeed(k, "input", x, outer*c)
		for o := 0; o < outer; o++ {
			copy(y[o*p.total+off:o*p.total+off+c], x[o*c:(o+1)*c])
		}
		off += c
	}
}

// ConcatBackward splits dy along Axis into dxs (one per input; a nil entry
// is skipped).
func ConcatBackward(p *ConcatParams, n int, dxs [][]float32, dy []float32) {
	const k = "ConcatBackward"
	if !p.ok {
		nnPanicInit(k)
	}
	nnCheckN(k, n)
	if len(dxs) != len(p.chunks) {
		panic(fmt.Sprintf("runtime.ConcatBackward: %d gradients, want %d", len(dxs), len(p.chunks)))
	}
	outer := p.outerN(n)
	dy = nnNeed(k, "dy", dy, outer*p.total)
	off := 0
	for i, dx := range dxs {
		c := p.chunks[i]
		if dx != nil {
			dx = nnNeed(k, "dx", dx, outer*c)
			for o := 0; o < outer; o++ {
				copy(dx[o*c:(o+1)*c], dy[o*p.total+off:o*p.total+off+c])
			}
		}
		off += c
	}
}

// SliceParams describes ONNX Slice of a tensor of Shape: along each axis in
// Axes (default 0..len(Starts)-1, negative counts from the end) take
// Starts[i], Starts[i]+Steps[i], ... up to but excluding Ends[i]. Negative
// starts and ends count from the end of the axis, out-of-range values are
// clamped as ONNX specifies (so math.MaxInt or MinInt mean "to the end"),
// Steps default to 1 and may be negative. The batch axis cannot be sliced
// except whole.
type SliceParams struct {
	Shape        []int // input shape, batch axis included
	Starts, Ends []int // per listed axis, ONNX semantics
	Axes         []int // nil means 0..len(Starts)-1
	Steps        []int // nil means all 1

	ok    bool
	out   []int
	start []int // per axis, resolved
	step  []int
	ew    nnEwTask
}

// Init resolves the slice against Shape.
func (p *SliceParams) Init() error {
	p.ok = false
	if err := nnCheckShape("slice: shape", p.Shape); err != nil {
		return err
	}
	r := len(p.Shape)
	if len(p.Ends) != len(p.Starts) {
		return fmt.Errorf("slice: %d starts, %d ends", len(p.Starts), len(p.Ends))
	}
	if p.Axes != nil && len(p.Axes) != len(p.Starts) || p.Steps != nil && len(p.Steps) != len(p.Starts) {
		return fmt.Errorf("slice: starts, ends, axes and steps differ in length")
	}
	p.out = nnCopyShape(p.Shape)
	p.start = make([]int, r)
	p.step = make([]int, r)
	for d := range p.step {
		p.step[d] = 1
	}
	seen := make([]bool, r)
	for i := range p.Starts {
		axis := i
		if p.Axes != nil {
			axis = p.Axes[i]
		}
		a, err := nnNormAxis(axis, r)
		if err != nil {
			return fmt.Errorf("slice: %w", err)
		}
		if seen[a] {
			return fmt.Errorf("slice: axis %d repeated", a)
		}
		seen[a] = true
		step := 1
		if p.Steps != nil {
			step = p.Steps[i]
		}
		if step == 0 {
			return fmt.Errorf("slice: step 0 on axis %d", a)
		}
		if a == 0 && nnBatched(p.Shape) {
			if p.Starts[i] != 0 || step != 1 || p.Ends[i] < math.MaxInt32 {
				return fmt.Errorf("slice: cannot slice the batch axis (start %d end %d step %d)", p.Starts[i], p.Ends[i], step)
			}
			continue
		}
		start, count := nnSliceAxis(p.Shape[a], p.Starts[i], p.Ends[i], step)
		if count == 0 {
			return fmt.Errorf("slice: axis %d of size %d: start %d end %d step %d select nothing", a, p.Shape[a], p.Starts[i], p.Ends[i], step)
		}
		p.start[a], p.step[a], p.out[a] = start, step, count
	}
	p.ok = true
	return nil
}

// nnSliceAxis applies ONNX's clamping rules to one axis and returns the
// first index and the number of indices taken.
func nnSliceAxis(dim, start, end, step int) (int, int) {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = min(max(start, 0), dim)
		end = min(max(end, 0), dim)
		if end <= start {
			return start, 0
		}
		return start, (end - start + step - 1) / step
	}
	start = min(max(start, 0), dim-1)
	end = min(max(end, -1), dim-1)
	if end >= start {
		return start, 0
	}
	return start, (start - end - step - 1) / -step
}

// OutShape returns the sliced shape.
func (p *SliceParams) OutShape() []int { return nnCopyShape(p.out) }

func (p *SliceParams) run(kernel string, back bool, n int, y, x []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	inLen, outLen := nnNumel(p.Shape, n), nnNumel(p.out, n)
	t := &p.ew
	t.op, t.scale, t.b = nnEwScale, 1, nil
	// Array "in" walks the input at the slice positions, the other array the
	// output contiguously.
	in := 1
	if back {
		in = 0
		t.y, t.a = nnNeed(kernel, "dx", y, inLen), nnNeed(kernel, "dy", x, outLen)
		clear(t.y)
	} else {
		t.y, t.a = nnNeed(kernel, "y", y, outLen), nnNeed(kernel, "x", x, inLen)
	}
	var sp nnSpace
	r := len(p.Shape)
	sp.rank = r
	is, os := 1, 1
	for d := r - 1; d >= 0; d-- {
		sp.dims[d] = nnDim(p.out, d, n)
		sp.str[1-in][d] = os
		sp.str[in][d] = p.step[d] * is
		sp.off[in] += p.start[d] * is
		os *= sp.dims[d]
		is *= nnDim(p.Shape, d, n)
	}
	t.sp = sp
	if outLen == 0 {
		return
	}
	t.sp.simplify(2)
	t.run()
}

// Slice writes y = the selected elements of x.
func Slice(p *SliceParams, n int, y, x []float32) { p.run("Slice", false, n, y, x) }

// SliceBackward writes dx = dy at the selected positions and 0 elsewhere.
func SliceBackward(p *SliceParams, n int, dx, dy []float32) { p.run("SliceBackward", true, n, dx, dy) }

// GatherParams describes ONNX Gather of a tensor of Shape along Axis with
// constant Indices of shape IndicesShape (nil means one-dimensional
// [len(Indices)]; an empty non-nil shape is a scalar index, which removes
// the axis). Negative indices count from the end. The output shape is
// Shape[:Axis] + IndicesShape + Shape[Axis+1:]. A batched tensor cannot be
// gathered along the batch axis.
type GatherParams struct {
	Shape        []int // input shape, batch axis included
	Axis         int   // negative counts from the end
	Indices      []int // constant indices, row-major in IndicesShape
	IndicesShape []int // nil: [len(Indices)]; empty non-nil: scalar

	ok           bool
	idx          []int
	out          []int
	outer, inner int
	dim          int
}

// Init validates and normalises the indices.
func (p *GatherParams) Init() error {
	p.ok = false
	if err := nnCheckShape("gather: shape", p.Shape); err != nil {
		return err
	}
	r := len(p.Shape)
	axis, err := nnNormAxis(p.Axis, r)
	if err != nil {
		return fmt.Errorf("gather: %w", err)
	}
	if axis == 0 && nnBatched(p.Shape) {
		return fmt.Errorf("gather: cannot gather along the batch axis")
	}
	ishape := p.IndicesShape
	if ishape == nil {
		ishape = []int{len(p.Indices)}
	}
	cnt := 1
	for _, d := range ishape {
		if d < 1 {
			return fmt.Errorf("gather: indices shape %v", ishape)
		}
		cnt *= d
	}
	if cnt != len(p.Indices) {
		return fmt.Errorf("gather: %d indices for indices shape %v", len(p.Indices), ishape)
	}
	p.dim = p.Shape[axis]
	p.idx = make([]int, len(p.Indices))
	for i, v := range p.Indices {
		if v < -p.dim || v >= p.dim {
			return fmt.Errorf("gather: index %d out of range for axis %d of size %d", v, axis, p.dim)
		}
		if v < 0 {
			v += p.dim
		}
		p.idx[i] = v
	}
	p.out = append(append(nnCopyShape(p.Shape[:axis]), ishape...), p.Shape[axis+1:]...)
	if len(p.out) > nnMaxDims {
		return fmt.Errorf("gather: output rank %d exceeds %d", len(p.out), nnMaxDims)
	}
	p.outer, p.inner = 1, 1
	for d := 0; d < axis; d++ {
		if d > 0 || !nnBatched(p.Shape) {
			p.outer *= p.Shape[d]
		}
	}
	for d := axis + 1; d < r; d++ {
		p.inner *= p.Shape[d]
	}
	p.ok = true
	return nil
}

// OutShape returns the gathered shape.
func (p *GatherParams) OutShape() []int { return nnCopyShape(p.out) }

func (p *GatherParams) check(kernel string, n int) (outer, inLen, outLen int) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	outer = p.outer
	if nnBatched(p.Shape) {
		outer *= n
	}
	return outer, outer * p.dim * p.inner, outer * len(p.idx) * p.inner
}

// Gather writes y = x indexed along Axis by Indices.
func Gather(p *GatherParams, n int, y, x []float32) {
	const k = "Gather"
	outer, inLen, outLen := p.check(k, n)
	y, x = nnNeed(k, "y", y, outLen), nnNeed(k, "x", x, inLen)
	I, Q, D := p.inner, len(p.idx), p.dim
	for o := 0; o < outer; o++ {
		for q, i := range p.idx {
			copy(y[(o*Q+q)*I:(o*Q+q+1)*I], x[(o*D+i)*I:(o*D+i+1)*I])
		}
	}
}

// GatherBackward writes dx = dy scattered back along Axis, adding where an
// index repeats (in index order), and 0 at positions never gathered.
func GatherBackward(p *GatherParams, n int, dx, dy []float32) {
	const k = "GatherBackward"
	outer, inLen, outLen := p.check(k, n)
	dx, dy = nnNeed(k, "dx", dx, inLen), nnNeed(k, "dy", dy, outLen)
	clear(dx)
	I, Q, D := p.inner, len(p.idx), p.dim
	for o := 0; o < outer; o++ {
		for q, i := range p.idx {
			d, g := dx[(o*D+i)*I:(o*D+i+1)*I], dy[(o*Q+q)*I:(o*Q+q+1)*I]
			for j, v := range g {
				d[j] += v
			}
		}
	}
}

// ReduceParams describes ReduceSum or ReduceMean of a tensor of Shape over
// Axes (negative counts from the end; empty means every axis, ONNX's default
// without noop_with_empty_axes). KeepDims only changes OutShape: the data
// layout is the same either way. The batch axis may be reduced; the mean
// then divides by the batch size given at call time.
type ReduceParams struct {
	Shape    []int // input shape, batch axis included
	Axes     []int // reduced axes; empty means all
	KeepDims bool  // keep reduced axes as size 1 in OutShape

	ok      bool
	reduced []bool
	yStr    []int // per input axis: stride in y, 0 along reduced axes
	out     []int
	rd      nnReduceTask
	ew      nnEwTask
}

// Init validates the axes and precomputes output strides.
func (p *ReduceParams) Init() error {
	p.ok = false
	if err := nnCheckShape("reduce: shape", p.Shape); err != nil {
		return err
	}
	r := len(p.Shape)
	p.reduced = make([]bool, r)
	if len(p.Axes) == 0 {
		for d := range p.reduced {
			p.reduced[d] = true
		}
	}
	for _, a := range p.Axes {
		d, err := nnNormAxis(a, r)
		if err != nil {
			return fmt.Errorf("reduce: %w", err)
		}
		if p.reduced[d] {
			return fmt.Errorf("reduce: axis %d repeated in %v", d, p.Axes)
		}
		p.reduced[d] = true
	}
	p.yStr = make([]int, r)
	c := 1
	for d := r - 1; d >= 0; d-- {
		if !p.reduced[d] {
			p.yStr[d] = c
			if d > 0 || !nnBatched(p.Shape) {
				c *= p.Shape[d]
			}
		}
	}
	p.out = p.out[:0]
	for d, s := range p.Shape {
		switch {
		case !p.reduced[d]:
			p.out = append(p.out, s)
		case p.KeepDims:
			p.out = append(p.out, 1)
		}
	}
	p.ok = true
	return nil
}

// OutShape returns the reduced shape.
func (p *ReduceParams) OutShape() []int { return nnCopyShape(p.out) }

// space returns the iteration space over the input for batch size n with
// the input contiguous in array xa and y in array ya, and the element count
// each output sums.
func (p *ReduceParams) space(n, xa, ya int) (nnSpace, int) {
	var sp nnSpace
	r := len(p.Shape)
	sp.rank = r
	c, count := 1, 1
	for d := r - 1; d >= 0; d-- {
		sp.dims[d] = nnDim(p.Shape, d, n)
		sp.str[xa][d] = c
		sp.str[ya][d] = p.yStr[d]
		c *= sp.dims[d]
		if p.reduced[d] {
			count *= sp.dims[d]
		}
	}
	return sp, count
}

func (p *ReduceParams) lens(kernel string, n int) (int, int) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	return nnNumel(p.Shape, n), nnNumel(p.out, n)
}

func (p *ReduceParams) forward(kernel string, mean bool, n int, y, x []float32) {
	inLen, outLen := p.lens(kernel, n)
	t := &p.rd
	t.dst = nnNeed(kernel, "y", y, outLen)
	t.src[0] = nnNeed(kernel, "x", x, inLen)
	var count int
	t.sp, count = p.space(n, 0, 3)
	t.kind, t.scale = nnRdSum, 1
	if mean && count > 0 {
		t.scale = 1 / float64(count)
	}
	if inLen == 0 {
		clear(t.dst)
		return
	}
	t.sp.simplify(4)
	t.run()
}

func (p *ReduceParams) backward(kernel string, mean bool, n int, dx, dy []float32) {
	inLen, outLen := p.lens(kernel, n)
	t := &p.ew
	t.op, t.b = nnEwScale, nil
	t.y = nnNeed(kernel, "dx", dx, inLen)
	t.a = nnNeed(kernel, "dy", dy, outLen)
	var count int
	t.sp, count = p.space(n, 0, 1)
	t.scale = 1
	if mean && count > 0 {
		t.scale = float32(1 / float64(count))
	}
	if inLen == 0 {
		return
	}
	t.sp.simplify(2)
	t.run()
}

// ReduceSum writes y = the sum of x over Axes.
func ReduceSum(p *ReduceParams, n int, y, x []float32) { p.forward("ReduceSum", false, n, y, x) }

// ReduceMean writes y = the mean of x over Axes.
func ReduceMean(p *ReduceParams, n int, y, x []float32) { p.forward("ReduceMean", true, n, y, x) }

// ReduceSumBackward writes dx = dy broadcast back over Axes.
func ReduceSumBackward(p *ReduceParams, n int, dx, dy []float32) {
	p.backward("ReduceSumBackward", false, n, dx, dy)
}

// ReduceMeanBackward writes dx = dy/count broadcast back over Axes, count
// being the number of elements each mean averaged.
func ReduceMeanBackward(p *ReduceParams, n int, dx, dy []float32) {
	p.backward("ReduceMeanBackward", true, n, dx, dy)
}
