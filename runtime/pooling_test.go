package runtime

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// refPoolOut is PyTorch's output-size formula.
func refPoolOut(size, k, s, d, padLo, padHi int, ceil bool) int {
	num := size + padLo + padHi - d*(k-1) - 1
	if ceil {
		num += s - 1
	}
	out := num/s + 1
	if ceil && (out-1)*s >= size+padLo {
		out--
	}
	return out
}

// refPool is a naive float64 pooling over every (tap row, tap col) pair.
func refPool(p *PoolParams, n int, x []float64, avg bool) []float64 {
	s1 := func(v int) int { return max(v, 1) }
	sh, sw, dh, dw := s1(p.StrideH), s1(p.StrideW), s1(p.DilationH), s1(p.DilationW)
	oh := refPoolOut(p.H, p.KernelH, sh, dh, p.PadTop, p.PadBottom, p.CeilMode)
	ow := refPoolOut(p.W, p.KernelW, sw, dw, p.PadLeft, p.PadRight, p.CeilMode)
	y := make([]float64, n*p.C*oh*ow)
	for pl := 0; pl < n*p.C; pl++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				best, sum, valid, padded := math.Inf(-1), 0.0, 0, 0
				for ki := 0; ki < p.KernelH; ki++ {
					for kj := 0; kj < p.KernelW; kj++ {
						h, w := i*sh-p.PadTop+ki*dh, j*sw-p.PadLeft+kj*dw
						if h < p.H+p.PadBottom && w < p.W+p.PadRight {
							padded++
						}
						if h < 0 || h >= p.H || w < 0 || w >= p.W {
							continue
						}
						v := x[(pl*p.H+h)*p.W+w]
						best = math.Max(best, v)
						sum += v
						valid++
					}
				}
				o := (pl*oh+i)*ow + j
				switch {
				case !avg:
					y[o] = best
				case p.CountIncludePad:
					y[o] = sum / float64(padded)
				default:
					y[o] = sum / float64(valid)
				}
			}
		}
	}
	return y
}

var nntPoolCases = []PoolParams{
	{C: 2, H: 5, W: 6, KernelH: 2, KernelW: 2, StrideH: 2, StrideW: 2},
	{C: 3, H: 7, W: 7, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1},
	{C: 1, H: 6, W: 5, KernelH: 3, KernelW: 2, StrideH: 2, StrideW: 3, PadTop: 0, PadLeft: 1, PadBottom: 2, PadRight: 0},
	{C: 2, H: 5, W: 5, KernelH: 2, KernelW: 2, StrideH: 2, StrideW: 2, CeilMode: true},
	{C: 2, H: 8, W: 7, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, CeilMode: true},
	{C: 1, H: 9, W: 4, KernelH: 4, KernelW: 3, StrideH: 3, StrideW: 1, PadTop: 2, PadBottom: 1, PadLeft: 0, PadRight: 2, CeilMode: true},
	{C: 2, H: 6, W: 6, KernelH: 3, KernelW: 3, StrideH: 1, StrideW: 1, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1},
	{C: 1, H: 4, W: 4, KernelH: 4, KernelW: 4},
	{C: 1, H: 3, W: 1, KernelH: 1, KernelW: 1, StrideH: 2},
}

func TestPoolForward(t *testing.T) {
	r := nntRand(30)
	for _, base := range nntPoolCases {
		for _, incl := range []bool{false, true} {
			for _, n := range []int{1, 3} {
				p := base
				p.CountIncludePad = incl
				require.NoError(t, p.Init(), "%+v", base)
				name := fmt.Sprintf("%+v n=%d", base, n)
				s1 := func(v int) int { return max(v, 1) }
				require.Equal(t, refPoolOut(p.H, p.KernelH, s1(p.StrideH), 1, p.PadTop, p.PadBottom, p.CeilMode), p.OutH(), name)
				require.Equal(t, refPoolOut(p.W, p.KernelW, s1(p.StrideW), 1, p.PadLeft, p.PadRight, p.CeilMode), p.OutW(), name)
				x := nntSlice(r, n*p.C*p.H*p.W, -3, 3)
				y := nntFill(make([]float32, n*p.C*p.OutH()*p.OutW()))
				AveragePool2D(&p, n, y, x)
				nntClose(t, refPool(&p, n, nnt64(x), true), y, 1e-6, "avg %s incl=%v", name, incl)
				MaxPool2D(&p, n, y, x)
				nntClose(t, refPool(&p, n, nnt64(x), false), y, 0, "max %s", name)
			}
		}
	}
}

