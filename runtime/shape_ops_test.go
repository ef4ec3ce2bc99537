package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func refTranspose(shape, perm []int, x []float64) []float64 {
	out := make([]int, len(perm))
	for i, a := range perm {
		out[i] = shape[a]
	}
	y := make([]float64, len(x))
	in := make([]int, len(shape))
	for i := range y {
		idx := nntUnravel(i, out)
		for k, a := range perm {
			in[a] = idx[k]
		}
		y[i] = x[nntRavel(in, shape)]
	}
	return y
}

func TestTranspose(t *testing.T) {
	r := nntRand(80)
	cases := []struct{ shape, perm []int }{
		{[]int{BatchDim, 3, 4, 5}, []int{0, 2, 3, 1}},
		{[]int{BatchDim, 3, 4, 5}, []int{0, 3, 1, 2}},
		{[]int{BatchDim, 3, 4, 5}, []int{1, 0, 2, 3}},
		{[]int{BatchDim, 3, 4, 5}, nil},
		{[]int{2, 3, 4, 5, 2, 3}, []int{5, 3, 1, 0, 4, 2}},
		{[]int{BatchDim, 7}, []int{1, 0}},
		{[]int{BatchDim, 1, 6, 1}, []int{0, 3, 2, 1}},
		{[]int{BatchDim, 2, 3}, []int{0, 1, 2}},
		{[]int{BatchDim, 64, 33, 17}, []int{0, 2, 3, 1}},
	}
	for _, tc := range cases {
		p := &TransposeParams{Shape: tc.shape, Perm: tc.perm}
		require.NoError(t, p.Init())
		perm := tc.perm
		if perm == nil {
			for i := len(tc.shape) - 1; i >= 0; i-- {
				perm = append(perm, i)
			}
		}
		for _, n := range []int{1, 3} {
			name := fmt.Sprintf("%v %v n=%d", tc.shape, tc.perm, n)
			shape := nntSub(tc.shape, n)
			x := nntSlice(r, nntNumel(shape), -1, 1)
			y := nntFill(make([]float32, len(x)))
			Transpose(p, n, y, x)
			nntClose(t, refTranspose(shape, perm, nnt64(x)), y, 0, "%s", name)
			dx := nntFill(make([]float32, len(x)))
			TransposeBackward(p, n, dx, y)
			require.Equal(t, x, dx, name)
			if len(x) < 400 {
				g := nntSlice(r, len(x), -1, 1)
				TransposeBackward(p, n, dx, g)
				ref := func(in [][]float64) []float64 { return refTranspose(shape, perm, in[0]) }
				nntFD(t, name, ref, [][]float32{x}, g, [][]float32{dx})
			}
		}
	}
	require.Equal(t, []int{5, BatchDim, 3, 4}, (&TransposeParams{Shape: []int{BatchDim, 3, 4, 5}, Perm: []int{3, 0, 1, 2}}).mustInit(t).OutShape())
	for _, perm := range [][]int{{0, 1}, {0, 0, 1}, {0, 1, 3}} {
		require.Error(t, (&TransposeParams{Shape: []int{2, 3, 4}, Perm: perm}).Init())
	}
}

func (p *TransposeParams) mustInit(t *testing.T) *TransposeParams {
	require.NoError(t, p.Init())
	return p
}

