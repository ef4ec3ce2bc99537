package runtime

import (
	"fmt"
	"strconv"
)

// Shapes of the kernels in this file and in elementwise.go, shape_ops.go and
// pad.go are full tensor shapes, batch axis included, so that data-movement
// ops may touch the batch axis like any other. Dimension 0 may be BatchDim,
// meaning "the batch size n passed at call time": one params struct then
// serves every batch size. When no shape of a params struct is batched, the
// tensors are fully static and the kernels ignore n.
//
// Buffers may be longer than the tensor they hold (a memory planner hands out
// shared slabs); kernels use the leading elements and panic when a buffer is
// too short. A params struct keeps its worker-pool task in an unexported
// field, so it must not be used by two calls at the same time.
//
// Outputs must not overlap inputs, except that these kernels, which read
// each element before writing it, accept an output that is exactly an input
// of the same size (in-place): the activations and their backward kernels,
// Add/Sub/Mul/Div (y over an operand of the output's shape), Dropout and
// DropoutBackward, BatchNormInference, BatchNormTraining (y over x),
// BatchNormBackward (dx over dy), ChannelAffine, Softmax, LogSoftmax and
// their backward kernels (dx over dy), and SoftmaxCrossEntropy (dlogits over
// logits).

// BatchDim marks dimension 0 of a shape as the batch: its size is the n given
// at call time.
const BatchDim = -1

// nnMaxDims bounds the rank of every shape, so iteration state fits in fixed
// arrays on the stack and no call allocates.
const nnMaxDims = 8

// nnCheckShape validates a shape whose dimension 0 may be BatchDim.
func nnCheckShape(what string, s []int) error {
	if len(s) > nnMaxDims {
		return fmt.Errorf("%s %v: rank %d exceeds %d", what, s, len(s), nnMaxDims)
	}
	for i, d := range s {
		if d == BatchDim && i == 0 {
			continue
		}
		if d < 1 {
			return fmt.Errorf("%s %v: dimension %d is %d, want >= 1 (or BatchDim at 0)", what, s, i, d)
		}
	}
	return nil
}

// nnBatched reports whether dimension 0 of s is the symbolic batch.
func nnBatched(s []int) bool { return len(s) > 0 && s[0] == BatchDim }

// nnDim returns dimension i of s with the batch size substituted.
func nnDim(s []int, i, n int) int {
	if i == 0 && s[0] == BatchDim {
		return n
	}
	return s[i]
}

// nnNumel returns the element count of s with the batch size substituted.
func nnNumel(s []int, n int) int {
	c := 1
	for i := range s {
		c *= nnDim(s, i, n)
	}
	return c
}

// nnStrides returns the row-major strides of s; the stride of dimension 0
// does not depend on its size, so a batched shape has static strides.
func nnStrides(s []int) []int {
	st := make([]int, len(s))
	c := 1
	for i := len(s) - 1; i >= 0; i-- {
		st[i] = c
		if i > 0 || s[0] != BatchDim {
			c *= s[i]
		}
	}
	return st
}

func nnCopyShape(s []int) []int { return append([]int(nil), s...) }

// nnNormAxis maps a possibly negative ONNX axis into [0, rank).
func nnNormAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

func nnPanicLen(kernel, arg string, have, want int) {
	panic("runtime." + kernel + ": " + arg + " has " + strconv.Itoa(have) +
		" elements, want at least " + strconv.Itoa(want))
}

// nnNeed checks that buf holds want elements and returns exactly those, so a
// kernel's loops can trust their bounds.
func nnNeed(kernel, arg string, buf []float32, want int) []float32 {
	if len(buf) < want {
		nnPanicLen(kernel, arg, len(buf), want)
	}
	return buf[:want]
}

func nnPanicInit(kernel string) {
	panic("runtime." + kernel + ": params not initialised (call Init and check its error)")
}

func nnCheckN(kernel string, n int) {
	if n < 0 {
		panic("runtime." + kernel + ": negative batch size " + strconv.Itoa(n))
	}
}

// nnSpace is an iteration space of up to nnMaxDims dimensions over up to four
// arrays, each with a base offset and one stride per dimension (0 where the
// array is broadcast, negative for reversed slices).
type nnSpace struct {
	rank int
	dims [nnMaxDims]int
	off  [4]int
	str  [4][nnMaxDims]int
}

func (s *nnSpace) size() int {
	c := 1
	for i := 0; i < s.rank; i++ {
		c *= s.dims[i]
	}
	return c
}

