package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/smhgen/smhgen/train"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// sweepTitles are the plots' titles.
var sweepTitles = map[string]string{
	"mnist_lenet5":     "LeNet-5 on MNIST: test accuracy against trainable parameters",
	"fashion_resnet20": "ResNet-20 on Fashion-MNIST: test accuracy against trainable parameters",
}

var methodNames = map[string]string{"dense": "dense", "smh": "SMH", "hash": "hashing (HashedNets)", "width": "width multiplier"}

// writeSweep writes the CSV, the markdown table and the plot of a sweep.
// args are the experiments command's arguments, recorded in the table's
// header with the recipe and the total training time.
func writeSweep(dir, name, args string, methods []string, results []*train.Result) error {
	var dense float64
	for i, m := range methods {
		if m == "dense" {
			dense = results[i].Final
		}
	}
	f, err := os.Create(filepath.Join(dir, name+".csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"method", "model", "fraction", "trainable", "accuracy", "delta_vs_dense", "seconds"})
	var md strings.Builder
	var seconds float64
	for _, r := range results {
		seconds += r.Seconds
	}
	rc := results[0].Spec
	// The pool learning rate of each compressed method, in method order.
	var pools []string
	seen := map[string]bool{}
	for i, m := range methods {
		if (m == "smh" || m == "hash") && !seen[m] {
			seen[m] = true
			pools = append(pools, fmt.Sprintf("%s %g", methodNames[m], results[i].Spec.FactorLR))
		}
	}
	pool := ""
	if len(pools) > 0 {
		pool = " (pool: " + strings.Join(pools, ", ") + ")"
	}
	fmt.Fprintf(&md, "`go run ./experiments %s` (%d runs, %.0f minutes of training and evaluation on this machine).\n", args, len(results), seconds/60)
	fmt.Fprintf(&md, "Recipe: %s, %d epochs on %s training images, batch %d, SGD lr %g%s momentum %g%s, weight decay %g, %d warm-up steps then cosine, random crop ±%d px%s, seed %d; accuracy on %s test images.\n\n",
		rc.Data, rc.Epochs, countOrAll(rc.Subset), rc.Batch, rc.LR, pool, rc.Momentum, map[bool]string{true: " (Nesterov)"}[rc.Nesterov], rc.WeightDecay, rc.Warmup, rc.Crop, map[bool]string{true: ", horizontal flips"}[rc.Flip], rc.Seed, countOrAll(rc.TestSubset))
	fmt.Fprintf(&md, "| method | model | fraction | trainable | accuracy | Δ vs dense |\n|---|---|---:|---:|---:|---:|\n")
	for i, r := range results {
		frac := ""
		if r.Spec.Fraction > 0 {
			frac = strconv.FormatFloat(r.Spec.Fraction, 'g', -1, 64)
		}
		delta := r.Final - dense
		w.Write([]string{methods[i], r.Spec.Model, frac, strconv.Itoa(r.Trainable), fmt.Sprintf("%.4f", r.Final), fmt.Sprintf("%+.4f", delta), fmt.Sprintf("%.0f", r.Seconds)})
		fmt.Fprintf(&md, "| %s | %s | %s | %d | %.2f%% | %+.2f |\n", methodNames[methods[i]], r.Spec.Model, frac, r.Trainable, 100*r.Final, 100*delta)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	title := name
	if t, ok := sweepTitles[name]; ok {
		title = t
	}
	return plotSweep(filepath.Join(dir, name+".png"), title, methods, results)
}

func countOrAll(n int) string {
	if n == 0 {
		return "all"
	}
	return strconv.Itoa(n)
}

func plotSweep(path, title string, methods []string, results []*train.Result) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "trainable parameters"
	p.Y.Label.Text = "test accuracy (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	p.Legend.Top, p.Legend.Left = false, false
	colors := map[string]color.Color{"smh": color.RGBA{R: 200, A: 255}, "hash": color.RGBA{B: 200, A: 255}, "width": color.RGBA{G: 140, A: 255}}
	minX, maxX := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		minX, maxX = min(minX, float64(r.Trainable)), max(maxX, float64(r.Trainable))
	}
	// Room on every side so that no point sits on the frame.
	p.X.Min, p.X.Max = minX/1.3, maxX*1.3
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		minY, maxY = min(minY, 100*r.Final), max(maxY, 100*r.Final)
	}
	pad := max(0.1, 0.06*(maxY-minY))
	p.Y.Min, p.Y.Max = minY-pad, maxY+pad
	for _, m := range []string{"smh", "hash", "width"} {
		var pts plotter.XYs
		for i, r := range results {
			if methods[i] == m {
				pts = append(pts, plotter.XY{X: float64(r.Trainable), Y: 100 * r.Final})
			}
		}
		if len(pts) == 0 {
			continue
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].X < pts[j].X })
		line, scatter, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, scatter.Color = colors[m], colors[m]
		scatter.Shape = draw.CircleGlyph{}
		p.Add(line, scatter)
		p.Legend.Add(methodNames[m], line, scatter)
	}
	// The dense model is one point; a dashed line at its accuracy across
	// the plot is what the compressed models are read against.
	for i, r := range results {
		if methods[i] != "dense" {
			continue
		}
		acc := 100 * r.Final
		ref, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: acc}, {X: p.X.Max, Y: acc}})
		if err != nil {
			return err
		}
		ref.Color, ref.Dashes = color.Black, []vg.Length{vg.Points(4), vg.Points(3)}
		pt, err := plotter.NewScatter(plotter.XYs{{X: float64(r.Trainable), Y: acc}})
		if err != nil {
			return err
		}
		pt.Color, pt.Shape = color.Black, draw.CircleGlyph{}
		p.Add(ref, pt)
		p.Legend.Add(fmt.Sprintf("dense (%d parameters)", r.Trainable), ref, pt)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}

// ticks125 marks a log axis at 1, 2 and 5 times each power of ten, labelled
// in plain digits: parameter counts read better as 2000 and 5000 than
// as powers of ten alone.
type ticks125 struct{}

func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
			}
		}
	}
	return out
}
