// Package passes holds the compiler's graph-to-graph passes and the pipeline
// that runs them. A pass is a documented value with a name; the pipeline
// checks ordering constraints when it is built, verifies the IR after every
// pass (on by default: graphs are small), names the pass in every error and
// turns a pass's panic into an error.
package passes

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/smhgen/smhgen/ir"
)

// Pass is one graph transformation.
type Pass struct {
	// Name is how the pass is named on the command line (-dump-after) and
	// in errors.
	Name string
	// Doc says what the pass needs and what it guarantees.
	Doc string
	// Stage is the stage the graph is at after the pass; the pipeline
	// verifies against it.
	Stage ir.Stage
	// After lists passes that must run earlier in the same pipeline.
	After []string
	// Run transforms the graph in place.
	Run func(g *ir.Graph, c *Context) error
}

// Context carries a compilation's options to the passes: no globals.
type Context struct {
	// Training keeps training-only semantics (Dropout stays active).
	Training bool
	// Disabled names passes to skip (they must not be required by
	// later ones).
	Disabled map[string]bool
	// NoVerify turns off verification between passes.
	NoVerify bool
	// AfterPass, if set, is called with each pass's name and result graph.
	AfterPass func(pass string, g *ir.Graph)
	// Logf, if set, receives one line per notable rewrite.
	Logf func(format string, args ...any)
	// SMH, if set, has the smh pass compress the model.
	SMH *SMHConfig
}

func (c *Context) logf(format string, args ...any) {
	if c != nil && c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Pipeline is an ordered list of passes whose constraints have been checked.
type Pipeline struct {
	passes []*Pass
}

// NewPipeline checks that names are unique and every pass's After
// constraints are met by the order given.
func NewPipeline(ps ...*Pass) (*Pipeline, error) {
	seen := map[string]bool{}
	for _, p := range ps {
		if p.Name == "" || p.Run == nil {
			return nil, fmt.Errorf("pass %q has no name or no Run", p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("pass %q appears twice", p.Name)
		}
		for _, a := range p.After {
			if !seen[a] {
				return nil, fmt.Errorf("pass %q must run after %q", p.Name, a)
			}
		}
		seen[p.Name] = true
	}
	return &Pipeline{passes: ps}, nil
}

// Names lists the passes in order.
func (p *Pipeline) Names() []string {
	out := make([]string, len(p.passes))
	for i, ps := range p.passes {
		out[i] = ps.Name
	}
	return out
}

// Has reports whether the pipeline contains a pass of that name.
func (p *Pipeline) Has(name string) bool {
	for _, ps := range p.passes {
		if ps.Name == name {
			return true
		}
	}
	return false
}

// Run applies the passes in order, verifying after each, and stops after
// the pass named stopAfter when it is not empty.
func (p *Pipeline) Run(g *ir.Graph, c *Context, stopAfter string) error {
	if c == nil {
		c = &Context{}
	}
	if stopAfter != "" && !p.Has(stopAfter) {
		return fmt.Errorf("no pass named %q (passes: %s)", stopAfter, strings.Join(p.Names(), ", "))
	}
	stage := ir.StageImported
	for _, ps := range p.passes {
		if c.Disabled[ps.Name] {
			for _, later := range p.passes {
				for _, a := range later.After {
					if a == ps.Name && !c.Disabled[later.Name] {
						return fmt.Errorf("pass %q cannot be disabled: %q needs it", ps.Name, later.Name)
					}
				}
			}
			continue
		}
		if err := runOne(ps, g, c); err != nil {
			return err
		}
		// Stages only advance: a stage-agnostic pass such as dce declares
		// the earliest stage it works at.
		stage = max(stage, ps.Stage)
		if !c.NoVerify {
			if err := ir.Verify(g, stage); err != nil {
				return fmt.Errorf("after pass %s, the graph is invalid:\n%v", ps.Name, err)
			}
		}
		if c.AfterPass != nil {
			c.AfterPass(ps.Name, g)
		}
		if ps.Name == stopAfter {
			break
		}
	}
	return nil
}

func runOne(ps *Pass, g *ir.Graph, c *Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pass %s: internal error: %v\n%s", ps.Name, r, debug.Stack())
		}
	}()
	if err := ps.Run(g, c); err != nil {
		return fmt.Errorf("pass %s: %w", ps.Name, err)
	}
	return nil
}

// Inference returns the passes that prepare an imported graph for inference
// code generation, in order.
func Inference() []*Pass {
	return []*Pass{Cleanup, Fold, Simplify, BNFold, SMH, Fuse, DCE, SMHPrefetch, Plan}
}

// Training returns the passes that build the training program from an
// imported graph (run it with Context.Training set).
func Training() []*Pass {
	return []*Pass{Cleanup, Fold, Simplify, SMH, TrainMode, Autodiff, SMHGrad, Fuse, DCE, Plan}
}

// TrainedInference returns the passes that build the inference program of a
// trainable package: as Inference, but BatchNorm stays a kernel over the
// running statistics, since the weights change as the model trains.
func TrainedInference() []*Pass {
	return []*Pass{Cleanup, Fold, Simplify, SMH, Fuse, DCE, SMHPrefetch, Plan}
}
