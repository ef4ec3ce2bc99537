package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const modulePath = "github.com/smhgen/smhgen"

// harness holds what every scenario needs: the options, the repository,
// the machine's description and a scratch directory.
type harness struct {
	opts    options
	root    string // the repository root
	work    string // scratch directory
	ownWork bool   // work was made here and is removed by close
	machine machine
	smhgen  string // the smhgen binary, once built
}

// machine describes where the numbers were measured.
type machine struct {
	nproc     string // nproc's output
	cpu       string // lscpu's model name
	goVersion string // go version's output
	date      string // UTC date of the run
	repo      string // the repository's commit and uncommitted source changes
}

func newHarness(o options) (*harness, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	h := &harness{opts: o, root: root}
	if o.work != "" {
		h.work, err = filepath.Abs(o.work)
		if err == nil {
			err = os.MkdirAll(h.work, 0o755)
		}
	} else {
		h.work, err = os.MkdirTemp("", "smhgen-bench-")
		h.ownWork = !o.keep
	}
	if err != nil {
		return nil, err
	}
	h.machine = h.describeMachine()
	return h, nil
}

// close removes the scratch directory unless the user asked to keep it.
func (h *harness) close() {
	if h.ownWork {
		os.RemoveAll(h.work)
	} else {
		fmt.Fprintf(os.Stderr, "bench: work directory kept: %s\n", h.work)
	}
}

// repoRoot finds the smhgen module from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modFileModule(b) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the %s repository (no go.mod for it above the working directory)", modulePath)
		}
		dir = parent
	}
}

// modFileModule returns the module path a go.mod declares.
func modFileModule(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

func (h *harness) describeMachine() machine {
	m := machine{nproc: fmt.Sprint(runtime.NumCPU()), cpu: "unknown", date: time.Now().UTC().Format("2006-01-02")}
	if out, err := exec.Command("nproc").Output(); err == nil {
		m.nproc = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if name, ok := strings.CutPrefix(line, "Model name:"); ok {
				m.cpu = strings.TrimSpace(name)
				break
			}
		}
	}
	m.repo = h.repoState()
	m.goVersion = runtime.Version()
	if out, err := h.goCmd(h.root, "version").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	return m
}

// repoState describes the code measured: the commit, and the Go files
// (outside bench/) that differ from it, since the numbers depend on them.
func (h *harness) repoState() string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = h.root
	head, err := cmd.Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	state := "commit " + strings.TrimSpace(string(head))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=all", "--", "*.go", "*.s", ":!bench")
	cmd.Dir = h.root
	out, err := cmd.Output()
	if err != nil {
		return state
	}
	var files []string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if len(line) > 3 {
			files = append(files, strings.TrimSpace(line[3:]))
		}
	}
	if len(files) == 0 {
		return state + ", no uncommitted Go changes"
	}
	const show = 12
	list := strings.Join(files[:min(len(files), show)], ", ")
	if len(files) > show {
		list += fmt.Sprintf(" and %d more", len(files)-show)
	}
	return fmt.Sprintf("%s with uncommitted changes to %s", state, list)
}

// goCmd is a go command run in dir with the settings of a standalone module.
func (h *harness) goCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	return cmd
}

