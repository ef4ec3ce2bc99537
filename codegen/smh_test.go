package codegen

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/require"
)

// smhCase is one compressed package to generate and check.
type smhCase struct {
	model    string // fixture file
	variant  string
	fraction float64
	params   int
	cached   bool
	convOnly bool
	exclude  string
}

func (c smhCase) pkg() string {
	s := fmt.Sprintf("s%s%s%d%d", PackageName(strings.TrimSuffix(c.model, ".onnx")), c.variant, int(c.fraction*1000), c.params)
	if c.cached {
		s += "cached"
	}
	if c.convOnly {
		s += "conv"
	}
	if c.exclude != "" {
		s += "ex"
	}
	return s
}

func (c smhCase) config() *passes.SMHConfig {
	cfg := &passes.SMHConfig{Variant: c.variant, Fraction: c.fraction, Params: c.params, Seed: 3, Cached: c.cached, ConvOnly: c.convOnly}
	if c.exclude != "" {
		cfg.Exclude = regexp.MustCompile(c.exclude)
	}
	return cfg
}

// compile runs a pipeline with the case's compression.
func (c smhCase) compile(t *testing.T, ps []*passes.Pass, training bool) *ir.Graph {
	g, err := onnx.ImportFile(filepath.Join(models, c.model), onnx.Options{})
	require.NoError(t, err)
	pl, err := passes.NewPipeline(ps...)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, &passes.Context{Training: training, SMH: c.config()}, ""))
	return g
}

// expectedReport recomputes the compression's sizes from the dense model,
// independently of the pass: which parameters a convolution or dense layer
// reads as weight or bias, their total N, and the geometry the method
// prescribes.
func expectedReport(t *testing.T, c smhCase) (n, tensors, unhashed, d, rank, pool int) {
	g, err := onnx.ImportFile(filepath.Join(models, c.model), onnx.Options{})
	require.NoError(t, err)
	pl, err := passes.NewPipeline(passes.Cleanup, passes.Fold, passes.Simplify, passes.DCE)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, nil, ""))
	chosen := map[*ir.Value]bool{}
	for _, nd := range g.Nodes {
		var cand []*ir.Value
		switch nd.Op {
		case ir.OpConv:
			cand = []*ir.Value{nd.Arg(1), nd.Arg(2)}
		case ir.OpGemm, ir.OpMatMul:
			if !c.convOnly {
				cand = []*ir.Value{nd.Arg(1), nd.Arg(2)}
			}
		case ir.OpAdd:
			if !c.convOnly && nd.Args[0].Def != nil && nd.Args[0].Def.Op == ir.OpMatMul {
				cand = []*ir.Value{nd.Args[1]}
			}
		}
		for _, v := range cand {
			if v != nil && v.Kind == ir.KindParam && (c.exclude == "" || !regexp.MustCompile(c.exclude).MatchString(v.Name)) {
				chosen[v] = true
			}
		}
	}
	for _, p := range g.Params {
		switch {
		case chosen[p]:
			n += p.Type.Shape.Static()
			tensors++
		case p.Param.Trainable:
			unhashed += p.Type.Shape.Static()
		}
	}
	budget := int(math.Ceil(c.fraction*float64(n) - 1e-9))
	if c.params > 0 {
		budget = c.params - tensors - unhashed
	}
	switch c.variant {
	case "product":
		d = int(math.Ceil(math.Sqrt(float64(n))))
		for (d-1)*(d-1) >= n {
			d--
		}
		rank = max(1, (budget+2*d-1)/(2*d))
		pool = 2 * d * rank
	case "kron":
		s := int(math.Ceil(math.Sqrt(math.Ceil(math.Sqrt(float64(n))))))
		d = s * s
		rank = max(1, (budget+2*d-1)/(2*d))
		pool = 2 * d * rank
	case "hash":
		// The product's pool size for the same budget.
		pd := int(math.Ceil(math.Sqrt(float64(n))))
		for (pd-1)*(pd-1) >= n {
			pd--
		}
		pool = 2 * pd * max(1, (budget+2*pd-1)/(2*pd))
	}
	return
}

