package runtime

import (
	"fmt"
	"math"
)

// Param is one trainable tensor as a model hands it to an optimizer: the
// model owns Data and Grad (same length) and lists its parameters in a
// fixed order, the order optimizer state is kept and exported in.
type Param struct {
	Name  string    // the model's name for the tensor, for messages and checkpoints
	Group string    // one of the Group* names below, or any name the model chooses
	Data  []float32 // the values, updated in place by Step
	Grad  []float32 // dLoss/dData, read by Step and left as it is
}

// Parameter group names that generated models use. Groups exist because the
// parameters of a compressed model want different treatment: SMH factors
// move every weight of the model at once and usually want their own rate,
// and weight decay on factors, scales or normalisation parameters is not
// the L2 regularisation it is on ordinary weights.
const (
	GroupWeights    = "weights"     // dense conv and matmul weights
	GroupBias       = "bias"        // biases of conv and matmul layers
	GroupNorm       = "norm"        // batch-norm scale and shift
	GroupSMHFactors = "smh_factors" // the L and R factors of the SMH virtual matrix
	GroupSMHScales  = "smh_scales"  // the per-tensor scales of SMH (and of the hashing baseline)
	GroupHashPool   = "hash_pool"   // the shared pool of the hashing baseline
)

// Group overrides an optimizer's hyperparameters for the parameters of one
// group. Fields left zero inherit.
type Group struct {
	// LR, when positive, is the group's absolute learning rate; the
	// optimizer's LR (and any schedule the caller applies to it) no longer
	// reaches the group.
	LR float32
	// LRScale multiplies the optimizer's LR when LR is zero; zero means 1.
	// Use it for SMH factors so that a schedule on the optimizer's LR
	// applies to them too.
	LRScale float32
	// WeightDecay, when positive, replaces the optimizer's WeightDecay
	// (and overrides a default NoDecay).
	WeightDecay float32
	// NoDecay turns weight decay off for the group; it wins over
	// WeightDecay.
	NoDecay bool
}

// DefaultGroup is the override a group starts from before its entry in an
// optimizer's Groups map, if any, is laid over it: no weight decay for SMH
// factors (decay on L and R pushes the whole virtual matrix toward low rank
// rather than shrinking weights), SMH scales and normalisation parameters;
// nothing for other groups. The entry's non-zero fields win, so
// {"smh_factors": {LRScale: 4}} keeps the factors undecayed, and a positive
// WeightDecay in an entry turns decay back on for such a group.
func DefaultGroup(name string) Group {
	switch name {
	case GroupSMHFactors, GroupSMHScales, GroupNorm:
		return Group{NoDecay: true}
	}
	return Group{}
}

// optimResolveGroup returns the learning rate and weight decay for a group:
// DefaultGroup(name) overlaid with groups[name].
func optimResolveGroup(groups map[string]Group, name string, lr, wd float32) (float32, float32) {
	g := DefaultGroup(name)
	if e, ok := groups[name]; ok {
		if e.LR > 0 {
			g.LR = e.LR
		}
		if e.LRScale != 0 {
			g.LRScale = e.LRScale
		}
		if e.WeightDecay > 0 {
			g.WeightDecay, g.NoDecay = e.WeightDecay, false
		}
		if e.NoDecay {
			g.NoDecay = true
		}
	}
	switch {
	case g.LR > 0:
		lr = g.LR
	case g.LRScale != 0:
		lr *= g.LRScale
	}
	switch {
	case g.NoDecay:
		wd = 0
	case g.WeightDecay > 0:
		wd = g.WeightDecay
	}
	return lr, wd
}