// simplify drops size-1 dimensions and merges neighbours that every array
// walks as one, so same-shape, scalar, per-channel and SE-gate broadcasts
// all become one or two flat loops.
func (s *nnSpace) simplify(narr int) {
	r := 0
	for i := 0; i < s.rank; i++ {
		d := s.dims[i]
		if d == 1 {
			continue
		}
		if r > 0 {
			merge := true
			for a := 0; a < narr; a++ {
				if s.str[a][r-1] != s.str[a][i]*d {
					merge = false
					break
				}
			}
			if merge {
				s.dims[r-1] *= d
				for a := 0; a < narr; a++ {
					s.str[a][r-1] = s.str[a][i]
				}
				continue
			}
		}
		s.dims[r] = d
		for a := 0; a < narr; a++ {
			s.str[a][r] = s.str[a][i]
		}
		r++
	}
	if r == 0 {
		r = 1
		s.dims[0] = 1
		for a := 0; a < narr; a++ {
			s.str[a][0] = 0
		}
	}
	s.rank = r
}

// Elementwise operations of nnEwTask.
const (
	nnEwAdd = iota
	nnEwSub
	nnEwMul
	nnEwDiv
	nnEwScale // y = a*scale; b unused
)

// nnEwTask computes y = op(a, b) over an nnSpace whose arrays are 0: y,
// 1: a, 2: b. Work items are elements of the space in row-major order, so
// chunks write disjoint parts of y.
type nnEwTask struct {
	op      int
	scale   float32
	y, a, b []float32
	sp      nnSpace
}

// run executes the task, in parallel when the space is large enough to pay.
func (t *nnEwTask) run() {
	total := t.sp.size()
	if total <= 0 {
		return
	}
	grain := 1 << 15
	if t.op == nnEwDiv {
		grain = 1 << 13
	}
	ParallelFor(total, grain, t)
}

// Run implements Task.
func (t *nnEwTask) Run(lo, hi int) {
	sp := &t.sp
	last := sp.rank - 1
	var idx [nnMaxDims]int
	rem := lo
	for d := last; d >= 0; d-- {
		idx[d] = rem % sp.dims[d]
		rem /= sp.dims[d]
	}
	var o [3]int
	for a := 0; a < 3; a++ {
		o[a] = sp.off[a]
		for d := 0; d <= last; d++ {
			o[a] += idx[d] * sp.str[a][d]
		}
	}
	L := sp.dims[last]
	sy, sa, sb := sp.str[0][last], sp.str[1][last], sp.str[2][last]
	for i := lo; i < hi; {
		cnt := min(L-idx[last], hi-i)
		t.inner(cnt, o[0], o[1], o[2], sy, sa, sb)
		i += cnt
		if i >= hi {
			break
		}
		o[0] += cnt * sy
		o[1] += cnt * sa
		o[2] += cnt * sb
		idx[last] += cnt
		for d := last; d > 0 && idx[d] == sp.dims[d]; d-- {
			idx[d] = 0
			idx[d-1]++
			for a := 0; a < 3; a++ {
				o[a] += sp.str[a][d-1] - sp.dims[d]*sp.str[a][d]
			}
		}
	}
}

func (t *nnEwTask) inner(cnt, oy, oa, ob, sy, sa, sb int) {
	if t.op == nnEwScale {
		if sy == 1 && sa == 1 {
			y, a := t.y[oy:oy+cnt], t.a[oa:oa+cnt]
			if t.scale == 1 {
				copy(y, a)
				return
			}
			s := t.scale
			for k := range y {
				y[k] = a[k] * s
			}
			return
		}
		if sy == 1 && sa == 0 {
			v := t.a[oa] * t.scale
			y := t.y[oy : oy+cnt]
			for k := range y {
				y[k] = v
			}
			return
		}
		s := t.scale
		for k := 0; k < cnt; k++ {
			t.y[oy+k*sy] = t.a[oa+k*sa] * s
		}
		return
	}
	if sy == 1 {
		switch {
		case sa == 1 && sb == 1:
			nnEwVV(t.op, t.y[oy:oy+cnt], t.a[oa:oa+cnt], t.b[ob:ob+cnt])
			return
		case sa == 1 && sb == 0:
			nnEwVS(t.op, t.y[oy:oy+cnt], t.a[oa:oa+cnt], t.b[ob])
			return
		case sa == 0 && sb == 1:
			nnEwSV(t.op, t.y[oy:oy+cnt], t.a[oa], t.b[ob:ob+cnt])
			return
		}
	}
	for k := 0; k < cnt; k++ {
		t.y[oy+k*sy] = nnEwOp(t.op, t.a[oa+k*sa], t.b[ob+k*sb])
	}
}

