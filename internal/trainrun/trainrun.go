// Package trainrun compiles a model with smhgen and trains it on a data set
// in a freshly built program: the shared engine of examples/train and of
// the experiments. The program is a temporary module that requires this
// repository through a replace directive, so it builds the generated
// package exactly as a user's module would.
package trainrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/smhgen/smhgen/codegen"
	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/smhgen/smhgen/train"
)

// Root finds the repository root (the directory holding go.mod with this
// module) from the working directory up.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/smhgen/smhgen\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("trainrun: run this from inside the smhgen repository")
		}
		dir = parent
	}
}

// ModelPath resolves a fixture name or a path.
func ModelPath(root, model string) (string, error) {
	if strings.HasSuffix(model, ".onnx") {
		return model, nil
	}
	for _, p := range []string{filepath.Join(root, "testdata", "models", model+".onnx"), filepath.Join(root, "testdata", "models", "big", model+".onnx"),
		filepath.Join(root, "testdata", "models", "big", "experiments", model+".onnx")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no model %q in testdata/models, testdata/models/big or testdata/models/big/experiments (run /usr/bin/python3 testdata/models/export.py for the big ones)", model)
}

// compile builds the inference and training programs and generates the
// package "net" into dir.
func compile(spec train.Spec, file, dir string, log io.Writer) (*ir.SMHReport, error) {
	var cfg *passes.SMHConfig
	if spec.Fraction > 0 || spec.Params > 0 {
		variant := spec.Variant
		if variant == "" {
			variant = "product"
		}
		cfg = &passes.SMHConfig{Variant: variant, Fraction: spec.Fraction, Params: spec.Params, ConvOnly: spec.ConvOnly, Seed: spec.Seed + 1}
	}
	build := func(ps []*passes.Pass, training bool) (*ir.Graph, error) {
		g, err := onnx.ImportFile(file, onnx.Options{})
		if err != nil {
			return nil, err
		}
		var c *passes.SMHConfig
		if cfg != nil {
			cc := *cfg
			c = &cc
		}
		pl, err := passes.NewPipeline(ps...)
		if err != nil {
			return nil, err
		}
		return g, pl.Run(g, &passes.Context{Training: training, SMH: c}, "")
	}
	eval, err := build(passes.TrainedInference(), false)
	if err != nil {
		return nil, err
	}
	tg, err := build(passes.Training(), true)
	if err != nil {
		return nil, err
	}
	out, err := codegen.GenerateTrainable(eval, tg, codegen.Options{Package: "net", Source: filepath.Base(file), WeightsFile: "net.weights"})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "net", "net.go"), out.Go, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "net", "net.weights"), out.Weights, 0o644); err != nil {
		return nil, err
	}
	r := ir.ReportSMH(eval)
	if r != nil && log != nil {
		r.Write(log)
	}
	return r, nil
}

// Run compiles spec's model into a temporary module and trains it there,
// streaming progress to stdout, and returns the run's result.
func Run(spec train.Spec, stdout, stderr io.Writer) (*train.Result, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	file, err := ModelPath(root, spec.Model)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "smhgen-train-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	report, err := compile(spec, file, dir, stdout)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", file, err)
	}
	mod := fmt.Sprintf("module trainer\n\ngo 1.26\n\nrequire github.com/smhgen/smhgen v0.0.0\n\nreplace github.com/smhgen/smhgen => %s\n", root)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		return nil, err
	}
	src := strings.Replace(mainTemplate, "//COUNTS\n", countsCode(report), 1)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	if spec.Result == "" {
		spec.Result = filepath.Join(dir, "result.json")
	}
	for _, p := range []*string{&spec.CSV, &spec.Checkpoint, &spec.Result} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.json"), js, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "run", ".", "spec.json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOMAXPROCS="+fmt.Sprint(runtime.GOMAXPROCS(0)))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if f, ok := stdout.(*os.File); ok {
		cmd.Stdout = f
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("training %s: %w", spec.Model, err)
	}
	b, err := os.ReadFile(spec.Result)
	if err != nil {
		return nil, err
	}
	res := &train.Result{}
	if err := json.Unmarshal(b, res); err != nil {
		return nil, err
	}
	return res, nil
}

// countsCode fills in the sizes behind each SMH scale, for the scales'
// gradient normalisation.
func countsCode(r *ir.SMHReport) string {
	if r == nil {
		return ""
	}
	return "\tfor _, t := range net.SMHTensors() {\n\t\tcfg.ScaleCounts = append(cfg.ScaleCounts, t.Count)\n\t}\n"
}

const mainTemplate = `// The trainer trainrun builds: it trains the generated package net.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/smhgen/smhgen/train"

	"trainer/net"
)

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail(err)
	}
	var spec train.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		fail(err)
	}
	tr, te, err := train.Load(spec.Data, spec.Subset, spec.TestSubset)
	if err != nil {
		fail(err)
	}
	opts := []net.Option{net.WithSeed(spec.Seed)}
	if spec.Reinit {
		opts = append(opts, net.WithRandomInit())
	}
	m := net.New(opts...)
	cfg := train.Config{Train: tr, Test: te, Epochs: spec.Epochs, Batch: spec.Batch, LR: spec.LR, FactorLR: spec.FactorLR,
		Momentum: spec.Momentum, Nesterov: spec.Nesterov, WeightDecay: spec.WeightDecay, WarmupSteps: spec.Warmup,
		Crop: spec.Crop, Flip: spec.Flip, Seed: spec.Seed, CSV: spec.CSV, Checkpoint: spec.Checkpoint,
		Out: os.Stdout, Terminal: train.IsTerminal(os.Stdout)}
//COUNTS
	fmt.Printf("%s on %s: %d trainable parameters, %d training and %d test images\n", spec.Model, spec.Data, m.NumParams(), tr.N, te.N)
	epochs, err := train.Run(m, cfg)
	if err != nil {
		fail(err)
	}
	res := train.Result{Spec: spec, Trainable: m.NumParams()}
	for _, e := range epochs {
		res.TestAcc = append(res.TestAcc, e.TestAcc)
		res.Loss = append(res.Loss, e.Loss)
		res.Seconds = e.Seconds
	}
	res.Final = res.TestAcc[len(res.TestAcc)-1]
	fmt.Printf("final test accuracy %.2f%% (%d trainable parameters)\n", 100*res.Final, res.Trainable)
	js, _ := json.Marshal(res)
	if err := os.WriteFile(spec.Result, js, 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "trainer:", err)
	os.Exit(1)
}
`