// Optimizer updates a model's parameters from their gradients. Generated
// models call Init once with their parameter list (SetOptimizer) and Step
// after each backward pass with the same list.
//
// State and SetState serve checkpoints. The state is the step counter and
// a list of buffers in this order: for each parameter in the order given
// to Init, the buffers named by StateKinds in that order, each as long as
// the parameter. The order depends only on the parameter list, never on
// map iteration or hyperparameter values.
type Optimizer interface {
	// Init allocates the optimizer's state for params, zeroed, and resets
	// the step counter. It is the only method that allocates.
	Init(params []Param)
	// Step applies one update to every parameter. params must match Init's
	// list in order and lengths; Step panics otherwise. Hyperparameters are
	// read at every call, so a schedule may change them between steps.
	Step(params []Param)
	// StateKinds names the per-parameter buffers (PyTorch's state keys).
	StateKinds() []string
	// State returns the step counter and the state buffers themselves,
	// not copies: a checkpoint writer should copy or serialise them before
	// the next Step.
	State() (step int64, bufs [][]float32)
	// SetState copies a state returned by State (possibly from another
	// process) into the optimizer, which must have been initialised with
	// the same parameter list. It reports a mismatch in the number or the
	// lengths of the buffers.
	SetState(step int64, bufs [][]float32) error
}

// optimMinParallel is the parameter length from which an update is spread
// over the worker pool; smaller ones are not worth the hand-off.
const optimMinParallel = 1 << 15

// optimState is the bookkeeping SGD and Adam share.
type optimState struct {
	step  int64
	sizes []int
	bufs  [][]float32 // kinds per parameter, parameter-major
	kinds int
}

func (s *optimState) init(params []Param, kinds int) {
	s.step = 0
	s.kinds = kinds
	s.sizes = make([]int, len(params))
	s.bufs = make([][]float32, 0, kinds*len(params))
	for i, p := range params {
		s.sizes[i] = len(p.Data)
		for k := 0; k < kinds; k++ {
			s.bufs = append(s.bufs, make([]float32, len(p.Data)))
		}
	}
}

func (s *optimState) check(op string, params []Param) {
	if len(params) != len(s.sizes) {
		panic(fmt.Sprintf("runtime: %s.Step: %d params, Init had %d", op, len(params), len(s.sizes)))
	}
	for i, p := range params {
		if len(p.Data) != s.sizes[i] || len(p.Grad) != s.sizes[i] {
			panic(fmt.Sprintf("runtime: %s.Step: param %d (%s): data %d and grad %d values, Init had %d",
				op, i, p.Name, len(p.Data), len(p.Grad), s.sizes[i]))
		}
	}
}

func (s *optimState) setState(op string, step int64, bufs [][]float32) error {
	if len(bufs) != len(s.bufs) {
		return fmt.Errorf("runtime: %s.SetState: want %d state buffers, have %d", op, len(s.bufs), len(bufs))
	}
	for i, b := range bufs {
		if len(b) != len(s.bufs[i]) {
			return fmt.Errorf("runtime: %s.SetState: buffer %d (param %d): want %d values, have %d",
				op, i, i/max(s.kinds, 1), len(s.bufs[i]), len(b))
		}
	}
	if step < 0 {
		return fmt.Errorf("runtime: %s.SetState: negative step %d", op, step)
	}
	for i, b := range bufs {
		copy(s.bufs[i], b)
	}
	s.step = step
	return nil
}

// optimRunUpdate applies t over n elements, on the pool when n is large. The
// update is elementwise, so the split cannot change the result.
func optimRunUpdate(n int, t Task) {
	if n < optimMinParallel {
		t.Run(0, n)
		return
	}
	ParallelFor(n, optimMinParallel/2, t)
}

// SGD is stochastic gradient descent with momentum, PyTorch's torch.optim.SGD
// semantics. For each parameter p with gradient g, at step t = 1, 2, ...:
//
//	g ← g + wd·p                      (WeightDecay, unless DecoupledDecay)
//	p ← p·(1 − lr·wd)                 (DecoupledDecay instead, as SGDW)
//	b ← g at t = 1, else μ·b + (1 − dampening)·g
//	g ← g + μ·b if Nesterov, else b   (when Momentum μ ≠ 0)
//	p ← p − lr·g
//
// The zero value of every field means zero: SGD{LR: 0.1} is plain SGD.
// Unlike PyTorch, weight decay skips the groups DefaultGroup exempts
// (SMH factors and scales, norm parameters) unless Groups says otherwise.
// The momentum buffer is kept even when Momentum is zero, so that the state
// layout does not depend on hyperparameters.
type SGD struct {
	LR             float32 // learning rate lr
	Momentum       float32 // momentum factor μ; 0 disables momentum
	Dampening      float32 // scales the gradient into the momentum buffer by 1 − dampening
	Nesterov       bool    // Nesterov momentum (PyTorch's formulation)
	WeightDecay    float32 // decay factor wd
	DecoupledDecay bool    // shrink the weights directly instead of adding wd·p to the gradient
	// Groups overrides LR and WeightDecay per parameter group; see Group
	// and DefaultGroup. It may be changed between steps.
	Groups map[string]Group

	st   optimState
	task sgdTask
}

