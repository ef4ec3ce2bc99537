package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// variant is one model compiled with one set of smhgen flags: a package of
// the temporary module.
type variant struct {
	pkg   string   // package name (a Go identifier)
	label string   // what the table calls it
	model string   // the ONNX file, relative to the repository root
	flags []string // smhgen flags besides -pkg and -o
}

// compressed reports whether the flags ask smhgen for SMH compression.
func (v variant) compressed() bool {
	for _, f := range v.flags {
		name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
		if name == "fraction" || name == "params" {
			return true
		}
	}
	return false
}

// group is a set of variants timed together in one process, in
// alternating rounds, and compared with the first (the baseline).
type group struct {
	title    string
	variants []variant
}

// measure is one kind of timed call: "train" or "forward", at a batch size.
type measure struct {
	kind  string
	batch int
}

func (m measure) String() string {
	if m.kind == "train" {
		return fmt.Sprintf("train step b%d", m.batch)
	}
	return fmt.Sprintf("Forward b%d", m.batch)
}

// sample is one measurement of the benchmark program.
type sample struct {
	Round   int       `json:"round"`
	Package string    `json:"package"`
	Kind    string    `json:"kind"`
	Batch   int       `json:"batch"`
	Iters   int       `json:"iters"`
	NsPerOp float64   `json:"ns_per_op"`
	Calls   []float64 `json:"calls"`
}

// programResult is the benchmark program's JSON output.
type programResult struct {
	GOMAXPROCS int                  `json:"gomaxprocs"`
	NumCPU     int                  `json:"numcpu"`
	Go         string               `json:"go"`
	Params     map[string]int       `json:"params"`
	Losses     map[string][]float32 `json:"losses"`
	Samples    []sample             `json:"samples"`
	// background is the CPU use of other processes while the program
	// ran, in CPUs (NaN where unknown); not part of the program's output.
	background float64
	Profile    *struct {
		Package string  `json:"package"`
		Kind    string  `json:"kind"`
		Batch   int     `json:"batch"`
		Iters   int     `json:"iters"`
		NsPerOp float64 `json:"ns_per_op"`
	} `json:"profile"`
}

// timings are a group's measurements: times[pkg][measure][round] in ns.
type timings struct {
	group  group
	rounds int
	params map[string]int
	losses map[string][]float32
	times  map[string]map[measure][]float64
	calls  map[string]map[measure][][]float64 // calls[pkg][m][round][cycle], ns
	procs  int
	// quiet is the other processes' CPU use just before the timing, and
	// background their average during it, in CPUs.
	quiet, background float64
}

// module is a temporary Go module holding generated packages and the
// benchmark program, built into one binary.
type module struct {
	h   *harness
	dir string
	bin string
}

// buildModule compiles every variant of the groups into one temporary
// module and builds the benchmark program.
func (h *harness) buildModule(groups []group) (*module, error) {
	smhgen, err := h.buildSmhgen()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(h.work, "mod")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	const name = "smhbench"
	gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire %s v0.0.0\n\nreplace %s => %s\n", name, modulePath, modulePath, h.root)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return nil, err
	}
	sum, err := os.ReadFile(filepath.Join(h.root, "go.sum"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		return nil, err
	}
	var imports []programImport
	seen := map[string]bool{}
	for _, g := range groups {
		for _, v := range g.variants {
			if seen[v.pkg] {
				return nil, fmt.Errorf("package %s appears twice", v.pkg)
			}
			seen[v.pkg] = true
			out := filepath.Join(dir, v.pkg, v.pkg+".go")
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return nil, err
			}
			args := append([]string{"-pkg", v.pkg, "-o", out}, v.flags...)
			args = append(args, filepath.Join(h.root, v.model))
			if h.opts.verbose {
				fmt.Fprintf(os.Stderr, "+ smhgen %s\n", strings.Join(args, " "))
			}
			cmd := execIn(h.root, smhgen, args...)
			if _, err := h.run(cmd); err != nil {
				return nil, fmt.Errorf("compiling %s: %v", v.model, err)
			}
			imports = append(imports, programImport{Name: v.pkg, Path: name + "/" + v.pkg, SMH: v.compressed()})
		}
	}
	src, err := benchProgram(imports)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644); err != nil {
		return nil, err
	}
	m := &module{h: h, dir: dir, bin: filepath.Join(dir, "benchprog")}
	fmt.Fprintf(os.Stderr, "bench: building %d generated packages\n", len(imports))
	if _, err := h.run(h.goCmd(dir, "build", "-o", m.bin, ".")); err != nil {
		return nil, err
	}
	return m, nil
}

