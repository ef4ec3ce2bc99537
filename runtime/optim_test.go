package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// optimFixture is a parameter list with one tensor per group, plus one long
// enough to take the parallel path, and a gradient sequence for each step.
type optimFixture struct {
	params []Param
	grads  [][][]float32 // [step][param]
}

var optimGroups = []struct {
	name, group string
	n           int
}{
	{"conv.w", GroupWeights, 7},
	{"conv.b", GroupBias, 3},
	{"bn.scale", GroupNorm, 4},
	{"smh.L", GroupSMHFactors, 6},
	{"smh.s", GroupSMHScales, 2},
	{"other", "custom", 5},
	{"big", GroupWeights, optimMinParallel + 1000},
}

func newOptimFixture(steps int) *optimFixture {
	g := NewRNG(21)
	f := &optimFixture{}
	for _, pg := range optimGroups {
		f.params = append(f.params, Param{Name: pg.name, Group: pg.group,
			Data: randSlice(g, pg.n), Grad: make([]float32, pg.n)})
	}
	for s := 0; s < steps; s++ {
		var gs [][]float32
		for _, pg := range optimGroups {
			gs = append(gs, randSlice(g, pg.n))
		}
		f.grads = append(f.grads, gs)
	}
	return f
}

// clone deep-copies the parameter values.
func (f *optimFixture) clone() []Param {
	out := make([]Param, len(f.params))
	for i, p := range f.params {
		out[i] = Param{Name: p.Name, Group: p.Group,
			Data: append([]float32(nil), p.Data...), Grad: make([]float32, len(p.Grad))}
	}
	return out
}

func (f *optimFixture) run(o Optimizer, params []Param, from, to int, lrs []float32, setLR func(float32)) {
	for s := from; s < to; s++ {
		for i := range params {
			copy(params[i].Grad, f.grads[s][i])
		}
		if lrs != nil {
			setLR(lrs[s])
		}
		o.Step(params)
	}
}

// hyper is what a reference update uses for one parameter at one step,
// written out by hand for each test case rather than derived from Groups.
type hyper struct{ lr, wd float64 }

// The references below are PyTorch's update rules (torch/optim/sgd.py and
// adam.py, single-tensor path) written out in float64.

