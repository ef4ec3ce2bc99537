package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
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

var methodNames = map[string]string{"dense": "dense", "smh": "SMH", "hash": "hashing (HashedNets)", "width": "width multiplier"}

// writeSweep writes the CSV, the markdown table and the plot of a sweep.
func writeSweep(dir, name string, methods []string, results []*train.Result) error {
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
	return plotSweep(filepath.Join(dir, name+".png"), name, methods, results)
}

func plotSweep(path, title string, methods []string, results []*train.Result) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "trainable parameters"
	p.Y.Label.Text = "test accuracy (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = false, false
	colors := map[string]color.Color{"dense": color.Black, "smh": color.RGBA{R: 200, A: 255}, "hash": color.RGBA{B: 200, A: 255}, "width": color.RGBA{G: 140, A: 255}}
	for _, m := range []string{"smh", "hash", "width", "dense"} {
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
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
