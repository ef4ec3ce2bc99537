package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Shared helpers of the NN-kernel tests (prefixed nnt so they cannot clash
// with other test files of the package).

func nntRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// nntSlice returns n uniform values in [lo, hi).
func nntSlice(r *rand.Rand, n int, lo, hi float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return s
}

// nntAway returns n uniform values in [lo, hi) at least gap away from every
// kink, so finite differences never straddle one.
func nntAway(r *rand.Rand, n int, lo, hi, gap float64, kinks ...float64) []float32 {
	s := make([]float32, n)
	for i := range s {
	retry:
		v := lo + (hi-lo)*r.Float64()
		for _, k := range kinks {
			if math.Abs(v-k) < gap {
				goto retry
			}
		}
		s[i] = float32(v)
	}
	return s
}

func nnt64(s []float32) []float64 {
	d := make([]float64, len(s))
	for i, v := range s {
		d[i] = float64(v)
	}
	return d
}

// nntFill fills s with a value that no kernel writes, to catch elements a
// kernel forgets.
func nntFill(s []float32) []float32 {
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

func nntNumel(s []int) int {
	c := 1
	for _, d := range s {
		c *= d
	}
	return c
}

func nntSub(s []int, n int) []int {
	c := append([]int(nil), s...)
	if len(c) > 0 && c[0] == BatchDim {
		c[0] = n
	}
	return c
}

func nntUnravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		idx[d] = i % shape[d]
		i /= shape[d]
	}
	return idx
}

func nntRavel(idx, shape []int) int {
	o := 0
	for d := range shape {
		o = o*shape[d] + idx[d]
	}
	return o
}

// nntClose requires |got-want| <= tol*(1+|want|) elementwise.
func nntClose(t *testing.T, want []float64, got []float32, tol float64, msg string, args ...any) {
	t.Helper()
	require.Len(t, got, len(want), fmt.Sprintf(msg, args...))
	for i := range want {
		w, g := want[i], float64(got[i])
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		if !(math.Abs(g-w) <= tol*(1+math.Abs(w))) {
			require.Failf(t, "mismatch", "%s: element %d: got %v, want %v (tol %g)", fmt.Sprintf(msg, args...), i, g, w, tol)
		}
	}
}

// nntFD checks analytic gradients against central finite differences of the
// scalar loss L = sum(ref(inputs)*g), all in float64. grads[k] is the
// kernel's gradient for inputs[k] (nil to skip). The error allowed is 1e-3
// relative to the largest gradient component, so tiny components that
// cancel in float32 do not fail the check.
func nntFD(t *testing.T, name string, ref func(in [][]float64) []float64, inputs [][]float32, g []float32, grads [][]float32) {
	t.Helper()
	in := make([][]float64, len(inputs))
	for k := range inputs {
		in[k] = nnt64(inputs[k])
	}
	loss := func() float64 {
		y := ref(in)
		require.Len(t, y, len(g), "%s: reference output size", name)
		var s float64
		for i, v := range y {
			s += v * float64(g[i])
		}
		return s
	}
	for k, gr := range grads {
		if gr == nil {
			continue
		}
		num := make([]float64, len(in[k]))
		scale := 0.0
		for i := range in[k] {
			x0 := in[k][i]
			h := 1e-6 * math.Max(1, math.Abs(x0))
			in[k][i] = x0 + h
			lp := loss()
			in[k][i] = x0 - h
			lm := loss()
			in[k][i] = x0
			num[i] = (lp - lm) / (2 * h)
			scale = math.Max(scale, math.Abs(num[i]))
		}
		require.Len(t, gr, len(num), "%s: gradient %d size", name, k)
		for i := range num {
			if d := math.Abs(float64(gr[i]) - num[i]); d > 1e-3*math.Max(scale, 1e-6) {
				require.Failf(t, "gradient mismatch", "%s: input %d element %d: analytic %v, numeric %v (scale %v)", name, k, i, gr[i], num[i], scale)
			}
		}
	}
}

// nntNoAllocs requires that f allocates nothing once warmed up.
func nntNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	f()
	if a := testing.AllocsPerRun(5, f); a != 0 {
		require.Failf(t, "allocations", "%s: %v allocations per call", name, a)
	}
}

// refBroadcastIndex maps an output index to an operand index by numpy rules.
func refBroadcastIndex(outIdx, opShape []int) int {
	off := len(outIdx) - len(opShape)
	idx := make([]int, len(opShape))
	for d := range opShape {
		if opShape[d] != 1 {
			idx[d] = outIdx[d+off]
		}
	}
	return nntRavel(idx, opShape)
}

