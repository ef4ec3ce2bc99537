package runtime

import (
	"errors"
	"fmt"
)

// BiasKind says how Gemm's C operand broadcasts to the m x n output.
type BiasKind uint8

// The shapes ONNX Gemm's C may take.
const (
	BiasNone   BiasKind = iota // no C
	BiasScalar                 // one value for every element
	BiasRow                    // n values, one per output column ([n] or [1, n])
	BiasColumn                 // m values, one per output row ([m, 1])
	BiasFull                   // m x n values
)

// GemmParams describes ONNX Gemm, Y = Alpha·op(A)·op(B) + Beta·C, for a batch
// whose rows are the rows of A. M is the number of rows per sample (1 for a
// dense layer: op(A) is n·M x K), K the inner and N the output size.
type GemmParams struct {
	M, K, N        int
	TransA, TransB bool
	Alpha, Beta    float32
	Bias           BiasKind

	acc []float64 // column sums for the bias gradient, reused
}

// Init validates the geometry.
func (p *GemmParams) Init() error {
	if p.M < 1 || p.K < 1 || p.N < 1 {
		return fmt.Errorf("runtime: Gemm dimensions M=%d K=%d N=%d must be positive", p.M, p.K, p.N)
	}
	if p.Bias > BiasFull {
		return errors.New("runtime: Gemm bias kind out of range")
	}
	return nil
}

// Gemm computes y (n·M x N) from a, b and the optional bias c. With TransA, a
// is stored K x (n·M), which only a batch of one uses in practice.
func Gemm(p *GemmParams, n int, y, a, b, c []float32) {
	rows := n * p.M
	lda := p.K
	if p.TransA {
		lda = rows
	}
	ldb := p.N
	if p.TransB {
		ldb = p.K
	}
	beta := float32(0)
	if p.Bias != BiasNone && p.Beta != 0 {
		y = y[:rows*p.N]
		switch p.Bias {
		case BiasScalar:
			v := p.Beta * c[0]
			for i := range y {
				y[i] = v
			}
		case BiasRow:
			c = c[:p.N]
			for r := 0; r < rows; r++ {
				row := y[r*p.N : (r+1)*p.N]
				for j, v := range c {
					row[j] = p.Beta * v
				}
			}
		case BiasColumn:
			c = c[:rows]
			for r := 0; r < rows; r++ {
				row := y[r*p.N : (r+1)*p.N]
				v := p.Beta * c[r]
				for j := range row {
					row[j] = v
				}
			}
		case BiasFull:
			c = c[:rows*p.N]
			for i, v := range c {
				y[i] = p.Beta * v
			}
		}
		beta = 1
	}
	Sgemm(p.TransA, p.TransB, rows, p.N, p.K, p.Alpha, a, lda, b, ldb, beta, y, p.N)
}

// GemmBackward computes the gradients of Gemm: da, db and dc (each may be
// nil when not wanted), overwriting them. dc has the bias's own shape.
func GemmBackward(p *GemmParams, n int, da, db, dc, dy, a, b []float32) {
	rows := n * p.M
	if da != nil {
		// dA = alpha·dY·op(B)ᵀ, stored as A is (transposed when TransA).
		if p.TransA {
			Sgemm(p.TransB, true, p.K, rows, p.N, p.Alpha, b, ldOf(p.TransB, p.K, p.N), dy, p.N, 0, da, rows)
		} else {
			Sgemm(false, !p.TransB, rows, p.K, p.N, p.Alpha, dy, p.N, b, ldOf(p.TransB, p.K, p.N), 0, da, p.K)
		}
	}
	if db != nil {
		// dB = alpha·op(A)ᵀ·dY, stored as B is (transposed when TransB).
		lda := p.K
		if p.TransA {
			lda = rows
		}
		if p.TransB {
			Sgemm(true, p.TransA, p.N, p.K, rows, p.Alpha, dy, p.N, a, lda, 0, db, p.K)
		} else {
			Sgemm(!p.TransA, false, p.K, p.N, rows, p.Alpha, a, lda, dy, p.N, 0, db, p.N)
		}
	}
	if dc != nil && p.Bias != BiasNone {
		dy = dy[:rows*p.N]
		switch p.Bias {
		case BiasScalar:
			var s float64
			for _, v := range dy {
				s += float64(v)
			}
			dc[0] = p.Beta * float32(s)
		case BiasRow:
			p.sumRows(dc[:p.N], dy, rows)
		case BiasColumn:
			for r := 0; r < rows; r++ {
				var s float64
				for _, v := range dy[r*p.N : (r+1)*p.N] {
					s += float64(v)
				}
				dc[r] = p.Beta * float32(s)
			}
		case BiasFull:
			for i, v := range dy {
				dc[i] = p.Beta * v
			}
		}
	}
}

// ldOf is the row stride of op(B)'s storage: B is k x n, or n x k when
// transposed.
func ldOf(trans bool, k, n int) int {
	if trans {
		return k
	}
	return n
}

// sumRows writes Beta·Σ_r dy[r, :] into dst, summing in float64 in row
// order so the result does not depend on how work is split.
func (p *GemmParams) sumRows(dst, dy []float32, rows int) {
	if cap(p.acc) < p.N {
		p.acc = make([]float64, p.N)
	}
	acc := p.acc[:p.N]
	clear(acc)
	for r := 0; r < rows; r++ {
		for j, v := range dy[r*p.N : (r+1)*p.N] {
			acc[j] += float64(v)
		}
	}
	for j := range dst {
		dst[j] = p.Beta * float32(acc[j])
	}
}

