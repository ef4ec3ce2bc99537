package runtime

import (
	"fmt"
	"math"
)

// SMHVariant says how a pool of shared variables makes the virtual weights.
type SMHVariant uint8

// The compression variants, all with the same per-tensor scales and the same
// size control.
const (
	// SMHProduct is Structured Multi-Hashing: the virtual matrix is P = L·R,
	// L (D x Rank) and R (Rank x D) stored one after the other in the pool.
	SMHProduct SMHVariant = iota
	// SMHHash is HashedNets: each virtual weight reads one pool variable
	// chosen by a seeded hash, with a seeded sign (see HashBucket).
	SMHHash
	// SMHKron is a sum of Kronecker products: with D = S², P = Σ_k A_k ⊗ B_k
	// over Rank terms, A_k and B_k S x S, stored as all A then all B.
	SMHKron
)

// SMHWeightParams places one compressed tensor: the Count values at offset
// Off of the virtual weight vector, times the scale at index Scale of the
// scales vector.
type SMHWeightParams struct {
	Variant SMHVariant
	D, Rank int    // product: P's side and rank; kron: P's side (a square) and terms
	Off     int    // first element in vec(P) (product, kron)
	Count   int    // elements of the tensor
	Scale   int    // index of its scale
	Seed    uint64 // hash: the model's hash seed
	Tensor  uint64 // hash: this tensor's id

	ok    bool
	side  int // kron: S
	prod  SMHParams
	hash  HashParams
	ds    float32
	async *smhAsync // SMHWeightStart's state, made by its first call
}

// smhAsync is a reconstruction in progress (SMHWeightStart). Its band
// task comes from the shared free list for the time it is in progress,
// so that a model holds the task buffers of the reconstructions running
// at once, not one per tensor.
type smhAsync struct {
	task    *smhBandTask
	work    sideWork
	pending bool
}

// Init validates the placement.
func (p *SMHWeightParams) Init() error {
	p.ok = false
	switch {
	case p.Count < 0 || p.Off < 0 || p.Scale < 0:
		return fmt.Errorf("runtime: SMH tensor: negative Count, Off or Scale")
	case p.Variant == SMHProduct || p.Variant == SMHKron:
		if p.D < 1 || p.Rank < 1 || p.Off+p.Count > p.D*p.D {
			return fmt.Errorf("runtime: SMH tensor [%d, %d) outside a %d x %d matrix of rank %d", p.Off, p.Off+p.Count, p.D, p.D, p.Rank)
		}
		if p.Variant == SMHKron {
			p.side = int(math.Sqrt(float64(p.D)))
			for p.side*p.side < p.D {
				p.side++
			}
			if p.side*p.side != p.D {
				return fmt.Errorf("runtime: Kronecker SMH needs a square side, have %d", p.D)
			}
		}
		p.prod = SMHParams{D: p.D, Rank: p.Rank, Off: p.Off, Count: p.Count}
	case p.Variant == SMHHash:
		p.hash = HashParams{Seed: p.Seed, Tensor: p.Tensor, Count: p.Count}
	default:
		return fmt.Errorf("runtime: unknown SMH variant %d", p.Variant)
	}
	p.ok = true
	return nil
}

// PoolSize is the number of pool variables the variant needs for D and
// Rank (hash pools take any size).
func (p *SMHWeightParams) PoolSize() int {
	if p.Variant == SMHKron {
		return 2 * p.Rank * p.D
	}
	return 2 * p.D * p.Rank
}

func (p *SMHWeightParams) check(op string, pool, scales []float32) {
	if !p.ok {
		panic("runtime: " + op + ": SMHWeightParams not initialised")
	}
	if p.Scale >= len(scales) {
		panic("runtime: " + op + ": scale index beyond the scales")
	}
	if p.Variant != SMHHash && len(pool) < p.PoolSize() {
		panic("runtime: " + op + ": pool shorter than the variant needs")
	}
}

// SMHWeight writes the tensor w[:Count] from the pool and its scale.
func SMHWeight(p *SMHWeightParams, w, pool, scales []float32) {
	p.check("SMHWeight", pool, scales)
	s := scales[p.Scale]
	switch p.Variant {
	case SMHProduct:
		dr := p.D * p.Rank
		SMHReconstruct(&p.prod, w, pool[:dr], pool[dr:2*dr], s)
	case SMHHash:
		HashGather(&p.hash, w, pool, s)
	case SMHKron:
		p.kronForward(w[:p.Count], pool, s)
	}
}

