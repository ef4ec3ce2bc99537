package runtime

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// refPad pads x (concrete shape) element by element.
func refPad(shape, pads []int, mode PadMode, value float64, x []float64) ([]float64, []int) {
	r := len(shape)
	out := make([]int, r)
	for d := range shape {
		out[d] = shape[d] + pads[d] + pads[r+d]
	}
	y := make([]float64, nntNumel(out))
	src := make([]int, r)
	for i := range y {
		idx := nntUnravel(i, out)
		constant := false
		for d := range idx {
			s, size := idx[d]-pads[d], shape[d]
			switch {
			case s >= 0 && s < size:
			case mode == PadConstant:
				constant = true
			case mode == PadEdge:
				s = min(max(s, 0), size-1)
			default:
				for s < 0 || s >= size { // numpy reflect, any width
					if s < 0 {
						s = -s
					}
					if s >= size {
						s = 2*(size-1) - s
					}
				}
			}
			src[d] = s
		}
		if constant {
			y[i] = value
		} else {
			y[i] = x[nntRavel(src, shape)]
		}
	}
	return y, out
}

var nntPadCases = []struct {
	shape, pads []int
}{
	{[]int{BatchDim, 2, 4, 5}, []int{0, 0, 1, 2, 0, 0, 2, 1}},
	{[]int{BatchDim, 3, 3, 3}, []int{0, 0, 2, 0, 0, 0, 0, 2}},
	{[]int{BatchDim, 1, 5, 4}, []int{0, 0, 0, 3, 0, 0, 4, 0}},
	{[]int{2, 3, 4, 3}, []int{1, 2, 1, 1, 0, 1, 2, 2}},
	{[]int{BatchDim, 7}, []int{0, 3, 0, 2}},
	{[]int{6}, []int{2, 5}},
	{[]int{BatchDim, 2, 3, 2, 4}, []int{0, 1, 2, 1, 0, 0, 0, 1, 1, 3}},
	{[]int{BatchDim, 2, 3, 4}, []int{0, 0, 0, 0, 0, 0, 0, 0}},
}

func TestPadForwardAndBackward(t *testing.T) {
	r := nntRand(40)
	for _, tc := range nntPadCases {
		for _, mode := range []PadMode{PadConstant, PadReflect, PadEdge} {
			p := &PadParams{Shape: tc.shape, Pads: tc.pads, Mode: mode, Value: 0.75}
			if err := p.Init(); err != nil {
				// Reflect needs pads smaller than the dimension.
				require.Equal(t, PadReflect, mode, "%v %v: %v", tc.shape, tc.pads, err)
				continue
			}
			for _, n := range []int{1, 2} {
				name := fmt.Sprintf("%v %v mode %d n=%d", tc.shape, tc.pads, mode, n)
				shape := nntSub(tc.shape, n)
				x := nntSlice(r, nntNumel(shape), -1, 1)
				want, out := refPad(shape, tc.pads, mode, 0.75, nnt64(x))
				require.Equal(t, nntSub(p.OutShape(), n), out, name)
				y := nntFill(make([]float32, len(want)))
				Pad(p, n, y, x)
				nntClose(t, want, y, 0, "%s", name)

				g := nntSlice(r, len(want), -1, 1)
				dx := nntFill(make([]float32, len(x)))
				PadBackward(p, n, dx, g)
				ref := func(in [][]float64) []float64 {
					y, _ := refPad(shape, tc.pads, mode, 0.75, in[0])
					return y
				}
				nntFD(t, name, ref, [][]float32{x}, g, [][]float32{dx})
			}
		}
	}
}

func TestPadLarge(t *testing.T) {
	r := nntRand(41)
	p := &PadParams{Shape: []int{BatchDim, 16, 40, 41}, Pads: []int{0, 0, 2, 1, 0, 0, 1, 3}, Mode: PadReflect}
	require.NoError(t, p.Init())
	n := 3
	shape := nntSub(p.Shape, n)
	x := nntSlice(r, nntNumel(shape), -1, 1)
	want, _ := refPad(shape, p.Pads, p.Mode, 0, nnt64(x))
	y := make([]float32, len(want))
	Pad(p, n, y, x)
	nntClose(t, want, y, 0, "large reflect")
}

func TestPadInitErrors(t *testing.T) {
	for _, p := range []PadParams{
		{Shape: []int{BatchDim, 3}, Pads: []int{1, 0, 0, 0}},
		{Shape: []int{2, 3}, Pads: []int{0, 1, 0}},
		{Shape: []int{2, 3}, Pads: []int{0, -1, 0, 0}},
		{Shape: []int{2, 3}, Pads: []int{0, 3, 0, 0}, Mode: PadReflect},
		{Shape: []int{2, 3}, Pads: []int{0, 0, 0, 0}, Mode: 7},
		{Shape: []int{}, Pads: []int{}},
	} {
		require.Error(t, p.Init(), "%+v", p)
	}
}

func TestPadNoAllocs(t *testing.T) {
	r := nntRand(42)
	for _, mode := range []PadMode{PadConstant, PadReflect, PadEdge} {
		p := &PadParams{Shape: []int{BatchDim, 16, 32, 32}, Pads: []int{0, 0, 1, 2, 0, 0, 2, 1}, Mode: mode}
		require.NoError(t, p.Init())
		n := 4
		x := nntSlice(r, nntNumel(nntSub(p.Shape, n)), -1, 1)
		y := make([]float32, nntNumel(nntSub(p.OutShape(), n)))
		dx := make([]float32, len(x))
		nntNoAllocs(t, "Pad", func() { Pad(p, n, y, x) })
		nntNoAllocs(t, "PadBackward", func() { PadBackward(p, n, dx, y) })
	}
}
