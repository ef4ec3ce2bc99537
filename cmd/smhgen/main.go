// Command smhgen compiles an ONNX model into a standalone Go package.
//
// Usage:
//
//	smhgen [flags] model.onnx -o net.go
//
// writes net.go and the weights it embeds, net.weights. With -emit=ir it
// prints the compiler's intermediate representation after the pass pipeline
// instead (or after the pass named by -dump-after, "import" being the
// frontend's output). With -check it writes nothing and exits 1 when the
// files on disk differ from what it would write. Exit status is 0 on
// success, 1 when the model or the compilation fails, 2 for bad usage.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/smhgen/smhgen/codegen"
	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/internal/atomicfile"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks errors that deserve exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type config struct {
	out       string
	pkg       string
	emit      string
	dumpAfter string
	maxParams int64
	verbose   bool
	check     bool
	mode      string
	model     string

	fraction     float64
	params       int
	smh          string
	smhScope     string
	smhExclude   string
	smhScale     string
	smhSeed      uint64
	smhInference string
	smhInit      string
	report       bool
	smhConfig    *passes.SMHConfig
}

// parseArgs accepts flags before and after the model path, as in
// "smhgen model.onnx -o out.ir".
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("smhgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.out, "o", "", "write the Go source to `file` and its weights next to it (required for -emit=go; standard output for -emit=ir)")
	fs.StringVar(&c.pkg, "pkg", "", "the generated package's `name` (default: from the output's directory)")
	fs.StringVar(&c.emit, "emit", "go", "what to emit: go (a package), ir (the inference IR) or train-ir (the training IR)")
	fs.StringVar(&c.mode, "mode", "auto", "`what` the package does: train (Forward and TrainStep), infer (Forward only, BatchNorm folded into the weights), or auto (train when the model outputs class logits, infer otherwise)")
	fs.BoolVar(&c.check, "check", false, "write nothing; exit 1 if the output files are not what smhgen would write")
	fs.StringVar(&c.dumpAfter, "dump-after", "", "emit the IR after `pass` and stop (\"import\" for the frontend's output)")
	fs.Int64Var(&c.maxParams, "max-params", onnx.DefaultMaxElems, "refuse tensors with more than `n` elements")
	fs.BoolVar(&c.verbose, "v", false, "log the rewrites passes make to standard error")
	fs.Float64Var(&c.fraction, "fraction", 0, "compress the weights with SMH to this `fraction` of their count (0 < F <= 1)")
	fs.IntVar(&c.params, "params", 0, "compress with SMH to a total of `T` trainable values (pool, scales and uncompressed parameters)")
	fs.StringVar(&c.smh, "smh", "product", "the compression `variant`: product (Structured Multi-Hashing), hash (HashedNets) or kron (sum of Kronecker products)")
	fs.StringVar(&c.smhScope, "smh-scope", "all", "what to compress: all (convolution and dense weights and biases) or conv")
	fs.StringVar(&c.smhExclude, "smh-exclude", "", "leave parameters whose names match this `regexp` uncompressed")
	fs.StringVar(&c.smhScale, "smh-scale", "fanin", "initial scale of compressed weights: fanin (He, sqrt(2/fan_in)) or fanout (sqrt(2/fan_out), as EfficientNet)")
	fs.Uint64Var(&c.smhSeed, "smh-seed", 1, "`seed` of the pool's initial values and of the hash variant")
	fs.StringVar(&c.smhInference, "smh-inference", "fused", "fused (reconstruct each layer's weights during the layer before: the pool plus two layers in memory) or cached (reconstruct all once per weight change: faster)")
	fs.StringVar(&c.smhInit, "smh-init", passes.SMHInitRandom, "how the pool starts: random (train from scratch) or fit (the best approximation of the model's weights, to compress a trained model and fine-tune it)")
	fs.BoolVar(&c.report, "report", false, "print the compression report (per-tensor layout and totals) to standard error; without -o, print it and stop")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: smhgen [flags] model.onnx\n\nflags:\n")
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, usageError{fmt.Sprintf("want one model file, have %d arguments", len(pos))}
	}
	c.model = pos[0]
	if err := c.parseSMH(); err != nil {
		return nil, err
	}
	switch c.emit {
	case "go":
		if c.report && c.out == "" {
			break
		}
		if c.dumpAfter != "" {
			return nil, usageError{"-dump-after needs -emit=ir"}
		}
		if c.out == "" {
			return nil, usageError{"-emit=go needs -o file.go"}
		}
		if !strings.HasSuffix(c.out, ".go") {
			return nil, usageError{fmt.Sprintf("-o %s: the output must be a .go file", c.out)}
		}
		if c.pkg == "" {
			dir, err := filepath.Abs(filepath.Dir(c.out))
			if err != nil {
				return nil, err
			}
			c.pkg = codegen.PackageName(filepath.Base(dir))
		}
		if !codegen.IsIdentifier(c.pkg) {
			return nil, usageError{fmt.Sprintf("-pkg %q is not a Go identifier", c.pkg)}
		}
	case "ir", "train-ir":
		if c.pkg != "" {
			return nil, usageError{"-pkg needs -emit=go"}
		}
	default:
		return nil, usageError{fmt.Sprintf("-emit=%s: want go, ir or train-ir", c.emit)}
	}
	if c.check && c.out == "" {
		return nil, usageError{"-check needs -o"}
	}
	switch c.mode {
	case "auto", "train", "infer":
	default:
		return nil, usageError{fmt.Sprintf("-mode=%s: want auto, train or infer", c.mode)}
	}
	if c.maxParams <= 0 {
		return nil, usageError{"-max-params must be positive"}
	}
	return c, nil
}