func nnEwOp(op int, a, b float32) float32 {
	switch op {
	case nnEwAdd:
		return a + b
	case nnEwSub:
		return a - b
	case nnEwMul:
		return a * b
	default:
		return a / b
	}
}

func nnEwVV(op int, y, a, b []float32) {
	a = a[:len(y)]
	b = b[:len(y)]
	switch op {
	case nnEwAdd:
		for k := range y {
			y[k] = a[k] + b[k]
		}
	case nnEwSub:
		for k := range y {
			y[k] = a[k] - b[k]
		}
	case nnEwMul:
		for k := range y {
			y[k] = a[k] * b[k]
		}
	default:
		for k := range y {
			y[k] = a[k] / b[k]
		}
	}
}

func nnEwVS(op int, y, a []float32, b float32) {
	a = a[:len(y)]
	switch op {
	case nnEwAdd:
		for k := range y {
			y[k] = a[k] + b
		}
	case nnEwSub:
		for k := range y {
			y[k] = a[k] - b
		}
	case nnEwMul:
		for k := range y {
			y[k] = a[k] * b
		}
	default:
		// A true division keeps results bit-identical to the reference;
		// multiplying by 1/b would not be.
		for k := range y {
			y[k] = a[k] / b
		}
	}
}

func nnEwSV(op int, y []float32, a float32, b []float32) {
	b = b[:len(y)]
	switch op {
	case nnEwAdd:
		for k := range y {
			y[k] = a + b[k]
		}
	case nnEwSub:
		for k := range y {
			y[k] = a - b[k]
		}
	case nnEwMul:
		for k := range y {
			y[k] = a * b[k]
		}
	default:
		for k := range y {
			y[k] = a / b[k]
		}
	}
}

// Per-element terms summed by nnReduceTask (dy, u, v are arrays 0, 1, 2).
const (
	nnRdSum  = iota // dy
	nnRdMul         // dy*u
	nnRdDiv         // dy/u
	nnRdDivB        // dy*u/(v*v)
)

// nnRedBlock is how many destination columns one work item of a reduction
// with a contiguous innermost destination accumulates at once, in a float64
// array on the stack.
const nnRedBlock = 256

// nnReduceTask sums a term over the dimensions of an nnSpace where the
// destination (array 3) has stride 0, and writes scale*sum. Each destination
// element is summed in the same fixed order whatever the chunking, in
// float64, so results are deterministic and accurate.
type nnReduceTask struct {
	kind  int
	scale float64
	dst   []float32
	src   [3][]float32
	sp    nnSpace

	innerKept bool
	nk, nr    int
	kept, red [nnMaxDims]int // dimension numbers, outermost first
	rows, nb  int            // innerKept: destination rows and column blocks per row
	redCount  int            // elements summed per destination element
}

// run classifies the (already simplified) space and executes the task.
func (t *nnReduceTask) run() {
	sp := &t.sp
	if sp.size() == 0 {
		return
	}
	t.nk, t.nr = 0, 0
	dstLen := 1
	t.redCount = 1
	for d := 0; d < sp.rank; d++ {
		if sp.str[3][d] != 0 {
			t.kept[t.nk] = d
			t.nk++
			dstLen *= sp.dims[d]
		} else {
			t.red[t.nr] = d
			t.nr++
			t.redCount *= sp.dims[d]
		}
	}
	last := sp.rank - 1
	t.innerKept = sp.str[3][last] != 0
	if t.innerKept {
		L := sp.dims[last]
		t.rows = dstLen / L
		t.nb = (L + nnRedBlock - 1) / nnRedBlock
		items := t.rows * t.nb
		per := t.redCount * min(L, nnRedBlock)
		ParallelFor(items, max(1, (1<<15)/max(1, per)), t)
		return
	}
	ParallelFor(dstLen, max(1, (1<<15)/t.redCount), t)
}

// Run implements Task.
func (t *nnReduceTask) Run(lo, hi int) {
	if t.innerKept {
		for it := lo; it < hi; it++ {
			t.block(it)
		}
		return
	}
	for j := lo; j < hi; j++ {
		t.one(j)
	}
}

