package passes

import (
	"fmt"
	"math"
	"time"

	"github.com/smhgen/smhgen/runtime"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// SMH pool initialisations (SMHConfig.Init).
const (
	// SMHInitRandom draws the pool at random, as for training from
	// scratch (the paper's setting).
	SMHInitRandom = "random"
	// SMHInitFit starts the pool at the best approximation of the model's
	// own weights, so that a trained dense model compresses without
	// retraining from scratch.
	SMHInitFit = "fit"
)

// smhFitOptions choose how the product and kron fits compute their
// truncated SVD. The zero value picks by size (see smhTruncatedSVD).
type smhFitOptions struct {
	// Method is "exact" (LAPACK's dense SVD, O(d³)), "randomized"
	// (Halko, Martinsson and Tropp's range finder, O(d²·(r+p)) per pass)
	// or "" to choose: exact for small matrices, randomized otherwise.
	Method string
	// Oversample (p) and Power (q) tune the randomized method; zero means
	// the defaults below.
	Oversample, Power int
}

const (
	// smhFitExactSide is the largest side for which the automatic choice
	// takes the exact SVD (it also does when r+p >= d/2, where the
	// randomized method would save little): about 0.2 s with gonum at
	// d = 400, against 36 to 54 s at d = 2296, where the randomized method
	// takes 2.5 to 3 s.
	smhFitExactSide = 400
	// Power iterations of the randomized SVD; its oversampling is
	// max(smhFitMinOversample, r/2). Weight matrices have a slowly
	// decaying spectrum, where both matter: on EfficientNet-B0 at a tenth
	// of its size (d = 2296, r = 115), p = 10 and q = 2 leave an error
	// 1.5% above the optimum, p = r/2 and q = 3 0.07%, at about twice the
	// cost; at equal cost, oversampling beats more iterations.
	smhFitPower         = 3
	smhFitMinOversample = 10
)

// smhFitResult describes a fit, for the log and the tests.
type smhFitResult struct {
	Method string
	// RelErr is ‖M − M̂‖/‖M‖ over the virtual matrix M of the weights
	// divided by their scales (for hash, over the virtual vector), M̂ what
	// the pool reconstructs.
	RelErr  float64
	Elapsed time.Duration
}

// fitSMHPool sets pool to the least-squares fit of the compressed tensors'
// current values, each divided by its scale: for product, L = U_r·√Σ_r and
// R = √Σ_r·V_rᵀ from the truncated SVD of the d x d virtual matrix (its
// cells past the last weight zero); for kron, the same on Van Loan and
// Pitsianis' rearrangement, whose rank-r SVD is the best sum of r
// Kronecker products; for hash, each bucket's mean of sign·W/s over the
// weights hashed to it (zero for an empty bucket). Deterministic: the
// randomized SVD draws from cfg.Seed.
func fitSMHPool(cfg *SMHConfig, geo SMHGeometry, tensors []smhTensor, pool []float32, opt smhFitOptions) (smhFitResult, error) {
	start := time.Now()
	for _, t := range tensors {
		if n := t.param.Type.Shape.Static(); len(t.param.Param.Data) != n {
			return smhFitResult{}, fmt.Errorf("cannot fit the pool: parameter %q has %d values, want %d", t.param.Name, len(t.param.Param.Data), n)
		}
		if !(t.scale > 0) {
			return smhFitResult{}, fmt.Errorf("cannot fit the pool: parameter %q has scale %v", t.param.Name, t.scale)
		}
		for i, w := range t.param.Param.Data {
			if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
				return smhFitResult{}, fmt.Errorf("cannot fit the pool: parameter %q holds %v at %d", t.param.Name, w, i)
			}
		}
	}
	var res smhFitResult
	var err error
	switch cfg.Variant {
	case "product":
		res, err = fitSMHProduct(cfg, geo, tensors, pool, opt)
	case "kron":
		res, err = fitSMHKron(cfg, geo, tensors, pool, opt)
	case "hash":
		res = fitSMHHash(cfg, geo, tensors, pool)
	default:
		err = fmt.Errorf("unknown SMH variant %q", cfg.Variant)
	}
	res.Elapsed = time.Since(start)
	return res, err
}

