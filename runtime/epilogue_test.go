package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEpilogueApply(t *testing.T) {
	nan := float32(math.NaN())
	x := []float32{-2, -0.5, 0, 0.5, 7, nan}
	y := append([]float32(nil), x...)
	Epilogue{}.Apply(y)
	require.Equal(t, x[:5], y[:5])
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueRelu}.Apply(y)
	require.Equal(t, []float32{0, 0, 0, 0.5, 7}, y[:5])
	require.True(t, math.IsNaN(float64(y[5])), "Relu keeps NaN")
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueClip, Min: 0, Max: 6}.Apply(y)
	require.Equal(t, []float32{0, 0, 0, 0.5, 6}, y[:5])
	require.True(t, math.IsNaN(float64(y[5])), "Clip keeps NaN")
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueClip, Min: -1, Max: 0.25}.applyBias(y, 0.5, true)
	require.Equal(t, []float32{-1, 0, 0.25, 0.25, 0.25}, y[:5])
	require.NoError(t, Epilogue{Kind: EpilogueClip, Min: 2, Max: 2}.Validate())
}

// TestEpilogueVectorMatchesLoops checks the vector epilogue (where the CPU
// has one) against the Go loops bit for bit, at every length around the
// vector widths and with NaN, infinities, signed zeros and values on the
// clip bounds.
func TestEpilogueVectorMatchesLoops(t *testing.T) {
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 6, -1, 0.25, -0.5, 1e-40, -1e-40, 3e38}
	epilogues := []Epilogue{{}, {Kind: EpilogueRelu}, {Kind: EpilogueClip, Min: 0, Max: 6}, {Kind: EpilogueClip, Min: -1, Max: 0.25}}
	for n := 0; n <= 75; n++ {
		x := make([]float32, n)
		for i := range x {
			if i%3 == 0 {
				x[i] = special[(i/3+n)%len(special)]
			} else {
				x[i] = float32(i%11-5) * 0.37
			}
		}
		for _, e := range epilogues {
			for _, bias := range []float32{0, 0.5, -2} {
				got := append([]float32(nil), x...)
				e.applyBias(got, bias, true)
				want := append([]float32(nil), x...)
				e.applyBiasGo(want, bias)
				requireSameBits(t, want, got, "applyBias n=%d %+v bias %v", n, e, bias)
			}
			got := append([]float32(nil), x...)
			e.Apply(got)
			want := append([]float32(nil), x...)
			e.applyGo(want)
			requireSameBits(t, want, got, "Apply n=%d %+v", n, e)
		}
	}
}

func requireSameBits(t *testing.T, want, got []float32, format string, args ...any) {
	t.Helper()
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) && !(want[i] != want[i] && got[i] != got[i]) {
			t.Fatalf(format+": element %d is %v, want %v", append(args, i, got[i], want[i])...)
		}
	}
}

// TestActivationVectorsMatchLoops checks Relu, ReluBackward and Clip,
// which use the vector kernels where the CPU has them, against plain loops
// bit for bit, in place and out of place, at every length around the
// vector widths, with NaN, infinities and signed zeros in values and
// gradients.
func TestActivationVectorsMatchLoops(t *testing.T) {
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 6, -1e-40, 1e-40}
	fill := func(n, seed int) []float32 {
		x := make([]float32, n)
		for i := range x {
			if (i+seed)%3 == 0 {
				x[i] = special[(i+seed+n)%len(special)]
			} else {
				x[i] = float32((i*7+seed)%13-6) * 0.83
			}
		}
		return x
	}
	for n := 0; n <= 75; n++ {
		x, g := fill(n, 0), fill(n, 1)
		want := make([]float32, n)
		for i, v := range x {
			if v < 0 {
				v = 0
			}
			want[i] = v
		}
		got := make([]float32, n)
		Relu(got, x)
		requireSameBits(t, want, got, "Relu n=%d", n)
		inPlace := append([]float32(nil), x...)
		Relu(inPlace, inPlace)
		requireSameBits(t, want, inPlace, "Relu in place n=%d", n)

		for i := range want {
			want[i] = g[i]
			if !(x[i] > 0) {
				want[i] = 0
			}
		}
		ReluBackward(got, g, x)
		requireSameBits(t, want, got, "ReluBackward n=%d", n)

		p := &ClipParams{Min: -1, Max: 6}
		for i, v := range x {
			want[i] = min(max(v, -1), 6)
			if v != v {
				want[i] = v
			}
		}
		Clip(p, got, x)
		requireSameBits(t, want, got, "Clip n=%d", n)

		for i := range want {
			want[i] = g[i]
			if !(x[i] > -1 && x[i] < 6) {
				want[i] = 0
			}
		}
		ClipBackward(p, got, g, x)
		requireSameBits(t, want, got, "ClipBackward n=%d", n)
	}
}