// base returns the source offsets of destination row/element j, unravelled
// over the kept dimensions (skipping the last nSkip of them).
func (t *nnReduceTask) base(j, nSkip int) [3]int {
	sp := &t.sp
	var o [3]int
	o[0], o[1], o[2] = sp.off[0], sp.off[1], sp.off[2]
	for k := t.nk - 1 - nSkip; k >= 0; k-- {
		d := t.kept[k]
		i := j % sp.dims[d]
		j /= sp.dims[d]
		o[0] += i * sp.str[0][d]
		o[1] += i * sp.str[1][d]
		o[2] += i * sp.str[2][d]
	}
	return o
}

// one sums destination element j when the innermost dimension is reduced.
func (t *nnReduceTask) one(j int) {
	sp := &t.sp
	o := t.base(j, 0)
	last := t.red[t.nr-1]
	L := sp.dims[last]
	s0, s1, s2 := sp.str[0][last], sp.str[1][last], sp.str[2][last]
	var idx [nnMaxDims]int
	outer := t.nr - 1
	var acc float64
	for {
		acc += t.line(L, o[0], o[1], o[2], s0, s1, s2)
		k := outer - 1
		for ; k >= 0; k-- {
			d := t.red[k]
			idx[k]++
			o[0] += sp.str[0][d]
			o[1] += sp.str[1][d]
			o[2] += sp.str[2][d]
			if idx[k] < sp.dims[d] {
				break
			}
			idx[k] = 0
			o[0] -= sp.dims[d] * sp.str[0][d]
			o[1] -= sp.dims[d] * sp.str[1][d]
			o[2] -= sp.dims[d] * sp.str[2][d]
		}
		if k < 0 {
			break
		}
	}
	t.dst[j] = float32(t.scale * acc)
}

// line sums the term over L elements of one line.
func (t *nnReduceTask) line(L, o0, o1, o2, s0, s1, s2 int) float64 {
	dy := t.src[0]
	switch t.kind {
	case nnRdSum:
		if s0 == 1 {
			x := dy[o0 : o0+L]
			var a0, a1, a2, a3 float64
			k := 0
			for ; k+4 <= len(x); k += 4 {
				a0 += float64(x[k])
				a1 += float64(x[k+1])
				a2 += float64(x[k+2])
				a3 += float64(x[k+3])
			}
			for ; k < len(x); k++ {
				a0 += float64(x[k])
			}
			return (a0 + a1) + (a2 + a3)
		}
		var a float64
		for k := 0; k < L; k++ {
			a += float64(dy[o0+k*s0])
		}
		return a
	case nnRdMul:
		u := t.src[1]
		var a float64
		for k := 0; k < L; k++ {
			a += float64(dy[o0+k*s0]) * float64(u[o1+k*s1])
		}
		return a
	case nnRdDiv:
		u := t.src[1]
		var a float64
		for k := 0; k < L; k++ {
			a += float64(dy[o0+k*s0]) / float64(u[o1+k*s1])
		}
		return a
	default:
		u, v := t.src[1], t.src[2]
		var a float64
		for k := 0; k < L; k++ {
			w := float64(v[o2+k*s2])
			a += float64(dy[o0+k*s0]) * float64(u[o1+k*s1]) / (w * w)
		}
		return a
	}
}

// block sums one block of destination columns when the innermost dimension
// is kept: every reduced index adds a contiguous run of columns, so memory is
// read in rows rather than with a large stride.
func (t *nnReduceTask) block(it int) {
	sp := &t.sp
	row, blk := it/t.nb, it%t.nb
	last := sp.rank - 1
	L := sp.dims[last]
	c0 := blk * nnRedBlock
	c1 := min(c0+nnRedBlock, L)
	w := c1 - c0
	o := t.base(row, 1)
	s0, s1, s2 := sp.str[0][last], sp.str[1][last], sp.str[2][last]
	o[0] += c0 * s0
	o[1] += c0 * s1
	o[2] += c0 * s2
	var accArr [nnRedBlock]float64
	acc := accArr[:w]
	var idx [nnMaxDims]int
	dy, u, v := t.src[0], t.src[1], t.src[2]
	for {
		switch t.kind {
		case nnRdSum:
			if s0 == 1 {
				x := dy[o[0] : o[0]+w]
				for k := range acc {
					acc[k] += float64(x[k])
				}
			} else {
				for k := range acc {
					acc[k] += float64(dy[o[0]+k*s0])
				}
			}
		case nnRdMul:
			for k := range acc {
				acc[k] += float64(dy[o[0]+k*s0]) * float64(u[o[1]+k*s1])
			}
		case nnRdDiv:
			for k := range acc {
				acc[k] += float64(dy[o[0]+k*s0]) / float64(u[o[1]+k*s1])
			}
		default:
			for k := range acc {
				q := float64(v[o[2]+k*s2])
				acc[k] += float64(dy[o[0]+k*s0]) * float64(u[o[1]+k*s1]) / (q * q)
			}
		}
		k := t.nr - 1
		for ; k >= 0; k-- {
			d := t.red[k]
			idx[k]++
			o[0] += sp.str[0][d]
			o[1] += sp.str[1][d]
			o[2] += sp.str[2][d]
			if idx[k] < sp.dims[d] {
				break
			}
			idx[k] = 0
			o[0] -= sp.dims[d] * sp.str[0][d]
			o[1] -= sp.dims[d] * sp.str[1][d]
			o[2] -= sp.dims[d] * sp.str[2][d]
		}
		if k < 0 {
			break
		}
	}
	dst := t.dst[row*L+c0 : row*L+c1]
	for k := range dst {
		dst[k] = float32(t.scale * acc[k])
	}
}