// smhVirtual calls f(i, m) for every compressed value: i its index in the
// virtual vector, m its value divided by its tensor's scale.
func smhVirtual(tensors []smhTensor, f func(i int, m float64)) {
	for _, t := range tensors {
		s := float64(t.scale)
		for e, w := range t.param.Param.Data {
			f(t.offset+e, float64(w)/s)
		}
	}
}

func fitSMHProduct(cfg *SMHConfig, geo SMHGeometry, tensors []smhTensor, pool []float32, opt smhFitOptions) (smhFitResult, error) {
	d, r := geo.D, geo.Rank
	m := mat.NewDense(d, d, nil)
	raw := m.RawMatrix().Data // row-major, stride d
	smhVirtual(tensors, func(i int, v float64) { raw[i] = v })
	u, s, v, res, err := smhTruncatedSVD(m, r, cfg.Seed, opt)
	if err != nil {
		return res, err
	}
	// L is d x r, R r x d, both row-major.
	smhSetFactors(pool, u, s, v, cfg.Seed,
		func(i, k int) int { return i*r + k },
		func(k, j int) int { return d*r + k*d + j })
	return res, nil
}

// smhDeadSV is the relative size below which a singular value counts as
// zero: float32 weights carry no information beyond about 1e-7.
const smhDeadSV = 1e-6

// smhSetFactors writes the rank-r fit u·diag(s)·vᵀ as balanced factors,
// left(i, k) = √s_k·u[i, k] and right(k, j) = √s_k·v[j, k], at the pool
// indices the functions give. A direction the weights do not use (s_k
// zero, when M has rank below r) would leave column k of the left factor
// and row k of the right one both zero: a saddle point where both
// gradients vanish, so training could never use that rank. Such a column
// of the left factor is drawn at random (std r^(-1/4), as a random init)
// instead, with the right factor's row zero: the product is unchanged and
// the row's gradient is not zero.
func smhSetFactors(pool []float32, u *mat.Dense, s []float64, v *mat.Dense, seed uint64, left, right func(i, k int) int) {
	rows, r := u.Dims()
	cols, _ := v.Dims()
	var rng *runtime.RNG
	std := 1 / math.Sqrt(math.Sqrt(float64(r)))
	for k := 0; k < r; k++ {
		if s[k] > smhDeadSV*s[0] {
			sq := math.Sqrt(s[k])
			for i := 0; i < rows; i++ {
				pool[left(i, k)] = float32(u.At(i, k) * sq)
			}
			for j := 0; j < cols; j++ {
				pool[right(k, j)] = float32(v.At(j, k) * sq)
			}
			continue
		}
		if rng == nil {
			rng = runtime.NewRNG(seed)
		}
		for i := 0; i < rows; i++ {
			pool[left(i, k)] = float32(std * rng.NormFloat64())
		}
		for j := 0; j < cols; j++ {
			pool[right(k, j)] = 0
		}
	}
}

