// Package train is the training loop of smhgen's examples and experiments:
// it trains a generated model on an image classification data set with a
// standard recipe (SGD with momentum, warm-up then cosine schedule, light
// augmentation, a separate learning rate for SMH factors, no weight decay
// on factors, scales or normalisation), shows progress, evaluates, writes a
// CSV row per epoch and checkpoints atomically.
package train

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/smhgen/smhgen/datasets"
	rt "github.com/smhgen/smhgen/runtime"
)

// Model is what a generated package's Model offers for training.
type Model interface {
	TrainStep(x []float32, labels []int32, batch int) (float32, error)
	Forward(x []float32, batch int) ([]float32, error)
	SetOptimizer(o rt.Optimizer)
	Params() []rt.Param
	SaveFile(path string) error
	NumParams() int
}

// Config is a training run.
type Config struct {
	Train, Test *datasets.Set
	Classes     int
	Epochs      int
	Batch       int
	// LR is the peak learning rate; FactorLR the SMH factors' (SMH.md:
	// about 4x the dense rate); both follow the same schedule.
	LR, FactorLR float64
	Momentum     float64
	Nesterov     bool
	// WeightDecay applies to weights and biases; factors, scales and
	// normalisation parameters get none.
	WeightDecay float64
	// WarmupSteps ramp the rate linearly from a tenth of it; a cosine
	// decays it to zero by the last step.
	WarmupSteps int
	// Crop pads images by this many pixels and crops them back at random;
	// Flip mirrors half of them horizontally.
	Crop int
	Flip bool
	// ScaleCounts, for a compressed model, is the element count of each
	// tensor behind the scales vector "smh.scales": each scale's gradient
	// is divided by it (SMH.md: raw scale gradients are far too large).
	ScaleCounts []int
	Seed        uint64
	CSV         string // one row per epoch, if set
	Checkpoint  string // saved atomically after each epoch, if set
	Out         io.Writer
	// Terminal draws a progress bar in place; otherwise progress goes out
	// as plain lines.
	Terminal bool
}

// Epoch is one epoch's numbers.
type Epoch struct {
	Epoch                 int
	Loss, TrainAcc        float64
	TestAcc               float64
	LR                    float64
	ImagesPerSec, Seconds float64
}

// IsTerminal reports whether f is a terminal, for Config.Terminal.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// scaledGrad divides the scales' gradients by their tensors' sizes before
// the step of the optimizer it wraps.
type scaledGrad struct {
	rt.Optimizer
	param int
	inv   []float32
}

func (s *scaledGrad) Step(params []rt.Param) {
	g := params[s.param].Grad
	for i, f := range s.inv {
		g[i] *= f
	}
	s.Optimizer.Step(params)
}

