package codegen

// trainHarness is the test that runs in the generated module: for each
// trainable package, its gradients against PyTorch autograd, finite
// differences, the optimizer steps against PyTorch's, checkpoints, errors
// that leave the model unchanged, allocation and determinism.
const trainHarness = `package conformance

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"os"
	"runtime"
	"testing"

	rt "github.com/smhgen/smhgen/runtime"
//IMPORTS
)

type model interface {
	Forward(x []float32, batch int) ([]float32, error)
	TrainStep(x []float32, labels []int32, batch int) (float32, error)
	Gradients(x []float32, labels []int32, batch int) (float32, error)
	Params() []rt.Param
	Tensor(name string) []float32
	SetOptimizer(o rt.Optimizer)
	Save(w io.Writer) error
	Load(r io.Reader) error
	Steps() uint64
}

var trainModels = []struct {
	name string
	new  func(seed uint64, dropout bool) model
}{
//MODELS
}

type trainRef struct {
	X       []float32            ` + "`json:\"x\"`" + `
	Labels  []int32              ` + "`json:\"labels\"`" + `
	Loss    float32              ` + "`json:\"loss\"`" + `
	Grad    map[string][]float32 ` + "`json:\"grad\"`" + `
	Running map[string][]float32 ` + "`json:\"running\"`" + `
	SGD     map[string][]float32 ` + "`json:\"sgd\"`" + `
	AdamW   map[string][]float32 ` + "`json:\"adamw\"`" + `
}

func norm(a []float32) float64 {
	var s float64
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func diffNorm(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// compare checks each named tensor against the reference with a relative L2
// tolerance, floored for tensors whose true value is zero (PyTorch's then
// holds rounding noise) at a fraction of the largest reference norm.
func compare(t *testing.T, what string, got func(name string) []float32, ref map[string][]float32, rel float64) {
	t.Helper()
	if len(ref) == 0 {
		t.Fatalf("%s: no reference tensors", what)
	}
	var maxNorm float64
	for _, r := range ref {
		maxNorm = math.Max(maxNorm, norm(r))
	}
	worst, worstName := 0.0, ""
	for name, r := range ref {
		g := got(name)
		if len(g) != len(r) {
			t.Errorf("%s %q: have %d values, want %d", what, name, len(g), len(r))
			continue
		}
		e := diffNorm(g, r) / math.Max(norm(r), 1e-3*maxNorm)
		if e > worst {
			worst, worstName = e, name
		}
		if e > rel {
			t.Errorf("%s %q: relative L2 error %.3g > %g", what, name, e, rel)
		}
	}
	t.Logf("%s: %d tensors, worst relative L2 error %.3g (%s)", what, len(ref), worst, worstName)
}

func grads(m model) func(string) []float32 {
	return func(name string) []float32 {
		for _, p := range m.Params() {
			if p.Name == name {
				return p.Grad
			}
		}
		return nil
	}
}

func snapshot(m model) [][]float32 {
	var out [][]float32
	for _, p := range m.Params() {
		out = append(out, append([]float32(nil), p.Data...))
	}
	return out
}

func same(a, b [][]float32) bool {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}

func load(t *testing.T, name string) *trainRef {
	b, err := os.ReadFile(name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	r := &trainRef{}
	if err := json.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTrain(t *testing.T) {
	for mi, tm := range trainModels {
		t.Run(tm.name, func(t *testing.T) {
			ref := load(t, tm.name)
			n := len(ref.Labels)
			x, labels := ref.X, ref.Labels

			// Gradients against PyTorch autograd (training-mode BN, no dropout).
			m := tm.new(0, false)
			before := snapshot(m)
			loss, err := m.Gradients(x, labels, n)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(loss - ref.Loss)); d > 1e-5*math.Max(1, math.Abs(float64(ref.Loss))) {
				t.Errorf("loss %v, PyTorch %v", loss, ref.Loss)
			}
			compare(t, "gradient", grads(m), ref.Grad, 1e-3)
			if !same(before, snapshot(m)) {
				t.Error("Gradients changed the weights")
			}
			if len(m.Params()) != len(ref.Grad) {
				t.Errorf("%d trainable tensors, PyTorch has %d", len(m.Params()), len(ref.Grad))
			}

			// Central finite differences along the gradient: the derivative
			// of the loss in the direction g/|g| is |g|. Every parameter moves
			// by a tiny amount, so ReLU and max-pool kinks are rarely crossed,
			// and the float32 loss still resolves the change.
			if tm.name == "lenet5" || tm.name == "mlp" {
				var dir [][]float32
				var gn float64
				for _, p := range m.Params() {
					dir = append(dir, append([]float32(nil), p.Grad...))
					gn += norm(p.Grad) * norm(p.Grad)
				}
				gn = math.Sqrt(gn)
				const h = 1e-3
				shift := func(s float64) float32 {
					for i, p := range m.Params() {
						for j := range p.Data {
							p.Data[j] = before[i][j] + float32(s*float64(dir[i][j])/gn)
						}
					}
					l, err := m.Gradients(x, labels, n)
					if err != nil {
						t.Fatal(err)
					}
					return l
				}
				fd := float64(shift(h)-shift(-h)) / (2 * h)
				shift(0)
				if math.Abs(fd-gn) > 1e-2*gn {
					t.Errorf("directional finite difference %.5g, gradient norm %.5g", fd, gn)
				} else {
					t.Logf("directional finite difference %.6g, gradient norm %.6g", fd, gn)
				}
			}

			// One SGD step (and the running statistics it commits) against
			// torch.optim.SGD.
			m = tm.new(0, false)
			m.SetOptimizer(&rt.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4})
			if _, err := m.TrainStep(x, labels, n); err != nil {
				t.Fatal(err)
			}
			if len(ref.SGD) > 0 {
				compare(t, "SGD step", m.Tensor, ref.SGD, 1e-4)
			}
			if len(ref.Running) > 0 {
				compare(t, "running statistics", m.Tensor, ref.Running, 1e-4)
			}
			if len(ref.AdamW) > 0 {
				a := tm.new(0, false)
				a.SetOptimizer(&rt.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
				for i := 0; i < 2; i++ {
					if _, err := a.TrainStep(x, labels, n); err != nil {
						t.Fatal(err)
					}
				}
				compare(t, "two AdamW steps", a.Tensor, ref.AdamW, 1e-4)
			}

			// Save and Load: identical inference, and training continues
			// identically.
			var ck bytes.Buffer
			if err := m.Save(&ck); err != nil {
				t.Fatal(err)
			}
			c := tm.new(0, false)
			c.SetOptimizer(&rt.SGD{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4})
			if err := c.Load(bytes.NewReader(ck.Bytes())); err != nil {
				t.Fatal(err)
			}
			y1, _ := m.Forward(x, n)
			y1 = append([]float32(nil), y1...)
			y2, _ := c.Forward(x, n)
			for i := range y1 {
				if math.Float32bits(y1[i]) != math.Float32bits(y2[i]) {
					t.Fatalf("Forward after Load differs at %d: %v vs %v", i, y1[i], y2[i])
				}
			}
			if c.Steps() != 1 {
				t.Errorf("Load restored step %d, want 1", c.Steps())
			}
			m.TrainStep(x, labels, n)
			c.TrainStep(x, labels, n)
			if !same(snapshot(m), snapshot(c)) {
				t.Error("training after Load diverges from the original")
			}

			// Damaged or foreign checkpoints are errors and change nothing.
			keep := snapshot(c)
			good := ck.Bytes()
			bad := map[string][]byte{"truncated": good[:len(good)/2], "empty": nil}
			flipped := append([]byte(nil), good...)
			flipped[len(flipped)/2] ^= 0x40
			bad["corrupted"] = flipped
			other := trainModels[(mi+1)%len(trainModels)]
			if other.name != tm.name {
				var oc bytes.Buffer
				other.new(0, false).Save(&oc)
				bad["another model"] = oc.Bytes()
			}
			adam := tm.new(0, false)
			adam.SetOptimizer(&rt.AdamW{LR: 1e-3})
			for what, b := range bad {
				if err := c.Load(bytes.NewReader(b)); err == nil {
					t.Errorf("Load accepted a %s checkpoint", what)
				}
			}
			if err := adam.Load(bytes.NewReader(good)); err == nil {
				t.Error("Load put SGD state into an AdamW")
			}
			if !same(keep, snapshot(c)) {
				t.Error("a failed Load changed the model")
			}

			// Bad steps are errors and change nothing.
			nan := append([]float32(nil), x...)
			nan[0] = float32(math.NaN())
			steps := c.Steps()
			if _, err := c.TrainStep(nan, labels, n); err == nil {
				t.Error("TrainStep accepted a NaN loss")
			}
			badLabels := append([]int32(nil), labels...)
			badLabels[0] = 1000
			if _, err := c.TrainStep(x, badLabels, n); err == nil {
				t.Error("TrainStep accepted a label out of range")
			}
			if _, err := c.TrainStep(x, labels[:n-1], n); err == nil {
				t.Error("TrainStep accepted too few labels")
			}
			if !same(keep, snapshot(c)) || c.Steps() != steps {
				t.Error("a failed TrainStep changed the model")
			}

			if allocs := testing.AllocsPerRun(3, func() { c.TrainStep(x, labels, n) }); allocs != 0 {
				t.Errorf("TrainStep allocates %v times per call after warm-up", allocs)
			}
		})
	}
}

// TestTrainDeterminism: with GOMAXPROCS=1 and a fixed seed, two runs give
// bit-identical parameters (dropout on), and another seed gives others when
// the model has dropout.
func TestTrainDeterminism(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, tm := range trainModels {
		ref := load(t, tm.name)
		n := len(ref.Labels)
		run := func(seed uint64) [][]float32 {
			m := tm.new(seed, true)
			for i := 0; i < 3; i++ {
				if _, err := m.TrainStep(ref.X, ref.Labels, n); err != nil {
					t.Fatal(err)
				}
			}
			return snapshot(m)
		}
		if !same(run(7), run(7)) {
			t.Errorf("%s: two runs with seed 7 differ", tm.name)
		}
	}
}
`
