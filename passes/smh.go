package passes

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/runtime"
)

// SMHConfig chooses what the SMH pass compresses and how much.
type SMHConfig struct {
	// Variant is "product" (Structured Multi-Hashing, P = L·R), "hash"
	// (HashedNets) or "kron" (a sum of Kronecker products).
	Variant string
	// Fraction is the budget as a fraction of the hashed weights' count;
	// Params, when set instead, is the total trainable budget: pool,
	// scales and every parameter left uncompressed.
	Fraction float64
	Params   int
	// ConvOnly compresses convolutions only (the paper's variant that
	// leaves dense layers alone).
	ConvOnly bool
	// Exclude leaves parameters whose names match uncompressed.
	Exclude *regexp.Regexp
	// FanOut initialises scales from the fan-out (EfficientNet) rather than
	// the fan-in.
	FanOut bool
	// Seed draws the pool's initial values and keys the hash variant.
	Seed uint64
	// Cached reconstructs every weight once when the weights change, for
	// speed, instead of each before its use, for memory.
	Cached bool
	// Init is how the pool starts: SMHInitRandom ("random", also when
	// empty) draws it from Seed, to train from scratch; SMHInitFit
	// ("fit") fits it to the parameters' current values divided by their
	// initial scales (the best rank-r approximation of the virtual matrix
	// for product, the best sum of Kronecker products for kron, each
	// bucket's least-squares value for hash), to compress a trained model
	// and fine-tune it.
	Init string
}

// SMHBiasScale is the initial scale of a compressed bias: the pool's
// entries have unit variance, and biases should start near zero (Google's
// implementation leaves them at 1, which starts them at unit size).
const SMHBiasScale = 0.01

// SMH compresses a model's convolution and dense weights and biases into
// one shared pool (Structured Multi-Hashing, Eban et al., CVPR 2020): the N
// selected values, laid out in graph order (each layer's weight, then its
// bias), form a virtual d x d matrix, d = ceil(sqrt(N)), that is P = L·R with
// L d x r and R r x d; each tensor is its slice of vec(P), reshaped, times a
// trainable scale that starts at the layer's He standard deviation. The
// budget fixes r: r = ceil(T/(2d)). L and R start i.i.d. N(0, r^(-1/4)), so
// P's entries have unit variance, or, with SMHConfig.Init "fit", at the best
// rank-r approximation of the model's own weights over their scales.
// BatchNorm parameters are never compressed.
// Each reconstruction sits just before its consumer, so that memory
// planning keeps one layer's weights at a time (smh-prefetch, later, moves
// each a layer earlier, for two).
//
// Needs: StageTyped; Context.SMH (without it the pass does nothing).
// Guarantees: the selected parameters are gone, read through
// SMHReconstruct from the parameters "smh.pool" and "smh.scales".
var SMH = &Pass{
	Name:  "smh",
	Doc:   "compress weights into a shared pool (Structured Multi-Hashing)",
	Stage: ir.StageLowered,
	After: []string{"fold"},
	Run:   runSMH,
}

// smhTensor is one parameter chosen for compression.
type smhTensor struct {
	param  *ir.Value
	offset int
	scale  float32
}

// ErrBudget reports a size budget the model cannot meet.
var ErrBudget = errors.New("budget")

// selectSMH lists the parameters to compress in layout order.
func selectSMH(g *ir.Graph, cfg *SMHConfig) []*ir.Value {
	var out []*ir.Value
	seen := map[*ir.Value]bool{}
	take := func(v *ir.Value) {
		if v == nil || v.Kind != ir.KindParam || !v.Param.Trainable || seen[v] {
			return
		}
		if v.Param.Role != ir.RoleWeight && v.Param.Role != ir.RoleBias {
			return
		}
		if cfg.Exclude != nil && cfg.Exclude.MatchString(v.Name) {
			return
		}
		seen[v] = true
		out = append(out, v)
	}
	for _, n := range g.Nodes {
		switch {
		case n.Op == ir.OpConv:
			take(n.Arg(1))
			take(n.Arg(2))
		case cfg.ConvOnly:
		case n.Op == ir.OpGemm || n.Op == ir.OpMatMul:
			take(n.Arg(1))
			take(n.Arg(2))
		case n.Op == ir.OpAdd:
			for i := 0; i < 2; i++ {
				if d := n.Args[1-i].Def; d != nil && d.Op == ir.OpMatMul && n.Args[i].Kind == ir.KindParam && n.Args[i].Param.Role == ir.RoleBias {
					take(n.Args[i])
				}
			}
		}
	}
	return out
}

// SMHGeometry is the size of a compression: the pool holds PoolSize values
// (for product and kron, laid out as 2·D·Rank).
type SMHGeometry struct {
	Variant          string
	N                int // compressed values
	D, Rank          int
	PoolSize, Scales int
	Unhashed         int // trainable values left uncompressed
}

// Trainable is the honest total: pool, scales and uncompressed parameters.
func (s SMHGeometry) Trainable() int { return s.PoolSize + s.Scales + s.Unhashed }