// Run trains m and returns every epoch's numbers.
func Run(m Model, cfg Config) ([]Epoch, error) {
	if cfg.Batch < 1 || cfg.Epochs < 1 || cfg.Train == nil || cfg.Test == nil {
		return nil, fmt.Errorf("train: need data, a batch size and epochs")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Classes == 0 {
		cfg.Classes = 10
	}
	sgd := &rt.SGD{LR: float32(cfg.LR), Momentum: float32(cfg.Momentum), Nesterov: cfg.Nesterov, WeightDecay: float32(cfg.WeightDecay),
		Groups: map[string]rt.Group{}}
	if cfg.FactorLR > 0 {
		sgd.Groups[rt.GroupSMHFactors] = rt.Group{LRScale: float32(cfg.FactorLR / cfg.LR)}
		sgd.Groups[rt.GroupHashPool] = rt.Group{LRScale: float32(cfg.FactorLR / cfg.LR)}
	}
	var opt rt.Optimizer = sgd
	if len(cfg.ScaleCounts) > 0 {
		for i, p := range m.Params() {
			if p.Name != "smh.scales" {
				continue
			}
			if len(p.Data) != len(cfg.ScaleCounts) {
				return nil, fmt.Errorf("train: %d scale counts for %d scales", len(cfg.ScaleCounts), len(p.Data))
			}
			s := &scaledGrad{Optimizer: sgd, param: i}
			for _, c := range cfg.ScaleCounts {
				s.inv = append(s.inv, 1/float32(c))
			}
			opt = s
		}
	}
	m.SetOptimizer(opt)

	var w *csv.Writer
	if cfg.CSV != "" {
		f, err := os.Create(cfg.CSV)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		w = csv.NewWriter(f)
		w.Write([]string{"epoch", "loss", "train_acc", "test_acc", "lr", "images_per_sec", "seconds", "params"})
	}

	n, b := cfg.Train.N, cfg.Batch
	steps := n / b
	total := steps * cfg.Epochs
	x := make([]float32, b*datasets.Pixels)
	y := make([]int32, b)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	var out []Epoch
	step := 0
	start := time.Now()
	for ep := 1; ep <= cfg.Epochs; ep++ {
		order := rng.Perm(n)
		var lossSum float64
		correct, seen := 0, 0
		epStart := time.Now()
		lr := 0.0
		for s := 0; s < steps; s++ {
			for i := 0; i < b; i++ {
				augment(x[i*datasets.Pixels:(i+1)*datasets.Pixels], cfg.Train.Images[order[s*b+i]*datasets.Pixels:], cfg.Crop, cfg.Flip, rng)
				y[i] = cfg.Train.Labels[order[s*b+i]]
			}
			lr = schedule(cfg.LR, step, total, cfg.WarmupSteps)
			sgd.LR = float32(lr)
			loss, err := m.TrainStep(x, y, b)
			if err != nil {
				return out, fmt.Errorf("train: epoch %d step %d: %w", ep, s, err)
			}
			step++
			lossSum += float64(loss)
			// Training accuracy from the inference program on the same
			// batch would cost a forward pass; the loss suffices for the
			// bar, and accuracy is measured on a sample every 50 steps.
			if s%50 == 0 {
				pred, err := m.Forward(x, b)
				if err != nil {
					return out, err
				}
				correct += countCorrect(pred, y, cfg.Classes)
				seen += b
			}
			progress(cfg, ep, s+1, steps, lossSum/float64(s+1), float64(correct)/float64(max(seen, 1)),
				float64((s+1)*b)/time.Since(epStart).Seconds(), time.Since(start), step, total)
		}
		acc, err := Evaluate(m, cfg.Test, cfg.Classes)
		if err != nil {
			return out, err
		}
		e := Epoch{Epoch: ep, Loss: lossSum / float64(steps), TrainAcc: float64(correct) / float64(max(seen, 1)), TestAcc: acc,
			LR: lr, ImagesPerSec: float64(steps*b) / time.Since(epStart).Seconds(), Seconds: time.Since(start).Seconds()}
		out = append(out, e)
		if cfg.Terminal {
			fmt.Fprint(cfg.Out, "\r\x1b[K")
		}
		fmt.Fprintf(cfg.Out, "epoch %d/%d: loss %.4f, test accuracy %.2f%%, %.0f images/s, %s\n",
			ep, cfg.Epochs, e.Loss, 100*acc, e.ImagesPerSec, time.Since(start).Round(time.Second))
		if w != nil {
			w.Write([]string{strconv.Itoa(ep), fmtF(e.Loss), fmtF(e.TrainAcc), fmtF(e.TestAcc), fmtF(e.LR),
				fmtF(e.ImagesPerSec), fmtF(e.Seconds), strconv.Itoa(m.NumParams())})
			w.Flush()
			if err := w.Error(); err != nil {
				return out, err
			}
		}
		if cfg.Checkpoint != "" {
			if err := m.SaveFile(cfg.Checkpoint); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func fmtF(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// schedule is the learning rate at a step: a linear warm-up from a tenth of
// the peak, then a cosine to zero at the last step.
func schedule(peak float64, step, total, warmup int) float64 {
	if step < warmup {
		return peak * (0.1 + 0.9*float64(step)/float64(warmup))
	}
	p := float64(step-warmup) / float64(max(total-warmup, 1))
	return peak * 0.5 * (1 + math.Cos(math.Pi*p))
}

// augment copies an image into dst, shifted by up to crop pixels in each
// direction (zeros entering at the border, as a padded random crop) and
// mirrored half of the time when flip is set.
func augment(dst, src []float32, crop int, flip bool, rng *rand.Rand) {
	const s = datasets.Side
	dx, dy := 0, 0
	if crop > 0 {
		dx, dy = rng.IntN(2*crop+1)-crop, rng.IntN(2*crop+1)-crop
	}
	mirror := flip && rng.IntN(2) == 1
	for i := 0; i < s; i++ {
		for j := 0; j < s; j++ {
			si, sj := i+dy, j+dx
			if mirror {
				sj = s - 1 - j + dx
			}
			v := float32(0)
			if si >= 0 && si < s && sj >= 0 && sj < s {
				v = src[si*s+sj]
			}
			dst[i*s+j] = v
		}
	}
}

func countCorrect(pred []float32, y []int32, classes int) int {
	c := 0
	for i, l := range y {
		row := pred[i*classes : (i+1)*classes]
		best := 0
		for k, v := range row {
			if v > row[best] {
				best = k
			}
		}
		if int32(best) == l {
			c++
		}
	}
	return c
}

// Evaluate returns the model's accuracy on a set, in batches of 500.
func Evaluate(m Model, s *datasets.Set, classes int) (float64, error) {
	correct := 0
	const eb = 500
	for lo := 0; lo < s.N; lo += eb {
		hi := min(lo+eb, s.N)
		pred, err := m.Forward(s.Images[lo*datasets.Pixels:hi*datasets.Pixels], hi-lo)
		if err != nil {
			return 0, err
		}
		correct += countCorrect(pred, s.Labels[lo:hi], classes)
	}
	return float64(correct) / float64(s.N), nil
}

// progress draws the bar: in place on a terminal, else a line per tenth of
// an epoch.
func progress(cfg Config, ep, s, steps int, loss, acc, ips float64, elapsed time.Duration, step, total int) {
	eta := time.Duration(float64(elapsed) / float64(step) * float64(total-step)).Round(time.Second)
	if cfg.Terminal {
		const width = 30
		done := width * s / steps
		bar := make([]byte, width)
		for i := range bar {
			switch {
			case i < done:
				bar[i] = '='
			case i == done:
				bar[i] = '>'
			default:
				bar[i] = ' '
			}
		}
		fmt.Fprintf(cfg.Out, "\repoch %d/%d [%s] %3d%% loss %.4f acc %5.1f%% %6.0f img/s ETA %s\x1b[K",
			ep, cfg.Epochs, bar, 100*s/steps, loss, 100*acc, ips, eta)
		return
	}
	if tenth := max(steps/10, 1); s%tenth == 0 && s != steps {
		fmt.Fprintf(cfg.Out, "epoch %d/%d %3d%%: loss %.4f, sampled train accuracy %.1f%%, %.0f images/s, ETA %s\n",
			ep, cfg.Epochs, 100*s/steps, loss, 100*acc, ips, eta)
	}
}