func TestConcat(t *testing.T) {
	r := nntRand(81)
	cases := []struct {
		shapes [][]int
		axis   int
	}{
		{[][]int{{BatchDim, 2, 3, 3}, {BatchDim, 5, 3, 3}}, 1},
		{[][]int{{BatchDim, 2, 3, 4}, {BatchDim, 2, 1, 4}, {BatchDim, 2, 2, 4}}, -2},
		{[][]int{{BatchDim, 2, 3, 4}, {BatchDim, 2, 3, 1}}, 3},
		{[][]int{{2, 3}, {4, 3}}, 0},
		{[][]int{{BatchDim, 7}}, 1},
	}
	for _, tc := range cases {
		p := &ConcatParams{Shapes: tc.shapes, Axis: tc.axis}
		require.NoError(t, p.Init())
		for _, n := range []int{1, 2} {
			name := fmt.Sprintf("%v axis %d n=%d", tc.shapes, tc.axis, n)
			xs := make([][]float32, len(tc.shapes))
			for k, s := range tc.shapes {
				xs[k] = nntSlice(r, nntNumel(nntSub(s, n)), -1, 1)
			}
			out := nntSub(p.OutShape(), n)
			y := nntFill(make([]float32, nntNumel(out)))
			Concat(p, n, y, xs...)
			// Reference: each output element from its input by coordinates.
			axis := (tc.axis + len(out)) % len(out)
			for i, v := range y {
				idx := nntUnravel(i, out)
				k, pos := 0, idx[axis]
				for pos >= tc.shapes[k][axis] {
					pos -= tc.shapes[k][axis]
					k++
				}
				idx[axis] = pos
				require.Equal(t, xs[k][nntRavel(idx, nntSub(tc.shapes[k], n))], v, name)
			}
			dxs := make([][]float32, len(xs))
			for k := range dxs {
				dxs[k] = nntFill(make([]float32, len(xs[k])))
			}
			ConcatBackward(p, n, dxs, y)
			require.Equal(t, xs, dxs, name)
			// Finite differences through a reference that joins by index.
			g := nntSlice(r, len(y), -1, 1)
			ConcatBackward(p, n, dxs, g)
			ref := func(in [][]float64) []float64 {
				out64 := make([]float64, len(y))
				for i := range out64 {
					idx := nntUnravel(i, out)
					k, pos := 0, idx[axis]
					for pos >= tc.shapes[k][axis] {
						pos -= tc.shapes[k][axis]
						k++
					}
					idx[axis] = pos
					out64[i] = in[k][nntRavel(idx, nntSub(tc.shapes[k], n))]
				}
				return out64
			}
			nntFD(t, name, ref, xs, g, dxs)
			dxs[0] = nil
			ConcatBackward(p, n, dxs, y)
		}
	}
	for _, tc := range []ConcatParams{
		{Shapes: [][]int{{2, 3}, {2, 4}}, Axis: 0},
		{Shapes: [][]int{{BatchDim, 3}, {BatchDim, 3}}, Axis: 0},
		{Shapes: [][]int{{BatchDim, 3}, {2, 3}}, Axis: 1},
		{Shapes: [][]int{{2, 3}, {2, 3, 1}}, Axis: 1},
		{Shapes: [][]int{{2, 3}}, Axis: 2},
		{},
	} {
		require.Error(t, tc.Init(), "%+v", tc)
	}
}

// refSlice selects by explicit index lists per axis.
func refSlice(shape []int, sel [][]int, x []float64) []float64 {
	out := make([]int, len(shape))
	for d := range sel {
		out[d] = len(sel[d])
	}
	y := make([]float64, nntNumel(out))
	in := make([]int, len(shape))
	for i := range y {
		idx := nntUnravel(i, out)
		for d := range idx {
			in[d] = sel[d][idx[d]]
		}
		y[i] = x[nntRavel(in, shape)]
	}
	return y
}

// refSliceAxis lists the indices ONNX Slice takes, by the spec's loop.
func refSliceAxis(dim, start, end, step int) []int {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	var out []int
	if step > 0 {
		start, end = min(max(start, 0), dim), min(max(end, 0), dim)
		for i := start; i < end; i += step {
			out = append(out, i)
		}
	} else {
		start, end = min(max(start, 0), dim-1), min(max(end, -1), dim-1)
		for i := start; i > end; i += step {
			out = append(out, i)
		}
	}
	return out
}

