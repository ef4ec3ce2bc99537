package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Benchmarks of the NN kernels on typical CNN shapes (run with -bench).

func nntBench(b *testing.B, bytes int, f func()) {
	f()
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for b.Loop() {
		f()
	}
}

func BenchmarkAddSameShape(b *testing.B) {
	p := &BroadcastParams{A: []int{BatchDim, 64, 56, 56}, B: []int{BatchDim, 64, 56, 56}}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, p.OutLen(n)), make([]float32, p.OutLen(n))
	nntBench(b, 12*len(x), func() { Add(p, n, y, x, x) })
}

func BenchmarkMulPerChannel(b *testing.B) {
	p := &BroadcastParams{A: []int{BatchDim, 64, 56, 56}, B: []int{64, 1, 1}}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y, c := make([]float32, p.OutLen(n)), make([]float32, p.OutLen(n)), make([]float32, 64)
	nntBench(b, 8*len(x), func() { Mul(p, n, y, x, c) })
}

func BenchmarkAddBackwardBias(b *testing.B) {
	p := &BroadcastParams{A: []int{BatchDim, 64, 56, 56}, B: []int{64, 1, 1}}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	dy, db := make([]float32, p.OutLen(n)), make([]float32, 64)
	nntBench(b, 4*len(dy), func() { AddBackward(p, n, nil, db, dy) })
}

func BenchmarkMulBackwardSEGate(b *testing.B) {
	p := &BroadcastParams{A: []int{BatchDim, 64, 56, 56}, B: []int{BatchDim, 64, 1, 1}}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, dy, da, g, dg := make([]float32, p.OutLen(n)), make([]float32, p.OutLen(n)), make([]float32, p.OutLen(n)), make([]float32, n*64), make([]float32, n*64)
	nntBench(b, 12*len(dy), func() { MulBackward(p, n, da, dg, dy, x, g) })
}

func BenchmarkReluBackward(b *testing.B) {
	x, y := nntSlice(nntRand(1), 8*64*56*56, -1, 1), make([]float32, 8*64*56*56)
	nntBench(b, 12*len(x), func() { ReluBackward(y, x, x) })
}

func BenchmarkSiLU(b *testing.B) {
	x, y := nntSlice(nntRand(1), 8*64*56*56, -8, 8), make([]float32, 8*64*56*56)
	nntBench(b, 8*len(x), func() { SiLU(y, x) })
}

func BenchmarkBatchNormTraining(b *testing.B) {
	p := &BatchNormParams{C: 64, Spatial: 56 * 56, Epsilon: 1e-5, Momentum: 0.1}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*56*56), make([]float32, n*64*56*56)
	c := make([]float32, 64)
	nntBench(b, 8*len(x), func() { BatchNormTraining(p, n, y, c, c, c, c, x, c, c) })
}

func BenchmarkBatchNormBackward(b *testing.B) {
	p := &BatchNormParams{C: 64, Spatial: 56 * 56, Epsilon: 1e-5, Momentum: 0.1}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*56*56), make([]float32, n*64*56*56)
	c, d := make([]float32, 64), make([]float32, 64)
	for i := range c {
		c[i] = 1
	}
	nntBench(b, 12*len(x), func() { BatchNormBackward(p, n, y, d, d, x, x, c, c, c) })
}

func BenchmarkMaxPool3x3s2(b *testing.B) {
	p := &PoolParams{C: 64, H: 112, W: 112, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*112*112), make([]float32, n*64*56*56)
	nntBench(b, 4*len(x), func() { MaxPool2D(p, n, y, x) })
}

func BenchmarkMaxPool3x3s2Backward(b *testing.B) {
	p := &PoolParams{C: 64, H: 112, W: 112, KernelH: 3, KernelW: 3, StrideH: 2, StrideW: 2, PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, dx, dy := make([]float32, n*64*112*112), make([]float32, n*64*112*112), make([]float32, n*64*56*56)
	nntBench(b, 8*len(x), func() { MaxPool2DBackward(p, n, dx, dy, x) })
}

func BenchmarkTransposeNCHWToNHWC(b *testing.B) {
	p := &TransposeParams{Shape: []int{BatchDim, 64, 56, 56}, Perm: []int{0, 2, 3, 1}}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*56*56), make([]float32, n*64*56*56)
	nntBench(b, 8*len(x), func() { Transpose(p, n, y, x) })
}

func BenchmarkPadReflect(b *testing.B) {
	p := &PadParams{Shape: []int{BatchDim, 64, 56, 56}, Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}, Mode: PadReflect}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*56*56), make([]float32, n*64*58*58)
	nntBench(b, 4*(len(x)+len(y)), func() { Pad(p, n, y, x) })
}

