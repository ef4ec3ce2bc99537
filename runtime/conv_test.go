package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

type convCase struct {
	name string
	n    int
	p    Conv2DParams
}

// convGeom builds params with the common fields; pads are top, left,
// bottom, right.
func convGeom(c, h, w, k, kh, kw, sh, sw, dh, dw, groups int, pads [4]int) Conv2DParams {
	return Conv2DParams{
		C: c, H: h, W: w, K: k, KH: kh, KW: kw, StrideH: sh, StrideW: sw,
		PadTop: pads[0], PadLeft: pads[1], PadBottom: pads[2], PadRight: pads[3],
		DilationH: dh, DilationW: dw, Groups: groups,
	}
}

func convCases() []convCase {
	relu := Epilogue{Kind: EpilogueRelu}
	clip := Epilogue{Kind: EpilogueClip, Min: -0.5, Max: 0.75}
	relu6 := Epilogue{Kind: EpilogueClip, Min: 0, Max: 6}
	withEpi := func(p Conv2DParams, e Epilogue) Conv2DParams { p.Epilogue = e; return p }
	return []convCase{
		{"3x3_pad1", 2, convGeom(3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"batch1_odd_stride2_asympad", 1, convGeom(5, 9, 11, 7, 3, 3, 2, 2, 1, 1, 1, [4]int{1, 0, 2, 1})},
		{"stride3_rect_kernel", 3, convGeom(2, 10, 13, 3, 3, 2, 3, 3, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"valid_5x5_lenet_like", 2, convGeom(3, 12, 13, 4, 5, 5, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"valid_dilated", 2, convGeom(2, 11, 10, 3, 3, 3, 1, 1, 2, 2, 1, [4]int{0, 0, 0, 0})},
		{"top_pad_only", 2, convGeom(2, 9, 10, 3, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 0, 0, 0})},
		{"stride_2x3", 2, convGeom(3, 9, 10, 4, 3, 3, 2, 3, 1, 1, 1, [4]int{1, 2, 0, 1})},
		{"dilation2", 2, convGeom(3, 11, 9, 5, 3, 3, 1, 1, 2, 2, 1, [4]int{2, 2, 2, 2})},
		{"dilation_2x1_stride2", 1, convGeom(4, 12, 10, 3, 3, 3, 2, 1, 2, 1, 1, [4]int{1, 0, 1, 2})},
		{"groups3", 2, convGeom(6, 8, 8, 9, 3, 3, 1, 1, 1, 1, 3, [4]int{1, 1, 1, 1})},
		{"groups2_batch1_stride2", 1, convGeom(4, 9, 7, 6, 3, 3, 2, 2, 1, 1, 2, [4]int{1, 1, 0, 0})},
		{"depthwise", 2, convGeom(8, 9, 10, 8, 3, 3, 1, 1, 1, 1, 8, [4]int{1, 1, 1, 1})},
		{"depthwise_stride2_asympad", 3, convGeom(6, 9, 8, 6, 3, 3, 2, 2, 1, 1, 6, [4]int{0, 1, 1, 0})},
		{"depthwise_stride3_dilation2", 1, convGeom(3, 13, 14, 3, 3, 3, 3, 3, 2, 2, 3, [4]int{2, 1, 2, 3})},
		{"depthwise_row3_strideH2_dilH2", 2, convGeom(4, 11, 7, 8, 3, 3, 2, 1, 2, 1, 4, [4]int{2, 0, 1, 2})},
		{"depthwise_narrow", 2, convGeom(3, 5, 2, 3, 3, 3, 1, 1, 1, 1, 3, [4]int{1, 1, 1, 1})},
		{"depthwise_row3_asympad", 2, convGeom(5, 7, 19, 5, 3, 3, 1, 1, 1, 1, 5, [4]int{2, 0, 1, 2})},
		{"depthwise_wide_pad", 1, convGeom(2, 4, 6, 2, 2, 3, 1, 1, 1, 1, 2, [4]int{0, 3, 1, 2})},
		{"depthwise_5x5", 2, convGeom(4, 8, 9, 4, 5, 5, 1, 1, 1, 1, 4, [4]int{2, 2, 2, 2})},
		{"depthwise_dilH2_unpadded", 3, convGeom(3, 9, 7, 3, 3, 3, 1, 1, 2, 1, 3, [4]int{0, 0, 0, 0})},
		{"depthwise_stride2_mobilenet", 2, convGeom(4, 7, 8, 4, 3, 3, 2, 2, 1, 1, 4, [4]int{1, 1, 1, 1})},
		{"depthwise_5x5_stride2_multiplier2", 2, convGeom(3, 9, 8, 6, 5, 5, 2, 2, 1, 1, 3, [4]int{2, 2, 2, 2})},
		{"channel_multiplier2", 2, convGeom(4, 7, 7, 8, 3, 3, 1, 1, 1, 1, 4, [4]int{1, 1, 1, 1})},
		{"channel_multiplier3_stride2_dil2", 1, convGeom(3, 10, 9, 9, 3, 2, 2, 2, 2, 2, 3, [4]int{1, 0, 2, 1})},
		{"pointwise", 2, convGeom(8, 5, 6, 12, 1, 1, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"pointwise_batch1", 1, convGeom(5, 3, 7, 3, 1, 1, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"pointwise_stride2_projection", 2, convGeom(4, 8, 8, 6, 1, 1, 2, 2, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"pointwise_grouped", 2, convGeom(6, 4, 5, 4, 1, 1, 1, 1, 1, 1, 2, [4]int{0, 0, 0, 0})},
		{"1x1_padded", 1, convGeom(3, 4, 4, 2, 1, 1, 1, 1, 1, 1, 1, [4]int{1, 0, 0, 1})},
		// Unit strides and output as wide as the input, but a top pad wider
		// than the kernel: GradInput takes col2im's one-span path.
		{"same_width_tall_pad", 2, convGeom(3, 6, 7, 4, 1, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 0, 1})},
		{"kernel_covers_padded_input", 2, convGeom(2, 4, 5, 3, 6, 7, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"kernel_covers_input_stride2", 1, convGeom(3, 3, 3, 2, 3, 3, 2, 2, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"single_input_channel", 3, convGeom(1, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"tiny_input_big_pad", 1, convGeom(2, 2, 1, 3, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"relu", 2, withEpi(convGeom(3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1}), relu)},
		{"clip", 2, withEpi(convGeom(4, 6, 6, 5, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1}), clip)},
		{"relu6_depthwise", 2, withEpi(convGeom(5, 6, 7, 10, 3, 3, 1, 1, 1, 1, 5, [4]int{1, 1, 1, 1}), relu6)},
		{"relu_pointwise", 1, withEpi(convGeom(6, 5, 5, 7, 1, 1, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0}), relu)},
		// Direct convolutions (fwdDirect, on AVX-512): output widths that
		// do not divide the kernel's 32 columns (several mask phases, a
		// partial last sliver), asymmetric and tall pads, dilation, k past
		// one GEMM k block and output channels not a multiple of 8.
		{"direct_phases_asympad", 2, convGeom(24, 5, 33, 20, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 2, 1, 0})},
		{"direct_5x3_dilated_rows", 2, convGeom(4, 9, 12, 10, 5, 3, 1, 1, 2, 1, 1, [4]int{4, 1, 4, 1})},
		// The wide form: LeNet-5's unpadded second convolution (its input
		// gradient is the transpose, padded by 4), and an asymmetric,
		// dilated one whose rows are neither the input's nor the output's.
		{"direct_wide_lenet_conv2", 3, convGeom(6, 14, 14, 16, 5, 5, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0})},
		{"direct_wide_dilated_asym", 2, convGeom(9, 11, 13, 12, 3, 2, 1, 1, 2, 3, 1, [4]int{2, 0, 1, 3})},
		// LeNet-5's first convolution: gradFilterWide copies its padded
		// inputs and widened dy in several steps of samples.
		{"lenet_conv1_batch8", 8, convGeom(1, 28, 28, 6, 5, 5, 1, 1, 1, 1, 1, [4]int{2, 2, 2, 2})},
		// Large enough for several GEMM blocks and both parallel strategies.
		{"gemm_blocks_batch4", 4, convGeom(16, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"gemm_parallel_batch1", 1, convGeom(16, 20, 20, 64, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
		{"gemm_parallel_batch1_k_tail", 1, convGeom(30, 12, 12, 70, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	}
}

func convRand(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((rng.Float64()*2 - 1) * scale)
	}
	return x
}

func convF64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// convRefVisit calls f for every (output, input, weight) index triple that
// contributes to the convolution, straight from the definition.
func convRefVisit(p *Conv2DParams, n int, f func(yi, xi, wi int)) {
	oh, ow := p.OutH(), p.OutW()
	cg, kg := p.C/p.Groups, p.K/p.Groups
	for ni := 0; ni < n; ni++ {
		for k := 0; k < p.K; k++ {
			g := k / kg
			for y := 0; y < oh; y++ {
				for x := 0; x < ow; x++ {
					yi := ((ni*p.K+k)*oh+y)*ow + x
					for c := 0; c < cg; c++ {
						for kh := 0; kh < p.KH; kh++ {
							ih := y*p.StrideH - p.PadTop + kh*p.DilationH
							if ih < 0 || ih >= p.H {
								continue
							}
							for kw := 0; kw < p.KW; kw++ {
								iw := x*p.StrideW - p.PadLeft + kw*p.DilationW
								if iw < 0 || iw >= p.W {
									continue
								}
								xi := ((ni*p.C+g*cg+c)*p.H+ih)*p.W + iw
								wi := ((k*cg+c)*p.KH+kh)*p.KW + kw
								f(yi, xi, wi)
							}
						}
					}
				}
			}
		}
	}
}

// convRefForward returns the float64 convolution before the epilogue and the
// per-output error scale sum |x||w| + |b|.
func convRefForward(p *Conv2DParams, n int, x, w, b []float64) (y, scale []float64) {
	ylen := n * p.K * p.OutH() * p.OutW()
	y = make([]float64, ylen)
	scale = make([]float64, ylen)
	convRefVisit(p, n, func(yi, xi, wi int) {
		y[yi] += x[xi] * w[wi]
		scale[yi] += math.Abs(x[xi] * w[wi])
	})
	if b != nil {
		per := p.OutH() * p.OutW()
		for i := range y {
			k := i / per % p.K
			y[i] += b[k]
			scale[i] += math.Abs(b[k])
		}
	}
	return y, scale
}

func convRefEpilogue(e Epilogue, v float64) float64 {
	switch e.Kind {
	case EpilogueRelu:
		return math.Max(v, 0)
	case EpilogueClip:
		return math.Min(math.Max(v, float64(e.Min)), float64(e.Max))
	}
	return v
}

// convRefGrads returns the float64 gradients of sum(y*g) for the plain
// convolution with respect to x, w and b.
func convRefGrads(p *Conv2DParams, n int, x, w, g []float64) (dx, dw, db []float64) {
	dx = make([]float64, len(x))
	dw = make([]float64, p.K*(p.C/p.Groups)*p.KH*p.KW)
	db = make([]float64, p.K)
	convRefVisit(p, n, func(yi, xi, wi int) {
		dx[xi] += g[yi] * w[wi]
		dw[wi] += g[yi] * x[xi]
	})
	per := p.OutH() * p.OutW()
	for i, v := range g {
		db[i/per%p.K] += v
	}
	return dx, dw, db
}

// convRequireClose checks got against want elementwise within tol*scale.
func convRequireClose(t *testing.T, what string, got []float32, want, scale []float64, tol float64) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		require.False(t, math.IsNaN(float64(got[i])), "%s[%d] is NaN", what, i)
		require.LessOrEqual(t, math.Abs(float64(got[i])-want[i]), tol*scale[i]+1e-6,
			"%s[%d] = %v, want %v", what, i, got[i], want[i])
	}
}

func TestConv2DForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range convCases() {
		for _, bias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s_bias%v", tc.name, bias), func(t *testing.T) {
				p := tc.p
				require.NoError(t, p.Init())
				wscale := 1.0
				if p.Epilogue.Kind == EpilogueClip && p.Epilogue.Max == 6 {
					wscale = 4 // make ReLU6 clip at both ends
				}
				x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
				w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, wscale)
				var b []float32
				if bias {
					b = convRand(rng, p.K, 1)
				}
				y := make([]float32, tc.n*p.K*p.OutH()*p.OutW())
				for i := range y {
					y[i] = float32(math.NaN()) // must be overwritten
				}
				var b64 []float64
				if b != nil {
					b64 = convF64(b)
				}
				want, scale := convRefForward(&p, tc.n, convF64(x), convF64(w), b64)
				clipped := 0
				for i := range want {
					v := convRefEpilogue(p.Epilogue, want[i])
					if v != want[i] {
						clipped++
					}
					want[i] = v
				}
				if p.Epilogue.Kind != EpilogueNone {
					require.NotZero(t, clipped, "test data never reaches the epilogue's bounds")
				}
				Conv2D(&p, tc.n, y, x, w, b)
				crs := p.C / p.Groups * p.KH * p.KW
				convRequireClose(t, "y", y, want, scale, float64(crs+3)*0x1p-23)
			})
		}
	}
}