// BroadcastParams describes a binary elementwise op with numpy/ONNX
// multidirectional broadcasting between operand shapes A and B (aligned on
// their last dimensions). Dimension 0 of a shape may be BatchDim; a batched
// shape must have the full output rank, and an operand without a batch
// dimension (a bias [C,1,1], a scalar []) broadcasts against it. The same
// params serve the forward kernels Add/Sub/Mul/Div and their backward ones.
type BroadcastParams struct {
	A, B []int // operand shapes, batch axis included (dimension 0 may be BatchDim)

	ok      bool
	out     []int
	batched bool
	full    nnSpace // arrays 0: out (contiguous), 1: A, 2: B; dims[0] = BatchDim when batched
	aFull   bool    // A covers the whole output: its gradient needs no reduction
	bFull   bool
	ew      nnEwTask
	rd      nnReduceTask
}

// Init validates the shapes and precomputes the broadcast strides; call it
// again after changing A or B.
func (p *BroadcastParams) Init() error {
	p.ok = false
	if err := nnCheckShape("A", p.A); err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	if err := nnCheckShape("B", p.B); err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	ra, rb := len(p.A), len(p.B)
	r := max(ra, rb)
	ba, bb := nnBatched(p.A), nnBatched(p.B)
	if ba && ra != r || bb && rb != r {
		return fmt.Errorf("broadcast %v with %v: a batched shape must have the full rank %d", p.A, p.B, r)
	}
	out := make([]int, r)
	sa, sb := nnStrides(p.A), nnStrides(p.B)
	var sp nnSpace
	sp.rank = r
	oStr := 1
	for i := r - 1; i >= 0; i-- {
		da, db := 1, 1
		var stA, stB int
		if j := i - (r - ra); j >= 0 {
			da, stA = p.A[j], sa[j]
		}
		if j := i - (r - rb); j >= 0 {
			db, stB = p.B[j], sb[j]
		}
		var d int
		switch {
		case da == db:
			d = da
		case da == BatchDim || db == BatchDim:
			// Only a static 1 stretches to an unknown batch size.
			if da != 1 && db != 1 {
				return fmt.Errorf("broadcast %v with %v: batch dimension against static size %d", p.A, p.B, max(da, db))
			}
			d = BatchDim
		case da == 1:
			d = db
		case db == 1:
			d = da
		default:
			return fmt.Errorf("broadcast %v with %v: dimension %d: sizes %d and %d differ and neither is 1", p.A, p.B, i, da, db)
		}
		out[i] = d
		if da == 1 && d != 1 {
			stA = 0
		}
		if db == 1 && d != 1 {
			stB = 0
		}
		sp.dims[i] = d
		sp.str[0][i] = oStr
		sp.str[1][i] = stA
		sp.str[2][i] = stB
		if d != BatchDim {
			oStr *= d
		}
	}
	p.out = out
	p.batched = nnBatched(out)
	p.full = sp
	p.aFull = nnSameShape(p.A, out)
	p.bFull = nnSameShape(p.B, out)
	p.ok = true
	return nil
}

