package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

type hashWant struct {
	b   int
	neg bool
}

// Pinned against an independent Python transcription of the documented
// formula: a change breaks every recorded hashing-baseline checkpoint.
func TestHashBucketGolden(t *testing.T) {
	for _, tc := range []struct {
		seed, tensor uint64
		index0, k    int
		want         []hashWant
	}{
		{1, 2, 0, 1000, []hashWant{{900, false}, {719, false}, {910, false}, {814, true}, {762, true}}},
		{0, 0, 0, 7, []hashWant{{0, true}, {1, false}, {4, false}, {2, true}, {3, true}}},
		{math.MaxUint64, 123456789, 1000000, 1<<31 - 1, []hashWant{{1246206969, true}, {249503023, false}}},
	} {
		for i, w := range tc.want {
			b, neg := HashBucket(tc.seed, tc.tensor, tc.index0+i, tc.k)
			require.Equal(t, w, hashWant{b, neg}, "seed %d tensor %d index %d", tc.seed, tc.tensor, tc.index0+i)
		}
	}
	require.Panics(t, func() { HashBucket(0, 0, 0, 0) })
}

func TestHashBucketSpreadsAndSeparatesTensors(t *testing.T) {
	const k, n = 64, 64000
	hits := make([]int, k)
	negs, same := 0, 0
	for i := 0; i < n; i++ {
		b, neg := HashBucket(5, 1, i, k)
		hits[b]++
		if neg {
			negs++
		}
		if b2, _ := HashBucket(5, 2, i, k); b2 == b {
			same++
		}
	}
	for b, h := range hits {
		require.InDelta(t, n/k, h, 5*math.Sqrt(n/k), "bucket %d", b)
	}
	require.InDelta(t, n/2, negs, 5*math.Sqrt(n/4))
	require.InDelta(t, n/k, same, 5*math.Sqrt(n/k), "tensor ids must give independent maps")
}

func TestHashGatherAndScatterAdd(t *testing.T) {
	for _, tc := range []struct {
		name         string
		count, k     int
		seed, tensor uint64
		s            float32
	}{
		{"more weights than buckets", 500, 37, 1, 0, 0.5},
		{"more buckets than weights", 20, 300, 2, 7, -1.25},
		{"one bucket", 10, 1, 3, 1, 2},
		{"empty tensor", 0, 5, 3, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewRNG(13)
			pool := randSlice(g, tc.k)
			p := &HashParams{Seed: tc.seed, Tensor: tc.tensor, Count: tc.count}
			w := make([]float32, tc.count)
			HashGather(p, w, pool, tc.s)
			for i := range w {
				b, neg := HashBucket(tc.seed, tc.tensor, i, tc.k)
				want := tc.s * pool[b]
				if neg {
					want = -want
				}
				require.Equal(t, want, w[i], "element %d", i)
			}

			// Backward of f = Σ W·gw, by reference and by finite differences.
			gw := randSlice(g, tc.count)
			dpool := randSlice(g, tc.k)
			wantPool := make([]float64, tc.k)
			for b := range wantPool {
				wantPool[b] = float64(dpool[b])
			}
			ds := float32(0.5)
			wantS := float64(ds)
			f := func(pl []float64, s float64) float64 {
				var sum float64
				for i, gv := range gw {
					b, neg := HashBucket(tc.seed, tc.tensor, i, tc.k)
					v := s * pl[b]
					if neg {
						v = -v
					}
					sum += v * float64(gv)
				}
				return sum
			}
			pf := make([]float64, tc.k)
			for b := range pf {
				pf[b] = float64(pool[b])
			}
			const h = 1e-3
			for b := range pf {
				old := pf[b]
				pf[b] = old + h
				fp := f(pf, float64(tc.s))
				pf[b] = old - h
				fm := f(pf, float64(tc.s))
				pf[b] = old
				wantPool[b] += (fp - fm) / (2 * h)
			}
			wantS += (f(pf, float64(tc.s)+h) - f(pf, float64(tc.s)-h)) / (2 * h)

			HashScatterAdd(p, dpool, &ds, gw, pool, tc.s)
			requireClose(t, wantPool, dpool, 1e-5, "dpool")
			requireClose(t, []float64{wantS}, []float32{ds}, 1e-5, "ds")
		})
	}
}

func TestHashParamsRebuildsItsTable(t *testing.T) {
	pool := randSlice(NewRNG(1), 50)
	p := &HashParams{Seed: 1, Tensor: 1, Count: 100}
	a, b := make([]float32, 100), make([]float32, 100)
	HashGather(p, a, pool, 1)
	p.Seed = 2
	HashGather(p, b, pool, 1)
	require.NotEqual(t, a, b, "a new seed must change the map")
	HashGather(p, b, pool[:40], 1)
	for i := range b {
		require.LessOrEqual(t, math.Abs(float64(b[i])), 10.0)
	}
	fresh := &HashParams{Seed: 2, Tensor: 1, Count: 100}
	c := make([]float32, 100)
	HashGather(fresh, c, pool[:40], 1)
	require.Equal(t, c, b, "a cached table must equal a fresh one")
}

func TestHashAllocatesNothing(t *testing.T) {
	pool := randSlice(NewRNG(1), 64)
	p := &HashParams{Seed: 1, Tensor: 3, Count: 1000}
	w, dpool := make([]float32, 1000), make([]float32, 64)
	var ds float32
	HashGather(p, w, pool, 1)
	require.Zero(t, testing.AllocsPerRun(10, func() {
		HashGather(p, w, pool, 1)
		HashScatterAdd(p, dpool, &ds, w, pool, 1)
	}))
}