// parseSMH checks the compression flags and builds the pass's config.
func (c *config) parseSMH() error {
	switch c.smhInit {
	case passes.SMHInitRandom, passes.SMHInitFit:
	default:
		return usageError{fmt.Sprintf("-smh-init=%s: want random or fit", c.smhInit)}
	}
	if c.fraction == 0 && c.params == 0 {
		if c.smhInit != passes.SMHInitRandom {
			return usageError{"-smh-init=" + c.smhInit + " needs -fraction or -params"}
		}
		if c.report {
			return usageError{"-report needs -fraction or -params"}
		}
		return nil
	}
	if c.fraction != 0 && c.params != 0 {
		return usageError{"give -fraction or -params, not both"}
	}
	if c.fraction < 0 || c.fraction > 1 || c.params < 0 {
		return usageError{fmt.Sprintf("-fraction %v / -params %d: want 0 < F <= 1 or T > 0", c.fraction, c.params)}
	}
	cfg := &passes.SMHConfig{Variant: c.smh, Fraction: c.fraction, Params: c.params, Seed: c.smhSeed}
	switch c.smh {
	case "product", "hash", "kron":
	default:
		return usageError{fmt.Sprintf("-smh=%s: want product, hash or kron", c.smh)}
	}
	switch c.smhScope {
	case "all":
	case "conv":
		cfg.ConvOnly = true
	default:
		return usageError{fmt.Sprintf("-smh-scope=%s: want all or conv", c.smhScope)}
	}
	switch c.smhScale {
	case "fanin":
	case "fanout":
		cfg.FanOut = true
	default:
		return usageError{fmt.Sprintf("-smh-scale=%s: want fanin or fanout", c.smhScale)}
	}
	switch c.smhInference {
	case "fused":
	case "cached":
		cfg.Cached = true
	default:
		return usageError{fmt.Sprintf("-smh-inference=%s: want fused or cached", c.smhInference)}
	}
	cfg.Init = c.smhInit
	if c.smhExclude != "" {
		re, err := regexp.Compile(c.smhExclude)
		if err != nil {
			return usageError{fmt.Sprintf("-smh-exclude: %v", err)}
		}
		cfg.Exclude = re
	}
	c.smhConfig = cfg
	return nil
}

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "smhgen: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "smhgen: %v\n", err)
		return 1
	}
	files, err := compile(c, stderr)
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "smhgen: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "smhgen: %s: %v\n", c.model, err)
		return 1
	}
	if len(files) == 0 {
		return 0
	}
	if c.out == "" {
		if _, err := stdout.Write(files[0].data); err != nil {
			fmt.Fprintf(stderr, "smhgen: %v\n", err)
			return 1
		}
		return 0
	}
	if c.check {
		stale := false
		for _, f := range files {
			old, err := os.ReadFile(f.path)
			if err != nil || !bytes.Equal(old, f.data) {
				fmt.Fprintf(stderr, "smhgen: %s is out of date with %s; run smhgen again\n", f.path, c.model)
				stale = true
			}
		}
		if stale {
			return 1
		}
		return 0
	}
	// A missing directory would otherwise surface as the temporary file's
	// error, which names a file the user never asked for.
	dir := filepath.Dir(files[0].path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "smhgen: output directory %s does not exist; create it first\n", dir)
		return 1
	}
	// Each file is replaced atomically; the weights go first, so a failure
	// in between leaves new weights that the old source refuses loudly
	// (their size and checksum are compiled in) rather than misreads.
	for i := len(files) - 1; i >= 0; i-- {
		if err := atomicfile.WriteFile(files[i].path, files[i].data, 0o644); err != nil {
			fmt.Fprintf(stderr, "smhgen: %v\n", err)
			return 1
		}
	}
	return 0
}