// TestPoolCeilModeDivisors pins PyTorch's divisors on a case where the
// ceil-mode overhang and the padding differ.
func TestPoolCeilModeDivisors(t *testing.T) {
	x := make([]float32, 25)
	for i := range x {
		x[i] = float32(i)
	}
	// H=W=5, kernel 2, stride 2, ceil: the last window is [4, 6) of which only
	// 4 exists; with no padding the overhang counts in neither mode.
	for _, incl := range []bool{false, true} {
		p := PoolParams{C: 1, H: 5, W: 5, KernelH: 2, KernelW: 2, StrideH: 2, StrideW: 2, CeilMode: true, CountIncludePad: incl}
		require.NoError(t, p.Init())
		require.Equal(t, 3, p.OutH())
		y := make([]float32, 9)
		AveragePool2D(&p, 1, y, x)
		require.Equal(t, float32(24), y[8])
		require.Equal(t, float32((4+9)/2.0), y[2])
	}
	// With padding 1, kernel 3, stride 2 on 4x4, ceil: 3 outputs; the last
	// window, taps 3..5, is cut at H+pad = 5 when counting padding, so the
	// corner divides by 2*2 although it holds one input element.
	p := PoolParams{C: 1, H: 4, W: 4, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2,
		PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, CeilMode: true, CountIncludePad: true}
	require.NoError(t, p.Init())
	require.Equal(t, 3, p.OutH())
	y := make([]float32, 9)
	AveragePool2D(&p, 1, y, x[:16])
	require.Equal(t, float32(15)/4, y[8])
	require.Equal(t, float32(0+1+4+5)/9, y[0])
	p.CountIncludePad = false
	require.NoError(t, p.Init())
	AveragePool2D(&p, 1, y, x[:16])
	require.Equal(t, float32(15), y[8])
	require.Equal(t, float32(0+1+4+5)/4, y[0])
}

func TestPoolBackwardFiniteDifferences(t *testing.T) {
	r := nntRand(31)
	for _, base := range nntPoolCases {
		for _, incl := range []bool{false, true} {
			p := base
			p.CountIncludePad = incl
			require.NoError(t, p.Init())
			n := 2
			name := fmt.Sprintf("%+v", base)
			// Distinct values spaced far apart keep max-pool ties and argmax
			// flips out of the finite differences.
			size := n * p.C * p.H * p.W
			x := make([]float32, size)
			for i, j := range r.Perm(size) {
				x[i] = float32(j)*0.01 - 1
			}
			g := nntSlice(r, n*p.C*p.OutH()*p.OutW(), -1, 1)
			dx := nntFill(make([]float32, size))
			AveragePool2DBackward(&p, n, dx, g)
			nntFD(t, "avg "+name, func(in [][]float64) []float64 { return refPool(&p, n, in[0], true) }, [][]float32{x}, g, [][]float32{dx})
			dx = nntFill(make([]float32, size))
			MaxPool2DBackward(&p, n, dx, g, x)
			nntFD(t, "max "+name, func(in [][]float64) []float64 { return refPool(&p, n, in[0], false) }, [][]float32{x}, g, [][]float32{dx})
		}
	}
}

func TestMaxPoolDilationAndTies(t *testing.T) {
	r := nntRand(32)
	p := PoolParams{C: 2, H: 9, W: 8, KernelH: 3, KernelW: 2, StrideH: 2, StrideW: 1, DilationH: 2, DilationW: 3, PadTop: 2, PadBottom: 1, PadLeft: 1, PadRight: 3}
	require.NoError(t, p.Init())
	x := nntSlice(r, 2*p.C*p.H*p.W, -1, 1)
	y := make([]float32, 2*p.C*p.OutH()*p.OutW())
	MaxPool2D(&p, 2, y, x)
	nntClose(t, refPool(&p, 2, nnt64(x), false), y, 0, "dilated")

	// Ties go to the first maximum in row-major window order.
	q := PoolParams{C: 1, H: 2, W: 2, KernelH: 2, KernelW: 2}
	require.NoError(t, q.Init())
	dx := make([]float32, 4)
	MaxPool2DBackward(&q, 1, dx, []float32{1}, []float32{0, 5, 5, 5})
	require.Equal(t, []float32{0, 1, 0, 0}, dx)
}