func refBroadcastShape(a, b []int) []int {
	r := max(len(a), len(b))
	out := make([]int, r)
	for i := 0; i < r; i++ {
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

// refBinary is the float64 reference of a broadcast binary op.
func refBinary(op string, as, bs []int, a, b []float64) []float64 {
	out := refBroadcastShape(as, bs)
	y := make([]float64, nntNumel(out))
	for i := range y {
		idx := nntUnravel(i, out)
		x, z := a[refBroadcastIndex(idx, as)], b[refBroadcastIndex(idx, bs)]
		switch op {
		case "Add":
			y[i] = x + z
		case "Sub":
			y[i] = x - z
		case "Mul":
			y[i] = x * z
		case "Div":
			y[i] = x / z
		}
	}
	return y
}

var nntBroadcastCases = []struct {
	name string
	a, b []int
}{
	{"same", []int{BatchDim, 3, 5, 7}, []int{BatchDim, 3, 5, 7}},
	{"per-channel", []int{BatchDim, 4, 5, 3}, []int{4, 1, 1}},
	{"per-channel-left", []int{4, 1, 1}, []int{BatchDim, 4, 3, 5}},
	{"scalar", []int{BatchDim, 2, 3, 5}, []int{}},
	{"scalar-1", []int{1}, []int{BatchDim, 2, 3, 5}},
	{"se-gate", []int{BatchDim, 5, 1, 1}, []int{BatchDim, 5, 3, 3}},
	{"se-gate-right", []int{BatchDim, 5, 3, 3}, []int{BatchDim, 5, 1, 1}},
	{"bidirectional", []int{BatchDim, 1, 4, 1}, []int{1, 3, 1, 5}},
	{"row", []int{BatchDim, 3, 2, 7}, []int{7}},
	{"batch-vs-1", []int{BatchDim, 3, 4}, []int{1, 3, 4}},
	{"static", []int{3, 1, 5}, []int{4, 1}},
	{"static-same", []int{2, 3}, []int{2, 3}},
	{"inner-bcast", []int{BatchDim, 3, 4, 5}, []int{BatchDim, 3, 4, 1}},
	{"matrix-vector", []int{BatchDim, 6}, []int{6}},
	{"scalars", []int{}, []int{1}},
}

func TestBroadcastForward(t *testing.T) {
	r := nntRand(1)
	for _, tc := range nntBroadcastCases {
		for _, n := range []int{1, 3} {
			p := &BroadcastParams{A: tc.a, B: tc.b}
			require.NoError(t, p.Init(), tc.name)
			as, bs := nntSub(tc.a, n), nntSub(tc.b, n)
			a := nntSlice(r, nntNumel(as), -2, 2)
			b := nntAway(r, nntNumel(bs), -2, 2, 0.3, 0)
			require.Equal(t, nntNumel(refBroadcastShape(as, bs)), p.OutLen(n), tc.name)
			for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
				y := nntFill(make([]float32, p.OutLen(n)))
				map[string]func(*BroadcastParams, int, []float32, []float32, []float32){
					"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div,
				}[op](p, n, y, a, b)
				nntClose(t, refBinary(op, as, bs, nnt64(a), nnt64(b)), y, 1e-6, "%s %s n=%d", tc.name, op, n)
			}
		}
	}
}

// refBinaryGrads returns the float64 gradients of a broadcast op given dy.
func refBinaryGrads(op string, as, bs []int, a, b, dy []float64) ([]float64, []float64) {
	out := refBroadcastShape(as, bs)
	da, db := make([]float64, len(a)), make([]float64, len(b))
	for i := range dy {
		idx := nntUnravel(i, out)
		ia, ib := refBroadcastIndex(idx, as), refBroadcastIndex(idx, bs)
		g := dy[i]
		switch op {
		case "Add":
			da[ia] += g
			db[ib] += g
		case "Sub":
			da[ia] += g
			db[ib] -= g
		case "Mul":
			da[ia] += g * b[ib]
			db[ib] += g * a[ia]
		case "Div":
			da[ia] += g / b[ib]
			db[ib] -= g * a[ia] / (b[ib] * b[ib])
		}
	}
	return da, db
}

func nntBinaryBackward(p *BroadcastParams, op string, n int, da, db, dy, a, b []float32) {
	switch op {
	case "Add":
		AddBackward(p, n, da, db, dy)
	case "Sub":
		SubBackward(p, n, da, db, dy)
	case "Mul":
		MulBackward(p, n, da, db, dy, a, b)
	case "Div":
		DivBackward(p, n, da, db, dy, a, b)
	}
}

func TestBroadcastBackwardFiniteDifferences(t *testing.T) {
	r := nntRand(2)
	for _, tc := range nntBroadcastCases {
		for _, n := range []int{1, 2} {
			p := &BroadcastParams{A: tc.a, B: tc.b}
			require.NoError(t, p.Init())
			as, bs := nntSub(tc.a, n), nntSub(tc.b, n)
			a := nntSlice(r, nntNumel(as), -2, 2)
			b := nntAway(r, nntNumel(bs), -2, 2, 0.5, 0)
			g := nntSlice(r, p.OutLen(n), -1, 1)
			for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
				da := nntFill(make([]float32, len(a)))
				db := nntFill(make([]float32, len(b)))
				nntBinaryBackward(p, op, n, da, db, g, a, b)
				ref := func(in [][]float64) []float64 { return refBinary(op, as, bs, in[0], in[1]) }
				nntFD(t, fmt.Sprintf("%s %s n=%d", tc.name, op, n), ref, [][]float32{a, b}, g, [][]float32{da, db})
			}
		}
	}
}