func TestSGDMatchesPyTorchRule(t *testing.T) {
	const steps = 5
	lrs := []float32{0.05, 0.04, 0.1, 0.02, 0.07}
	plain := func(lr, wd float64) func(int, int) hyper {
		return func(int, int) hyper { return hyper{lr, wd} }
	}
	for _, tc := range []struct {
		name      string
		opt       *SGD
		schedule  bool
		hp        func(step, param int) hyper
		mom, damp float64
		nesterov  bool
		decoupled bool
	}{
		{name: "plain", opt: &SGD{LR: 0.05}, hp: plain(0.05, 0)},
		{name: "momentum", opt: &SGD{LR: 0.05, Momentum: 0.9}, hp: plain(0.05, 0), mom: 0.9},
		{name: "dampening", opt: &SGD{LR: 0.05, Momentum: 0.9, Dampening: 0.3}, hp: plain(0.05, 0), mom: 0.9, damp: 0.3},
		{name: "nesterov", opt: &SGD{LR: 0.05, Momentum: 0.9, Nesterov: true}, hp: plain(0.05, 0), mom: 0.9, nesterov: true},
		{
			name: "L2 decay, default groups exempt",
			opt:  &SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 0.1},
			hp: func(_, i int) hyper {
				switch optimGroups[i].group {
				case GroupNorm, GroupSMHFactors, GroupSMHScales:
					return hyper{0.05, 0}
				}
				return hyper{0.05, 0.1}
			},
			mom: 0.9,
		},
		{
			name: "decoupled decay",
			opt:  &SGD{LR: 0.05, Momentum: 0.5, WeightDecay: 0.1, DecoupledDecay: true, Nesterov: true},
			hp: func(_, i int) hyper {
				switch optimGroups[i].group {
				case GroupNorm, GroupSMHFactors, GroupSMHScales:
					return hyper{0.05, 0}
				}
				return hyper{0.05, 0.1}
			},
			mom: 0.5, nesterov: true, decoupled: true,
		},
		{
			name: "group overrides and a schedule",
			opt: &SGD{LR: 1, Momentum: 0.9, WeightDecay: 0.01, Groups: map[string]Group{
				GroupSMHFactors: {LRScale: 4},              // keeps the default NoDecay
				GroupBias:       {LR: 0.01, NoDecay: true}, // absolute LR: the schedule does not reach it
				GroupNorm:       {WeightDecay: 0.2},        // decay back on, own value
				GroupWeights:    {WeightDecay: 0.3, LRScale: 2},
				"custom":        {LRScale: 0.5},
			}},
			schedule: true,
			hp: func(s, i int) hyper {
				lr := float64(lrs[s])
				switch optimGroups[i].group {
				case GroupSMHFactors:
					return hyper{4 * lr, 0}
				case GroupBias:
					return hyper{0.01, 0}
				case GroupNorm:
					return hyper{lr, 0.2}
				case GroupWeights:
					return hyper{2 * lr, 0.3}
				case GroupSMHScales:
					return hyper{lr, 0}
				}
				return hyper{0.5 * lr, 0.01}
			},
			mom: 0.9,
		},
		{name: "zero LR leaves parameters alone", opt: &SGD{Momentum: 0.9}, hp: plain(0, 0), mom: 0.9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOptimFixture(steps)
			params := f.clone()
			tc.opt.Init(params)
			var sched []float32
			if tc.schedule {
				sched = lrs
			}
			f.run(tc.opt, params, 0, steps, sched, func(lr float32) { tc.opt.LR = lr })

			for i, p0 := range f.params {
				want := make([]float64, len(p0.Data))
				buf := make([]float64, len(p0.Data))
				for j, v := range p0.Data {
					want[j] = float64(v)
				}
				for s := 0; s < steps; s++ {
					h := tc.hp(s, i)
					for j := range want {
						g := float64(f.grads[s][i][j])
						if h.wd != 0 && !tc.decoupled {
							g += h.wd * want[j]
						}
						if tc.decoupled {
							want[j] *= 1 - h.lr*h.wd
						}
						if tc.mom != 0 {
							if s == 0 {
								buf[j] = g
							} else {
								buf[j] = tc.mom*buf[j] + (1-tc.damp)*g
							}
							if tc.nesterov {
								g += tc.mom * buf[j]
							} else {
								g = buf[j]
							}
						}
						want[j] -= h.lr * g
					}
				}
				requireClose(t, want, params[i].Data, 1e-5, p0.Name)
			}
		})
	}
}