func TestPoolLargeParallel(t *testing.T) {
	r := nntRand(33)
	p := PoolParams{C: 16, H: 56, W: 56, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	require.NoError(t, p.Init())
	n := 3
	x := nntSlice(r, n*p.C*p.H*p.W, -1, 1)
	y := make([]float32, n*p.C*p.OutH()*p.OutW())
	MaxPool2D(&p, n, y, x)
	nntClose(t, refPool(&p, n, nnt64(x), false), y, 0, "max")
	AveragePool2D(&p, n, y, x)
	nntClose(t, refPool(&p, n, nnt64(x), true), y, 1e-6, "avg")
}

func TestGlobalAveragePool(t *testing.T) {
	r := nntRand(34)
	for _, g := range []struct{ n, C, S int }{{1, 3, 1}, {2, 5, 7}, {3, 64, 14 * 14}} {
		p := &ChannelParams{C: g.C, Spatial: g.S}
		require.NoError(t, p.Init())
		x := nntSlice(r, g.n*g.C*g.S, -2, 2)
		ref := func(in [][]float64) []float64 {
			y := make([]float64, g.n*g.C)
			for i, v := range in[0] {
				y[i/g.S] += v / float64(g.S)
			}
			return y
		}
		y := nntFill(make([]float32, g.n*g.C))
		GlobalAveragePool(p, g.n, y, x)
		nntClose(t, ref([][]float64{nnt64(x)}), y, 1e-6, "%+v", g)
		if g.n*g.C*g.S < 1000 {
			dy := nntSlice(r, len(y), -1, 1)
			dx := nntFill(make([]float32, len(x)))
			GlobalAveragePoolBackward(p, g.n, dx, dy)
			nntFD(t, fmt.Sprintf("gap %+v", g), ref, [][]float32{x}, dy, [][]float32{dx})
		}
	}
}

func TestPoolInitErrors(t *testing.T) {
	for _, p := range []PoolParams{
		{C: 1, H: 4, W: 4, KernelH: 0, KernelW: 2},
		{C: 1, H: 4, W: 4, KernelH: 2, KernelW: 2, PadTop: 2},
		{C: 1, H: 4, W: 4, KernelH: 2, KernelW: 2, PadLeft: -1},
		{C: 1, H: 2, W: 4, KernelH: 3, KernelW: 2},
		{C: 1, H: 4, W: 4, KernelH: 2, KernelW: 2, StrideH: -1},
	} {
		require.Error(t, p.Init(), "%+v", p)
	}
	var p PoolParams
	require.Panics(t, func() { MaxPool2D(&p, 1, nil, nil) })
}

func TestPoolNoAllocs(t *testing.T) {
	r := nntRand(35)
	p := PoolParams{C: 16, H: 32, W: 32, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	require.NoError(t, p.Init())
	n := 4
	x := nntSlice(r, n*p.C*p.H*p.W, -1, 1)
	dx := make([]float32, len(x))
	y := make([]float32, n*p.C*p.OutH()*p.OutW())
	nntNoAllocs(t, "MaxPool2D", func() { MaxPool2D(&p, n, y, x) })
	nntNoAllocs(t, "MaxPool2DBackward", func() { MaxPool2DBackward(&p, n, dx, y, x) })
	nntNoAllocs(t, "AveragePool2D", func() { AveragePool2D(&p, n, y, x) })
	nntNoAllocs(t, "AveragePool2DBackward", func() { AveragePool2DBackward(&p, n, dx, y) })
	cp := &ChannelParams{C: 16, Spatial: 32 * 32}
	require.NoError(t, cp.Init())
	g := make([]float32, n*16)
	nntNoAllocs(t, "GlobalAveragePool", func() { GlobalAveragePool(cp, n, g, x) })
	nntNoAllocs(t, "GlobalAveragePoolBackward", func() { GlobalAveragePoolBackward(cp, n, dx, g) })
}

// TestMaxPool2x2MatchesGeneral checks the whole-2x2-window loops against
// the general ones bit for bit, forward and backward, with ties, signed
// zeros and NaN in the windows.
func TestMaxPool2x2MatchesGeneral(t *testing.T) {
	special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), 1, 1, -2, float32(math.Inf(-1))}
	for _, hw := range [][2]int{{2, 2}, {5, 6}, {8, 9}, {24, 24}, {6, 34}, {4, 67}, {4, 8}, {6, 24}} {
		p := PoolParams{C: 3, H: hw[0], W: hw[1], KernelH: 2, KernelW: 2, StrideH: 2, StrideW: 2}
		require.NoError(t, p.Init())
		require.True(t, p.win2)
		n := 2
		x := make([]float32, n*p.C*p.H*p.W)
		for i := range x {
			x[i] = special[(i*7+i/5)%len(special)]
			if hw[1] > 30 && i%3 != 0 || hw == [2]int{6, 24} && i%4 != 0 {
				// Mostly distinct values, so every tap position wins often.
				x[i] = float32((i*7919)%1009) * 0.01
			}
		}
		dy := make([]float32, n*p.C*p.OutH()*p.OutW())
		for i := range dy {
			dy[i] = float32(i%5) + 0.5
		}
		run := func(win2 bool) (y, dx []float32) {
			p.win2 = win2
			y, dx = make([]float32, len(dy)), make([]float32, len(x))
			MaxPool2D(&p, n, y, x)
			MaxPool2DBackward(&p, n, dx, dy, x)
			return y, dx
		}
		wantY, wantDx := run(false)
		gotY, gotDx := run(true)
		requireSameBits(t, wantY, gotY, "forward %v", hw)
		requireSameBits(t, wantDx, gotDx, "backward %v", hw)
	}
}