type outFile struct {
	path string
	data []byte
}

// mainPipeline returns the pipeline whose graph -emit=ir and -dump-after
// show: the inference one, folded or not, or the training one.
func mainPipeline(c *config) (*passes.Pipeline, error) {
	switch {
	case c.emit == "train-ir":
		return passes.NewPipeline(passes.Training()...)
	case c.emit == "ir" || c.mode == "infer":
		return passes.NewPipeline(passes.Inference()...)
	}
	return passes.NewPipeline(passes.TrainedInference()...)
}

func compile(c *config, stderr io.Writer) ([]outFile, error) {
	pipe, err := mainPipeline(c)
	if err != nil {
		return nil, err
	}
	if c.dumpAfter != "" && c.dumpAfter != "import" && !pipe.Has(c.dumpAfter) {
		return nil, usageError{fmt.Sprintf("-dump-after=%s: no such pass (have import, %s)", c.dumpAfter, strings.Join(pipe.Names(), ", "))}
	}
	opts := onnx.Options{MaxElems: c.maxParams}
	g, err := onnx.ImportFile(c.model, opts)
	if err != nil {
		return nil, err
	}
	if c.dumpAfter == "import" {
		if err := ir.Verify(g, ir.StageImported); err != nil {
			return nil, fmt.Errorf("the imported graph is invalid:\n%v", err)
		}
		return []outFile{{c.out, []byte(ir.Format(g))}}, nil
	}
	ctx := &passes.Context{Training: c.emit == "train-ir", SMH: c.smhConfig}
	if c.verbose {
		ctx.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	if c.emit != "go" || c.report && c.out == "" {
		if err := pipe.Run(g, ctx, c.dumpAfter); err != nil {
			return nil, err
		}
		if c.emit == "go" {
			return nil, writeReport(g, stderr)
		}
		if c.report {
			if err := writeReport(g, stderr); err != nil {
				return nil, err
			}
		}
		return []outFile{{c.out, []byte(ir.Format(g))}}, nil
	}
	weights := strings.TrimSuffix(c.out, ".go") + ".weights"
	gopts := codegen.Options{Package: c.pkg, Source: filepath.Base(c.model), WeightsFile: filepath.Base(weights)}
	out, err := generate(c, g, opts, gopts, ctx, stderr)
	if err != nil {
		return nil, err
	}
	if c.report {
		if err := writeReport(g, stderr); err != nil {
			return nil, err
		}
	}
	return []outFile{{c.out, out.Go}, {weights, out.Weights}}, nil
}

// generate builds the package: trainable unless -mode=infer, or -mode=auto
// finds a model that cannot be trained.
func generate(c *config, g *ir.Graph, opts onnx.Options, gopts codegen.Options, ctx *passes.Context, stderr io.Writer) (*codegen.Output, error) {
	if c.mode != "infer" {
		// The training program comes from a second import, so that the
		// two pipelines never share a rewritten graph.
		tg, err := onnx.ImportFile(c.model, opts)
		if err != nil {
			return nil, err
		}
		train, err := passes.NewPipeline(passes.Training()...)
		if err != nil {
			return nil, err
		}
		tctx := *ctx
		tctx.Training = true
		err = train.Run(tg, &tctx, "")
		switch {
		case err == nil:
			eval, err := passes.NewPipeline(passes.TrainedInference()...)
			if err != nil {
				return nil, err
			}
			if err := eval.Run(g, ctx, ""); err != nil {
				return nil, err
			}
			return codegen.GenerateTrainable(g, tg, gopts)
		case c.mode == "auto" && errors.Is(err, passes.ErrNotClassifier):
			fmt.Fprintf(stderr, "smhgen: %s: %v; generating inference only\n", c.model, unwrapPass(err))
		default:
			return nil, fmt.Errorf("building the training program: %w", err)
		}
	}
	infer, err := passes.NewPipeline(passes.Inference()...)
	if err != nil {
		return nil, err
	}
	if err := infer.Run(g, ctx, ""); err != nil {
		return nil, err
	}
	return codegen.Generate(g, gopts)
}

// writeReport prints the compression report of a compiled graph.
func writeReport(g *ir.Graph, w io.Writer) error {
	r := ir.ReportSMH(g)
	if r == nil {
		return fmt.Errorf("the model is not compressed")
	}
	return r.Write(w)
}

// unwrapPass strips the pipeline's "pass NAME:" wrapping for a message.
func unwrapPass(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