// TestConv2DWinograd checks the Winograd form (fwdWino) against the
// float64 reference on the geometries it takes: planes 32 wide and less,
// square or not, output channels that fill the kernels' 8-row slivers or
// not, a tile count that fills the last 32-tile sliver or not, and planes
// so small that several samples share the GEMMs' columns. The input
// sits between NaNs, so a transform that read past a plane would show,
// and every epilogue is applied after it.
func TestConv2DWinograd(t *testing.T) {
	if convDirectWidth == 0 || gemmUse.kc == 0 {
		t.Skip("no Winograd kernels on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	// A batch the workers share by sample, odd so that a worker's share
	// of the small planes' sample groups (convWino.ns) may end short.
	n := max(2, Workers()) + 3
	pad1 := [4]int{1, 1, 1, 1}
	for _, tc := range []struct {
		name string
		p    Conv2DParams
	}{
		{"resnet_32x32", convGeom(16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"resnet_16x16", convGeom(32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"wide_20x12_k_tail", convGeom(5, 12, 20, 13, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"tall_30x10_tiles_tail", convGeom(3, 30, 10, 9, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"resnet_8x8_two_samples", convGeom(64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"tiny_4x6_five_samples", convGeom(7, 4, 6, 10, 3, 3, 1, 1, 1, 1, 1, pad1)},
		{"relu", withEpilogue(convGeom(8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, pad1), Epilogue{Kind: EpilogueRelu})},
		{"clip", withEpilogue(convGeom(8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, pad1), Epilogue{Kind: EpilogueClip, Min: -0.5, Max: 0.75})},
	} {
		p := tc.p
		require.NoError(t, p.Init(), tc.name)
		require.NotNil(t, p.wino, "%s has no Winograd form", tc.name)
		x := convRand(rng, n*p.C*p.H*p.W, 1)
		const guard = 64
		fenced := make([]float32, guard+len(x)+guard)
		for i := range fenced {
			fenced[i] = float32(math.NaN())
		}
		copy(fenced[guard:], x)
		w := convRand(rng, p.K*p.crs, 1)
		b := convRand(rng, p.K, 1)
		want, scale := convRefForward(&p, n, convF64(x), convF64(w), convF64(b))
		for i := range want {
			want[i] = convRefEpilogue(p.Epilogue, want[i])
		}
		y := make([]float32, n*p.K*p.oh*p.ow)
		Conv2D(&p, n, y, fenced[guard:guard+len(x)], w, b)
		// The transforms add a few roundings of their own.
		convRequireClose(t, tc.name, y, want, scale, float64(p.crs+16)*0x1p-23)
	}
}

func withEpilogue(p Conv2DParams, e Epilogue) Conv2DParams { p.Epilogue = e; return p }

func TestConv2DGradientsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, tc := range convCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			require.NoError(t, p.Init())
			x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
			w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, 1)
			g := convRand(rng, tc.n*p.K*p.OutH()*p.OutW(), 1)
			wantDx, wantDw, wantDb := convRefGrads(&p, tc.n, convF64(x), convF64(w), convF64(g))
			// Error scales: the same sums with absolute values.
			sx, sw, sb := convRefGrads(&p, tc.n, convAbs(x), convAbs(w), convAbs(g))

			dx := convNaNs(len(x))
			Conv2DGradInput(&p, tc.n, dx, g, w)
			taps := float64(p.K / p.Groups * p.KH * p.KW)
			convRequireClose(t, "dx", dx, wantDx, sx, (taps+3)*0x1p-23)

			dw := convNaNs(len(w))
			Conv2DGradFilter(&p, tc.n, dw, x, g)
			terms := float64(tc.n * p.OutH() * p.OutW())
			convRequireClose(t, "dw", dw, wantDw, sw, (terms+3)*0x1p-23)

			db := convNaNs(p.K)
			Conv2DGradBias(&p, tc.n, db, g)
			convRequireClose(t, "db", db, wantDb, sb, (terms+3)*0x1p-23)

			// Same inputs, same bits: the batch reduction order is fixed.
			dw2 := convNaNs(len(w))
			Conv2DGradFilter(&p, tc.n, dw2, x, g)
			require.Equal(t, dw, dw2)
		})
	}
}

func convAbs(x []float32) []float64 {
	y := convF64(x)
	for i, v := range y {
		y[i] = math.Abs(v)
	}
	return y
}

func convNaNs(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(math.NaN())
	}
	return x
}

// TestConv2DGradientsFiniteDifferences checks the three gradient kernels
// against central differences, in float64, of the loss sum(y*g) computed by
// the reference forward pass.
func TestConv2DGradientsFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const h = 1e-3
	for _, tc := range convCases() {
		if tc.p.C*tc.p.H*tc.p.W*tc.n > 2000 {
			continue // the big cases add nothing here but time
		}
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Epilogue = Epilogue{} // the gradients are those of the plain convolution
			require.NoError(t, p.Init())
			x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
			w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, 1)
			b := convRand(rng, p.K, 1)
			g := convRand(rng, tc.n*p.K*p.OutH()*p.OutW(), 1)
			x64, w64, b64, g64 := convF64(x), convF64(w), convF64(b), convF64(g)
			loss := func() float64 {
				y, _ := convRefForward(&p, tc.n, x64, w64, b64)
				var s float64
				for i, v := range y {
					s += v * g64[i]
				}
				return s
			}
			fd := func(v []float64, i int) float64 {
				old := v[i]
				v[i] = old + h
				lp := loss()
				v[i] = old - h
				lm := loss()
				v[i] = old
				return (lp - lm) / (2 * h)
			}
			check := func(what string, got []float32, v []float64) {
				idx := rng.Perm(len(v))
				if len(idx) > 24 {
					idx = idx[:24]
				}
				want := make([]float64, len(idx))
				var rms float64
				for j, i := range idx {
					want[j] = fd(v, i)
					rms += want[j] * want[j]
				}
				rms = math.Sqrt(rms / float64(len(idx)))
				for j, i := range idx {
					den := math.Max(math.Abs(want[j]), 0.1*rms)
					require.LessOrEqual(t, math.Abs(float64(got[i])-want[j])/den, 1e-3,
						"%s[%d] = %v, finite difference %v", what, i, got[i], want[j])
				}
			}
			dx := make([]float32, len(x))
			Conv2DGradInput(&p, tc.n, dx, g, w)
			check("dx", dx, x64)
			dw := make([]float32, len(w))
			Conv2DGradFilter(&p, tc.n, dw, x, g)
			check("dw", dw, w64)
			db := make([]float32, len(b))
			Conv2DGradBias(&p, tc.n, db, g)
			check("db", db, b64)
		})
	}
}

