package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

var pytorchScenario = &scenario{
	name:    "pytorch",
	summary: "generated code vs PyTorch (bench/torch_bench.py): LeNet-5, ResNet-20 and MobileNetV2-0.35 training and inference, alternating in one run",
	heading: "Against PyTorch",
	run:     runPyTorch,
}

const mobilenetv2Model = "testdata/models/big/mobilenetv2_bn.onnx"

const (
	// torchPython runs the PyTorch side: Debian's interpreter, whose
	// python3-torch exported the fixtures (export.py).
	torchPython = "/usr/bin/python3"
	// torchScript is the PyTorch side, relative to the repository root.
	torchScript = "bench/torch_bench.py"
	// gemmSize is the m = n = k of the reference GEMM both sides time.
	gemmSize = 512
)

// torchEnv are the glibc malloc settings of the PyTorch process: large
// activations stay on the heap instead of being mmapped and unmapped (and
// zeroed by the kernel) at every step, which is PyTorch's documented CPU
// tuning advice and its best case here.
var torchEnv = []string{"MALLOC_MMAP_THRESHOLD_=33554432", "MALLOC_TRIM_THRESHOLD_=100000000000", "MALLOC_TOP_PAD_=268435456"}

// sideGap is the pause before each timed request: the side that just ran
// may leave threads spinning (OpenBLAS's and libgomp's wait by spinning for
// a while, Go's scheduler briefly), which must not steal CPU from the
// other side's measurement.
const sideGap = 250 * time.Millisecond

// cmpMeasure is one line of the comparison. Every ratio is PyTorch's time
// over ours: above 1 we are faster, whether the line is read as throughput
// (ours / PyTorch's) or as latency (PyTorch's / ours).
type cmpMeasure struct {
	id     string  // as both servers name it: PKG/train/B, PKG/forward/B or sgemm/N
	model  string  // the table's model column
	what   string  // the table's measure column
	target float64 // the project's minimum ratio; 0 for none
	goal   string  // the target as the table states it
}

// pytorchMeasures are the scenario's measures, in the order of each round;
// the targets are the ("Performance").
func pytorchMeasures() []cmpMeasure {
	b := strconv.Itoa(trainBatch)
	return []cmpMeasure{
		{"lenet5/train/" + b, "LeNet-5", "training, batch " + b, 1.5, "≥ 1.5× PyTorch"},
		{"resnet20/train/" + b, "ResNet-20", "training, batch " + b, 1.0, "≥ 1.0× PyTorch"},
		{"resnet20/forward/" + b, "ResNet-20", "inference, batch " + b, 1.2, "≥ 1.2× PyTorch"},
		{"resnet20/forward/1", "ResNet-20", "inference latency, batch 1", 2.0, "≤ 0.5× PyTorch's latency"},
		{"mobilenetv2/train/" + b, "MobileNetV2-0.35", "training, batch " + b, 1.0, "≥ 1.0× PyTorch"},
		{"mobilenetv2/forward/" + b, "MobileNetV2-0.35", "inference, batch " + b, 0, ""},
		{"mobilenetv2/forward/1", "MobileNetV2-0.35", "inference latency, batch 1", 0, ""},
		{fmt.Sprintf("sgemm/%d", gemmSize), "GEMM (reference)", fmt.Sprintf("`runtime.Sgemm` vs `torch.mm`, %d³", gemmSize), 0, ""},
	}
}

// batchOf is the batch size (or GEMM size) at the end of a measure id.
func batchOf(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '/')+1:])
	return n
}

// rate formats a time per call as the line's unit: images/s for a batch
// above 1, ms for batch-1 latency, GFLOPS for the GEMM.
func rate(id string, ns float64) string {
	n := batchOf(id)
	switch {
	case math.IsNaN(ns):
		return "–"
	case strings.HasPrefix(id, "sgemm/"):
		return fmt.Sprintf("%.1f GFLOPS", 2*math.Pow(float64(n), 3)/ns)
	case n == 1:
		return fmt.Sprintf("%s ms", fmtMs(ns))
	}
	return fmt.Sprintf("%.0f img/s", float64(n)*1e9/ns)
}

// server is a benchmark process driven line by line: each request on its
// standard input is answered by one JSON line on its standard output.
type server struct {
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *lockedBuffer
}

