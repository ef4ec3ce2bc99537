package runtime

import "math/bits"

// The hashing baseline (HashedNets, Chen et al. 2015) that SMH is compared
// against at equal size: element i of a tensor is
//
//	W[i] = s · sign(i) · pool[h(i)]
//
// with a seeded hash of (seed, tensor id, i) choosing the bucket h(i) and
// the sign. The pool is whatever slice the caller passes: one pool per
// tensor (the original paper) or one shared by all tensors (what our
// comparison uses, the tensor id keeping their hashes apart). Initialise
// the pool N(0, 1) and s to the layer's usual init std, as for SMH.
//
// Unlike Google's SMH library, whose "random" pool is a modulo tiling, the
// hash is a real one and a fixed function of its inputs, so a checkpoint
// that records the seed reproduces the layout on any machine.

// HashBucket returns the bucket in [0, k) and the sign of element index of
// tensor tensor under seed. With m(x) = mix(x + 0x9e3779b97f4a7c15), mix
// being SplitMix64's finalizer, it computes
//
//	v = m(m(m(seed) ^ tensor) ^ index)
//
// and takes the bucket as floor(v·k / 2⁶⁴) (Lemire's multiply-shift, which
// uses v's high bits) and a negative sign when v's lowest bit is 1, a bit
// the bucket does not depend on. It panics unless 0 < k < 2³¹.
func HashBucket(seed, tensor uint64, index, k int) (bucket int, negative bool) {
	if k <= 0 || k > 1<<31-1 {
		panic("runtime: HashBucket: pool size must be in [1, 2^31)")
	}
	v := hashMix(hashMix(hashMix(seed)^tensor) ^ uint64(index))
	hi, _ := bits.Mul64(v, uint64(k))
	return int(hi), v&1 == 1
}

func hashMix(x uint64) uint64 { return rngMix64(x + 0x9e3779b97f4a7c15) }

// HashParams places one tensor in a hashed pool. Generated code keeps one
// per hashed tensor. The kernels cache the tensor's buckets and signs (4
// bytes per element) on first use and rebuild them if Seed, Tensor, Count
// or the pool size change.
type HashParams struct {
	Seed   uint64 // hash seed, the same for all tensors of a model; record it in checkpoints
	Tensor uint64 // tensor id, distinct per hashed tensor of a model
	Count  int    // number of elements of the tensor

	idx []int32   // bucket, or ^bucket for a negative sign
	key [3]uint64 // Seed, Tensor and pool size idx was built for
}

func (p *HashParams) table(op string, k int) []int32 {
	if p.Count < 0 {
		panic("runtime: " + op + ": Count < 0")
	}
	key := [3]uint64{p.Seed, p.Tensor, uint64(k)}
	if len(p.idx) == p.Count && p.key == key && p.idx != nil {
		return p.idx
	}
	if cap(p.idx) < p.Count {
		p.idx = make([]int32, p.Count)
	}
	p.idx = p.idx[:p.Count]
	for i := range p.idx {
		b, neg := HashBucket(p.Seed, p.Tensor, i, k)
		if neg {
			b = ^b
		}
		p.idx[i] = int32(b)
	}
	p.key = key
	return p.idx
}

// HashGather writes w[i] = s · sign(i) · pool[h(i)] for i < Count.
func HashGather(p *HashParams, w, pool []float32, s float32) {
	idx := p.table("HashGather", len(pool))
	w = w[:len(idx)]
	for i, b := range idx {
		if b >= 0 {
			w[i] = s * pool[b]
		} else {
			w[i] = -s * pool[^b]
		}
	}
}

// HashScatterAdd is the backward of HashGather: given dw, the gradient of
// the loss with respect to W (Count values), it accumulates
// dpool[h(i)] += s·sign(i)·dw[i] and *ds += Σ_i dw[i]·sign(i)·pool[h(i)]
// (summed in float64, in index order). It runs on the calling goroutine:
// the scatter's collisions would make a parallel version either racy or
// order-dependent, and its cost is one pass over the tensor. ds may be nil.
func HashScatterAdd(p *HashParams, dpool []float32, ds *float32, dw, pool []float32, s float32) {
	if len(dpool) != len(pool) {
		panic("runtime: HashScatterAdd: dpool and pool differ in length")
	}
	idx := p.table("HashScatterAdd", len(pool))
	dw = dw[:len(idx)]
	var sum float64
	for i, b := range idx {
		g := dw[i]
		if b < 0 {
			b = ^b
			g = -g
		}
		dpool[b] += s * g
		sum += float64(g) * float64(pool[b])
	}
	if ds != nil {
		*ds += float32(sum)
	}
}