func TestConv2DAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, tc := range convCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			require.NoError(t, p.Init())
			x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
			w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, 1)
			b := convRand(rng, p.K, 1)
			y := make([]float32, tc.n*p.K*p.OutH()*p.OutW())
			dx, dw, db := make([]float32, len(x)), make([]float32, len(w)), make([]float32, len(b))
			run := func() {
				Conv2D(&p, tc.n, y, x, w, b)
				Conv2DGradInput(&p, tc.n, dx, y, w)
				Conv2DGradFilter(&p, tc.n, dw, x, y)
				Conv2DGradBias(&p, tc.n, db, y)
			}
			run() // warm-up: scratch buffers grow to this geometry
			require.Zero(t, testing.AllocsPerRun(5, run))
		})
	}
}

func TestConv2DZeroBatch(t *testing.T) {
	p := convGeom(2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})
	require.NoError(t, p.Init())
	dw := convNaNs(3 * 2 * 9)
	Conv2DGradFilter(&p, 0, dw, nil, nil)
	require.Equal(t, make([]float32, len(dw)), dw)
	db := convNaNs(3)
	Conv2DGradBias(&p, 0, db, nil)
	require.Equal(t, make([]float32, 3), db)
	Conv2D(&p, 0, nil, nil, make([]float32, len(dw)), nil)
	Conv2DGradInput(&p, 0, nil, nil, make([]float32, len(dw)))
}