// fitSMHKron fits P = Σ_k A_k ⊗ B_k (A_k, B_k S x S, D = S²). Cell (i, j)
// of P is A_k[i/S, j/S]·B_k[i%S, j%S], so rearranging P's cells into the
// D x D matrix whose row a = (i/S)·S + j/S and column b = (i%S)·S + j%S
// hold P[i, j] turns the sum into Σ_k vec(A_k)·vec(B_k)ᵀ: a rank-r matrix,
// and the best such fit is its truncated SVD (Van Loan and Pitsianis, 1993).
func fitSMHKron(cfg *SMHConfig, geo SMHGeometry, tensors []smhTensor, pool []float32, opt smhFitOptions) (smhFitResult, error) {
	d, r := geo.D, geo.Rank
	side := isqrtCeil(d)
	if side*side != d {
		return smhFitResult{}, fmt.Errorf("kron: side %d is not a square", d)
	}
	m := mat.NewDense(d, d, nil)
	raw := m.RawMatrix().Data
	smhVirtual(tensors, func(idx int, v float64) {
		i, j := idx/d, idx%d
		a, b := (i/side)*side+j/side, (i%side)*side+j%side
		raw[a*d+b] = v
	})
	u, s, v, res, err := smhTruncatedSVD(m, r, cfg.Seed, opt)
	if err != nil {
		return res, err
	}
	// The pool holds A_0 .. A_{r-1}, then B_0 .. B_{r-1}, each S x S
	// row-major: vec(A_k) = √σ_k·u_k, vec(B_k) = √σ_k·v_k.
	smhSetFactors(pool, u, s, v, cfg.Seed,
		func(a, k int) int { return k*d + a },
		func(k, b int) int { return (r+k)*d + b })
	return res, nil
}

// fitSMHHash sets each bucket to the least-squares value of the weights
// hashed to it: W_i ≈ s·sign_i·pool[h(i)] in units of s makes it the mean
// of sign_i·W_i/s. The bucket and sign are runtime.HashBucket's with the
// keys SMHReconstruct gives the kernel (the seed's low 31 bits, tensor
// ids from 1 in layout order).
func fitSMHHash(cfg *SMHConfig, geo SMHGeometry, tensors []smhTensor, pool []float32) smhFitResult {
	k := len(pool)
	seed := uint64(cfg.Seed & math.MaxInt32)
	sum := make([]float64, k)
	cnt := make([]int, k)
	type cell struct {
		b   int32
		neg bool
	}
	cells := make([]cell, 0, geo.N)
	for ti, t := range tensors {
		s := float64(t.scale)
		for e, w := range t.param.Param.Data {
			b, neg := runtime.HashBucket(seed, uint64(ti+1), e, k)
			m := float64(w) / s
			if neg {
				m = -m
			}
			sum[b] += m
			cnt[b]++
			cells = append(cells, cell{int32(b), neg})
		}
	}
	for b := range pool {
		pool[b] = 0
		if cnt[b] > 0 {
			pool[b] = float32(sum[b] / float64(cnt[b]))
		}
	}
	var num, den float64
	i := 0
	smhVirtual(tensors, func(_ int, m float64) {
		c := cells[i]
		i++
		p := float64(pool[c.b])
		if c.neg {
			p = -p
		}
		num += (m - p) * (m - p)
		den += m * m
	})
	return smhFitResult{Method: "least squares per bucket", RelErr: smhRatio(num, den)}
}

func smhRatio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return math.Sqrt(num / den)
}

// smhTruncatedSVD returns the r leading singular triplets of the square
// matrix m: u and v (d x r, orthonormal columns) and s, largest first,
// with the relative Frobenius error of u·diag(s)·vᵀ, from ‖M‖² − Σ σ_k²
// (exact for both methods, whose approximation is an orthogonal
// projection of M).
func smhTruncatedSVD(m *mat.Dense, r int, seed uint64, opt smhFitOptions) (u *mat.Dense, s []float64, v *mat.Dense, res smhFitResult, err error) {
	d, _ := m.Dims()
	method := opt.Method
	p, q := opt.Oversample, opt.Power
	if p <= 0 {
		p = max(smhFitMinOversample, r/2)
	}
	if q <= 0 {
		q = smhFitPower
	}
	if method == "" {
		method = "randomized"
		if d <= smhFitExactSide || r+p >= d/2 {
			method = "exact"
		}
	}
	switch method {
	case "exact":
		u, s, v, err = exactSVD(m, r)
		res.Method = "exact SVD"
	case "randomized":
		u, s, v, err = randomizedSVD(m, r, p, q, seed)
		res.Method = fmt.Sprintf("randomized SVD, p=%d q=%d", p, q)
	default:
		err = fmt.Errorf("unknown SVD method %q", method)
	}
	if err != nil {
		return nil, nil, nil, res, err
	}
	norm2 := 0.0
	for _, x := range m.RawMatrix().Data {
		norm2 += x * x
	}
	kept := 0.0
	for _, x := range s {
		kept += x * x
	}
	res.RelErr = smhRatio(max(0, norm2-kept), norm2)
	return u, s, v, res, nil
}