var smhCases = func() []smhCase {
	var cs []smhCase
	for _, m := range []string{"lenet5.onnx", "mlp.onnx", "resnet8a_bn.onnx", "mobilenetv3_tiny_bn.onnx", "efficientnet_tiny_bn.onnx"} {
		for _, f := range []float64{0.5, 0.25, 0.1, 0.02} {
			cs = append(cs, smhCase{model: m, variant: "product", fraction: f})
		}
	}
	return append(cs,
		smhCase{model: "lenet5.onnx", variant: "product", params: 5000},
		smhCase{model: "resnet8a_bn.onnx", variant: "product", params: 20000},
		smhCase{model: "lenet5.onnx", variant: "hash", fraction: 0.1},
		smhCase{model: "lenet5.onnx", variant: "kron", fraction: 0.1},
		smhCase{model: "resnet8a_bn.onnx", variant: "product", fraction: 0.25, convOnly: true},
		smhCase{model: "resnet8a_bn.onnx", variant: "product", fraction: 0.25, exclude: `^(conv1|linear)\.`},
		smhCase{model: "lenet5.onnx", variant: "product", fraction: 0.1, cached: true},
		smhCase{model: "resnet8a_bn.onnx", variant: "product", fraction: 0.1, cached: true},
		smhCase{model: "mobilenetv3_tiny_bn.onnx", variant: "product", fraction: 0.25, cached: true},
	)
}()

// TestSMHReports checks, without building code, that the pass's report
// has exactly the counts the method prescribes for every case, that the
// training and inference programs agree, and that -params budgets are met
// within the granularity 2d of the rank.
func TestSMHReports(t *testing.T) {
	for _, c := range smhCases {
		t.Run(c.pkg(), func(t *testing.T) {
			r := ir.ReportSMH(c.compile(t, passes.TrainedInference(), false))
			require.NotNil(t, r)
			n, tensors, unhashed, d, rank, pool := expectedReport(t, c)
			require.Equal(t, n, r.Hashed, "hashed weights")
			require.Equal(t, tensors, len(r.Tensors))
			require.Equal(t, tensors, r.Scales)
			require.Equal(t, unhashed, r.Unhashed)
			require.Equal(t, pool, r.Pool)
			if c.variant != "hash" {
				require.Equal(t, d, r.D)
				require.Equal(t, rank, r.Rank)
			}
			off := 0
			for _, tt := range r.Tensors {
				require.Equal(t, off, tt.Offset, tt.Name)
				off += tt.Count
			}
			if c.params > 0 {
				over := r.Trainable() - c.params
				require.True(t, over >= 0 && over < max(2*r.D, 1), "budget %d, trainable %d (2d = %d)", c.params, r.Trainable(), 2*r.D)
			}
			tr := ir.ReportSMH(c.compile(t, passes.Training(), true))
			require.Equal(t, r.Tensors, tr.Tensors)
		})
	}
}

// TestSMHGenerated builds every case's package in one module and checks
// in it: NumParams equals the report's total; every weight the model
// reconstructs equals scale·vec(L·R)[off:off+n] computed in float64 from
// the model's own pool, tensors that start and end mid-row included; fused
// and cached packages of one case agree; Forward runs; gradients with
// respect to the pool and the scales pass finite differences; and fused
// inference holds the pool plus two layers where cached holds every weight.
func TestSMHGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code")
	}
	dir := tempModule(t)
	var imports, entries strings.Builder
	for _, c := range smhCases {
		pkg := c.pkg()
		eval := c.compile(t, passes.TrainedInference(), false)
		train := c.compile(t, passes.Training(), true)
		out, err := GenerateTrainable(eval, train, Options{Package: pkg, Source: c.model, WeightsFile: pkg + ".weights"})
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, pkg), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".go"), out.Go, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".weights"), out.Weights, 0o644))
		r := ir.ReportSMH(eval)
		twin := ""
		if c.cached {
			fused := c
			fused.cached = false
			twin = fused.pkg()
		}
		fmt.Fprintf(&imports, "\t%q\n", "conformance/"+pkg)
		fmt.Fprintf(&entries, `	{name: %q, variant: %q, side: %d, rank: %d, trainable: %d, cached: %v, twin: %q, input: %s.InputSize,
		weights: %d, arena: %d, fixed: %d, dense: %d,
		new: func() smhModel { return %s.New(%s.WithoutDropout()) },
		tensors: func() (out []tensor) {
			for _, t := range %s.SMHTensors() {
				out = append(out, tensor{t.Name, t.Offset, t.Count})
			}
			return out
		}},
`, pkg, c.variant, r.D, r.Rank, r.Trainable(), c.cached, twin, pkg, (len(out.Weights)-24)/4, eval.Arena, eval.Fixed, r.Dense, pkg, pkg, pkg)
	}
	src := strings.Replace(strings.Replace(smhHarness, "//IMPORTS\n", imports.String(), 1), "//MODELS\n", entries.String(), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "smh_test.go"), []byte(src), 0o644))
	goTest(t, dir, "-v", "-run", "SMH", ".")
}