func TestAdamMatchesPyTorchRule(t *testing.T) {
	const steps = 5
	noDecayDefault := func(lr, wd float64) func(int, int) hyper {
		return func(_, i int) hyper {
			switch optimGroups[i].group {
			case GroupNorm, GroupSMHFactors, GroupSMHScales:
				return hyper{lr, 0}
			}
			return hyper{lr, wd}
		}
	}
	for _, tc := range []struct {
		name        string
		opt         Optimizer
		hp          func(step, param int) hyper
		b1, b2, eps float64
		decoupled   bool
	}{
		{name: "Adam, zero fields mean defaults", opt: &Adam{LR: 1e-2},
			hp: noDecayDefault(1e-2, 0), b1: 0.9, b2: 0.999, eps: 1e-8},
		{name: "Adam, L2 decay", opt: &Adam{LR: 1e-2, WeightDecay: 0.1},
			hp: noDecayDefault(1e-2, 0.1), b1: 0.9, b2: 0.999, eps: 1e-8},
		{name: "AdamW", opt: &AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
			hp: noDecayDefault(1e-3, 0.01), b1: 0.9, b2: 0.999, eps: 1e-8, decoupled: true},
		{name: "AdamW, own betas and large decay", opt: &AdamW{LR: 5e-2, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.5},
			hp: noDecayDefault(5e-2, 0.5), b1: 0.8, b2: 0.99, eps: 1e-6, decoupled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOptimFixture(steps)
			params := f.clone()
			tc.opt.Init(params)
			f.run(tc.opt, params, 0, steps, nil, nil)
			for i, p0 := range f.params {
				want := make([]float64, len(p0.Data))
				m := make([]float64, len(p0.Data))
				v := make([]float64, len(p0.Data))
				for j, x := range p0.Data {
					want[j] = float64(x)
				}
				// Betas as the float32 fields hold them.
				b1, b2, eps := float64(float32(tc.b1)), float64(float32(tc.b2)), float64(float32(tc.eps))
				for s := 0; s < steps; s++ {
					h := tc.hp(s, i)
					step := float64(s + 1)
					bc1 := 1 - math.Pow(b1, step)
					bc2 := 1 - math.Pow(b2, step)
					for j := range want {
						g := float64(f.grads[s][i][j])
						if tc.decoupled {
							want[j] *= 1 - h.lr*h.wd
						} else {
							g += h.wd * want[j]
						}
						m[j] = b1*m[j] + (1-b1)*g
						v[j] = b2*v[j] + (1-b2)*g*g
						denom := math.Sqrt(v[j])/math.Sqrt(bc2) + eps
						want[j] -= h.lr / bc1 * m[j] / denom
					}
				}
				requireClose(t, want, params[i].Data, 2e-5, p0.Name)
			}
		})
	}
}

func TestAdamWGroupsAndSchedule(t *testing.T) {
	const steps = 4
	lrs := []float32{1e-3, 2e-3, 5e-4, 1e-2}
	f := newOptimFixture(steps)
	params := f.clone()
	o := &AdamW{LR: 1, WeightDecay: 0.05, Groups: map[string]Group{
		GroupSMHFactors: {LRScale: 3, WeightDecay: 0.1},
		GroupBias:       {LR: 0.02},
	}}
	o.Init(params)
	f.run(o, params, 0, steps, lrs, func(lr float32) { o.LR = lr })
	for i, p0 := range f.params {
		want := make([]float64, len(p0.Data))
		m := make([]float64, len(p0.Data))
		v := make([]float64, len(p0.Data))
		for j, x := range p0.Data {
			want[j] = float64(x)
		}
		b1, b2 := float64(float32(0.9)), float64(float32(0.999))
		for s := 0; s < steps; s++ {
			lr, wd := float64(lrs[s]), 0.05
			switch optimGroups[i].group {
			case GroupSMHFactors:
				lr, wd = 3*lr, 0.1
			case GroupBias:
				lr = 0.02
			case GroupNorm, GroupSMHScales:
				wd = 0
			}
			bc1 := 1 - math.Pow(b1, float64(s+1))
			bc2 := 1 - math.Pow(b2, float64(s+1))
			for j := range want {
				g := float64(f.grads[s][i][j])
				want[j] *= 1 - lr*wd
				m[j] = b1*m[j] + (1-b1)*g
				v[j] = b2*v[j] + (1-b2)*g*g
				want[j] -= lr / bc1 * m[j] / (math.Sqrt(v[j])/math.Sqrt(bc2) + float64(float32(1e-8)))
			}
		}
		requireClose(t, want, params[i].Data, 2e-5, p0.Name)
	}
}

func TestOptimizerStateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		mk   func() Optimizer
	}{
		{"SGD", func() Optimizer { return &SGD{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3} }},
		{"SGD dampening", func() Optimizer { return &SGD{LR: 0.05, Momentum: 0.9, Dampening: 0.5} }},
		{"Adam", func() Optimizer { return &Adam{LR: 1e-2, WeightDecay: 1e-2} }},
		{"AdamW", func() Optimizer { return &AdamW{LR: 1e-2, WeightDecay: 1e-2} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOptimFixture(6)
			a := tc.mk()
			pa := f.clone()
			a.Init(pa)
			f.run(a, pa, 0, 3, nil, nil)

			// Serialise as a checkpoint would: deep copies, in State's order.
			step, bufs := a.State()
			require.Equal(t, int64(3), step)
			require.Len(t, bufs, len(pa)*len(a.StateKinds()))
			for i, b := range bufs {
				require.Len(t, b, len(pa[i/len(a.StateKinds())].Data), "buffer %d", i)
			}
			saved := make([][]float32, len(bufs))
			for i, b := range bufs {
				saved[i] = append([]float32(nil), b...)
			}
			pb := make([]Param, len(pa))
			for i, p := range pa {
				pb[i] = Param{Name: p.Name, Group: p.Group, Data: append([]float32(nil), p.Data...),
					Grad: make([]float32, len(p.Grad))}
			}

			b := tc.mk()
			b.Init(pb)
			require.NoError(t, b.SetState(step, saved))
			f.run(a, pa, 3, 6, nil, nil)
			f.run(b, pb, 3, 6, nil, nil)
			for i := range pa {
				require.Equal(t, pa[i].Data, pb[i].Data, "param %s", pa[i].Name)
			}

			require.Error(t, b.SetState(step, saved[1:]))
			bad := append([][]float32(nil), saved...)
			bad[2] = bad[2][:1]
			require.ErrorContains(t, b.SetState(step, bad), "want")
			require.Error(t, b.SetState(-1, saved))
		})
	}
}

func TestOptimizerStepAllocatesNothing(t *testing.T) {
	for _, o := range []Optimizer{
		&SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 1e-4, Groups: map[string]Group{GroupSMHFactors: {LRScale: 4}}},
		&Adam{LR: 1e-3},
		&AdamW{LR: 1e-3, WeightDecay: 0.01},
	} {
		f := newOptimFixture(1)
		params := f.clone()
		o.Init(params)
		o.Step(params)
		require.Zero(t, testing.AllocsPerRun(10, func() { o.Step(params) }), "%T", o)
	}
}

func TestOptimizerStepChecksParams(t *testing.T) {
	f := newOptimFixture(1)
	params := f.clone()
	o := &SGD{LR: 0.1}
	o.Step(params) // Init on first use
	step, _ := o.State()
	require.Equal(t, int64(1), step)
	require.Panics(t, func() { o.Step(params[1:]) })
	short := f.clone()
	short[0].Grad = short[0].Grad[:1]
	require.Panics(t, func() { o.Step(short) })
}

func TestDefaultGroup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		groups    map[string]Group
		lr, wd    float32
		wantLR    float32
		wantDecay float32
	}{
		{GroupWeights, nil, 0.1, 0.01, 0.1, 0.01},
		{GroupBias, nil, 0.1, 0.01, 0.1, 0.01},
		{GroupNorm, nil, 0.1, 0.01, 0.1, 0},
		{GroupSMHFactors, nil, 0.1, 0.01, 0.1, 0},
		{GroupSMHScales, nil, 0.1, 0.01, 0.1, 0},
		{GroupSMHFactors, map[string]Group{GroupSMHFactors: {LRScale: 4}}, 0.1, 0.01, 0.4, 0},
		{GroupNorm, map[string]Group{GroupNorm: {WeightDecay: 0.01}}, 0.1, 0.01, 0.1, 0.01},
		{GroupWeights, map[string]Group{GroupWeights: {NoDecay: true, WeightDecay: 3}}, 0.1, 0.01, 0.1, 0},
		{GroupWeights, map[string]Group{GroupWeights: {LR: 0.5, LRScale: 3}}, 0.1, 0.01, 0.5, 0.01},
	} {
		lr, wd := optimResolveGroup(tc.groups, tc.name, tc.lr, tc.wd)
		require.InDelta(t, tc.wantLR, lr, 1e-7, "%s %v", tc.name, tc.groups)
		require.Equal(t, tc.wantDecay, wd, "%s %v", tc.name, tc.groups)
	}
}
