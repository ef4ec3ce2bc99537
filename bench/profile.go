package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// kernelClass names a group of functions in a CPU profile.
type kernelClass struct {
	name string
	re   *regexp.Regexp
}

// rtFunc matches functions of smhgen's runtime package whose names (after
// the package) match re.
func rtFunc(re string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(modulePath+"/runtime.") + `(` + re + `)`)
}

// kernelClasses sort profile functions by their flat time, first match wins.
// Parallel kernels run partly on the worker pool's goroutines, whose stacks
// do not include the generated code's call, so only flat (self) time is
// attributed reliably.
var kernelClasses = []kernelClass{
	{"SMH forward: SMHWeight (reconstruct the weights)", rtFunc(`SMHWeight$|SMHReconstruct|\(\*SMHParams\)\.forward|\(\*smhFwdTask\)|smhRowFwd|\(\*SMHWeightParams\)\.kronForward|HashGather`)},
	{"SMH backward: SMHGradSum (pool and scale gradients)", rtFunc(`SMHGradSum|SMHScatterAdd|\(\*SMHWeightParams\)\.(accum|kronBackward)|\(\*smhRowGradTask\)|smhRowGrad|\(\*smhColGradTask\)|HashScatterAdd`)},
	{"GEMM", rtFunc(`[Ss]gemm|gemm|\(\*s?gemm`)},
	{"convolution (im2col, col2im, bias, other)", rtFunc(`Conv|conv|\(\*[Cc]onv|im2col|col2im`)},
	{"batch norm", rtFunc(`.*[Bb]atch[Nn]orm|\(\*bn|\(\*nnBN`)},
	{"optimizer", rtFunc(`\(\*SGD\)|\(\*AdamW\)|\(\*sgdTask\)|\(\*adamTask\)|optim|sgd|adam`)},
	{"loss", rtFunc(`.*[Ss]oftmax|.*[Cc]rossEntropy|.*[Ll]oss`)},
	{"worker pool", rtFunc(`ParallelFor|\(\*workerPool\)|Workers`)},
	{"other smhgen kernels (elementwise, pooling, pad, ...)", rtFunc(``)},
	{"generated code", regexp.MustCompile(`^smhbench/`)},
	{"Go runtime (scheduler, memory, GC)", regexp.MustCompile(`^runtime\.|^sync|^internal/`)},
	{"other", regexp.MustCompile(``)},
}

// profileEntry is one function of a profile: its flat time in ms.
type profileEntry struct {
	name string
	flat float64
}

// profileSummary is one profiled run, in CPU milliseconds per call.
type profileSummary struct {
	pkg     string
	kind    string
	wallMs  float64            // wall time per call during the profile
	load    float64            // other processes' CPU use during the profile
	cpuMs   float64            // sampled CPU time per call
	byClass map[string]float64 // CPU ms per call by kernel class
	top     []profileEntry     // functions by flat CPU ms per call, largest first
}

// profile CPU-profiles one package doing kind (train or forward) at batch.
func (m *module) profile(pkg, kind string, batch int) (*profileSummary, error) {
	out := filepath.Join(m.dir, fmt.Sprintf("%s.%s.pprof", pkg, kind))
	m.h.waitQuiet()
	fmt.Fprintf(os.Stderr, "bench: profiling %s %s for %v\n", pkg, kind, m.h.opts.profTime)
	res, err := m.runProgram("-packages", pkg, "-cpuprofile", out, "-profile-kind", kind,
		"-batch", strconv.Itoa(batch), "-profile-time", m.h.opts.profTime.String(),
		"-lr", strconv.FormatFloat(m.h.opts.lr, 'g', -1, 64))
	if err != nil {
		return nil, err
	}
	if res.Profile == nil {
		return nil, fmt.Errorf("profiling %s: no profile in the output", pkg)
	}
	top, err := m.h.run(m.h.goCmd(m.dir, "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0", "-unit=ms", m.bin, out))
	if err != nil {
		return nil, err
	}
	entries, err := parsePprofTop(string(top))
	if err != nil {
		return nil, err
	}
	iters := float64(res.Profile.Iters)
	s := &profileSummary{pkg: pkg, kind: kind, wallMs: res.Profile.NsPerOp / 1e6, load: res.background, byClass: map[string]float64{}}
	for _, e := range entries {
		e.flat /= iters
		s.cpuMs += e.flat
		s.top = append(s.top, e)
		for _, c := range kernelClasses {
			if c.re.MatchString(e.name) {
				s.byClass[c.name] += e.flat
				break
			}
		}
	}
	return s, nil
}

// parsePprofTop reads `go tool pprof -top -unit=ms` output: after the
// header, lines of flat, flat%, sum%, cum, cum% and the function name.
func parsePprofTop(out string) ([]profileEntry, error) {
	var es []profileEntry
	started := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if !started {
			started = len(f) >= 5 && f[0] == "flat" && f[1] == "flat%"
			continue
		}
		if len(f) < 6 {
			continue
		}
		flat, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "ms"), 64)
		if err != nil {
			return nil, fmt.Errorf("pprof line %q: %v", line, err)
		}
		name := strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)")
		es = append(es, profileEntry{name: name, flat: flat})
	}
	if !started {
		return nil, fmt.Errorf("no pprof -top table in:\n%s", out)
	}
	return es, nil
}

// shortName abbreviates smhgen's runtime package to rt in a function name.
func shortName(name string) string {
	return strings.Replace(name, modulePath+"/runtime.", "rt.", 1)
}