// lockedBuffer collects a process's standard error, which the exec package
// copies in while the harness may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts cmd and waits for its ready line, decoded into ready.
func (h *harness) startServer(name string, cmd *exec.Cmd, ready any) (*server, error) {
	s := &server{name: name, cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = s.stderr
	if h.opts.verbose {
		fmt.Fprintf(os.Stderr, "+ (cd %s && %s)\n", cmd.Dir, strings.Join(cmd.Args, " "))
		cmd.Stderr = io.MultiWriter(s.stderr, os.Stderr)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.in, s.out = in, bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s side: %v", name, err)
	}
	if err := s.read(ready); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// read decodes the server's next JSON line into v; other lines (a
// library's chatter) are skipped.
func (s *server) read(v any) error {
	for {
		line, err := s.out.ReadBytes('\n')
		if err != nil {
			s.cmd.Wait()
			return fmt.Errorf("%s side (%s) stopped: %v\n%s", s.name, strings.Join(s.cmd.Args, " "), err, s.stderr.String())
		}
		if line = bytes.TrimSpace(line); len(line) == 0 || line[0] != '{' {
			continue
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s side: %s", s.name, e.Error)
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("%s side: reply %q: %v", s.name, line, err)
		}
		return nil
	}
}

// request sends one request line and decodes the reply into v.
func (s *server) request(line string, v any) error {
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		return fmt.Errorf("%s side: %v\n%s", s.name, err, s.stderr.String())
	}
	return s.read(v)
}

// close asks the server to quit and waits for it.
func (s *server) close() error {
	io.WriteString(s.in, "quit\n")
	s.in.Close()
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("%s side: %v\n%s", s.name, err, s.stderr.String())
	}
	return nil
}

// kill stops the server after a failure.
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// cpuSecondsOf is the CPU time a process has used so far, all its threads
// together, from /proc/PID/stat (NaN where unknown).
func cpuSecondsOf(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return math.NaN()
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return math.NaN()
	}
	return (utime + stime) / 100 // USER_HZ
}

// goReady is the Go program's ready line.
type goReady struct {
	GOMAXPROCS int                 `json:"gomaxprocs"`
	Go         string              `json:"go"`
	Params     map[string]int      `json:"params"`
	Losses     map[string][]string `json:"losses"`
	Iters      map[string]int      `json:"iters"`
}

// torchReady is the PyTorch side's ready line (see bench/torch_bench.py).
type torchReady struct {
	Torch           string              `json:"torch"`
	Python          string              `json:"python"`
	Threads         int                 `json:"threads"`
	InteropThreads  int                 `json:"interop_threads"`
	MKLDNN          bool                `json:"mkldnn"`
	BLASInfo        string              `json:"blas_info"`
	BLASLibs        []string            `json:"blas_libs"`
	OpenBLAS        string              `json:"openblas"`
	OpenBLASThreads int                 `json:"openblas_threads"`
	Params          map[string]int      `json:"params"`
	Weights         map[string][3]int   `json:"weights"` // identical before loading, loaded from the ONNX file, float tensors
	Losses          map[string][]string `json:"losses"`
	Iters           map[string]int      `json:"iters"`
	// MeasureBLASThreads is the OpenBLAS thread count each measure runs
	// with: the faster in calibration of all threads and one.
	MeasureBLASThreads map[string]int `json:"measure_blas_threads"`
}

// runReply answers one "run ID" request.
type runReply struct {
	ID        string  `json:"id"`
	Iters     int     `json:"iters"`
	NsPerOp   float64 `json:"ns_per_op"`
	Loss      string  `json:"loss"`
	NonFinite int     `json:"nonfinite"`
}

// torchMissing says why the PyTorch side cannot run ("" when it can).
func (h *harness) torchMissing() string {
	if _, err := os.Stat(filepath.Join(h.root, torchScript)); err != nil {
		return err.Error()
	}
	cmd := exec.Command(torchPython, "-c", "import torch, torchvision, onnx, numpy")
	cmd.Dir = h.root
	if out, err := cmd.CombinedOutput(); err != nil {
		why := err.Error()
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); lines[len(lines)-1] != "" {
			why += ": " + lines[len(lines)-1] // the exception, last in the traceback
		}
		return fmt.Sprintf("%s cannot import torch, torchvision, onnx and numpy (%s)", torchPython, why)
	}
	return ""
}

// comparison is what the rounds measured: times[side][id][round] in ns.
type comparison struct {
	ms         []cmpMeasure
	times      map[string]map[string][]float64
	goInfo     goReady
	torchInfo  *torchReady // nil when PyTorch did not run
	missing    string      // why PyTorch did not run
	quiet      float64     // other processes' CPU use before the rounds
	background float64     // and during them, in CPUs
}