// Init implements Optimizer.
func (o *SGD) Init(params []Param) { o.st.init(params, 1) }

// StateKinds implements Optimizer: the one buffer is the momentum buffer.
func (o *SGD) StateKinds() []string { return []string{"momentum_buffer"} }

// State implements Optimizer.
func (o *SGD) State() (int64, [][]float32) { return o.st.step, o.st.bufs }

// SetState implements Optimizer.
func (o *SGD) SetState(step int64, bufs [][]float32) error {
	return o.st.setState("SGD", step, bufs)
}

// Step implements Optimizer. It calls Init first if Init was never called.
func (o *SGD) Step(params []Param) {
	if o.st.sizes == nil {
		o.Init(params)
	}
	o.st.check("SGD", params)
	t := &o.task
	for i, p := range params {
		lr, wd := optimResolveGroup(o.Groups, p.Group, o.LR, o.WeightDecay)
		*t = sgdTask{p: p.Data, g: p.Grad, b: o.st.bufs[i], lr: lr, mom: o.Momentum,
			damp: 1 - o.Dampening, nesterov: o.Nesterov, first: o.st.step == 0}
		if o.DecoupledDecay {
			t.shrink = 1 - lr*wd
		} else {
			t.shrink, t.wd = 1, wd
		}
		optimRunUpdate(len(p.Data), t)
	}
	*t = sgdTask{}
	o.st.step++
}

type sgdTask struct {
	p, g, b                   []float32
	lr, wd, mom, damp, shrink float32
	nesterov, first           bool
}

// Run updates elements [lo, hi) of one parameter.
func (t *sgdTask) Run(lo, hi int) {
	p, g, b := t.p[lo:hi], t.g[lo:hi], t.b[lo:hi]
	g, b = g[:len(p)], b[:len(p)]
	lr, wd, mom, damp, shrink := t.lr, t.wd, t.mom, t.damp, t.shrink
	for i, x := range p {
		d := g[i]
		if wd != 0 {
			d += wd * x
		}
		if shrink != 1 {
			x *= shrink
		}
		if mom != 0 {
			var m float32
			if t.first {
				m = d
			} else {
				m = mom*b[i] + damp*d
			}
			b[i] = m
			if t.nesterov {
				d += mom * m
			} else {
				d = m
			}
		}
		p[i] = x - lr*d
	}
}

// Adam is torch.optim.Adam: weight decay is L2, added to the gradient
// before the moments. For decoupled decay use AdamW. Fields and defaults
// are AdamW's.
type Adam struct {
	LR          float32 // learning rate
	Beta1       float32 // first-moment decay; zero means 0.9
	Beta2       float32 // second-moment decay; zero means 0.999
	Eps         float32 // added to the denominator; zero means 1e-8
	WeightDecay float32 // L2 factor added to the gradient as wd·p
	// Groups overrides LR and WeightDecay per parameter group; see Group
	// and DefaultGroup.
	Groups map[string]Group

	st   optimState
	task adamTask
}

// AdamW is torch.optim.AdamW (Loshchilov and Hutter): for each parameter p
// with gradient g, at step t = 1, 2, ...:
//
//	p ← p·(1 − lr·wd)
//	m ← β1·m + (1 − β1)·g
//	v ← β2·v + (1 − β2)·g²
//	p ← p − lr/(1 − β1ᵗ) · m / (sqrt(v)/sqrt(1 − β2ᵗ) + ε)
//
// Zero Beta1, Beta2 and Eps mean PyTorch's defaults 0.9, 0.999 and 1e-8 (a
// literal zero β1 is rarely wanted; pass a tiny value such as 1e-30 for
// it). Zero LR and WeightDecay mean zero: a schedule that ends at LR 0 must
// stop the updates, and decay is opt-in. As with SGD, decay skips the groups
// DefaultGroup exempts unless Groups says otherwise.
type AdamW struct {
	LR          float32 // learning rate lr
	Beta1       float32 // first-moment decay β1; zero means 0.9
	Beta2       float32 // second-moment decay β2; zero means 0.999
	Eps         float32 // ε; zero means 1e-8
	WeightDecay float32 // decoupled decay factor wd
	// Groups overrides LR and WeightDecay per parameter group; see Group
	// and DefaultGroup.
	Groups map[string]Group

	st   optimState
	task adamTask
}

