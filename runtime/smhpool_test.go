package runtime

import (
	"math"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// smhRef is the virtual weight vector, materialised in float64 the plain
// way for each variant.
func smhVirtualRef(v SMHVariant, d, rank int, pool []float32, n int, seed uint64, tensorOf func(i int) (uint64, int)) []float64 {
	out := make([]float64, n)
	switch v {
	case SMHProduct:
		for idx := range out {
			i, j := idx/d, idx%d
			for k := 0; k < rank; k++ {
				out[idx] += float64(pool[i*rank+k]) * float64(pool[d*rank+k*d+j])
			}
		}
	case SMHKron:
		s := int(math.Sqrt(float64(d)))
		for idx := range out {
			i, j := idx/d, idx%d
			for k := 0; k < rank; k++ {
				a := pool[k*s*s+(i/s)*s+j/s]
				b := pool[(rank+k)*s*s+(i%s)*s+j%s]
				out[idx] += float64(a) * float64(b)
			}
		}
	case SMHHash:
		for idx := range out {
			t, e := tensorOf(idx)
			b, neg := HashBucket(seed, t, e, len(pool))
			out[idx] = float64(pool[b])
			if neg {
				out[idx] = -out[idx]
			}
		}
	}
	return out
}

func TestSMHWeightAndGradSum(t *testing.T) {
	rng := NewRNG(3)
	for _, c := range []struct {
		name    string
		v       SMHVariant
		d, rank int
		pool    int
		counts  []int
	}{
		{"product mid-row", SMHProduct, 7, 3, 2 * 7 * 3, []int{5, 11, 1, 20}},
		{"product whole rows", SMHProduct, 6, 2, 2 * 6 * 2, []int{6, 12, 18}},
		{"kron", SMHKron, 9, 2, 2 * 2 * 9, []int{10, 4, 30}},
		{"hash", SMHHash, 0, 0, 13, []int{8, 9, 30}},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := make([]float32, c.pool)
			Normal(pool, rng, 0, 1)
			scales := make([]float32, len(c.counts))
			Uniform(scales, rng, 0.5, 1.5)
			var g SMHGradParams
			off, n := 0, 0
			for i, cnt := range c.counts {
				g.Tensors = append(g.Tensors, SMHWeightParams{Variant: c.v, D: c.d, Rank: c.rank, Off: off, Count: cnt, Scale: i, Seed: 99, Tensor: uint64(i + 1)})
				off += cnt
				n += cnt
			}
			require.NoError(t, g.Init())
			tensorOf := func(idx int) (uint64, int) {
				for i, cnt := range c.counts {
					if idx < cnt {
						return uint64(i + 1), idx
					}
					idx -= cnt
				}
				panic("out of range")
			}
			ref := smhVirtualRef(c.v, c.d, c.rank, pool, n, 99, tensorOf)
			ws := make([][]float32, len(c.counts))
			gs := make([][]float32, len(c.counts))
			at := 0
			for i, cnt := range c.counts {
				ws[i] = make([]float32, cnt)
				SMHWeight(&g.Tensors[i], ws[i], pool, scales)
				for e := range ws[i] {
					want := float64(scales[i]) * ref[at+e]
					require.InDelta(t, want, ws[i][e], 1e-5*(1+math.Abs(want)), "tensor %d element %d", i, e)
				}
				at += cnt
				gs[i] = make([]float32, cnt)
				Normal(gs[i], rng, 0, 1)
			}
			// loss = Σ_t ⟨W_t, G_t⟩; its gradient against finite differences.
			loss := func() float64 {
				r := smhVirtualRef(c.v, c.d, c.rank, pool, n, 99, tensorOf)
				var s float64
				at := 0
				for i, cnt := range c.counts {
					for e := 0; e < cnt; e++ {
						s += float64(scales[i]) * r[at+e] * float64(gs[i][e])
					}
					at += cnt
				}
				return s
			}
			dpool, dscales := make([]float32, len(pool)), make([]float32, len(scales))
			for i := range dpool {
				dpool[i] = 123 // SMHGradSum overwrites
			}
			SMHGradSum(&g, dpool, dscales, pool, scales, gs...)
			for _, x := range []struct {
				v, d []float32
			}{{pool, dpool}, {scales, dscales}} {
				for i := range x.v {
					orig := x.v[i]
					x.v[i] = orig + 1e-2
					up := loss()
					x.v[i] = orig - 1e-2
					down := loss()
					x.v[i] = orig
					num := (up - down) / 2e-2
					require.InDelta(t, num, x.d[i], 1e-3*(1+math.Abs(num)), "element %d", i)
				}
			}
			require.Zero(t, testing.AllocsPerRun(5, func() {
				SMHWeight(&g.Tensors[0], ws[0], pool, scales)
				SMHGradSum(&g, dpool, dscales, pool, scales, gs...)
			}))
		})
	}
}