// MatMulParams describes ONNX MatMul of A (lead..., M, K) and B (lead..., K,
// N) with numpy broadcasting of the leading dimensions. ALead and BLead are
// the leading dimensions per sample: when BatchA (BatchB) is set, the batch
// size n comes in front of ALead (BLead) at run time.
type MatMulParams struct {
	M, K, N        int
	ALead, BLead   []int
	BatchA, BatchB bool

	outLead []int // broadcast leading dims, without the batch
}

// Init validates the geometry and broadcasts the leading dimensions.
func (p *MatMulParams) Init() error {
	if p.M < 1 || p.K < 1 || p.N < 1 {
		return fmt.Errorf("runtime: MatMul dimensions M=%d K=%d N=%d must be positive", p.M, p.K, p.N)
	}
	r := max(len(p.ALead), len(p.BLead))
	p.outLead = make([]int, r)
	for i := 0; i < r; i++ {
		da, db := 1, 1
		if j := i - (r - len(p.ALead)); j >= 0 {
			da = p.ALead[j]
		}
		if j := i - (r - len(p.BLead)); j >= 0 {
			db = p.BLead[j]
		}
		switch {
		case da == db || db == 1:
			p.outLead[i] = da
		case da == 1:
			p.outLead[i] = db
		default:
			return fmt.Errorf("runtime: MatMul leading dimensions %v and %v do not broadcast", p.ALead, p.BLead)
		}
	}
	return nil
}

// MatMul computes y = a·b. The common case, a batched A against a 2-D B, is
// one Sgemm over all n·(lead)·M rows.
func MatMul(p *MatMulParams, n int, y, a, b []float32) {
	if !p.BatchB && len(p.BLead) == 0 {
		rows := p.M * prod(p.ALead)
		if p.BatchA {
			rows *= n
		}
		Sgemm(false, false, rows, p.N, p.K, 1, a, p.K, b, p.N, 0, y, p.N)
		return
	}
	p.eachProduct(n, func(ya, aa, ba int) {
		Sgemm(false, false, p.M, p.N, p.K, 1, a[aa:], p.K, b[ba:], p.N, 0, y[ya:], p.N)
	})
}

// MatMulBackward computes da and db (either may be nil), overwriting them;
// broadcast operands receive the sum over the dimensions they were
// broadcast along.
func MatMulBackward(p *MatMulParams, n int, da, db, dy, a, b []float32) {
	if !p.BatchB && len(p.BLead) == 0 {
		rows := p.M * prod(p.ALead)
		if p.BatchA {
			rows *= n
		}
		if da != nil {
			Sgemm(false, true, rows, p.K, p.N, 1, dy, p.N, b, p.N, 0, da, p.K)
		}
		if db != nil {
			Sgemm(true, false, p.K, p.N, rows, 1, a, p.K, dy, p.N, 0, db, p.N)
		}
		return
	}
	if da != nil {
		clear(da[:p.aLen(n)])
	}
	if db != nil {
		clear(db[:p.bLen(n)])
	}
	p.eachProduct(n, func(ya, aa, ba int) {
		if da != nil {
			Sgemm(false, true, p.M, p.K, p.N, 1, dy[ya:], p.N, b[ba:], p.N, 1, da[aa:], p.K)
		}
		if db != nil {
			Sgemm(true, false, p.K, p.N, p.M, 1, a[aa:], p.K, dy[ya:], p.N, 1, db[ba:], p.N)
		}
	})
}

func (p *MatMulParams) aLen(n int) int {
	l := prod(p.ALead) * p.M * p.K
	if p.BatchA {
		l *= n
	}
	return l
}

func (p *MatMulParams) bLen(n int) int {
	l := prod(p.BLead) * p.K * p.N
	if p.BatchB {
		l *= n
	}
	return l
}

// eachProduct calls f with the offsets of each output matrix and the A and
// B matrices that produce it, walking the batch and the broadcast leading
// dimensions in row-major order.
func (p *MatMulParams) eachProduct(n int, f func(ya, aa, ba int)) {
	r := len(p.outLead)
	total := prod(p.outLead)
	coord := [8]int{}
	if r > len(coord) {
		panic("runtime.MatMul: more than 8 leading dimensions")
	}
	aStride, bStride := p.M*p.K, p.K*p.N
	for s := 0; s < n; s++ {
		for o := 0; o < total; o++ {
			ai, bi := 0, 0
			for i := 0; i < r; i++ {
				if j := i - (r - len(p.ALead)); j >= 0 && p.ALead[j] != 1 {
					ai = ai*p.ALead[j] + coord[i]
				} else if j >= 0 {
					ai *= p.ALead[j]
				}
				if j := i - (r - len(p.BLead)); j >= 0 && p.BLead[j] != 1 {
					bi = bi*p.BLead[j] + coord[i]
				} else if j >= 0 {
					bi *= p.BLead[j]
				}
			}
			if p.BatchA {
				ai += s * prod(p.ALead)
			}
			if p.BatchB {
				bi += s * prod(p.BLead)
			}
			f((s*total+o)*p.M*p.N, ai*aStride, bi*bStride)
			for i := r - 1; i >= 0; i-- {
				coord[i]++
				if coord[i] < p.outLead[i] {
					break
				}
				coord[i] = 0
			}
		}
		if !p.BatchA && !p.BatchB {
			break
		}
	}
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