func TestSlice(t *testing.T) {
	r := nntRand(82)
	big, small := math.MaxInt, math.MinInt
	cases := []struct {
		shape                     []int
		starts, ends, axes, steps []int
	}{
		{[]int{BatchDim, 4, 6, 5}, []int{1, 0}, []int{3, 5}, []int{2, 3}, nil},
		{[]int{BatchDim, 4, 6, 5}, []int{-1, 1}, []int{small, big}, []int{-2, 1}, []int{-2, 2}},
		{[]int{BatchDim, 4, 6, 5}, []int{5, 10}, []int{-10, -100}, []int{3, 2}, []int{-1, -3}},
		{[]int{BatchDim, 8}, []int{0, 7}, []int{big, 0}, nil, []int{1, -2}},
		{[]int{3, 4, 5}, []int{1, -3, 0}, []int{3, big, 5}, nil, []int{1, 1, 4}},
		{[]int{BatchDim, 3, 4}, []int{}, []int{}, nil, nil},
	}
	for _, tc := range cases {
		p := &SliceParams{Shape: tc.shape, Starts: tc.starts, Ends: tc.ends, Axes: tc.axes, Steps: tc.steps}
		require.NoError(t, p.Init(), "%+v", tc)
		for _, n := range []int{1, 3} {
			name := fmt.Sprintf("%+v n=%d", tc, n)
			shape := nntSub(tc.shape, n)
			sel := make([][]int, len(shape))
			for d := range sel {
				sel[d] = refSliceAxis(shape[d], 0, big, 1)
			}
			for i := range tc.starts {
				a := i
				if tc.axes != nil {
					a = (tc.axes[i] + len(shape)) % len(shape)
				}
				step := 1
				if tc.steps != nil {
					step = tc.steps[i]
				}
				sel[a] = refSliceAxis(shape[a], tc.starts[i], tc.ends[i], step)
			}
			x := nntSlice(r, nntNumel(shape), -1, 1)
			want := refSlice(shape, sel, nnt64(x))
			require.Equal(t, len(want), nntNumel(nntSub(p.OutShape(), n)), name)
			y := nntFill(make([]float32, len(want)))
			Slice(p, n, y, x)
			nntClose(t, want, y, 0, "%s", name)
			g := nntSlice(r, len(want), -1, 1)
			dx := nntFill(make([]float32, len(x)))
			SliceBackward(p, n, dx, g)
			nntFD(t, name, func(in [][]float64) []float64 { return refSlice(shape, sel, in[0]) }, [][]float32{x}, g, [][]float32{dx})
		}
	}
	for _, tc := range []SliceParams{
		{Shape: []int{BatchDim, 4}, Starts: []int{1}, Ends: []int{big}},
		{Shape: []int{3, 4}, Starts: []int{0}, Ends: []int{2}, Steps: []int{0}},
		{Shape: []int{3, 4}, Starts: []int{2}, Ends: []int{1}},
		{Shape: []int{3, 4}, Starts: []int{0, 0}, Ends: []int{1, 1}, Axes: []int{1, -1}},
		{Shape: []int{3, 4}, Starts: []int{0}, Ends: []int{1, 2}},
	} {
		require.Error(t, tc.Init(), "%+v", tc)
	}
}