func TestConv2DOutputSize(t *testing.T) {
	p := convGeom(3, 32, 32, 16, 3, 3, 2, 2, 1, 1, 1, [4]int{1, 1, 1, 1})
	require.NoError(t, p.Init())
	require.Equal(t, 16, p.OutH())
	require.Equal(t, 16, p.OutW())
	p = convGeom(3, 10, 7, 16, 3, 2, 3, 1, 2, 3, 1, [4]int{0, 2, 1, 0})
	require.NoError(t, p.Init())
	require.Equal(t, (10+1-5)/3+1, p.OutH())
	require.Equal(t, (7+2-4)/1+1, p.OutW())
}

func TestConv2DInitErrors(t *testing.T) {
	ok := convGeom(4, 8, 8, 6, 3, 3, 1, 1, 1, 1, 2, [4]int{1, 1, 1, 1})
	cases := []struct {
		name string
		edit func(p *Conv2DParams)
		want string
	}{
		{"zero channels", func(p *Conv2DParams) { p.C = 0 }, "want all >= 1"},
		{"zero height", func(p *Conv2DParams) { p.H = 0 }, "want all >= 1"},
		{"zero output channels", func(p *Conv2DParams) { p.K = 0 }, "want all >= 1"},
		{"zero kernel", func(p *Conv2DParams) { p.KW = 0 }, "want all >= 1"},
		{"zero stride", func(p *Conv2DParams) { p.StrideH = 0 }, "strides 0x1: want >= 1"},
		{"negative stride", func(p *Conv2DParams) { p.StrideW = -2 }, "strides 1x-2: want >= 1"},
		{"zero dilation", func(p *Conv2DParams) { p.DilationW = 0 }, "dilations 1x0: want >= 1"},
		{"negative pad", func(p *Conv2DParams) { p.PadRight = -1 }, "right -1: want >= 0"},
		{"zero groups", func(p *Conv2DParams) { p.Groups = 0 }, "groups 0: want >= 1"},
		{"input channels not divisible", func(p *Conv2DParams) { p.Groups = 3; p.K = 6 }, "4 input and 6 output channels are not both divisible by 3 groups"},
		{"output channels not divisible", func(p *Conv2DParams) { p.K = 5 }, "not both divisible by 2 groups"},
		{"kernel larger than padded input", func(p *Conv2DParams) { p.KH = 11 }, "dilated kernel 11x3 is larger than the padded input 10x10"},
		{"dilated kernel too large", func(p *Conv2DParams) { p.DilationW = 5 }, "dilated kernel 3x11 is larger than the padded input 10x10"},
		{"clip bounds reversed", func(p *Conv2DParams) { p.Epilogue = Epilogue{Kind: EpilogueClip, Min: 1, Max: 0} }, "want Min <= Max"},
		{"clip bound NaN", func(p *Conv2DParams) {
			p.Epilogue = Epilogue{Kind: EpilogueClip, Min: float32(math.NaN()), Max: 1}
		}, "neither NaN"},
		{"unknown epilogue", func(p *Conv2DParams) { p.Epilogue = Epilogue{Kind: 9} }, "unknown kind 9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			err := p.Init()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.PanicsWithValue(t, "runtime.Conv2D: Conv2DParams not initialised (call Init and check its error)", func() {
				Conv2D(&p, 1, nil, nil, nil, nil)
			})
		})
	}
	p := ok
	require.NoError(t, p.Init())
	require.PanicsWithValue(t, "runtime.Conv2DGradInput: w has 3 elements, want at least 108", func() {
		Conv2DGradInput(&p, 1, make([]float32, 4*64), make([]float32, 6*64), make([]float32, 3))
	})
	require.PanicsWithValue(t, "runtime.Conv2DGradBias: negative batch size -1", func() {
		Conv2DGradBias(&p, -1, nil, nil)
	})
}

