package runtime

import (
	"fmt"
	"math"
)

// SoftmaxParams describes softmax over the last axis of a tensor seen as
// rows: each sample holds Outer rows of Inner elements (a [N, K] logit
// tensor is Outer 1, Inner K), so a call processes n*Outer rows. Exponentials
// and sums are computed in float64 after subtracting the row maximum.
type SoftmaxParams struct {
	Outer int // rows per sample; 0 means 1
	Inner int // size of the softmax axis

	ok   bool
	rows int
	t    nnSoftmaxTask
}

// Init validates the geometry.
func (p *SoftmaxParams) Init() error {
	p.ok = false
	p.rows = p.Outer
	if p.rows == 0 {
		p.rows = 1
	}
	if p.rows < 1 || p.Inner < 1 {
		return fmt.Errorf("softmax: Outer %d, Inner %d: want Outer >= 0 and Inner >= 1", p.Outer, p.Inner)
	}
	p.t.p = p
	p.ok = true
	return nil
}

// Phases of nnSoftmaxTask.
const (
	nnSmFwd = iota
	nnSmLogFwd
	nnSmBack
	nnSmLogBack
)

type nnSoftmaxTask struct {
	p     *SoftmaxParams
	phase int
	// forward: y, x; backward: y = dx, x = dy, z = y of the forward pass
	y, x, z []float32
}

// Run implements Task over rows.
func (t *nnSoftmaxTask) Run(lo, hi int) {
	K := t.p.Inner
	for r := lo; r < hi; r++ {
		y, x := t.y[r*K:(r+1)*K], t.x[r*K:(r+1)*K]
		switch t.phase {
		case nnSmFwd, nnSmLogFwd:
			m := x[0]
			for _, v := range x {
				m = max(m, v)
			}
			mf := float64(m)
			if t.phase == nnSmFwd {
				inv := 1 / nnExpShifted(y, x, mf)
				for i := range y {
					y[i] = float32(float64(y[i]) * inv)
				}
			} else {
				lse := mf + math.Log(nnExpShifted(nil, x, mf))
				for i, v := range x {
					y[i] = float32(float64(v) - lse)
				}
			}
		case nnSmBack:
			z := t.z[r*K : (r+1)*K]
			var s float64
			for i, g := range x {
				s += float64(g) * float64(z[i])
			}
			for i, g := range x {
				y[i] = float32(float64(z[i]) * (float64(g) - s))
			}
		case nnSmLogBack:
			z := t.z[r*K : (r+1)*K]
			s := nnSum64(x)
			var buf [nnChunk]float64
			for off := 0; off < K; off += nnChunk {
				b := buf[:min(K-off, nnChunk)]
				nnWiden(b, z[off:])
				for i, v := range b {
					b[i] = nnExp(v)
				}
				g, dx := x[off:off+len(b)], y[off:off+len(b)]
				for i, e := range b {
					dx[i] = float32(float64(g[i]) - e*s)
				}
			}
		}
	}
}

func (p *SoftmaxParams) run(kernel string, phase, n int, y, x, z []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	nnCheckN(kernel, n)
	rows := n * p.rows
	size := rows * p.Inner
	t := &p.t
	t.phase = phase
	t.y = nnNeed(kernel, "output", y, size)
	t.x = nnNeed(kernel, "input", x, size)
	t.z = nil
	if phase == nnSmBack || phase == nnSmLogBack {
		t.z = nnNeed(kernel, "y", z, size)
	}
	ParallelFor(rows, max(1, (1<<12)/p.Inner), t)
}

// Softmax writes y = exp(x - max) / sum(exp(x - max)) per row.
func Softmax(p *SoftmaxParams, n int, y, x []float32) {
	p.run("Softmax", nnSmFwd, n, y, x, nil)
}

// SoftmaxBackward writes dx = y*(dy - sum(dy*y)) per row from the forward
// output y.
func SoftmaxBackward(p *SoftmaxParams, n int, dx, dy, y []float32) {
	p.run("SoftmaxBackward", nnSmBack, n, dx, dy, y)
}

// LogSoftmax writes y = x - max - log(sum(exp(x - max))) per row.
func LogSoftmax(p *SoftmaxParams, n int, y, x []float32) {
	p.run("LogSoftmax", nnSmLogFwd, n, y, x, nil)
}

// LogSoftmaxBackward writes dx = dy - exp(y)*sum(dy) per row from the forward
// output y.
func LogSoftmaxBackward(p *SoftmaxParams, n int, dx, dy, y []float32) {
	p.run("LogSoftmaxBackward", nnSmLogBack, n, dx, dy, y)
}
