package runtime

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropyParams describes a batch of logits [n, Classes] with one
// int32 class label per sample.
type SoftmaxCrossEntropyParams struct {
	Classes int // length of each logit row; labels must lie in [0, Classes)

	ok      bool
	rowLoss []float64 // per-sample losses, summed in order after the parallel part
	t       nnSCETask
}

// Init validates the class count.
func (p *SoftmaxCrossEntropyParams) Init() error {
	p.ok = false
	if p.Classes < 1 {
		return fmt.Errorf("softmax cross-entropy: %d classes, want >= 1", p.Classes)
	}
	p.t.p = p
	p.ok = true
	return nil
}

// LabelError reports a label outside [0, Classes).
type LabelError struct {
	Index   int   // sample whose label is bad (the first one)
	Label   int32 // its value
	Classes int   // the valid range's end
}

// Error names the sample and the valid range.
func (e *LabelError) Error() string {
	return fmt.Sprintf("softmax cross-entropy: sample %d has label %d, want in [0, %d)", e.Index, e.Label, e.Classes)
}

type nnSCETask struct {
	p       *SoftmaxCrossEntropyParams
	n       int
	d, x    []float32
	labels  []int32
	invN    float64
	rowLoss []float64
}

// Run implements Task over samples.
func (t *nnSCETask) Run(lo, hi int) {
	K := t.p.Classes
	for r := lo; r < hi; r++ {
		x := t.x[r*K : (r+1)*K]
		m := x[0]
		for _, v := range x {
			m = max(m, v)
		}
		mf := float64(m)
		lab := int(t.labels[r])
		xl := float64(x[lab]) // read before d, which may alias x, is written
		var d []float32
		if t.d != nil {
			d = t.d[r*K : (r+1)*K]
		}
		// d receives exp(x-m) first, then is scaled into the gradient.
		s := nnExpShifted(d, x, mf)
		t.rowLoss[r] = mf + math.Log(s) - xl
		if d == nil {
			continue
		}
		k := t.invN / s
		for i, e := range d {
			d[i] = float32(float64(e) * k)
		}
		d[lab] = float32((nnExp(xl-mf)/s - 1) * t.invN)
	}
}

// SoftmaxCrossEntropy returns the mean over the n samples of
// -log(softmax(logits)[label]), accumulated in float64, and, when dlogits is
// not nil, writes its gradient (softmax(logits) - onehot(label))/n. A label
// outside [0, Classes) is reported as a *LabelError before anything is
// written (the loss is then 0 and dlogits untouched); it never panics.
func SoftmaxCrossEntropy(p *SoftmaxCrossEntropyParams, n int, dlogits, logits []float32, labels []int32) (float32, error) {
	const k = "SoftmaxCrossEntropy"
	if !p.ok {
		nnPanicInit(k)
	}
	nnCheckN(k, n)
	size := n * p.Classes
	logits = nnNeed(k, "logits", logits, size)
	if dlogits != nil {
		dlogits = nnNeed(k, "dlogits", dlogits, size)
	}
	if len(labels) < n {
		nnPanicLen(k, "labels", len(labels), n)
	}
	for i, l := range labels[:n] {
		if l < 0 || int(l) >= p.Classes {
			return 0, &LabelError{Index: i, Label: l, Classes: p.Classes}
		}
	}
	if n == 0 {
		return 0, nil
	}
	if cap(p.rowLoss) < n {
		p.rowLoss = make([]float64, n)
	}
	t := &p.t
	t.n, t.d, t.x, t.labels = n, dlogits, logits, labels[:n]
	t.invN = 1 / float64(n)
	t.rowLoss = p.rowLoss[:n]
	ParallelFor(n, max(1, (1<<12)/p.Classes), t)
	var sum float64
	for _, l := range t.rowLoss {
		sum += l
	}
	return float32(sum / float64(n)), nil
}