// smhGeometry sizes the pool for n compressed values among a model's
// trainable parameters.
func smhGeometry(cfg *SMHConfig, n, tensors, unhashed int) (SMHGeometry, error) {
	geo := SMHGeometry{Variant: cfg.Variant, N: n, Scales: tensors, Unhashed: unhashed}
	var budget int
	switch {
	case cfg.Params > 0:
		budget = cfg.Params - tensors - unhashed
		if budget < 1 {
			return geo, fmt.Errorf("%w: %d trainable values; the uncompressed parameters and scales alone hold %d", ErrBudget, cfg.Params, tensors+unhashed)
		}
	case cfg.Fraction > 0:
		// The slack keeps an exact fraction such as 25% of 400 from
		// rounding up to 101.
		budget = int(math.Ceil(cfg.Fraction*float64(n) - 1e-9))
	default:
		return geo, fmt.Errorf("%w: set a fraction or a parameter budget", ErrBudget)
	}
	budget = max(budget, 1)
	switch cfg.Variant {
	case "product":
		geo.D, geo.Rank = runtime.SMHGeometry(n, budget)
		geo.PoolSize = 2 * geo.D * geo.Rank
	case "kron":
		side := isqrtCeil(isqrtCeil(n))
		geo.D = side * side
		geo.Rank = max(1, (budget+2*geo.D-1)/(2*geo.D))
		geo.PoolSize = 2 * geo.D * geo.Rank
	case "hash":
		// As many variables as the product variant gets for the same
		// budget, so that the two compare at equal size.
		d, r := runtime.SMHGeometry(n, budget)
		geo.PoolSize = 2 * d * r
	default:
		return geo, fmt.Errorf("unknown SMH variant %q (want product, hash or kron)", cfg.Variant)
	}
	return geo, nil
}

func isqrtCeil(n int) int {
	s := int(math.Sqrt(float64(n)))
	for s*s < n {
		s++
	}
	for s > 0 && (s-1)*(s-1) >= n {
		s--
	}
	return s
}

func runSMH(g *ir.Graph, c *Context) error {
	cfg := c.SMH
	if cfg == nil {
		return nil
	}
	if cfg.Variant == "" {
		cfg.Variant = "product"
	}
	// Earlier rewrites (BatchNorm folding) may leave parameters nobody
	// reads; they must not count as uncompressed.
	g.RemoveDead()
	params := selectSMH(g, cfg)
	if len(params) == 0 {
		return fmt.Errorf("no convolution or dense weights to compress")
	}
	var tensors []smhTensor
	n := 0
	for _, p := range params {
		t := smhTensor{param: p, offset: n, scale: SMHBiasScale}
		if p.Param.Role == ir.RoleWeight {
			fan := ir.FanIn(g, p)
			if cfg.FanOut {
				fan = ir.FanOut(g, p)
			}
			if fan < 1 {
				return fmt.Errorf("parameter %q: no fan to initialise its scale from", p.Name)
			}
			t.scale = float32(math.Sqrt(2 / float64(fan)))
		}
		tensors = append(tensors, t)
		n += p.Type.Shape.Static()
	}
	unhashed := 0
	for _, p := range g.Params {
		if p.Param.Trainable && !slices.Contains(params, p) {
			unhashed += p.Type.Shape.Static()
		}
	}
	geo, err := smhGeometry(cfg, n, len(tensors), unhashed)
	if err != nil {
		return err
	}

	rng := runtime.NewRNG(cfg.Seed)
	pool := make([]float32, geo.PoolSize)
	switch cfg.Init {
	case "", SMHInitRandom:
		switch cfg.Variant {
		case "hash":
			runtime.Normal(pool, rng, 0, 1)
		default:
			// P's entries are sums of Rank products: factors of std Rank^(-1/4)
			// give them unit variance (for kron, Rank counts the terms).
			half := geo.PoolSize / 2
			runtime.SMHInitFactors(pool[:half], pool[half:], rng, geo.Rank)
		}
	case SMHInitFit:
		// The scales keep their initial values: the fit is of the weights
		// in units of them, so that the pool's entries stay of order one.
		fit, err := fitSMHPool(cfg, geo, tensors, pool, smhFitOptions{})
		if err != nil {
			return err
		}
		c.logf("smh: fit the pool to the weights (%s) in %v: relative error %.4g (‖M − M̂‖/‖M‖, M the weights over their scales)", fit.Method, fit.Elapsed.Round(time.Millisecond), fit.RelErr)
	default:
		return fmt.Errorf("unknown SMH init %q (want random or fit)", cfg.Init)
	}
	scales := make([]float32, len(tensors))
	for i, t := range tensors {
		scales[i] = t.scale
	}
	pv := g.AddParam("smh.pool", ir.Of(ir.F32, geo.PoolSize), &ir.Param{Data: pool, Trainable: true, Role: ir.RoleSMHPool})
	sv := g.AddParam("smh.scales", ir.Of(ir.F32, len(scales)), &ir.Param{Data: scales, Trainable: true, Role: ir.RoleSMHScale})

	for i, t := range tensors {
		users := g.Users(t.param)
		at := users[0]
		if cfg.Cached {
			at = g.Nodes[0]
		}
		a := &ir.SMHAttrs{Variant: cfg.Variant, D: geo.D, Rank: geo.Rank, Seed: int(cfg.Seed & math.MaxInt32), Offset: t.offset,
			Shape: []int(t.param.Type.Shape.Clone()), Scale: i, Tensor: i + 1, Cached: cfg.Cached}
		nd, err := g.Before(at).AddInfer(ir.OpSMHReconstruct, t.param.Name, a, pv, sv)
		if err != nil {
			return err
		}
		g.ReplaceAllUses(t.param, nd.Results[0])
	}
	g.RemoveDead()
	c.logf("smh: %s, %d tensors, %d values in a %d x %d matrix of rank %d: %d trainable (pool %d, scales %d, uncompressed %d)",
		cfg.Variant, len(tensors), n, geo.D, geo.D, geo.Rank, geo.Trainable(), geo.PoolSize, geo.Scales, geo.Unhashed)
	return nil
}
