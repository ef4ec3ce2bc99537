// Command smhgen compiles an ONNX model into Go.
//
// Usage:
//
//	smhgen [flags] model.onnx
//
// With -emit=ir it prints the compiler's intermediate representation after
// the pass pipeline (or after the pass named by -dump-after, "import" being
// the frontend's output). Exit status is 0 on success, 1 when the model or
// the compilation fails, 2 for bad usage.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

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
	emit      string
	dumpAfter string
	maxParams int64
	verbose   bool
	model     string
}

// parseArgs accepts flags before and after the model path, as in
// "smhgen model.onnx -o out.ir".
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("smhgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.out, "o", "", "write the output to `file` (atomically) instead of standard output")
	fs.StringVar(&c.emit, "emit", "ir", "what to emit: ir (the IR text after the pipeline)")
	fs.StringVar(&c.dumpAfter, "dump-after", "", "emit the IR after `pass` and stop (\"import\" for the frontend's output)")
	fs.Int64Var(&c.maxParams, "max-params", onnx.DefaultMaxElems, "refuse tensors with more than `n` elements")
	fs.BoolVar(&c.verbose, "v", false, "log the rewrites passes make to standard error")
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
	if c.emit != "ir" {
		return nil, usageError{fmt.Sprintf("-emit=%s: only ir is supported", c.emit)}
	}
	if c.maxParams <= 0 {
		return nil, usageError{"-max-params must be positive"}
	}
	return c, nil
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
	out, err := compile(c, stderr)
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "smhgen: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "smhgen: %s: %v\n", c.model, err)
		return 1
	}
	if c.out == "" {
		if _, err := stdout.Write(out); err != nil {
			fmt.Fprintf(stderr, "smhgen: %v\n", err)
			return 1
		}
		return 0
	}
	if err := atomicfile.WriteFile(c.out, out, 0o644); err != nil {
		fmt.Fprintf(stderr, "smhgen: %v\n", err)
		return 1
	}
	return 0
}

func compile(c *config, stderr io.Writer) ([]byte, error) {
	pipe, err := passes.NewPipeline(passes.Inference()...)
	if err != nil {
		return nil, err
	}
	if c.dumpAfter != "" && c.dumpAfter != "import" && !pipe.Has(c.dumpAfter) {
		return nil, usageError{fmt.Sprintf("-dump-after=%s: no such pass (have import, %s)", c.dumpAfter, strings.Join(pipe.Names(), ", "))}
	}
	g, err := onnx.ImportFile(c.model, onnx.Options{MaxElems: c.maxParams})
	if err != nil {
		return nil, err
	}
	if c.dumpAfter == "import" {
		if err := ir.Verify(g, ir.StageImported); err != nil {
			return nil, fmt.Errorf("the imported graph is invalid:\n%v", err)
		}
		return []byte(ir.Format(g)), nil
	}
	ctx := &passes.Context{}
	if c.verbose {
		ctx.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	if err := pipe.Run(g, ctx, c.dumpAfter); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := ir.Print(&buf, g); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