// Init implements Optimizer.
func (o *Adam) Init(params []Param) { o.st.init(params, 2) }

// StateKinds implements Optimizer: the first and second moment estimates.
func (o *Adam) StateKinds() []string { return []string{"exp_avg", "exp_avg_sq"} }

// State implements Optimizer.
func (o *Adam) State() (int64, [][]float32) { return o.st.step, o.st.bufs }

// SetState implements Optimizer.
func (o *Adam) SetState(step int64, bufs [][]float32) error {
	return o.st.setState("Adam", step, bufs)
}

// Step implements Optimizer. It calls Init first if Init was never called.
func (o *Adam) Step(params []Param) {
	if o.st.sizes == nil {
		o.Init(params)
	}
	o.st.check("Adam", params)
	optimAdamStep(&o.st, &o.task, params, o.Groups, o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, false)
}

// Init implements Optimizer.
func (o *AdamW) Init(params []Param) { o.st.init(params, 2) }

// StateKinds implements Optimizer: the first and second moment estimates.
func (o *AdamW) StateKinds() []string { return []string{"exp_avg", "exp_avg_sq"} }

// State implements Optimizer.
func (o *AdamW) State() (int64, [][]float32) { return o.st.step, o.st.bufs }

// SetState implements Optimizer.
func (o *AdamW) SetState(step int64, bufs [][]float32) error {
	return o.st.setState("AdamW", step, bufs)
}

// Step implements Optimizer. It calls Init first if Init was never called.
func (o *AdamW) Step(params []Param) {
	if o.st.sizes == nil {
		o.Init(params)
	}
	o.st.check("AdamW", params)
	optimAdamStep(&o.st, &o.task, params, o.Groups, o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay, true)
}

func optimAdamStep(st *optimState, t *adamTask, params []Param, groups map[string]Group,
	lr0, b1, b2, eps, wd0 float32, decoupled bool) {
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	step := st.step + 1
	// Bias corrections in float64, as PyTorch computes them in Python floats.
	bc1 := 1 - math.Pow(float64(b1), float64(step))
	bc2Sqrt := math.Sqrt(1 - math.Pow(float64(b2), float64(step)))
	for i, p := range params {
		lr, wd := optimResolveGroup(groups, p.Group, lr0, wd0)
		*t = adamTask{p: p.Data, g: p.Grad, m: st.bufs[2*i], v: st.bufs[2*i+1],
			b1c: 1 - b1, b2: b2, b2c: 1 - b2, eps: eps,
			stepSize: float32(float64(lr) / bc1), bc2Sqrt: float32(bc2Sqrt), shrink: 1}
		if decoupled {
			t.shrink = 1 - lr*wd
		} else {
			t.wd = wd
		}
		optimRunUpdate(len(p.Data), t)
	}
	*t = adamTask{}
	st.step = step
}

type adamTask struct {
	p, g, m, v                               []float32
	b1c, b2, b2c, eps, stepSize, bc2Sqrt, wd float32
	shrink                                   float32
}

// Run updates elements [lo, hi) of one parameter.
func (t *adamTask) Run(lo, hi int) {
	p, g, m, v := t.p[lo:hi], t.g[lo:hi], t.m[lo:hi], t.v[lo:hi]
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	b1c, b2, b2c, eps, stepSize, bc2Sqrt, wd, shrink := t.b1c, t.b2, t.b2c, t.eps, t.stepSize, t.bc2Sqrt, t.wd, t.shrink
	for i, x := range p {
		d := g[i]
		if wd != 0 {
			d += wd * x
		}
		x *= shrink
		mi := m[i] + b1c*(d-m[i]) // PyTorch's exp_avg.lerp_(grad, 1-beta1)
		vi := b2*v[i] + b2c*d*d
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
		p[i] = x - stepSize*(mi/denom)
	}
}
