// Command bench is smhgen's benchmark harness. It is a program, not a test:
// `go test ./...` builds it but runs nothing.
//
// Run it from the repository root:
//
//	go run ./bench -help
//	go run ./bench -scenario smh             # SMH's training and inference overheads
//	go run ./bench -scenario smh -write-doc  # ... and record them in docs/performance.md
//	go run ./bench -scenario gemm            # GEMM GFLOPS on 1 and 2 threads
//	go run ./bench -scenario pytorch         # the generated code against PyTorch
//
// Model scenarios compile ONNX models with chosen smhgen flags into packages
// of a temporary module (which requires this repository through a replace
// directive), write a benchmark program into that module, and run it: after
// a warm-up, it times every package in alternating rounds (training steps
// at batch 64 with SGD and momentum 0.9 on fixed-seed random data, then
// Forward at batch 64 and at batch 1) and prints JSON. The harness takes
// medians over the rounds, and ratios against the scenario's baseline
// package measured in the same round.
//
// The pytorch scenario instead runs the benchmark program as a server
// (-serve) next to bench/torch_bench.py, which builds the same models in
// PyTorch, and asks the two in turn to time each measure, round by round.
//
// New scenarios are added to the scenarios table (see scenario).
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// options are the command-line settings shared by all scenarios.
type options struct {
	scenario   string
	rounds     int
	trainTime  time.Duration
	inferTime  time.Duration
	work       string
	keep       bool
	writeDoc   bool
	doc        string
	profile    bool
	profTime   time.Duration
	regenerate string
	threads    int
	lr         float64
	waitQuiet  time.Duration
	verbose    bool
}

// scenario is one benchmark the harness knows how to run.
type scenario struct {
	// name is the -scenario value.
	name string
	// summary is the one-line description -help and -scenario list print.
	summary string
	// heading is the level-2 heading of the scenario's section in
	// docs/performance.md.
	heading string
	// run measures and returns the report to print and, for -write-doc, the
	// section body.
	run func(h *harness) (*report, error)
}

// report is what a scenario found.
type report struct {
	// text is printed on standard output.
	text string
	// markdown is the body of the scenario's section in docs/performance.md
	// (without the heading and the machine facts, which the harness adds).
	markdown string
}

// scenarios lists every scenario, in the order -help shows them.
var scenarios = []*scenario{smhScenario, gemmScenario, pytorchScenario}

func findScenario(name string) *scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&o.scenario, "scenario", "smh", "what to measure (\"list\" prints the scenarios)")
	fs.IntVar(&o.rounds, "rounds", 7, "measurement rounds (medians need at least 5)")
	fs.DurationVar(&o.trainTime, "train-time", 2*time.Second, "target duration of one package's training measurement in a round")
	fs.DurationVar(&o.inferTime, "infer-time", time.Second, "target duration of one Forward measurement in a round")
	fs.StringVar(&o.work, "work", "", "build the temporary module in this directory (kept) instead of a fresh temporary one")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary module and print its path")
	fs.BoolVar(&o.writeDoc, "write-doc", false, "write the results into the scenario's section of -doc")
	fs.StringVar(&o.doc, "doc", "docs/performance.md", "the results document, relative to the repository root")
	fs.BoolVar(&o.profile, "profile", false, "also CPU-profile each package's training and break its time down by kernel")
	fs.DurationVar(&o.profTime, "profile-time", 10*time.Second, "how long each -profile run lasts")
	fs.StringVar(&o.regenerate, "regenerate", "auto", "missing testdata/models/big models: auto (run /usr/bin/python3 testdata/models/export.py) or never (stop and say how)")
	fs.Float64Var(&o.lr, "lr", 0.001, "SGD learning rate of the timed training steps (momentum 0.9); larger rates make SMH LeNet-5 diverge on random data, and a step with a non-finite loss is skipped, which would time less work")
	fs.DurationVar(&o.waitQuiet, "wait-quiet", 0, "before timing each model group, wait up to this long for other processes to use less than 0.2 CPUs")
	fs.IntVar(&o.threads, "threads", 0, "GOMAXPROCS of the timed program, and PyTorch's threads in the pytorch scenario (0: the machine's CPU count)")
	fs.BoolVar(&o.verbose, "v", false, "show the commands the harness runs and their progress output")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: go run ./bench [flags]\n\nBenchmarks smhgen's generated code (run from the repository root).\n\nscenarios:\n")
		for _, s := range scenarios {
			fmt.Fprintf(w, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	if o.scenario == "list" {
		names := make([]string, 0, len(scenarios))
		for _, s := range scenarios {
			names = append(names, s.name+"\t"+s.summary)
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	sc := findScenario(o.scenario)
	if sc == nil {
		fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (try -scenario list)\n", o.scenario)
		os.Exit(2)
	}
	if o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be at least 1")
		os.Exit(2)
	}
	if o.rounds < 5 {
		if o.writeDoc {
			fmt.Fprintln(os.Stderr, "bench: -write-doc needs at least 5 rounds")
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "bench: warning: %d rounds; medians need at least 5\n", o.rounds)
	}
	h, err := newHarness(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	start := time.Now()
	rep, err := sc.run(h)
	h.close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	elapsed := time.Since(start).Round(time.Second)
	fmt.Print(rep.text)
	fmt.Printf("\ncode: %s\nharness run time: %v\n", h.machine.repo, elapsed)
	if o.writeDoc {
		if err := h.writeSection(sc, rep, elapsed); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote section %q of %s\n", sc.heading, o.doc)
	}
}
