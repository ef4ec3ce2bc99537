package runtime

import (
	"math/rand/v2"
	"testing"
)

// convBenchShapes are CIFAR ResNet-20's convolutions (batch 64), two wider
// layers of the kind ImageNet ResNets have, and one MobileNet-style
// depthwise layer.
var convBenchShapes = []struct {
	name string
	p    Conv2DParams
}{
	{"3to16_3x3_32", convGeom(3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"16to16_3x3_32", convGeom(16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"16to32_3x3_s2_32", convGeom(16, 32, 32, 32, 3, 3, 2, 2, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"32to32_3x3_16", convGeom(32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"32to64_3x3_s2_16", convGeom(32, 16, 16, 64, 3, 3, 2, 2, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"64to64_3x3_8", convGeom(64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"16to32_1x1_s2_32", convGeom(16, 32, 32, 32, 1, 1, 2, 2, 1, 1, 1, [4]int{0, 0, 0, 0})},
	{"32to64_1x1_s2_16", convGeom(32, 16, 16, 64, 1, 1, 2, 2, 1, 1, 1, [4]int{0, 0, 0, 0})},
	{"128to128_3x3_16", convGeom(128, 16, 16, 128, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	{"256to256_3x3_8", convGeom(256, 8, 8, 256, 3, 3, 1, 1, 1, 1, 1, [4]int{1, 1, 1, 1})},
	// LeNet-5's convolutions: many channels' worth of short rows.
	{"1to6_5x5_28", convGeom(1, 28, 28, 6, 5, 5, 1, 1, 1, 1, 1, [4]int{2, 2, 2, 2})},
	{"6to16_5x5_valid_14", convGeom(6, 14, 14, 16, 5, 5, 1, 1, 1, 1, 1, [4]int{0, 0, 0, 0})},
	{"dw96_3x3_16", convGeom(96, 16, 16, 96, 3, 3, 1, 1, 1, 1, 96, [4]int{1, 1, 1, 1})},
}

func BenchmarkConv2D(b *testing.B) {
	const n = 64
	rng := rand.New(rand.NewPCG(9, 10))
	for _, s := range convBenchShapes {
		p := s.p
		if err := p.Init(); err != nil {
			b.Fatal(err)
		}
		x := convRand(rng, n*p.C*p.H*p.W, 1)
		w := convRand(rng, p.K*p.C/p.Groups*p.KH*p.KW, 1)
		bias := convRand(rng, p.K, 1)
		y := make([]float32, n*p.K*p.OutH()*p.OutW())
		dx, dw := make([]float32, len(x)), make([]float32, len(w))
		flops := 2 * float64(n) * float64(len(w)) * float64(p.OutH()*p.OutW())
		b.Run(s.name+"/fwd", func(b *testing.B) {
			for b.Loop() {
				Conv2D(&p, n, y, x, w, bias)
			}
			gemmBenchReport(b, flops)
		})
		if p.direct != nil {
			// The same convolution through im2col panels, for comparison
			// with the direct kernel (fwdDirect, gradFilterDirect).
			for _, pass := range []string{"fwd", "gradinput", "gradfilter"} {
				b.Run(s.name+"/"+pass+"-packed", func(b *testing.B) {
					convWithoutDirect(&p, func() {
						for b.Loop() {
							switch pass {
							case "fwd":
								Conv2D(&p, n, y, x, w, bias)
							case "gradinput":
								Conv2DGradInput(&p, n, dx, y, w)
							default:
								Conv2DGradFilter(&p, n, dw, x, y)
							}
						}
					})
					gemmBenchReport(b, flops)
				})
			}
		}
		b.Run(s.name+"/gradinput", func(b *testing.B) {
			for b.Loop() {
				Conv2DGradInput(&p, n, dx, y, w)
			}
			gemmBenchReport(b, flops)
		})
		b.Run(s.name+"/gradfilter", func(b *testing.B) {
			for b.Loop() {
				Conv2DGradFilter(&p, n, dw, x, y)
			}
			gemmBenchReport(b, flops)
		})
	}
}

// convWithoutDirect runs f with p's direct forms (its own and its
// transposed convolution's) switched off.
func convWithoutDirect(p *Conv2DParams, f func()) {
	d := p.direct
	p.direct = nil
	defer func() { p.direct = d }()
	if t := p.transposedConv(); t != nil {
		td := t.direct
		t.direct = nil
		defer func() { t.direct = td }()
	}
	f()
}