// exactSVD is the rank-r truncation of LAPACK's thin SVD.
func exactSVD(m *mat.Dense, r int) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	var svd mat.SVD
	if !svd.Factorize(m, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("SVD did not converge")
	}
	var uf, vf mat.Dense
	svd.UTo(&uf)
	svd.VTo(&vf)
	d, _ := m.Dims()
	return mat.DenseCopyOf(uf.Slice(0, d, 0, r)), svd.Values(nil)[:r], mat.DenseCopyOf(vf.Slice(0, d, 0, r)), nil
}

// randomizedSVD is Halko, Martinsson and Tropp's randomized truncated SVD
// (SIAM Review 2011, algorithms 4.4 and 5.1): a Gaussian test matrix Ω of
// k = r+p columns, drawn from runtime.RNG(seed) so the result is
// reproducible; Q an orthonormal basis of (M·Mᵀ)^q·M·Ω, each product
// re-orthonormalised by a Householder QR so that the small singular
// directions survive in floating point; then the SVD of the k x d matrix
// B = Qᵀ·M, whose left factor Q lifts back. M ≈ Q·Qᵀ·M, truncated to r.
// Cost: 2q+2 products of M with a d x k matrix, against the dense SVD's
// O(d³).
func randomizedSVD(m *mat.Dense, r, p, q int, seed uint64) (u *mat.Dense, s []float64, v *mat.Dense, err error) {
	rows, cols := m.Dims()
	k := min(r+p, rows, cols)
	rng := runtime.NewRNG(seed)
	omega := mat.NewDense(cols, k, nil)
	for i, raw := 0, omega.RawMatrix().Data; i < len(raw); i++ {
		raw[i] = rng.NormFloat64()
	}
	y := mat.NewDense(rows, k, nil)
	z := mat.NewDense(cols, k, nil)
	y.Mul(m, omega)
	orthonormalize(y)
	for range q {
		z.Mul(m.T(), y)
		orthonormalize(z)
		y.Mul(m, z)
		orthonormalize(y)
	}
	// Bᵀ = Mᵀ·Q (d x k) = W·Σ·Xᵀ, so M ≈ Q·B = (Q·X)·Σ·Wᵀ.
	z.Mul(m.T(), y)
	var svd mat.SVD
	if !svd.Factorize(z, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("SVD did not converge")
	}
	var w, x mat.Dense
	svd.UTo(&w)
	svd.VTo(&x)
	u = mat.NewDense(rows, r, nil)
	u.Mul(y, x.Slice(0, k, 0, r))
	return u, svd.Values(nil)[:r], mat.DenseCopyOf(w.Slice(0, cols, 0, r)), nil
}

// orthonormalize replaces the columns of a (rows >= cols) by an
// orthonormal basis of their span: the Q of a Householder QR.
func orthonormalize(a *mat.Dense) {
	raw := a.RawMatrix()
	n := min(raw.Rows, raw.Cols)
	tau := make([]float64, n)
	work := make([]float64, 1)
	lapack64.Geqrf(raw, tau, work, -1)
	lwork := int(work[0])
	lapack64.Orgqr(raw, tau, work, -1)
	lwork = max(lwork, int(work[0]), 1)
	work = make([]float64, lwork)
	lapack64.Geqrf(raw, tau, work, lwork)
	lapack64.Orgqr(raw, tau, work, lwork)
}