// TestBroadcastLarge exercises the parallel paths against the float64
// reference, forward and backward, and checks that nil gradients are
// skipped.
func TestBroadcastLarge(t *testing.T) {
	r := nntRand(3)
	cases := []struct{ a, b []int }{
		{[]int{BatchDim, 16, 33, 35}, []int{BatchDim, 16, 33, 35}},
		{[]int{BatchDim, 16, 33, 35}, []int{16, 1, 1}},
		{[]int{BatchDim, 16, 33, 35}, []int{BatchDim, 16, 1, 1}},
		{[]int{BatchDim, 16, 33, 35}, []int{}},
		{[]int{BatchDim, 16, 33, 35}, []int{1, 1, 35}},
		{[]int{BatchDim, 3, 33, 600}, []int{3, 1, 600}},
	}
	for _, tc := range cases {
		n := 3
		p := &BroadcastParams{A: tc.a, B: tc.b}
		require.NoError(t, p.Init())
		as, bs := nntSub(tc.a, n), nntSub(tc.b, n)
		a := nntSlice(r, nntNumel(as), -2, 2)
		b := nntAway(r, nntNumel(bs), -2, 2, 0.5, 0)
		dy := nntSlice(r, p.OutLen(n), -1, 1)
		for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
			y := nntFill(make([]float32, p.OutLen(n)))
			map[string]func(*BroadcastParams, int, []float32, []float32, []float32){
				"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div,
			}[op](p, n, y, a, b)
			nntClose(t, refBinary(op, as, bs, nnt64(a), nnt64(b)), y, 1e-6, "%v %v %s", tc.a, tc.b, op)
			wa, wb := refBinaryGrads(op, as, bs, nnt64(a), nnt64(b), nnt64(dy))
			da := nntFill(make([]float32, len(a)))
			db := nntFill(make([]float32, len(b)))
			nntBinaryBackward(p, op, n, da, nil, dy, a, b)
			nntClose(t, wa, da, 1e-5, "%v %v %s da", tc.a, tc.b, op)
			nntBinaryBackward(p, op, n, nil, db, dy, a, b)
			nntClose(t, wb, db, 1e-5, "%v %v %s db", tc.a, tc.b, op)
		}
	}
}

func TestBroadcastDeterministic(t *testing.T) {
	r := nntRand(4)
	p := &BroadcastParams{A: []int{BatchDim, 8, 40, 40}, B: []int{8, 1, 1}}
	require.NoError(t, p.Init())
	a := nntSlice(r, p.ALen(4), -1, 1)
	b := nntSlice(r, p.BLen(4), -1, 1)
	dy := nntSlice(r, p.OutLen(4), -1, 1)
	first := make([]float32, len(b))
	MulBackward(p, 4, nil, first, dy, a, b)
	for range 3 {
		again := make([]float32, len(b))
		MulBackward(p, 4, nil, again, dy, a, b)
		require.Equal(t, first, again)
	}
}