func TestGather(t *testing.T) {
	r := nntRand(83)
	cases := []struct {
		shape   []int
		axis    int
		indices []int
		ishape  []int
	}{
		{[]int{BatchDim, 5, 3}, 1, []int{4, 0, -1, 4}, nil},
		{[]int{BatchDim, 5, 3}, -1, []int{2}, []int{}},
		{[]int{6, 4}, 0, []int{1, 5, 1, 0, 3, 3}, []int{2, 3}},
		{[]int{BatchDim, 2, 7, 2}, 2, []int{6, 0, 6}, nil},
	}
	for _, tc := range cases {
		p := &GatherParams{Shape: tc.shape, Axis: tc.axis, Indices: tc.indices, IndicesShape: tc.ishape}
		require.NoError(t, p.Init())
		axis := (tc.axis + len(tc.shape)) % len(tc.shape)
		for _, n := range []int{1, 2} {
			name := fmt.Sprintf("%+v n=%d", tc, n)
			shape := nntSub(tc.shape, n)
			out := nntSub(p.OutShape(), n)
			nIdx := len(out) - len(shape) + 1
			ref := func(in [][]float64) []float64 {
				y := make([]float64, nntNumel(out))
				for i := range y {
					idx := nntUnravel(i, out)
					q := 0
					if nIdx > 0 {
						q = nntRavel(idx[axis:axis+nIdx], out[axis:axis+nIdx])
					}
					v := tc.indices[q]
					if v < 0 {
						v += shape[axis]
					}
					src := append(append(append([]int(nil), idx[:axis]...), v), idx[axis+nIdx:]...)
					y[i] = in[0][nntRavel(src, shape)]
				}
				return y
			}
			x := nntSlice(r, nntNumel(shape), -1, 1)
			y := nntFill(make([]float32, nntNumel(out)))
			Gather(p, n, y, x)
			nntClose(t, ref([][]float64{nnt64(x)}), y, 0, "%s", name)
			g := nntSlice(r, len(y), -1, 1)
			dx := nntFill(make([]float32, len(x)))
			GatherBackward(p, n, dx, g)
			nntFD(t, name, ref, [][]float32{x}, g, [][]float32{dx})
		}
	}
	for _, tc := range []GatherParams{
		{Shape: []int{BatchDim, 3}, Axis: 0, Indices: []int{0}},
		{Shape: []int{4, 3}, Axis: 1, Indices: []int{3}},
		{Shape: []int{4, 3}, Axis: 1, Indices: []int{-4}},
		{Shape: []int{4, 3}, Axis: 2, Indices: []int{0}},
		{Shape: []int{4, 3}, Axis: 0, Indices: []int{0, 1}, IndicesShape: []int{3}},
	} {
		require.Error(t, tc.Init(), "%+v", tc)
	}
}

func refReduce(shape []int, reduced []bool, x []float64, mean bool) []float64 {
	var out []int
	for d, s := range shape {
		if !reduced[d] {
			out = append(out, s)
		}
	}
	y := make([]float64, nntNumel(out))
	count := len(x) / len(y)
	for i, v := range x {
		idx := nntUnravel(i, shape)
		var o []int
		for d := range idx {
			if !reduced[d] {
				o = append(o, idx[d])
			}
		}
		y[nntRavel(o, out)] += v
	}
	if mean {
		for i := range y {
			y[i] /= float64(count)
		}
	}
	return y
}

func TestReduce(t *testing.T) {
	r := nntRand(84)
	cases := []struct {
		shape []int
		axes  []int
	}{
		{[]int{BatchDim, 3, 4, 5}, []int{2, 3}},
		{[]int{BatchDim, 3, 4, 5}, []int{1}},
		{[]int{BatchDim, 3, 4, 5}, []int{0}},
		{[]int{BatchDim, 3, 4, 5}, []int{0, 2}},
		{[]int{BatchDim, 3, 4, 5}, []int{-1, 1}},
		{[]int{BatchDim, 3, 4, 5}, nil},
		{[]int{4, 6}, []int{1}},
		{[]int{4, 6}, []int{0}},
		{[]int{BatchDim, 7}, []int{1}},
		{[]int{BatchDim, 300, 700}, []int{1}},
		{[]int{BatchDim, 64, 32, 32}, []int{2, 3}},
	}
	for _, tc := range cases {
		for _, keep := range []bool{false, true} {
			p := &ReduceParams{Shape: tc.shape, Axes: tc.axes, KeepDims: keep}
			require.NoError(t, p.Init())
			for _, n := range []int{1, 3} {
				name := fmt.Sprintf("%v axes %v keep %v n=%d", tc.shape, tc.axes, keep, n)
				shape := nntSub(tc.shape, n)
				reduced := make([]bool, len(shape))
				for d := range reduced {
					reduced[d] = tc.axes == nil
				}
				for _, a := range tc.axes {
					reduced[(a+len(shape))%len(shape)] = true
				}
				x := nntSlice(r, nntNumel(shape), -1, 1)
				for _, mean := range []bool{false, true} {
					want := refReduce(shape, reduced, nnt64(x), mean)
					require.Equal(t, len(want), nntNumel(nntSub(p.OutShape(), n)), name)
					y := nntFill(make([]float32, len(want)))
					if mean {
						ReduceMean(p, n, y, x)
					} else {
						ReduceSum(p, n, y, x)
					}
					nntClose(t, want, y, 1e-6, "%s mean=%v", name, mean)
					if len(x) > 400 {
						continue
					}
					g := nntSlice(r, len(want), -1, 1)
					dx := nntFill(make([]float32, len(x)))
					if mean {
						ReduceMeanBackward(p, n, dx, g)
					} else {
						ReduceSumBackward(p, n, dx, g)
					}
					ref := func(in [][]float64) []float64 { return refReduce(shape, reduced, in[0], mean) }
					nntFD(t, name, ref, [][]float32{x}, g, [][]float32{dx})
				}
			}
		}
	}
	p := &ReduceParams{Shape: []int{BatchDim, 3, 4}, Axes: []int{2}, KeepDims: true}
	require.NoError(t, p.Init())
	require.Equal(t, []int{BatchDim, 3, 1}, p.OutShape())
	require.Error(t, (&ReduceParams{Shape: []int{3, 4}, Axes: []int{1, -1}}).Init())
	require.Error(t, (&ReduceParams{Shape: []int{3, 4}, Axes: []int{2}}).Init())
}