// TestDepthwiseRowVectorsMatchLoops checks the vector interiors of dwAcc3
// and dwSet9Go (where the CPU has them) against their Go loops, bit for bit,
// at every row length around the vector width.
func TestDepthwiseRowVectorsMatchLoops(t *testing.T) {
	w := [9]float32{0.3, -1.7, 2.1, 0.9, -0.4, 1.3, -2.2, 0.6, 1.1}
	row := func(n, seed int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32((i*5+seed*3)%17-8) * 0.37
		}
		return x
	}
	vector := false
	for n := 1; n <= 40; n++ {
		r0, r1, r2, y0 := row(n+2, 0), row(n+2, 1), row(n+2, 2), row(n, 3)
		want, got := append([]float32(nil), y0...), append([]float32(nil), y0...)
		dwAcc3Go(want, r0, w[0], w[1], w[2])
		if vecDwAcc3(got, r0, w[0], w[1], w[2]) {
			vector = true
			requireSameBits(t, want, got, "dwAcc3 n=%d", n)
		}
		want, got = append(want[:0], y0...), append(got[:0], y0...)
		dwSet9Go(want, r0, r1, r2, &w)
		if vecDwSet9(got, r0, r1, r2, &w) {
			requireSameBits(t, want, got, "dwSet9 n=%d", n)
		}
	}
	for n8 := 8; n8 <= 40; n8 += 8 {
		g, x := row(n8, 4), row(n8+2, 5)
		var want, got [24]float32
		for i := range want {
			want[i] = float32(i) * 0.01
		}
		got = want
		dwDot3LanesGo(g, x, &want)
		if vecDwDot3(g, x, &got) == n8 {
			requireSameBits(t, want[:], got[:], "dwDot3 n=%d", n8)
		}
	}
	t.Logf("vector kernels tested: %v", vector)
}

// TestBatchNormVectorsMatchLoops checks the BatchNorm vector kernels
// (where the CPU has them) against their Go loops bit for bit.
func TestBatchNormVectorsMatchLoops(t *testing.T) {
	row := func(n, seed int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32((i*7+seed*5)%23-11)*0.173 + 3
		}
		return x
	}
	sameF64 := func(want, got []float64, what string, n int) {
		t.Helper()
		for i := range want {
			if math.Float64bits(want[i]) != math.Float64bits(got[i]) {
				t.Fatalf("%s n=%d: lane %d is %v, want %v", what, n, i, got[i], want[i])
			}
		}
	}
	for n := 0; n <= 48; n++ {
		x, dy := row(n, 1), row(n, 2)
		n8 := n &^ 7
		var want8, got8 [8]float64
		want8[3], got8[3] = 0.5, 0.5
		bnSumGo(x[:n8], &want8)
		if vecBnSum(x[:n8], &got8) {
			sameF64(want8[:], got8[:], "bnSum", n)
		}
		want8, got8 = [8]float64{1: 2}, [8]float64{1: 2}
		bnSqDevGo(x[:n8], 2.9, &want8)
		if vecBnSqDev(x[:n8], 2.9, &got8) {
			sameF64(want8[:], got8[:], "bnSqDev", n)
		}
		var want16, got16 [16]float64
		bnGradGo(dy[:n8], x[:n8], 2.9, &want16)
		if vecBnGrad(dy[:n8], x[:n8], 2.9, &got16) {
			sameF64(want16[:], got16[:], "bnGrad", n)
		}
		want, got := make([]float32, n), make([]float32, n)
		bnAffineGo(want, x, 1.37, -0.21)
		if vecBnAffine(got, x, 1.37, -0.21) {
			requireSameBits(t, want, got, "bnAffine n=%d", n)
		}
		bnGradXGo(want, dy, x, 0.7, -1.3, 0.05, 2.9)
		if vecBnGradX(got, dy, x, 0.7, -1.3, 0.05, 2.9) {
			requireSameBits(t, want, got, "bnGradX n=%d", n)
		}
	}
}
