package runtime

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func linRand(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// refGemm is Y = alpha·op(A)·op(B) + beta·C in float64 for rows x N.
func refGemm(p *GemmParams, rows int, a, b, c []float32) []float64 {
	y := make([]float64, rows*p.N)
	for i := 0; i < rows; i++ {
		for j := 0; j < p.N; j++ {
			var s float64
			for k := 0; k < p.K; k++ {
				av := a[i*p.K+k]
				if p.TransA {
					av = a[k*rows+i]
				}
				bv := b[k*p.N+j]
				if p.TransB {
					bv = b[j*p.K+k]
				}
				s += float64(av) * float64(bv)
			}
			s *= float64(p.Alpha)
			switch p.Bias {
			case BiasScalar:
				s += float64(p.Beta) * float64(c[0])
			case BiasRow:
				s += float64(p.Beta) * float64(c[j])
			case BiasColumn:
				s += float64(p.Beta) * float64(c[i])
			case BiasFull:
				s += float64(p.Beta) * float64(c[i*p.N+j])
			}
			y[i*p.N+j] = s
		}
	}
	return y
}

func biasLen(p *GemmParams, rows int) int {
	switch p.Bias {
	case BiasScalar:
		return 1
	case BiasRow:
		return p.N
	case BiasColumn:
		return rows
	case BiasFull:
		return rows * p.N
	}
	return 0
}

var gemmCases = []GemmParams{
	{M: 1, K: 7, N: 5, Alpha: 1, Beta: 1, TransB: true, Bias: BiasRow},
	{M: 1, K: 1, N: 1, Alpha: 1, Beta: 1},
	{M: 3, K: 17, N: 9, Alpha: 0.5, Beta: 2, Bias: BiasFull},
	{M: 1, K: 33, N: 10, Alpha: 1, Beta: 1, TransA: true, Bias: BiasColumn},
	{M: 2, K: 4, N: 6, Alpha: 1.5, Beta: -1, TransA: true, TransB: true, Bias: BiasScalar},
}

func TestGemmForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, pc := range gemmCases {
		for _, n := range []int{1, 3} {
			p := pc
			require.NoError(t, p.Init())
			rows := n * p.M
			a, b := linRand(rng, rows*p.K), linRand(rng, p.K*p.N)
			c := linRand(rng, biasLen(&p, rows))
			y := make([]float32, rows*p.N)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			Gemm(&p, n, y, a, b, c)
			want := refGemm(&p, rows, a, b, c)
			for i := range y {
				require.InDelta(t, want[i], y[i], 1e-4*(1+math.Abs(want[i])), "%+v n=%d i=%d", p, n, i)
			}
		}
	}
}

// TestGemmBackwardFiniteDifferences checks dA, dB and dC of sum(Y·G).
func TestGemmBackwardFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, pc := range gemmCases {
		p := pc
		require.NoError(t, p.Init())
		n := 2
		rows := n * p.M
		a, b := linRand(rng, rows*p.K), linRand(rng, p.K*p.N)
		c := linRand(rng, biasLen(&p, rows))
		g := linRand(rng, rows*p.N)
		loss := func() float64 {
			y := refGemm(&p, rows, a, b, c)
			var s float64
			for i := range y {
				s += y[i] * float64(g[i])
			}
			return s
		}
		da, db, dc := make([]float32, len(a)), make([]float32, len(b)), make([]float32, len(c))
		GemmBackward(&p, n, da, db, dc, g, a, b)
		for _, x := range []struct {
			name string
			v, d []float32
		}{{"a", a, da}, {"b", b, db}, {"c", c, dc}} {
			for i := range x.v {
				orig := x.v[i]
				h := float32(1e-2)
				x.v[i] = orig + h
				up := loss()
				x.v[i] = orig - h
				down := loss()
				x.v[i] = orig
				num := (up - down) / (2 * float64(h))
				require.InDelta(t, num, x.d[i], 1e-3*(1+math.Abs(num)), "%+v d%s[%d]", p, x.name, i)
			}
		}
	}
}

func refMatMul(p *MatMulParams, n int, a, b []float32) []float64 {
	var y []float64
	p.eachProduct(n, func(ya, aa, ba int) {
		for len(y) < ya+p.M*p.N {
			y = append(y, 0)
		}
		for i := 0; i < p.M; i++ {
			for j := 0; j < p.N; j++ {
				var s float64
				for k := 0; k < p.K; k++ {
					s += float64(a[aa+i*p.K+k]) * float64(b[ba+k*p.N+j])
				}
				y[ya+i*p.N+j] = s
			}
		}
	})
	return y
}

func TestMatMulForwardAndBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, pc := range []MatMulParams{
		{M: 1, K: 784, N: 12, BatchA: true},
		{M: 5, K: 3, N: 4, BatchA: true, ALead: []int{2}},
		{M: 3, K: 4, N: 2, BatchA: true, BatchB: true},
		{M: 2, K: 3, N: 5, BatchA: true, ALead: []int{3}, BLead: []int{1}},
		{M: 2, K: 3, N: 2, BatchA: true, ALead: []int{1}, BLead: []int{4}},
	} {
		p := pc
		require.NoError(t, p.Init())
		n := 2
		a, b := linRand(rng, p.aLen(n)), linRand(rng, p.bLen(n))
		want := refMatMul(&p, n, a, b)
		y := make([]float32, len(want))
		MatMul(&p, n, y, a, b)
		for i := range y {
			require.InDelta(t, want[i], y[i], 1e-4*(1+math.Abs(want[i])), "%+v i=%d", p, i)
		}
		g := linRand(rng, len(y))
		da, db := make([]float32, len(a)), make([]float32, len(b))
		MatMulBackward(&p, n, da, db, g, a, b)
		loss := func() float64 {
			y := refMatMul(&p, n, a, b)
			var s float64
			for i := range y {
				s += y[i] * float64(g[i])
			}
			return s
		}
		for _, x := range []struct {
			v, d []float32
		}{{a, da}, {b, db}} {
			for i := range x.v {
				orig := x.v[i]
				x.v[i] = orig + 1e-2
				up := loss()
				x.v[i] = orig - 1e-2
				down := loss()
				x.v[i] = orig
				num := (up - down) / 2e-2
				require.InDelta(t, num, x.d[i], 1e-3*(1+math.Abs(num)), "%+v i=%d", p, i)
			}
		}
	}
}

func TestLinearNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	p := GemmParams{M: 1, K: 64, N: 32, Alpha: 1, Beta: 1, TransB: true, Bias: BiasRow}
	require.NoError(t, p.Init())
	n := 16
	a, b, c := linRand(rng, n*64), linRand(rng, 64*32), linRand(rng, 32)
	y, dy := make([]float32, n*32), linRand(rng, n*32)
	da, db, dc := make([]float32, len(a)), make([]float32, len(b)), make([]float32, 32)
	Gemm(&p, n, y, a, b, c)
	GemmBackward(&p, n, da, db, dc, dy, a, b)
	require.Zero(t, testing.AllocsPerRun(20, func() {
		Gemm(&p, n, y, a, b, c)
		GemmBackward(&p, n, da, db, dc, dy, a, b)
	}))
	m := MatMulParams{M: 3, K: 4, N: 2, BatchA: true, ALead: []int{2}, BLead: []int{1}}
	require.NoError(t, m.Init())
	ma, mb := linRand(rng, m.aLen(n)), linRand(rng, m.bLen(n))
	my := make([]float32, n*2*3*2)
	MatMul(&m, n, my, ma, mb)
	require.Zero(t, testing.AllocsPerRun(20, func() { MatMul(&m, n, my, ma, mb) }))
}