func nnSameShape(a, b []int) bool {
	// Leading 1s do not change the layout, so [1,C,H,W] covers [C,H,W].
	for len(a) > len(b) && a[0] == 1 {
		a = a[1:]
	}
	for len(b) > len(a) && b[0] == 1 {
		b = b[1:]
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// OutShape returns the broadcast result shape (dimension 0 is BatchDim when
// either operand is batched).
func (p *BroadcastParams) OutShape() []int { return nnCopyShape(p.out) }

// OutLen returns the number of output elements for batch size n.
func (p *BroadcastParams) OutLen(n int) int { return nnNumel(p.out, n) }

// ALen returns the number of elements of operand A for batch size n.
func (p *BroadcastParams) ALen(n int) int { return nnNumel(p.A, n) }

// BLen returns the number of elements of operand B for batch size n.
func (p *BroadcastParams) BLen(n int) int { return nnNumel(p.B, n) }

// space returns the iteration space for batch size n, with the given stride
// rows copied into arrays 0..len(rows)-1 (row indices: 0 out, 1 A, 2 B).
func (p *BroadcastParams) space(n int, rows ...int) nnSpace {
	var sp nnSpace
	sp.rank = p.full.rank
	sp.dims = p.full.dims
	if p.batched {
		sp.dims[0] = n
	}
	for a, r := range rows {
		if r >= 0 {
			sp.str[a] = p.full.str[r]
		}
	}
	return sp
}

func (p *BroadcastParams) forward(kernel string, op, n int, y, a, b []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	t := &p.ew
	t.op = op
	t.y = nnNeed(kernel, "y", y, p.OutLen(n))
	t.a = nnNeed(kernel, "a", a, p.ALen(n))
	t.b = nnNeed(kernel, "b", b, p.BLen(n))
	t.sp = p.space(n, 0, 1, 2)
	if t.sp.size() == 0 {
		return
	}
	t.sp.simplify(3)
	t.run()
}

// grad writes into dst (the layout of operand row which, 1 for A or 2 for B)
// scale times the term kind of dy (out layout) and u, v (layouts of rows
// ru, rv), summed over the dimensions that operand broadcasts along.
func (p *BroadcastParams) grad(n, which, kind int, scale float64, dst, dy, u, v []float32, ru, rv int) {
	full := p.aFull
	if which == 2 {
		full = p.bFull
	}
	if full && kind != nnRdDivB {
		// No reduction: an elementwise op writes dst directly.
		t := &p.ew
		t.sp = p.space(n, which, 0, ru)
		t.y, t.a, t.b = dst, dy, u
		switch kind {
		case nnRdSum:
			t.op, t.scale, t.b = nnEwScale, float32(scale), nil
		case nnRdMul:
			t.op = nnEwMul
		default:
			t.op = nnEwDiv
		}
		if t.sp.size() == 0 {
			return
		}
		t.sp.simplify(3)
		t.run()
		return
	}
	t := &p.rd
	t.sp = p.space(n, 0, ru, rv, which)
	if t.sp.size() == 0 {
		clear(dst) // a sum over nothing (batch 0) is zero
		return
	}
	t.kind, t.scale = kind, scale
	t.dst = dst
	t.src[0], t.src[1], t.src[2] = dy, u, v
	t.sp.simplify(4)
	t.run()
}

// ReduceSumToParams describes the reduction of a broadcast result of shape
// From back to an operand shape To (To must broadcast to From), the gradient
// of broadcasting.
type ReduceSumToParams struct {
	From []int // shape of the broadcast result (the gradient being reduced)
	To   []int // shape of the operand that was broadcast

	bp BroadcastParams
}

// Init validates that To broadcasts to From and precomputes strides.
func (p *ReduceSumToParams) Init() error {
	p.bp = BroadcastParams{A: p.From, B: p.To}
	if err := p.bp.Init(); err != nil {
		return fmt.Errorf("reduce-sum-to: %w", err)
	}
	if !nnSameShape(p.bp.out, p.From) {
		p.bp.ok = false
		return fmt.Errorf("reduce-sum-to: %v does not broadcast to %v", p.To, p.From)
	}
	return nil
}

// ReduceSumTo writes y (shape To) = x (shape From) summed over the
// dimensions where To is 1 or absent, accumulating in float64.
func ReduceSumTo(p *ReduceSumToParams, n int, y, x []float32) {
	const kernel = "ReduceSumTo"
	bp := &p.bp
	if !bp.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	y = nnNeed(kernel, "y", y, bp.BLen(n))
	x = nnNeed(kernel, "x", x, bp.OutLen(n))
	bp.grad(n, 2, nnRdSum, 1, y, x, nil, nil, -1, -1)
}