// runProgram runs the benchmark program with args and decodes its output.
func (m *module) runProgram(args ...string) (*programResult, error) {
	cmd := execIn(m.dir, m.bin, args...)
	if m.h.opts.threads > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(m.h.opts.threads))
	}
	out, background, err := m.h.runMeasured(cmd)
	if err != nil {
		return nil, err
	}
	var res programResult
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("benchmark program output: %v", err)
	}
	res.background = background
	return &res, nil
}

// timeGroup runs the benchmark program on one group.
func (m *module) timeGroup(g group, trainBatch int, inferBatches []int) (*timings, error) {
	pkgs := make([]string, len(g.variants))
	for i, v := range g.variants {
		pkgs[i] = v.pkg
	}
	infer := make([]string, len(inferBatches))
	for i, b := range inferBatches {
		infer[i] = strconv.Itoa(b)
	}
	o := m.h.opts
	fmt.Fprintf(os.Stderr, "bench: timing %s (%s), %d rounds\n", g.title, strings.Join(pkgs, ", "), o.rounds)
	quiet := m.h.waitQuiet()
	start := time.Now()
	res, err := m.runProgram("-packages", strings.Join(pkgs, ","), "-rounds", strconv.Itoa(o.rounds),
		"-batch", strconv.Itoa(trainBatch), "-infer", strings.Join(infer, ","),
		"-train-time", o.trainTime.String(), "-infer-time", o.inferTime.String(), "-lr", strconv.FormatFloat(o.lr, 'g', -1, 64))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s took %v\n", g.title, time.Since(start).Round(time.Second))
	t := &timings{group: g, rounds: o.rounds, params: res.Params, losses: res.Losses,
		times: map[string]map[measure][]float64{}, calls: map[string]map[measure][][]float64{}, procs: res.GOMAXPROCS,
		quiet: quiet, background: res.background}
	for _, s := range res.Samples {
		if t.times[s.Package] == nil {
			t.times[s.Package] = map[measure][]float64{}
		}
		k := measure{s.Kind, s.Batch}
		r := t.times[s.Package][k]
		for len(r) <= s.Round {
			r = append(r, 0)
		}
		r[s.Round] = s.NsPerOp
		t.times[s.Package][k] = r
		if t.calls[s.Package] == nil {
			t.calls[s.Package] = map[measure][][]float64{}
		}
		c := t.calls[s.Package][k]
		for len(c) <= s.Round {
			c = append(c, nil)
		}
		c[s.Round] = s.Calls
		t.calls[s.Package][k] = c
	}
	for pkg, l := range res.Losses {
		for i, v := range l {
			if v != v || v > 1e30 || v < -1e30 {
				return nil, fmt.Errorf("%s: training loss %g at step %d", pkg, v, i)
			}
		}
	}
	return t, nil
}

// median of one package's measure over the rounds, in ns.
func (t *timings) median(pkg string, m measure) float64 {
	return median(t.times[pkg][m])
}

// ratio summarises num/den per round: the median and the range.
func (t *timings) ratio(num, den string, m measure) (med, lo, hi float64) {
	a, b := t.times[num][m], t.times[den][m]
	var r []float64
	for i := range min(len(a), len(b)) {
		if a[i] > 0 && b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return median(r), minOf(r), maxOf(r)
}

// pairedRatio summarises num/den over single calls made in the same cycle
// of the same round (adjacent in time): the median, the quartiles and the
// number of pairs.
func (t *timings) pairedRatio(num, den string, m measure) (med, q1, q3 float64, n int) {
	a, b := t.calls[num][m], t.calls[den][m]
	var r []float64
	for i := range min(len(a), len(b)) {
		for c := range min(len(a[i]), len(b[i])) {
			if a[i][c] > 0 && b[i][c] > 0 {
				r = append(r, a[i][c]/b[i][c])
			}
		}
	}
	return median(r), quantile(r, 0.25), quantile(r, 0.75), len(r)
}

// execIn is exec.Command in dir.
func execIn(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	return cmd
}