// SMHWeightStart writes the tensor w[:Count] as SMHWeight does, but may
// return before it is done: the product variant's units of work are
// offered to the worker pool's idle helpers (see sideWork), so that a
// Forward can reconstruct the next layer's weights during the current
// layer's kernels, whose serial stretches (input copies, filter packing,
// epilogues) and uneven splits leave helpers waiting. SMHWeightWait(p) must
// be called before w is read, and pool, scales and w must not be written
// in between. The result has the bits of SMHWeight's, whoever runs the
// units. Hashed and Kronecker tensors, and any Start while another is in
// progress or without helpers, are written before it returns.
func SMHWeightStart(p *SMHWeightParams, w, pool, scales []float32) {
	p.check("SMHWeightStart", pool, scales)
	if p.Variant != SMHProduct {
		SMHWeight(p, w, pool, scales)
		return
	}
	if p.async == nil {
		p.async = new(smhAsync)
	}
	a := p.async
	if a.pending {
		SMHWeightWait(p)
	}
	q := &p.prod
	dr := q.D * q.Rank
	l, r := pool[:dr], pool[dr:2*dr]
	q.check("SMHWeightStart", l, r, q.Off, q.Count)
	if len(w) < q.Count {
		panic("runtime: SMHWeightStart: w shorter than Count")
	}
	t := smhBandTasks.get()
	units, grain := q.band(t, w[:q.Count], l, r, q.Off, scales[p.Scale], smhSideRows)
	switch {
	case units == 0:
	case a.work.post(t, units):
		a.task, a.pending = t, true
		return
	default:
		ParallelFor(units, grain, t)
	}
	t.release()
	smhBandTasks.put(t)
}

// smhSideRows is the row block of SMHWeightStart's units: 24 rows of 32
// columns at rank 65 are about a microsecond of work, which bounds how long
// a helper that took one keeps the next parallel call waiting.
const smhSideRows = 24

// SMHWeightWait returns when the tensor SMHWeightStart(p, ...) began is
// written, running what the pool's helpers have not taken. Without a
// Start in progress it returns at once.
func SMHWeightWait(p *SMHWeightParams) {
	a := p.async
	if a == nil || !a.pending {
		return
	}
	a.work.finish()
	a.task.release()
	smhBandTasks.put(a.task)
	a.task, a.pending = nil, false
}

// smhAccum adds one tensor's gradient: dpool and dscales accumulate.
func (p *SMHWeightParams) accum(dpool, dscales, dw, pool, scales []float32) {
	s := scales[p.Scale]
	p.ds = 0
	switch p.Variant {
	case SMHProduct:
		dr := p.D * p.Rank
		SMHScatterAdd(&p.prod, dpool[:dr], dpool[dr:2*dr], &p.ds, dw, pool[:dr], pool[dr:2*dr], s)
	case SMHHash:
		HashScatterAdd(&p.hash, dpool, &p.ds, dw, pool, s)
	case SMHKron:
		p.kronBackward(dpool, &p.ds, dw[:p.Count], pool, s)
	}
	dscales[p.Scale] += p.ds
}

// kron returns the factor blocks of term k: A_k and B_k, S x S each.
func (p *SMHWeightParams) kron(pool []float32, k int) (a, b []float32) {
	ss := p.side * p.side
	return pool[k*ss : (k+1)*ss], pool[(p.Rank+k)*ss : (p.Rank+k+1)*ss]
}

func (p *SMHWeightParams) kronForward(w, pool []float32, s float32) {
	S := p.side
	for e := range w {
		idx := p.Off + e
		i, j := idx/p.D, idx%p.D
		ai, bi := (i/S)*S+j/S, (i%S)*S+j%S
		var v float64
		for k := 0; k < p.Rank; k++ {
			a, b := p.kron(pool, k)
			v += float64(a[ai]) * float64(b[bi])
		}
		w[e] = s * float32(v)
	}
}

func (p *SMHWeightParams) kronBackward(dpool []float32, ds *float32, dw, pool []float32, s float32) {
	S := p.side
	var sum float64
	for e, g := range dw {
		idx := p.Off + e
		i, j := idx/p.D, idx%p.D
		ai, bi := (i/S)*S+j/S, (i%S)*S+j%S
		sg := s * g
		var v float64
		for k := 0; k < p.Rank; k++ {
			a, b := p.kron(pool, k)
			da, db := p.kron(dpool, k)
			da[ai] += sg * b[bi]
			db[bi] += sg * a[ai]
			v += float64(a[ai]) * float64(b[bi])
		}
		sum += float64(g) * v
	}
	*ds += float32(sum)
}

// SMHGradParams lists the compressed tensors that share one pool and one
// scales vector, in the order SMHGradSum takes their gradients.
type SMHGradParams struct {
	Tensors []SMHWeightParams
}

// Init initialises every tensor's placement.
func (p *SMHGradParams) Init() error {
	for i := range p.Tensors {
		if err := p.Tensors[i].Init(); err != nil {
			return fmt.Errorf("tensor %d: %w", i, err)
		}
	}
	return nil
}

// SMHGradSum writes the gradients of the pool and of the scales given the
// gradient of each tensor (dws, in Tensors order): the sum over tensors of
// each one's scatter (see SMHScatterAdd), in order, so the result does not
// depend on the number of workers.
func SMHGradSum(p *SMHGradParams, dpool, dscales, pool, scales []float32, dws ...[]float32) {
	if len(dws) != len(p.Tensors) {
		panic(fmt.Sprintf("runtime: SMHGradSum: %d gradients for %d tensors", len(dws), len(p.Tensors)))
	}
	clear(dpool[:len(pool)])
	clear(dscales[:len(scales)])
	for i := range p.Tensors {
		t := &p.Tensors[i]
		t.check("SMHGradSum", pool, scales)
		t.accum(dpool, dscales, dws[i], pool, scales)
	}
}