// ratios are PyTorch's time over ours for one measure, per round.
func (c *comparison) ratios(id string) []float64 {
	var r []float64
	g, t := c.times["go"][id], c.times["torch"][id]
	for i := range min(len(g), len(t)) {
		if g[i] > 0 && t[i] > 0 {
			r = append(r, t[i]/g[i])
		}
	}
	return r
}

func runPyTorch(h *harness) (*report, error) {
	if err := h.ensureModels(lenet5Model, resnet20Model, mobilenetv2Model); err != nil {
		return nil, err
	}
	g := group{title: "PyTorch comparison", variants: []variant{
		{pkg: "lenet5", label: "LeNet-5", model: lenet5Model},
		{pkg: "resnet20", label: "ResNet-20", model: resnet20Model},
		{pkg: "mobilenetv2", label: "MobileNetV2-0.35", model: mobilenetv2Model},
	}}
	c := &comparison{ms: pytorchMeasures(), times: map[string]map[string][]float64{"go": {}, "torch": {}}}
	c.missing = h.torchMissing()
	if c.missing != "" {
		fmt.Fprintf(os.Stderr, "bench: PyTorch side skipped: %s\n", c.missing)
	}
	mod, err := h.buildModule([]group{g})
	if err != nil {
		return nil, err
	}
	data := filepath.Join(h.work, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range c.ms {
		ids = append(ids, m.id)
	}
	o := h.opts
	lr := strconv.FormatFloat(o.lr, 'g', -1, 64)

	fmt.Fprintf(os.Stderr, "bench: starting the Go side (warm-up and calibration)\n")
	cmd := execIn(mod.dir, mod.bin, "-serve", "-measures", strings.Join(ids, ","), "-data-dir", data,
		"-packages", "lenet5,resnet20,mobilenetv2", "-batch", strconv.Itoa(trainBatch), "-infer", joinInts(inferBatches, ","),
		"-train-time", o.trainTime.String(), "-infer-time", o.inferTime.String(), "-lr", lr, "-no-kernels")
	if o.threads > 0 {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(o.threads))
	}
	goSrv, err := h.startServer("Go", cmd, &c.goInfo)
	if err != nil {
		return nil, err
	}
	defer func() {
		if goSrv != nil {
			goSrv.kill()
		}
	}()

	var torchSrv *server
	if c.missing == "" {
		// The same thread count as the Go side's GOMAXPROCS, for libgomp
		// (torch.set_num_threads) and OpenBLAS alike.
		threads := strconv.Itoa(c.goInfo.GOMAXPROCS)
		args := []string{filepath.Join(h.root, torchScript), "--repo", h.root, "--data", data, "--threads", threads,
			"--batch", strconv.Itoa(trainBatch), "--lr", lr,
			"--train-time", strconv.FormatFloat(o.trainTime.Seconds(), 'g', -1, 64),
			"--infer-time", strconv.FormatFloat(o.inferTime.Seconds(), 'g', -1, 64)}
		for _, v := range g.variants {
			args = append(args, "--model", v.pkg+"="+v.model)
		}
		for _, id := range ids {
			args = append(args, "--measure", id)
		}
		cmd := execIn(h.root, torchPython, args...)
		cmd.Env = append(os.Environ(), torchEnv...)
		cmd.Env = append(cmd.Env, "OMP_NUM_THREADS="+threads, "OPENBLAS_NUM_THREADS="+threads)
		fmt.Fprintf(os.Stderr, "bench: starting the PyTorch side (imports, warm-up and calibration)\n")
		c.torchInfo = &torchReady{}
		if torchSrv, err = h.startServer("PyTorch", cmd, c.torchInfo); err != nil {
			return nil, err
		}
		defer func() {
			if torchSrv != nil {
				torchSrv.kill()
			}
		}()
	}

	c.quiet = h.waitQuiet()
	b0, _ := cpuSeconds()
	own0 := cpuSecondsOf(goSrv.cmd.Process.Pid)
	if torchSrv != nil {
		own0 += cpuSecondsOf(torchSrv.cmd.Process.Pid)
	}
	start := time.Now()
	for r := range o.rounds {
		for i, m := range c.ms {
			sides := []*server{goSrv, torchSrv}
			// Alternate who goes first, by round and by measure, so that
			// neither side always follows the other.
			if (r+i)%2 == 1 {
				sides[0], sides[1] = sides[1], sides[0]
			}
			for _, s := range sides {
				if s == nil {
					continue
				}
				time.Sleep(sideGap)
				var rep runReply
				if err := s.request("run "+m.id, &rep); err != nil {
					return nil, err
				}
				if rep.NonFinite > 0 {
					return nil, fmt.Errorf("%s side, %s: %d non-finite training losses (last %s); try a smaller -lr", s.name, m.id, rep.NonFinite, rep.Loss)
				}
				side := "go"
				if s == torchSrv {
					side = "torch"
				}
				c.times[side][m.id] = append(c.times[side][m.id], rep.NsPerOp)
			}
		}
		fmt.Fprintf(os.Stderr, "bench: round %d/%d done (%v)\n", r+1, o.rounds, time.Since(start).Round(time.Second))
	}
	b1, _ := cpuSeconds()
	own1 := cpuSecondsOf(goSrv.cmd.Process.Pid)
	if torchSrv != nil {
		own1 += cpuSecondsOf(torchSrv.cmd.Process.Pid)
	}
	c.background = max(0, (b1-b0-(own1-own0))/time.Since(start).Seconds())

	err = goSrv.close()
	goSrv = nil
	if err != nil {
		return nil, err
	}
	if torchSrv != nil {
		err = torchSrv.close()
		torchSrv = nil
		if err != nil {
			return nil, err
		}
	}
	return c.report(h), nil
}

