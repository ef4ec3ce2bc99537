package runtime

import "math"

// The initialisers fill caller-owned buffers from an RNG, one draw per
// element in index order, so a seed fixes every initial weight. Each value
// is computed in float64 with the scaling product rounded before the shift
// (no FMA can change it) and then rounded once to float32, which keeps them
// bit-identical across platforms like the RNG itself.

// Normal fills dst with independent N(mean, std²) values.
func Normal(dst []float32, rng *RNG, mean, std float32) {
	m, s := float64(mean), float64(std)
	for i := range dst {
		dst[i] = float32(m + float64(s*rng.NormFloat64()))
	}
}

// Uniform fills dst with independent values uniform in [lo, hi). After the
// final rounding to float32 a value may equal hi, as in PyTorch.
func Uniform(dst []float32, rng *RNG, lo, hi float32) {
	a, w := float64(lo), float64(hi)-float64(lo)
	for i := range dst {
		dst[i] = float32(a + float64(w*rng.Float64()))
	}
}

// Fans returns PyTorch's fan-in and fan-out of a weight whose shape is
// [out, in, k...] (its _calculate_fan_in_and_fan_out): fanIn = in·∏k and
// fanOut = out·∏k. That covers a Conv weight [K, C/g, KH, KW] (fanIn =
// C/g·KH·KW, fanOut = K·KH·KW, the group count not divided out, as in
// PyTorch) and a PyTorch Linear or ONNX Gemm transB=1 weight [out, in]. A
// weight stored [in, out] (Gemm with transB=0, MatMul) has its fans
// swapped: use DenseFans. It panics on fewer than two dimensions, where fans
// are undefined.
func Fans(shape []int) (fanIn, fanOut int) {
	if len(shape) < 2 {
		panic("runtime: Fans: weight needs at least 2 dimensions")
	}
	receptive := 1
	for _, k := range shape[2:] {
		receptive *= k
	}
	return shape[1] * receptive, shape[0] * receptive
}

// ConvFans is Fans for a convolution weight [k, cPerGroup, kh, kw].
func ConvFans(k, cPerGroup, kh, kw int) (fanIn, fanOut int) {
	return cPerGroup * kh * kw, k * kh * kw
}

// DenseFans is Fans for a dense layer mapping in features to out features,
// whatever the storage order of its weight.
func DenseFans(in, out int) (fanIn, fanOut int) { return in, out }

// KaimingGain is PyTorch's calculate_gain("leaky_relu", a) = sqrt(2/(1+a²));
// a = 0 is plain ReLU's sqrt(2).
func KaimingGain(a float64) float64 { return math.Sqrt(2 / (1 + float64(a*a))) }

// KaimingNormal fills dst from N(0, std²) with std = KaimingGain(a)/sqrt(fan)
// (PyTorch's kaiming_normal_ with a leaky_relu slope a). Pass the fan-in to
// preserve forward variance, the fan-out to preserve backward variance.
func KaimingNormal(dst []float32, rng *RNG, fan int, a float64) {
	Normal(dst, rng, 0, float32(KaimingGain(a)/math.Sqrt(float64(fan))))
}

// KaimingUniform fills dst uniform in [-b, b) with b = sqrt(3)·gain/sqrt(fan),
// the bound that gives KaimingNormal's variance (PyTorch's kaiming_uniform_).
func KaimingUniform(dst []float32, rng *RNG, fan int, a float64) {
	b := float32(math.Sqrt(3) * KaimingGain(a) / math.Sqrt(float64(fan)))
	Uniform(dst, rng, -b, b)
}

// HeNormal is KaimingNormal for ReLU: std = sqrt(2/fan). fan is the fan-in
// or the fan-out (EfficientNet-style nets use the fan-out).
func HeNormal(dst []float32, rng *RNG, fan int) { KaimingNormal(dst, rng, fan, 0) }

// HeUniform is KaimingUniform for ReLU: bound sqrt(6/fan).
func HeUniform(dst []float32, rng *RNG, fan int) { KaimingUniform(dst, rng, fan, 0) }

// GlorotNormal fills dst from N(0, 2/(fanIn+fanOut)) (Xavier normal, gain 1).
func GlorotNormal(dst []float32, rng *RNG, fanIn, fanOut int) {
	Normal(dst, rng, 0, float32(math.Sqrt(2/float64(fanIn+fanOut))))
}

// GlorotUniform fills dst uniform in [-b, b) with b = sqrt(6/(fanIn+fanOut))
// (Xavier uniform, gain 1).
func GlorotUniform(dst []float32, rng *RNG, fanIn, fanOut int) {
	b := float32(math.Sqrt(6 / float64(fanIn+fanOut)))
	Uniform(dst, rng, -b, b)
}

// TorchDefaultWeight reproduces the distribution of PyTorch's default
// nn.Linear and nn.ConvNd weight init, kaiming_uniform_(a=sqrt(5)), which
// simplifies to uniform in [-1/sqrt(fanIn), 1/sqrt(fanIn)). Models imported
// from PyTorch without trained weights start the way they would there (not
// the same values: the generators differ).
func TorchDefaultWeight(dst []float32, rng *RNG, fanIn int) {
	KaimingUniform(dst, rng, fanIn, math.Sqrt(5))
}

// TorchDefaultBias reproduces PyTorch's default Linear/Conv bias init,
// uniform in [-1/sqrt(fanIn), 1/sqrt(fanIn)) with the weight's fan-in.
func TorchDefaultBias(dst []float32, rng *RNG, fanIn int) {
	b := float32(1 / math.Sqrt(float64(fanIn)))
	Uniform(dst, rng, -b, b)
}