func TestShapeOpsNoAllocs(t *testing.T) {
	r := nntRand(85)
	n := 4
	tp := &TransposeParams{Shape: []int{BatchDim, 32, 20, 20}, Perm: []int{0, 2, 3, 1}}
	require.NoError(t, tp.Init())
	x := nntSlice(r, n*32*400, -1, 1)
	y := make([]float32, len(x))
	nntNoAllocs(t, "Transpose", func() { Transpose(tp, n, y, x) })
	nntNoAllocs(t, "TransposeBackward", func() { TransposeBackward(tp, n, y, x) })

	cp := &ConcatParams{Shapes: [][]int{{BatchDim, 16, 20, 20}, {BatchDim, 16, 20, 20}}, Axis: 1}
	require.NoError(t, cp.Init())
	half := len(x) / 2
	a, b := x[:half], x[half:]
	da, db := make([]float32, half), make([]float32, half)
	nntNoAllocs(t, "Concat", func() { Concat(cp, n, y, a, b) })
	nntNoAllocs(t, "ConcatBackward", func() { ConcatBackward(cp, n, [][]float32{da, db}, y) })

	sp := &SliceParams{Shape: []int{BatchDim, 32, 20, 20}, Starts: []int{1, 19}, Ends: []int{19, 0}, Axes: []int{2, 3}, Steps: []int{2, -1}}
	require.NoError(t, sp.Init())
	nntNoAllocs(t, "Slice", func() { Slice(sp, n, y, x) })
	dx := make([]float32, len(x))
	nntNoAllocs(t, "SliceBackward", func() { SliceBackward(sp, n, dx, y) })

	gp := &GatherParams{Shape: []int{BatchDim, 32, 400}, Axis: 1, Indices: []int{3, 1, 4, 1, 5}}
	require.NoError(t, gp.Init())
	nntNoAllocs(t, "Gather", func() { Gather(gp, n, y, x) })
	nntNoAllocs(t, "GatherBackward", func() { GatherBackward(gp, n, dx, y) })

	rp := &ReduceParams{Shape: []int{BatchDim, 32, 20, 20}, Axes: []int{2, 3}}
	require.NoError(t, rp.Init())
	nntNoAllocs(t, "ReduceMean", func() { ReduceMean(rp, n, y, x) })
	nntNoAllocs(t, "ReduceMeanBackward", func() { ReduceMeanBackward(rp, n, dx, y) })
	rp2 := &ReduceParams{Shape: []int{BatchDim, 32, 20, 20}, Axes: []int{0, 1}}
	require.NoError(t, rp2.Init())
	nntNoAllocs(t, "ReduceSum", func() { ReduceSum(rp2, n, y, x) })
	nntNoAllocs(t, "ReduceSumBackward", func() { ReduceSumBackward(rp2, n, dx, y) })
}