// TestSMHWeightStart checks that a reconstruction started in the
// background has SMHWeight's bits whoever runs its units: the caller alone
// (one worker, or another Start on offer), or the pool's helpers while the
// caller keeps them busy with parallel calls of its own, as a Forward does
// between a Start and its Wait.
func TestSMHWeightStart(t *testing.T) {
	const d, rank = 131, 7
	pool := randSlice(NewRNG(3), 2*d*rank)
	scales := []float32{0.7, -1.3, 0}
	tensors := []SMHWeightParams{
		{Variant: SMHProduct, D: d, Rank: rank, Off: 0, Count: 40, Scale: 0},         // part of one row
		{Variant: SMHProduct, D: d, Rank: rank, Off: 57, Count: 90 * d, Scale: 1},    // many rows, ragged ends
		{Variant: SMHProduct, D: d, Rank: rank, Off: 3 * d, Count: 20 * d, Scale: 2}, // scale 0
		{Variant: SMHHash, Count: 500, Scale: 0, Seed: 5, Tensor: 2},                 // not offered: written at once
		{Variant: SMHKron, D: 16, Rank: 3, Off: 10, Count: 200, Scale: 1},            // likewise
	}
	want := make([][]float32, len(tensors))
	for i := range tensors {
		require.NoError(t, tensors[i].Init())
		want[i] = make([]float32, tensors[i].Count)
		SMHWeight(&tensors[i], want[i], pool, scales)
	}
	// busy is parallel work of the caller's own between Start and Wait.
	a, b := randSlice(NewRNG(4), 96*96), randSlice(NewRNG(5), 96*96)
	c := make([]float32, 96*96)
	busy := func() {
		for range 20 {
			Sgemm(false, false, 96, 96, 96, 1, a, 96, b, 96, 0, c, 96)
		}
	}
	prev := goruntime.GOMAXPROCS(0)
	defer goruntime.GOMAXPROCS(prev)
	helped := sideHelped.Load()
	for _, procs := range []int{1, max(2, prev)} {
		goruntime.GOMAXPROCS(procs)
		for rep := range 3 {
			for i := range tensors {
				p := &tensors[i]
				got := make([]float32, p.Count+1)
				got[p.Count] = 42 // past Count: untouched
				SMHWeightStart(p, got, pool, scales)
				if rep > 0 {
					busy()
				}
				if rep == 2 {
					// A second Start while the first is on offer is
					// written before it returns.
					other := &tensors[(i+1)%len(tensors)]
					o := make([]float32, other.Count)
					SMHWeightStart(other, o, pool, scales)
					SMHWeightWait(other)
					require.Equal(t, want[(i+1)%len(tensors)], o)
				}
				SMHWeightWait(p)
				SMHWeightWait(p) // a second Wait returns at once
				require.Equal(t, want[i], got[:p.Count], "procs %d rep %d tensor %d", procs, rep, i)
				require.Equal(t, float32(42), got[p.Count])
			}
		}
	}
	require.Nil(t, poolSide.Load(), "work left on offer")
	if goruntime.NumCPU() > 1 {
		require.Positive(t, sideHelped.Load()-helped, "no helper ran a unit")
	}
}