func TestBroadcastInitErrors(t *testing.T) {
	bad := []struct{ a, b []int }{
		{[]int{2, 3}, []int{4, 3}},
		{[]int{BatchDim, 3}, []int{2, 3}},
		{[]int{BatchDim, 3}, []int{BatchDim}},
		{[]int{3, BatchDim}, []int{3, 1}},
		{[]int{0, 3}, []int{3}},
		{[]int{1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{1}},
	}
	for _, tc := range bad {
		p := &BroadcastParams{A: tc.a, B: tc.b}
		require.Error(t, p.Init(), "%v %v", tc.a, tc.b)
		require.Panics(t, func() { Add(p, 1, make([]float32, 100), make([]float32, 100), make([]float32, 100)) })
	}
	p := &BroadcastParams{A: []int{BatchDim, 3}, B: []int{3}}
	require.NoError(t, p.Init())
	require.Panics(t, func() { Add(p, 2, make([]float32, 5), make([]float32, 6), make([]float32, 3)) })
	require.Panics(t, func() { Add(p, -1, nil, nil, nil) })
	require.Equal(t, []int{BatchDim, 3}, p.OutShape())

	// A batch of zero still defines the gradient of an unbatched operand.
	db := []float32{7, 7, 7}
	AddBackward(p, 0, nil, db, nil)
	require.Equal(t, []float32{0, 0, 0}, db)
}

func TestReduceSumTo(t *testing.T) {
	r := nntRand(5)
	cases := []struct{ from, to []int }{
		{[]int{BatchDim, 4, 5, 6}, []int{4, 1, 1}},
		{[]int{BatchDim, 4, 5, 6}, []int{}},
		{[]int{BatchDim, 4, 5, 6}, []int{BatchDim, 4, 1, 1}},
		{[]int{BatchDim, 4, 5, 6}, []int{1, 5, 1}},
		{[]int{BatchDim, 4, 5, 6}, []int{6}},
		{[]int{BatchDim, 4, 5, 6}, []int{BatchDim, 4, 5, 6}},
		{[]int{7, 3}, []int{7, 1}},
		{[]int{BatchDim, 64, 30, 30}, []int{64, 1, 1}},
	}
	for _, tc := range cases {
		for _, n := range []int{1, 3} {
			p := &ReduceSumToParams{From: tc.from, To: tc.to}
			require.NoError(t, p.Init())
			fs, ts := nntSub(tc.from, n), nntSub(tc.to, n)
			x := nntSlice(r, nntNumel(fs), -1, 1)
			y := nntFill(make([]float32, nntNumel(ts)))
			ReduceSumTo(p, n, y, x)
			want, _ := refBinaryGrads("Add", ts, fs, make([]float64, nntNumel(ts)), make([]float64, len(x)), nnt64(x))
			nntClose(t, want, y, 1e-6, "%v -> %v n=%d", tc.from, tc.to, n)
		}
	}
	p := &ReduceSumToParams{From: []int{4, 1}, To: []int{4, 3}}
	require.Error(t, p.Init())
}

func TestBroadcastNoAllocs(t *testing.T) {
	r := nntRand(6)
	for _, tc := range nntBroadcastCases[:6] {
		p := &BroadcastParams{A: tc.a, B: tc.b}
		require.NoError(t, p.Init())
		n := 64
		a := nntSlice(r, p.ALen(n), 1, 2)
		b := nntSlice(r, p.BLen(n), 1, 2)
		y := make([]float32, p.OutLen(n))
		da, db := make([]float32, len(a)), make([]float32, len(b))
		nntNoAllocs(t, tc.name+" Add", func() { Add(p, n, y, a, b) })
		nntNoAllocs(t, tc.name+" Sub", func() { Sub(p, n, y, a, b) })
		nntNoAllocs(t, tc.name+" Mul", func() { Mul(p, n, y, a, b) })
		nntNoAllocs(t, tc.name+" Div", func() { Div(p, n, y, a, b) })
		nntNoAllocs(t, tc.name+" AddBackward", func() { AddBackward(p, n, da, db, y) })
		nntNoAllocs(t, tc.name+" SubBackward", func() { SubBackward(p, n, da, db, y) })
		nntNoAllocs(t, tc.name+" MulBackward", func() { MulBackward(p, n, da, db, y, a, b) })
		nntNoAllocs(t, tc.name+" DivBackward", func() { DivBackward(p, n, da, db, y, a, b) })
	}
	p := &ReduceSumToParams{From: []int{BatchDim, 64, 30, 30}, To: []int{64, 1, 1}}
	require.NoError(t, p.Init())
	x := make([]float32, 4*64*900)
	y := make([]float32, 64)
	nntNoAllocs(t, "ReduceSumTo", func() { ReduceSumTo(p, 4, y, x) })
}