// run runs cmd and returns its standard output; on failure the error
// includes standard error. With -v, standard error is shown as it comes.
func (h *harness) run(cmd *exec.Cmd) ([]byte, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if h.opts.verbose {
		fmt.Fprintf(os.Stderr, "+ (cd %s && %s)\n", cmd.Dir, strings.Join(cmd.Args, " "))
		cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	}
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// ensureModels makes sure the models (paths relative to the repository
// root) exist, running export.py for missing ones under testdata/models/big
// when -regenerate=auto.
func (h *harness) ensureModels(models ...string) error {
	var missing []string
	for _, m := range models {
		if _, err := os.Stat(filepath.Join(h.root, m)); err != nil {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	const py, script = "/usr/bin/python3", "testdata/models/export.py"
	how := fmt.Sprintf("run %s %s from the repository root (Debian's python3-torch, python3-torchvision, python3-onnx)", py, script)
	if h.opts.regenerate != "auto" {
		return fmt.Errorf("missing %s: %s", strings.Join(missing, ", "), how)
	}
	fmt.Fprintf(os.Stderr, "bench: missing %s; running %s %s\n", strings.Join(missing, ", "), py, script)
	cmd := exec.Command(py, script)
	cmd.Dir = h.root
	if _, err := h.run(cmd); err != nil {
		return fmt.Errorf("regenerating the models failed (%v); %s", err, how)
	}
	for _, m := range missing {
		if _, err := os.Stat(filepath.Join(h.root, m)); err != nil {
			return fmt.Errorf("%s still missing after %s", m, script)
		}
	}
	return nil
}

// buildSmhgen builds cmd/smhgen from the repository once.
func (h *harness) buildSmhgen() (string, error) {
	if h.smhgen != "" {
		return h.smhgen, nil
	}
	bin := filepath.Join(h.work, "smhgen")
	if _, err := h.run(h.goCmd(h.root, "build", "-o", bin, "./cmd/smhgen")); err != nil {
		return "", err
	}
	h.smhgen = bin
	return bin, nil
}

// writeSection replaces (or appends) the scenario's section of the results
// document.
func (h *harness) writeSection(sc *scenario, rep *report, elapsed time.Duration) error {
	path := filepath.Join(h.root, h.opts.doc)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(old) == 0 {
		old = []byte(docPreamble)
	}
	var body strings.Builder
	fmt.Fprintf(&body, "## %s\n\n", sc.heading)
	fmt.Fprintf(&body, "Measured %s with\n\n    %s\n\n", h.machine.date, commandLine())
	fmt.Fprintf(&body, "on %s CPUs (`nproc`), %s (`lscpu` model name), %s; %d rounds, harness run time %v. Code: %s.\n\n",
		h.machine.nproc, h.machine.cpu, h.machine.goVersion, h.opts.rounds, elapsed, h.machine.repo)
	body.WriteString(strings.TrimRight(rep.markdown, "\n"))
	body.WriteString("\n")
	out := replaceSection(string(old), sc.heading, body.String())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// commandLine is the command that reproduces this run.
func commandLine() string {
	args := []string{"go", "run", "./bench"}
	for _, a := range os.Args[1:] {
		if a == "-write-doc" || a == "--write-doc" || strings.HasPrefix(a, "-write-doc=") {
			continue
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// replaceSection replaces the level-2 section titled heading in doc (up to
// the next level-2 heading) with section, or appends section.
func replaceSection(doc, heading, section string) string {
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\n")
		if start < 0 && t == "## "+heading {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	if start < 0 {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
		return doc + section
	}
	rest := strings.Join(lines[end:], "")
	if rest != "" {
		section += "\n"
	}
	return strings.Join(lines[:start], "") + section + rest
}

// docPreamble starts a new results document.
const docPreamble = `# Performance

Numbers measured by the benchmark harness in ` + "`bench/`" + ` (` + "`go run ./bench -help`" + `).
Each section is written by ` + "`go run ./bench -scenario NAME -write-doc`" + ` and
says when, how and on what machine it was measured; timing on small shared
machines is noisy, so the harness alternates the packages it compares,
repeats the measurement in rounds and reports medians, and ratios taken
within each round.
`

// runMeasured is run, and also returns the average CPU use of the other
// processes on the machine while cmd ran (NaN where unknown), in CPUs.
func (h *harness) runMeasured(cmd *exec.Cmd) (out []byte, background float64, err error) {
	b0, ok := cpuSeconds()
	start := time.Now()
	out, err = h.run(cmd)
	if err != nil {
		return out, math.NaN(), err
	}
	b1, _ := cpuSeconds()
	background = math.NaN()
	if ps := cmd.ProcessState; ok && ps != nil {
		own := (ps.UserTime() + ps.SystemTime()).Seconds()
		background = max(0, (b1-b0-own)/time.Since(start).Seconds())
	}
	return out, background, nil
}

// cpuSeconds reads the machine's busy CPU time, all CPUs together, from
// /proc/stat (Linux's USER_HZ is 100); ok is false without /proc/stat.
func cpuSeconds() (busy float64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var ticks float64
	for i, s := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		ticks += v // user nice system irq softirq steal
	}
	return ticks / 100, true
}

// waitQuiet waits, up to -wait-quiet, until other processes use less than
// quietLoad CPUs over a few seconds, and returns the load it last saw.
func (h *harness) waitQuiet() float64 {
	const window = 3 * time.Second
	deadline := time.Now().Add(h.opts.waitQuiet)
	for {
		b0, ok := cpuSeconds()
		if !ok {
			return math.NaN()
		}
		time.Sleep(window)
		b1, _ := cpuSeconds()
		load := (b1 - b0) / window.Seconds()
		if load < quietLoad || time.Now().After(deadline) {
			if load >= quietLoad && h.opts.waitQuiet > 0 {
				fmt.Fprintf(os.Stderr, "bench: the machine is still busy (other processes use %.2f CPUs); timing anyway\n", load)
			}
			return load
		}
		fmt.Fprintf(os.Stderr, "bench: waiting for the machine to be quiet (other processes use %.2f CPUs)\n", load)
	}
}

// quietLoad is the CPU use of other processes below which the machine
// counts as quiet.
const quietLoad = 0.2
