package runtime

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// gemmBenchReport reports the rate of a benchmark that did flopsPerOp
// floating-point operations per iteration.
func gemmBenchReport(b *testing.B, flopsPerOp float64) {
	b.ReportMetric(flopsPerOp*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, s := range [][3]int{{512, 512, 512}, {64, 1024, 576}, {256, 1152, 1024}} {
		m, n, k := s[0], s[1], s[2]
		x := gemmTestMatrix(rng, m, k, k)
		y := gemmTestMatrix(rng, k, n, n)
		c := make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			for b.Loop() {
				Sgemm(false, false, m, n, k, 1, x, k, y, n, 0, c, n)
			}
			gemmBenchReport(b, 2*float64(m)*float64(n)*float64(k))
		})
	}
}

// BenchmarkGemmPaths runs BenchmarkSgemm's shapes on each implementation the
// CPU supports (Sgemm itself runs the first), single-threaded.
func BenchmarkGemmPaths(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, g := range gemmImpls() {
		for _, s := range [][3]int{{512, 512, 512}, {64, 1024, 576}, {256, 1152, 1024}} {
			m, n, k := s[0], s[1], s[2]
			x := gemmTestMatrix(rng, m, k, k)
			y := gemmTestMatrix(rng, k, n, n)
			c := make([]float32, m*n)
			b.Run(fmt.Sprintf("%s/%dx%dx%d", g.name, m, n, k), func(b *testing.B) {
				sc := gemmScratches.get()
				for b.Loop() {
					sc.sgemm(g, false, false, m, n, k, 1, x, k, y, n, 0, c, n)
				}
				gemmScratches.put(sc)
				gemmBenchReport(b, 2*float64(m)*float64(n)*float64(k))
			})
		}
	}
}

// BenchmarkGemmKernel measures each micro-kernel alone on one full tile with
// its panels in L1: the ceiling for Sgemm. It runs on as many goroutines as
// -cpu gives it, each with its own tile, and reports their total rate: on a
// machine whose CPUs are hyperthreads of one core (or share its vector
// units), two goroutines reach little more than one.
func BenchmarkGemmKernel(b *testing.B) {
	for _, g := range gemmImpls() {
		const k = 192
		b.Run(g.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				x := make([]float32, k*g.mr)
				y := make([]float32, k*g.nr)
				c := make([]float32, g.mr*g.nr)
				for pb.Next() {
					g.kernel(k, x, y, c, g.nr, g.mr, g.nr, false)
				}
			})
			gemmBenchReport(b, 2*float64(g.mr*g.nr*k))
		})
	}
}