// TestConv2DConcurrentCalls runs the kernels from several goroutines on one
// shared Conv2DParams (the pool serves one caller, the others run inline) and
// checks every result against a lone run.
func TestConv2DConcurrentCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	p := convGeom(6, 10, 10, 8, 3, 3, 1, 1, 1, 1, 2, [4]int{1, 1, 1, 1})
	require.NoError(t, p.Init())
	const n = 3
	x := convRand(rng, n*p.C*p.H*p.W, 1)
	w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, 1)
	g := convRand(rng, n*p.K*p.OutH()*p.OutW(), 1)
	wantY := make([]float32, len(g))
	Conv2D(&p, n, wantY, x, w, nil)
	wantDx, wantDw := make([]float32, len(x)), make([]float32, len(w))
	Conv2DGradInput(&p, n, wantDx, g, w)
	Conv2DGradFilter(&p, n, wantDw, x, g)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			y, dx, dw := make([]float32, len(g)), make([]float32, len(x)), make([]float32, len(w))
			for range 20 {
				Conv2D(&p, n, y, x, w, nil)
				Conv2DGradInput(&p, n, dx, g, w)
				Conv2DGradFilter(&p, n, dw, x, g)
				for i := range y {
					if y[i] != wantY[i] {
						errs <- fmt.Sprintf("y[%d] = %v, want %v", i, y[i], wantY[i])
						return
					}
				}
				for i := range dx {
					if dx[i] != wantDx[i] {
						errs <- fmt.Sprintf("dx[%d] = %v, want %v", i, dx[i], wantDx[i])
						return
					}
				}
				for i := range dw {
					if dw[i] != wantDw[i] {
						errs <- fmt.Sprintf("dw[%d] = %v, want %v", i, dw[i], wantDw[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestConv2DDirectMatchesPacked runs each convolution that has a direct
// form both ways: directly (fwdDirect) and with p.direct cleared (im2col
// packed into the GEMM's panels). With k = C/groups*KH*KW inside one GEMM k
// block both sum in the same order, so the outputs must be bit-identical;
// beyond it the GEMM adds its k blocks' partial sums and may round
// differently.
func TestConv2DDirectMatchesPacked(t *testing.T) {
	if convDirectWidth == 0 || gemmUse.kc == 0 {
		t.Skip("no direct convolution kernel on this CPU or build")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	tried, wide, phases := 0, 0, 0
	for _, tc := range convCases() {
		p := tc.p
		require.NoError(t, p.Init())
		for _, q := range []*Conv2DParams{&p, p.transposedConv()} {
			if q == nil || q.direct == nil {
				continue
			}
			tried++
			if q.direct.rowW != 0 {
				wide++
			}
			if q.direct.phaseHW != 0 {
				phases++
			}
			// Batch 1 spreads one sample's slivers over the pool; batch 2
			// gives each worker whole samples.
			for _, n := range []int{1, 2} {
				convDirectVsPacked(t, rng, tc.name, q, n)
			}
		}
	}
	require.NotZero(t, tried, "no case has a direct form")
	require.NotZero(t, wide, "no case has a wide direct form")
	require.NotZero(t, phases, "no case has a phase (stride 2) direct form")
	require.NotZero(t, tried-wide, "no case has a masked direct form")
	t.Logf("%d direct forms, %d of them wide, %d of those phase forms", tried, wide, phases)
}

// convDirectVsPacked runs q forward on random data at batch n directly and
// packed and checks the two agree (bit for bit when one k block holds k).
// The direct run's input sits between NaNs: the masked form reads it in
// place, and a lane that read past either end would show.
func convDirectVsPacked(t *testing.T, rng *rand.Rand, name string, q *Conv2DParams, n int) {
	x := convRand(rng, n*q.C*q.H*q.W, 1)
	w := convRand(rng, q.K*q.crs, 1)
	b := convRand(rng, q.K, 1)
	const guard = 4096
	fenced := make([]float32, guard+len(x)+guard)
	for i := range fenced {
		fenced[i] = float32(math.NaN())
	}
	copy(fenced[guard:], x)
	direct := make([]float32, n*q.K*q.oh*q.ow)
	Conv2D(q, n, direct, fenced[guard:guard+len(x)], w, b)
	saved := q.direct
	q.direct = nil
	packed := make([]float32, len(direct))
	Conv2D(q, n, packed, x, w, b)
	q.direct = saved
	if q.crs > gemmUse.kc {
		for i := range packed {
			require.InDelta(t, packed[i], direct[i], 1e-4*(1+math.Abs(float64(packed[i]))), "%s batch %d [%d]", name, n, i)
		}
		return
	}
	requireSameBits(t, packed, direct, "%s (C %d K %d, batch %d)", name, q.C, q.K, n)
	// The direct kernel applies a scale, a shift, a residual and the
	// activation as it stores: with the bits of channelEpilogue's passes.
	// The sums of a NaN input and of -0 outputs come through.
	mul, add := convRand(rng, q.K, 1), convRand(rng, q.K, 1)
	res := convRand(rng, len(direct), 1)
	res[0], res[len(res)-1] = float32(math.NaN()), negZero
	mul[0], add[0] = 0, negZero
	keep := q.Epilogue
	defer func() { q.Epilogue = keep }()
	for _, e := range []Epilogue{{}, {Kind: EpilogueRelu}, {Kind: EpilogueClip, Min: -0.5, Max: 0.75}} {
		q.Epilogue = e
		for _, r := range [][]float32{nil, res} {
			for _, m := range [][]float32{nil, mul} {
				a := add
				if m == nil && r == nil {
					a = b
				}
				q.forward("test", n, direct, fenced[guard:guard+len(x)], w, m, a, r)
				q.direct = nil
				q.forward("test", n, packed, x, w, m, a, r)
				q.direct = saved
				requireSameBits(t, packed, direct, "%s (C %d K %d, batch %d) epilogue %v, scale %v, residual %v", name, q.C, q.K, n, e.Kind, m != nil, r != nil)
			}
		}
	}
}

// TestConv2DWeightsChangedInPlace: a direct convolution packs a call's
// filters once per worker; the next call, with new values in the same
// buffer (as after an optimizer step, or fused SMH inference's shared
// weight buffer), must use the new values.
func TestConv2DWeightsChangedInPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, p := range []Conv2DParams{
		convGeom(8, 9, 9, 12, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1}),
		convGeom(6, 14, 14, 16, 5, 5, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0}),
	} {
		require.NoError(t, p.Init())
		const n = 3
		x := convRand(rng, n*p.C*p.H*p.W, 1)
		w := convRand(rng, p.K*p.crs, 1)
		y := make([]float32, n*p.K*p.oh*p.ow)
		for round := 0; round < 2; round++ {
			Conv2D(&p, n, y, x, w, nil)
			want, _ := convRefForward(&p, n, convF64(x), convF64(w), nil)
			for i := range want {
				require.InDelta(t, want[i], y[i], 1e-4*(1+math.Abs(want[i])), "round %d [%d]", round, i)
			}
			for i := range w {
				w[i] = -w[i] * 0.5
			}
		}
	}
}

// TestConv2DBatchNorm: the fused kernel against Conv2D, BatchNormInference
// and the activation run one after the other, for every geometry (direct,
// im2col, pointwise, depthwise, grouped) and epilogue. Without a conv bias
// the fused affine map is the same multiply then add, so the bits agree;
// with one, the bias is folded into the shift and rounds differently.
// convBNRand returns random inputs of a convolution with batch
// normalisation: x, w, the bias (nil without withBias), and the
// statistics, with positive variances.
func convBNRand(rng *rand.Rand, c *Conv2DParams, n int, withBias bool) (x, w, b, scale, shift, mean, variance []float32) {
	x = convRand(rng, n*c.C*c.H*c.W, 1)
	w = convRand(rng, c.K*c.crs, 1)
	if withBias {
		b = convRand(rng, c.K, 1)
	}
	scale, shift, mean = convRand(rng, c.K, 2), convRand(rng, c.K, 1), convRand(rng, c.K, 1)
	variance = convRand(rng, c.K, 1)
	for i := range variance {
		variance[i] = variance[i]*variance[i] + 0.1
	}
	return x, w, b, scale, shift, mean, variance
}

func TestConv2DBatchNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, tc := range convCases() {
		for _, withBias := range []bool{false, true} {
			p := Conv2DBNParams{Conv: tc.p, Epsilon: 1e-3}
			require.NoError(t, p.Init(), tc.name)
			c := &p.Conv
			x, w, b, scale, shift, mean, variance := convBNRand(rng, c, tc.n, withBias)
			fused := make([]float32, tc.n*c.K*c.oh*c.ow)
			require.Zero(t, testing.AllocsPerRun(3, func() {
				Conv2DBatchNorm(&p, tc.n, fused, x, w, b, scale, shift, mean, variance)
			}), tc.name)
			// AllocsPerRun runs at GOMAXPROCS 1, where a batch smaller than
			// the workers may take another path (Winograd's): the result
			// compared is from the test's own GOMAXPROCS, as want's is.
			Conv2DBatchNorm(&p, tc.n, fused, x, w, b, scale, shift, mean, variance)

			plain := *c
			plain.Epilogue = Epilogue{}
			require.NoError(t, plain.Init())
			want := make([]float32, len(fused))
			Conv2D(&plain, tc.n, want, x, w, b)
			bn := BatchNormParams{C: c.K, Spatial: c.oh * c.ow, Epsilon: 1e-3, Momentum: 0.1}
			require.NoError(t, bn.Init())
			BatchNormInference(&bn, tc.n, want, want, scale, shift, mean, variance)
			c.Epilogue.Apply(want)
			if !withBias {
				requireSameBits(t, want, fused, "%s", tc.name)
				continue
			}
			for i := range want {
				require.InDelta(t, want[i], fused[i], 1e-5*(1+math.Abs(float64(want[i]))), "%s [%d]", tc.name, i)
			}
		}
	}
	p := Conv2DBNParams{Conv: convGeom(2, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1}), Epsilon: float32(math.NaN())}
	require.Error(t, p.Init())
}

// TestConv2DResidual: the residual kernels give the bits of the
// convolution without its activation (Conv2D, Conv2DBatchNorm), then the
// residual added, then the activation, for every geometry, with and
// without a bias.
func TestConv2DResidual(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for _, tc := range convCases() {
		for _, withBias := range []bool{false, true} {
			p := Conv2DBNParams{Conv: tc.p, Epsilon: 1e-3}
			require.NoError(t, p.Init(), tc.name)
			c := &p.Conv
			x, w, b, scale, shift, mean, variance := convBNRand(rng, c, tc.n, withBias)
			r := convRand(rng, tc.n*c.K*c.oh*c.ow, 2)

			plain := Conv2DBNParams{Conv: *c, Epsilon: p.Epsilon}
			plain.Conv.Epilogue = Epilogue{}
			require.NoError(t, plain.Init())
			finish := func(y []float32) []float32 {
				for i := range y {
					y[i] += r[i]
				}
				c.Epilogue.Apply(y)
				return y
			}

			want := convNaNs(len(r))
			Conv2D(&plain.Conv, tc.n, want, x, w, b)
			want = finish(want)
			got := convNaNs(len(r))
			Conv2DResidual(c, tc.n, got, x, w, b, r)
			requireSameBits(t, want, got, "%s bias %v", tc.name, withBias)

			want = convNaNs(len(r))
			Conv2DBatchNorm(&plain, tc.n, want, x, w, b, scale, shift, mean, variance)
			want = finish(want)
			got = convNaNs(len(r))
			Conv2DBatchNormResidual(&p, tc.n, got, x, w, b, scale, shift, mean, variance, r)
			requireSameBits(t, want, got, "%s bias %v, batch norm", tc.name, withBias)
			require.Zero(t, testing.AllocsPerRun(3, func() {
				Conv2DBatchNormResidual(&p, tc.n, got, x, w, b, scale, shift, mean, variance, r)
			}), tc.name)
		}
	}
}

// TestConv2DGradFilterWide runs gradFilterWide on every case it takes,
// serially and spread over the pool, and dwGradFilterWide on every
// depthwise one it takes, against the float64 reference.
func TestConv2DGradFilterWide(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	tried, steps := 0, 0
	for _, tc := range convCases() {
		p := tc.p
		require.NoError(t, p.Init())
		x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
		g := convRand(rng, tc.n*p.K*p.oh*p.ow, 1)
		_, wantDw, _ := convRefGrads(&p, tc.n, convF64(x), make([]float64, p.K*p.crs), convF64(g))
		_, sw, _ := convRefGrads(&p, tc.n, convAbs(x), make([]float64, p.K*p.crs), convAbs(g))
		terms := float64(tc.n * p.oh * p.ow)
		var first []float32
		for _, par := range []bool{false, true} {
			cs := &convScratch{}
			dw := convNaNs(p.K * p.crs)
			if !p.gradFilterWide(cs, par, 0, tc.n, dw, x, g) {
				break
			}
			convRequireClose(t, tc.name+" dw", dw, wantDw, sw, (terms+3)*0x1p-23)
			if first == nil {
				first = dw
				tried++
				if wp := p.PadLeft + p.W + p.PadRight; wp != p.ow && len(cs.wdy) < tc.n*p.K*p.oh*wp {
					steps++
				}
				continue
			}
			requireSameBits(t, first, dw, "%s: the pool changed the bits", tc.name)
		}
	}
	dwTried := 0
	for _, tc := range convCases() {
		p := tc.p
		require.NoError(t, p.Init())
		if !p.depthwise {
			continue
		}
		x := convRand(rng, tc.n*p.C*p.H*p.W, 1)
		g := convRand(rng, tc.n*p.K*p.oh*p.ow, 1)
		_, wantDw, _ := convRefGrads(&p, tc.n, convF64(x), make([]float64, p.K*p.crs), convF64(g))
		_, sw, _ := convRefGrads(&p, tc.n, convAbs(x), make([]float64, p.K*p.crs), convAbs(g))
		dw := convNaNs(p.K * p.crs)
		cs := &convScratch{}
		took := 0
		for k := 0; k < p.K; k++ {
			if p.dwGradFilterWide(cs, tc.n, k, k/p.kg, dw, x, g) {
				took++
			}
		}
		if took == 0 {
			continue
		}
		require.Equal(t, p.K, took, tc.name)
		dwTried++
		convRequireClose(t, tc.name+" depthwise dw", dw, wantDw, sw, (float64(tc.n*p.oh*p.ow)+3)*0x1p-23)
	}
	if convDirectWidth == 0 {
		require.Zero(t, tried+dwTried)
		t.Skip("no AVX-512 kernels on this CPU or build")
	}
	require.GreaterOrEqual(t, dwTried, 6, "dwGradFilterWide took too few cases")
	require.GreaterOrEqual(t, tried, 8, "gradFilterWide took too few cases")
	require.NotZero(t, steps, "no case needed several steps of samples")
	t.Logf("gradFilterWide took %d cases, dwGradFilterWide %d", tried, dwTried)
}
