package main

import (
	"bytes"
	"fmt"
	"go/format"
	"text/template"
)

// programImport is one generated package as the benchmark program sees it.
type programImport struct {
	Name string // the package's name and its directory in the module
	Path string // its import path
	SMH  bool   // compressed with SMH: the package exports SMHTensors, SMHSide, ...
}

// benchProgram renders the main package the harness writes into the
// temporary module: it imports every generated package and times them.
func benchProgram(pkgs []programImport) ([]byte, error) {
	var b bytes.Buffer
	if err := programTemplate.Execute(&b, pkgs); err != nil {
		return nil, err
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("benchmark program: %v\n%s", err, b.Bytes())
	}
	return src, nil
}

var programTemplate = template.Must(template.New("main").Parse(programSource))

// programSource is the benchmark program. It prints one JSON document on
// standard output and its progress on standard error.
const programSource = `// Command benchprog times generated smhgen packages. Written by
// github.com/smhgen/smhgen/bench; do not edit.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	rt "github.com/smhgen/smhgen/runtime"
{{range .}}	{{printf "%q" .Path}}
{{end}})

type forwarder interface {
	Forward(x []float32, batch int) ([]float32, error)
	NumParams() int
}

type trainer interface {
	TrainStep(x []float32, labels []int32, batch int) (float32, error)
	SetOptimizer(o rt.Optimizer)
}

// smhInfo is an SMH package's layout, from its exported constants.
type smhInfo struct {
	variant                   string
	side, rank, pool, scales  int
	tensors                   func() []int // offset, count of each compressed tensor
}

var packages = []struct {
	name            string
	input, classes  int
	new             func() forwarder
	smh             *smhInfo
}{
{{range .}}	{ {{printf "%q" .Name}}, {{.Name}}.InputSize, {{.Name}}.OutputSize, func() forwarder { return {{.Name}}.New() },
{{- if .SMH}}
		&smhInfo{ {{.Name}}.SMHVariant, {{.Name}}.SMHSide, {{.Name}}.SMHRank, {{.Name}}.SMHPool, {{.Name}}.SMHScales, func() (oc []int) {
			for _, t := range {{.Name}}.SMHTensors() {
				oc = append(oc, t.Offset, t.Count)
			}
			return oc
		} },
{{- else}} nil,
{{- end}}
	},
{{end}}}

// smhKernels times the SMH kernels of one training step on a package's
// layout: SMHWeight for every compressed tensor, and one SMHGradSum.
type smhKernels struct {
	params              []rt.SMHWeightParams
	grad                rt.SMHGradParams
	pool, scales        []float32
	dpool, dscales      []float32
	ws, dws             [][]float32
}

func newSMHKernels(info *smhInfo, r *rand.Rand) *smhKernels {
	if info.variant != "product" {
		return nil
	}
	k := &smhKernels{pool: randomData(r, info.pool), scales: randomData(r, info.scales),
		dpool: make([]float32, info.pool), dscales: make([]float32, info.scales)}
	oc := info.tensors()
	for i := 0; i+1 < len(oc); i += 2 {
		p := rt.SMHWeightParams{Variant: rt.SMHProduct, D: info.side, Rank: info.rank, Off: oc[i], Count: oc[i+1], Scale: (i / 2) % info.scales}
		if err := p.Init(); err != nil {
			fail("SMH layout: %v", err)
		}
		k.params = append(k.params, p)
		k.ws = append(k.ws, make([]float32, oc[i+1]))
		k.dws = append(k.dws, randomData(r, oc[i+1]))
	}
	k.grad.Tensors = k.params
	if err := k.grad.Init(); err != nil {
		fail("SMH layout: %v", err)
	}
	return k
}

// Sample is one timed measurement: Iters calls of one kind on one package.
type Sample struct {
	Round   int     ` + "`json:\"round\"`" + `
	Package string  ` + "`json:\"package\"`" + `
	Kind    string  ` + "`json:\"kind\"`" + `
	Batch   int     ` + "`json:\"batch\"`" + `
	Iters   int     ` + "`json:\"iters\"`" + `
	NsPerOp float64 ` + "`json:\"ns_per_op\"`" + `
	Calls   []float64 ` + "`json:\"calls\"`" + ` // ns of each call, in cycle order
}

// Result is the program's output.
type Result struct {
	GOMAXPROCS int              ` + "`json:\"gomaxprocs\"`" + `
	NumCPU     int              ` + "`json:\"numcpu\"`" + `
	Go         string           ` + "`json:\"go\"`" + `
	Params     map[string]int   ` + "`json:\"params\"`" + `
	Losses     map[string][]float32 ` + "`json:\"losses\"`" + `
	Samples    []Sample         ` + "`json:\"samples\"`" + `
	Profile    *ProfileRun      ` + "`json:\"profile,omitempty\"`" + `
}

// ProfileRun describes a profiled run.
type ProfileRun struct {
	Package string  ` + "`json:\"package\"`" + `
	Kind    string  ` + "`json:\"kind\"`" + `
	Batch   int     ` + "`json:\"batch\"`" + `
	Iters   int     ` + "`json:\"iters\"`" + `
	NsPerOp float64 ` + "`json:\"ns_per_op\"`" + `
}

var (
	only       = flag.String("packages", "", "comma-separated packages to time (default: all)")
	rounds     = flag.Int("rounds", 7, "measurement rounds")
	batch      = flag.Int("batch", 64, "training batch size")
	inferAt    = flag.String("infer", "64,1", "comma-separated Forward batch sizes")
	lr         = flag.Float64("lr", 0.001, "SGD learning rate (momentum 0.9)")
	seed       = flag.Uint64("seed", 1, "seed of the random data")
	warmup     = flag.Int("warmup", 3, "untimed training steps and Forward calls per package before calibration")
	trainTime  = flag.Duration("train-time", time.Second, "target duration of one training measurement")
	inferTime  = flag.Duration("infer-time", 300*time.Millisecond, "target duration of one Forward measurement")
	noTrain    = flag.Bool("no-train", false, "time Forward only")
	profile    = flag.String("cpuprofile", "", "instead of timing rounds, write a CPU profile of one package (-packages) to this file")
	profKind   = flag.String("profile-kind", "train", "what -cpuprofile profiles: train or forward (at -batch)")
	noKernels  = flag.Bool("no-kernels", false, "do not time the SMH kernels on their own")
	profTime   = flag.Duration("profile-time", 10*time.Second, "how long -cpuprofile runs")
	serveMode  = flag.Bool("serve", false, "instead of timing rounds, warm up and calibrate -measures, then time them on request (see serve)")
	measures   = flag.String("measures", "", "with -serve: comma-separated measures PKG/train/BATCH, PKG/forward/BATCH or sgemm/SIZE")
	dataDir    = flag.String("data-dir", "", "write every package's random data into this directory (see writeData)")
)

type bench struct {
	name    string
	m       forwarder
	t       trainer
	xs      [][]float32 // training batches
	labels  [][]int32
	fx      map[int][]float32 // Forward inputs per batch size
	step    int
	iters   map[string]int
	losses  []float32
	smh     *smhKernels
}

func key(kind string, b int) string { return kind + "/" + strconv.Itoa(b) }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchprog: "+format+"\n", args...)
	os.Exit(1)
}

func (b *bench) train() {
	i := b.step % len(b.xs)
	b.step++
	loss, err := b.t.TrainStep(b.xs[i], b.labels[i], *batch)
	if err != nil {
		fail("%s: training step %d: %v", b.name, b.step, err)
	}
	b.losses = append(b.losses, loss)
}

func (b *bench) forward(n int) {
	if _, err := b.m.Forward(b.fx[n], n); err != nil {
		fail("%s: Forward at batch %d: %v", b.name, n, err)
	}
}

// run calls one kind of operation iters times and returns ns per call.
func (b *bench) run(kind string, n, iters int) float64 {
	start := time.Now()
	for range iters {
		switch kind {
		case "train":
			b.train()
		case "forward":
			b.forward(n)
		case "smh-weight":
			for i := range b.smh.params {
				rt.SMHWeight(&b.smh.params[i], b.smh.ws[i], b.smh.pool, b.smh.scales)
			}
		case "smh-gradsum":
			rt.SMHGradSum(&b.smh.grad, b.smh.dpool, b.smh.dscales, b.smh.pool, b.smh.scales, b.smh.dws...)
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(iters)
}

// calibrate picks the iteration count that makes one measurement last
// about target, from the fastest of three single calls.
func (b *bench) calibrate(kind string, n int, target time.Duration) {
	best := math.Inf(1)
	for range 3 {
		best = min(best, b.run(kind, n, 1))
	}
	b.iters[key(kind, n)] = max(1, int(math.Ceil(float64(target.Nanoseconds())/best)))
}

func randomData(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

func main() {
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*inferAt, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fail("bad -infer batch %q", s)
		}
		sizes = append(sizes, n)
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	res := Result{GOMAXPROCS: goruntime.GOMAXPROCS(0), NumCPU: goruntime.NumCPU(), Go: goruntime.Version(),
		Params: map[string]int{}, Losses: map[string][]float32{}}
	var benches []*bench
	found := map[string]bool{}
	for _, p := range packages {
		if len(want) > 0 && !want[p.name] {
			continue
		}
		found[p.name] = true
		// Every package sees the same data: the generator restarts per package.
		r := rand.New(rand.NewPCG(*seed, 0x5eed))
		b := &bench{name: p.name, m: p.new(), fx: map[int][]float32{}, iters: map[string]int{}}
		if t, ok := b.m.(trainer); ok && !*noTrain {
			b.t = t
			t.SetOptimizer(&rt.SGD{LR: float32(*lr), Momentum: 0.9})
			for range 4 {
				b.xs = append(b.xs, randomData(r, *batch*p.input))
				l := make([]int32, *batch)
				for i := range l {
					l[i] = int32(r.IntN(p.classes))
				}
				b.labels = append(b.labels, l)
			}
		}
		for _, n := range sizes {
			b.fx[n] = randomData(r, n*p.input)
		}
		if _, ok := b.fx[*batch]; !ok {
			b.fx[*batch] = randomData(r, *batch*p.input)
		}
		if p.smh != nil && !*noKernels {
			b.smh = newSMHKernels(p.smh, r)
		}
		res.Params[p.name] = b.m.NumParams()
		benches = append(benches, b)
	}
	for name := range want {
		if !found[name] {
			fail("no package %q", name)
		}
	}
	if len(benches) == 0 {
		fail("no packages to time")
	}

	if *dataDir != "" {
		for _, b := range benches {
			writeData(b)
		}
	}
	if *serveMode {
		serve(benches)
		return
	}

	if *profile != "" {
		if len(benches) != 1 {
			fail("-cpuprofile takes exactly one package (-packages)")
		}
		b := benches[0]
		kind, n := *profKind, *batch
		if kind == "train" && b.t == nil {
			fail("%s cannot train", b.name)
		}
		if kind != "train" && kind != "forward" {
			fail("bad -profile-kind %q", kind)
		}
		for range *warmup {
			b.run(kind, n, 1)
		}
		b.calibrate(kind, n, *profTime)
		iters := b.iters[key(kind, n)]
		f, err := os.Create(*profile)
		if err != nil {
			fail("%v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail("%v", err)
		}
		ns := b.run(kind, n, iters)
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fail("%v", err)
		}
		res.Profile = &ProfileRun{Package: b.name, Kind: kind, Batch: n, Iters: iters, NsPerOp: ns}
		res.Losses[b.name] = b.losses
		emit(res)
		return
	}

	for _, b := range benches {
		fmt.Fprintf(os.Stderr, "warming up %s\n", b.name)
		if b.t != nil {
			for range *warmup {
				b.train()
			}
			b.calibrate("train", *batch, *trainTime)
		}
		for _, n := range sizes {
			for range *warmup {
				b.forward(n)
			}
			b.calibrate("forward", n, *inferTime)
		}
		if b.smh != nil {
			for _, kind := range []string{"smh-weight", "smh-gradsum"} {
				b.run(kind, 0, *warmup)
				b.calibrate(kind, 0, *inferTime)
			}
		}
	}
	var trainers, compressed []*bench
	for _, b := range benches {
		if b.t != nil {
			trainers = append(trainers, b)
		}
		if b.smh != nil {
			compressed = append(compressed, b)
		}
	}
	// interleave times one measure of a round in cycles of one call per
	// package, the order reversed every other cycle, so that the machine's
	// drifting speed affects every package alike. Every package makes the
	// same number of calls: enough for the slowest to last the target.
	interleave := func(r int, kind string, n int, bs []*bench) {
		if len(bs) == 0 {
			return
		}
		it := 0
		for _, b := range bs {
			it = max(it, b.iters[key(kind, n)])
		}
		total := make([]float64, len(bs))
		calls := make([][]float64, len(bs))
		for c := range it {
			for j := range bs {
				i := j
				if (c+r)%2 == 1 {
					i = len(bs) - 1 - j
				}
				ns := bs[i].run(kind, n, 1)
				total[i] += ns
				calls[i] = append(calls[i], ns)
			}
		}
		for i, b := range bs {
			res.Samples = append(res.Samples, Sample{r, b.name, kind, n, it, total[i] / float64(it), calls[i]})
		}
	}
	for r := range *rounds {
		goruntime.GC()
		interleave(r, "train", *batch, trainers)
		for _, n := range sizes {
			for _, b := range benches {
				b.forward(n) // untimed: a cached package rebuilds its weights after training
			}
			interleave(r, "forward", n, benches)
		}
		interleave(r, "smh-weight", 0, compressed)
		interleave(r, "smh-gradsum", 0, compressed)
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}
	for _, b := range benches {
		res.Losses[b.name] = b.losses
	}
	emit(res)
}

// writeData writes a package's random data into -data-dir as raw
// little-endian files, PKG.train.f32 (the training batches one after the
// other), PKG.labels.i32 and PKG.forward<B>.f32, so that another program
// (the harness's PyTorch side) can time the very same inputs and labels.
func writeData(b *bench) {
	put := func(file string, words []uint32) {
		buf := make([]byte, 0, 4*len(words))
		for _, w := range words {
			buf = binary.LittleEndian.AppendUint32(buf, w)
		}
		if err := os.WriteFile(*dataDir+"/"+file, buf, 0o644); err != nil {
			fail("%v", err)
		}
	}
	floats := func(xs ...[]float32) (w []uint32) {
		for _, x := range xs {
			for _, v := range x {
				w = append(w, math.Float32bits(v))
			}
		}
		return w
	}
	if len(b.xs) > 0 {
		put(b.name+".train.f32", floats(b.xs...))
		var w []uint32
		for _, l := range b.labels {
			for _, v := range l {
				w = append(w, uint32(v))
			}
		}
		put(b.name+".labels.i32", w)
	}
	for n, x := range b.fx {
		put(b.name+".forward"+strconv.Itoa(n)+".f32", floats(x))
	}
}

// served is one measure that -serve times on request.
type served struct {
	id    string
	iters int
	run   func(iters int) float64 // ns per call
	b     *bench                  // the training package, or nil
}

// serve warms up and calibrates every measure of -measures, prints one JSON
// line {"ready": true, ...}, then answers each line of standard input:
// "run ID" times measure ID with its calibrated iteration count and prints
// one JSON line; "quit" or the end of the input stops. A driver can so
// alternate this program with another one, measure by measure, while the
// other one waits, paying start-up and warm-up once. Training losses are
// sent as strings, since JSON has no NaN.
func serve(benches []*bench) {
	byName := map[string]*bench{}
	for _, b := range benches {
		byName[b.name] = b
	}
	timed := func(iters int, call func()) float64 {
		start := time.Now()
		for range iters {
			call()
		}
		return float64(time.Since(start).Nanoseconds()) / float64(iters)
	}
	var ms []*served
	byID := map[string]*served{}
	for _, id := range strings.Split(*measures, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		f := strings.Split(id, "/")
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil || n < 1 || len(f) < 2 || len(f) > 3 {
			fail("bad measure %q (want PKG/train/BATCH, PKG/forward/BATCH or sgemm/SIZE)", id)
		}
		m := &served{id: id}
		switch {
		case len(f) == 2 && f[0] == "sgemm":
			r := rand.New(rand.NewPCG(*seed, 0x6e44))
			a, bm, c := randomData(r, n*n), randomData(r, n*n), make([]float32, n*n)
			m.run = func(iters int) float64 {
				return timed(iters, func() { rt.Sgemm(false, false, n, n, n, 1, a, n, bm, n, 0, c, n) })
			}
		case len(f) == 3 && byName[f[0]] != nil && f[1] == "train":
			b := byName[f[0]]
			if b.t == nil || n != *batch {
				fail("measure %q: %s cannot train, or the batch is not -batch", id, b.name)
			}
			m.b = b
			m.run = func(iters int) float64 { return timed(iters, b.train) }
		case len(f) == 3 && byName[f[0]] != nil && f[1] == "forward":
			b := byName[f[0]]
			if b.fx[n] == nil {
				fail("measure %q: batch %d is not in -infer", id, n)
			}
			m.run = func(iters int) float64 { return timed(iters, func() { b.forward(n) }) }
		default:
			fail("bad measure %q (want PKG/train/BATCH, PKG/forward/BATCH or sgemm/SIZE with PKG one of -packages)", id)
		}
		if byID[id] != nil {
			fail("measure %q twice", id)
		}
		byID[id] = m
		ms = append(ms, m)
	}
	out := bufio.NewWriter(os.Stdout)
	reply := func(v map[string]any) {
		b, err := json.Marshal(v)
		if err != nil {
			fail("%v", err)
		}
		out.Write(append(b, '\n'))
		if err := out.Flush(); err != nil {
			fail("%v", err)
		}
	}
	lossText := func(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }
	iters := map[string]int{}
	for _, m := range ms {
		fmt.Fprintf(os.Stderr, "warming up %s\n", m.id)
		for range *warmup {
			m.run(1)
		}
		best := math.Inf(1)
		for range 3 {
			best = min(best, m.run(1))
		}
		target := *inferTime
		if m.b != nil {
			target = *trainTime
		}
		m.iters = max(1, int(math.Ceil(float64(target.Nanoseconds())/best)))
		iters[m.id] = m.iters
	}
	params, losses := map[string]int{}, map[string][]string{}
	for _, b := range benches {
		params[b.name] = b.m.NumParams()
		for _, l := range b.losses[:min(len(b.losses), 3)] {
			losses[b.name] = append(losses[b.name], lossText(l))
		}
	}
	reply(map[string]any{"ready": true, "gomaxprocs": goruntime.GOMAXPROCS(0), "numcpu": goruntime.NumCPU(),
		"go": goruntime.Version(), "params": params, "losses": losses, "iters": iters})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 0:
			continue
		case f[0] == "quit":
			return
		case len(f) == 2 && f[0] == "run" && byID[f[1]] != nil:
			m := byID[f[1]]
			goruntime.GC()
			ns := m.run(m.iters)
			r := map[string]any{"id": m.id, "iters": m.iters, "ns_per_op": ns}
			if b := m.b; b != nil {
				nonFinite := 0
				for _, l := range b.losses {
					if math.IsNaN(float64(l)) || math.IsInf(float64(l), 0) {
						nonFinite++
					}
				}
				r["loss"], r["nonfinite"] = lossText(b.losses[len(b.losses)-1]), nonFinite
				b.losses = b.losses[:0] // checked: only newer losses matter from here on
			}
			reply(r)
		default:
			reply(map[string]any{"error": fmt.Sprintf("bad request %q", in.Text())})
		}
	}
}

func emit(res Result) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(res); err != nil {
		fail("%v", err)
	}
}
`