func BenchmarkPadReflectBackward(b *testing.B) {
	p := &PadParams{Shape: []int{BatchDim, 64, 56, 56}, Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}, Mode: PadReflect}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 8
	x, y := make([]float32, n*64*56*56), make([]float32, n*64*58*58)
	nntBench(b, 4*(len(x)+len(y)), func() { PadBackward(p, n, x, y) })
}

func BenchmarkSoftmaxCrossEntropy(b *testing.B) {
	p := &SoftmaxCrossEntropyParams{Classes: 1000}
	if err := p.Init(); err != nil {
		b.Fatal(err)
	}
	n := 64
	x, d := make([]float32, n*1000), make([]float32, n*1000)
	labels := make([]int32, n)
	nntBench(b, 8*len(x), func() { _, _ = SoftmaxCrossEntropy(p, n, d, x, labels) })
}

var nntSink float64

func BenchmarkExpStd(b *testing.B) {
	x := make([]float64, 4096)
	for i := range x {
		x[i] = float64(i%200)/10 - 10
	}
	for b.Loop() {
		s := 0.0
		for _, v := range x {
			s += math.Exp(v)
		}
		nntSink = s
	}
}

func BenchmarkExpNN(b *testing.B) {
	x := make([]float64, 4096)
	for i := range x {
		x[i] = float64(i%200)/10 - 10
	}
	for b.Loop() {
		s := 0.0
		for _, v := range x {
			s += nnExp(v)
		}
		nntSink = s
	}
}

// TestInPlace checks the kernels documented to accept an output that is
// exactly one of their inputs.
func TestInPlace(t *testing.T) {
	r := nntRand(90)
	const size = 3 * 5 * 7 * 11
	same := func(name string, f func(out, in []float32)) {
		t.Helper()
		x := nntSlice(r, size, -4, 4)
		want := make([]float32, size)
		f(want, append([]float32(nil), x...))
		f(x, x)
		require.Equal(t, want, x, name)
	}
	for _, a := range nntActs() {
		same(a.name, a.fwd)
		aux := nntSlice(r, size, -4, 4)
		same(a.name+" backward dy", func(out, in []float32) { a.back(out, in, aux, aux) })
		same(a.name+" backward x/y", func(out, in []float32) { a.back(out, aux, in, in) })
	}
	bp := &BroadcastParams{A: []int{BatchDim, 5, 7, 11}, B: []int{5, 1, 1}}
	require.NoError(t, bp.Init())
	bias := nntSlice(r, 5, 1, 2)
	same("Div", func(out, in []float32) { Div(bp, 3, out, in, bias) })
	dp := &DropoutParams{Ratio: 0.4, Seed: 3}
	require.NoError(t, dp.Init())
	same("Dropout", func(out, in []float32) { Dropout(dp, 1, out, in) })
	bn := &BatchNormParams{C: 5, Spatial: 77, Epsilon: 1e-5, Momentum: 0.1}
	require.NoError(t, bn.Init())
	sc, bi, rm, rv := nntSlice(r, 5, 0.5, 1), nntSlice(r, 5, -1, 1), nntSlice(r, 5, -1, 1), nntSlice(r, 5, 0.5, 1)
	sm, si := make([]float32, 5), make([]float32, 5)
	same("BatchNormInference", func(out, in []float32) { BatchNormInference(bn, 3, out, in, sc, bi, rm, rv) })
	same("BatchNormTraining", func(out, in []float32) { BatchNormTraining(bn, 3, out, sm, si, nil, nil, in, sc, bi) })
	xb := nntSlice(r, size, -1, 1)
	BatchNormTraining(bn, 3, make([]float32, size), sm, si, nil, nil, xb, sc, bi)
	ds, db := make([]float32, 5), make([]float32, 5)
	same("BatchNormBackward", func(out, in []float32) { BatchNormBackward(bn, 3, out, ds, db, in, xb, sc, sm, si) })
	sp := &SoftmaxParams{Outer: 5, Inner: 77}
	require.NoError(t, sp.Init())
	ys := nntSlice(r, size, 0, 1)
	same("Softmax", func(out, in []float32) { Softmax(sp, 3, out, in) })
	same("LogSoftmax", func(out, in []float32) { LogSoftmax(sp, 3, out, in) })
	same("SoftmaxBackward", func(out, in []float32) { SoftmaxBackward(sp, 3, out, in, ys) })
	same("LogSoftmaxBackward", func(out, in []float32) { LogSoftmaxBackward(sp, 3, out, in, ys) })
	ce := &SoftmaxCrossEntropyParams{Classes: 77}
	require.NoError(t, ce.Init())
	labels := []int32{0, 76, 3, 9, 40, 2, 1, 7, 8, 11, 12, 13, 14, 15, 16}
	same("SoftmaxCrossEntropy", func(out, in []float32) {
		_, err := SoftmaxCrossEntropy(ce, 15, out, in, labels)
		require.NoError(t, err)
	})
}