// report formats the comparison as text and Markdown.
func (c *comparison) report(h *harness) *report {
	var tb, mb strings.Builder
	head := []string{"model", "measure", "smhgen (Go)", "PyTorch", "PyTorch time / ours (rounds)", "target", "result"}
	fmt.Fprintf(&tb, "\nsmhgen's generated Go vs PyTorch: medians over %d rounds; the ratio is PyTorch's time over ours per round (>1: we are faster)\n", h.opts.rounds)
	tw := tabwriter.NewWriter(&tb, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t\n", strings.Join(head, "\t"))
	fmt.Fprintf(&mb, "| %s |\n|---|---|---:|---:|---:|---|---|\n", strings.Join(head, " | "))
	var verdicts []string
	for _, m := range c.ms {
		r := c.ratios(m.id)
		ratio, result := "–", ""
		if len(r) > 0 {
			ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", median(r), minOf(r), maxOf(r))
		}
		switch {
		case m.target == 0:
		case len(r) == 0:
			result = "not measured"
		case median(r) >= m.target:
			result = "pass"
		default:
			result = "FAIL"
		}
		if m.target > 0 {
			verdicts = append(verdicts, fmt.Sprintf("%s %s: %s (median ratio %s, target %s)", m.model, m.what, result, ratio, m.goal))
		}
		row := []string{m.model, m.what, rate(m.id, median(c.times["go"][m.id])), rate(m.id, median(c.times["torch"][m.id])), ratio, m.goal, result}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
		fmt.Fprintf(&mb, "| %s |\n", strings.Join(row, " | "))
	}
	tw.Flush()
	passed := 0
	for _, v := range verdicts {
		if strings.Contains(v, ": pass (") {
			passed++
		}
	}
	met := fmt.Sprintf("Targets met: %d of %d.", passed, len(verdicts))
	if c.torchInfo == nil {
		met = "Targets not checked: PyTorch did not run."
	}
	fmt.Fprintf(&tb, "\n%s\n", met)

	var facts []string
	facts = append(facts, fmt.Sprintf("Go side: %s, GOMAXPROCS %d.", c.goInfo.Go, c.goInfo.GOMAXPROCS))
	if t := c.torchInfo; t != nil {
		facts = append(facts, fmt.Sprintf("PyTorch side: torch %s on Python %s (`%s`), %d threads (`torch.set_num_threads`; inter-op %d), oneDNN (MKL-DNN) convolutions %v; "+
			"BLAS_INFO=%s, BLAS mapped into the process: %s; OpenBLAS reports `%s` with %d threads, and runs each measure with "+
			"%d or 1 thread, whichever was faster in calibration (%s); glibc malloc tuned (`%s`).",
			t.Torch, t.Python, torchPython, t.Threads, t.InteropThreads, onOff(t.MKLDNN), t.BLASInfo, strings.Join(t.BLASLibs, ", "),
			strings.TrimSpace(t.OpenBLAS), t.OpenBLASThreads, t.OpenBLASThreads, c.blasChoices(), strings.Join(torchEnv, " ")))
		var ws, ps, ls []string
		for _, pkg := range []string{"lenet5", "resnet20", "mobilenetv2"} {
			w := t.Weights[pkg]
			ws = append(ws, fmt.Sprintf("%s %d of %d tensors loaded from the ONNX file (%d already identical)", pkg, w[1], w[2], w[0]))
			same := "equal"
			if c.goInfo.Params[pkg] != t.Params[pkg] {
				same = "DIFFERENT"
			}
			ps = append(ps, fmt.Sprintf("%s %d / %d (%s)", pkg, c.goInfo.Params[pkg], t.Params[pkg], same))
			if gl, tl := firstLoss(c.goInfo.Losses[pkg]), firstLoss(t.Losses[pkg]); !math.IsNaN(gl) || !math.IsNaN(tl) {
				agree := "agree"
				if !(math.Abs(gl-tl) <= 1e-3*max(1, math.Abs(tl))) {
					agree = "DIFFER"
				}
				ls = append(ls, fmt.Sprintf("%s %.6g / %.6g (%s)", pkg, gl, tl, agree))
			}
		}
		facts = append(facts, "Same models: trainable parameters, ours / PyTorch's: "+strings.Join(ps, ", ")+"; PyTorch's weights: "+strings.Join(ws, ", ")+".")
		facts = append(facts, "Same start: the loss of the first training step (initial weights, first batch), ours / PyTorch's: "+strings.Join(ls, ", ")+".")
	} else {
		facts = append(facts, "PyTorch side not run: "+c.missing+".")
	}
	load := fmt.Sprintf("Other processes used %.2f CPUs just before the rounds and %.2f on average during them (from /proc/stat).", c.quiet, c.background)
	if c.background >= quietLoad {
		load += " The machine was not quiet: these numbers are disturbed."
	}
	facts = append(facts, load)
	for _, f := range facts {
		fmt.Fprintf(&tb, "%s\n", f)
	}
	tb.WriteString("\nTargets:\n")
	for _, v := range verdicts {
		fmt.Fprintf(&tb, "  %s\n", v)
	}

	var md strings.Builder
	fmt.Fprintf(&md, "smhgen's generated packages (the default `-mode=auto` ones) against the same models in PyTorch eager mode "+
		"(`%s`, which builds them with testdata/models/export.py's own code and loads the ONNX file's initializers). "+
		"Training is forward, softmax cross-entropy, backward and an SGD step (momentum 0.9, learning rate %g) at batch %d, "+
		"in train mode (BatchNorm on batch statistics); inference is a forward pass in eval mode (PyTorch under `torch.no_grad()`; "+
		"ours folds BatchNorm's running statistics into the preceding convolution at every call, `Conv2DBatchNorm`, since a trainable "+
		"package's weights change, and adds a residual block's shortcut and its ReLU in the same pass, `Conv2DBatchNormResidual`). Both sides use the same fixed-seed random inputs and labels "+
		"(the Go program writes them for the Python one) and the same number of threads. Both run as persistent processes "+
		"that warm up and calibrate first; in each round the harness asks each side in turn to time each measure (about %v for "+
		"training, %v otherwise), the other side waiting, with the order alternating so neither always goes first. "+
		"Throughputs and latencies are medians over the rounds; the ratio is PyTorch's time over ours in the same round "+
		"(median, with the range over the rounds): above 1 we are faster. The targets are the project's.\n\n",
		torchScript, h.opts.lr, trainBatch, h.opts.trainTime, h.opts.inferTime)
	md.WriteString(mb.String())
	fmt.Fprintf(&md, "\n%s\n\n", met)
	for _, f := range facts {
		fmt.Fprintf(&md, "- %s\n", f)
	}
	md.WriteString("\n")
	return &report{text: tb.String(), markdown: md.String()}
}

// blasChoices lists the OpenBLAS thread count of each PyTorch measure.
func (c *comparison) blasChoices() string {
	var s []string
	for _, m := range c.ms {
		if n, ok := c.torchInfo.MeasureBLASThreads[m.id]; ok {
			s = append(s, fmt.Sprintf("%s: %d", m.id, n))
		}
	}
	return strings.Join(s, ", ")
}

// firstLoss parses the first of a side's reported losses (NaN if none).
func firstLoss(ls []string) float64 {
	if len(ls) == 0 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(ls[0], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
