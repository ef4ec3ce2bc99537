package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

var gemmScenario = &scenario{
	name:    "gemm",
	summary: "runtime.Sgemm GFLOPS on 1 and 2 threads, against the micro-kernels' own rate (go test -bench='Sgemm|GemmKernel' ./runtime)",
	heading: "GEMM throughput",
	run:     runGemm,
}

// gemmThreads are the -cpu values the gemm scenario measures.
var gemmThreads = []int{1, 2}

// benchLine matches a benchmark result line: the name with an optional
// -GOMAXPROCS suffix, the iteration count and the measurements.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(.*)$`)

func runGemm(h *harness) (*report, error) {
	quiet := h.waitQuiet()
	// gflops[shape][threads] are the runs' GFLOPS.
	gflops := map[string]map[int][]float64{}
	var shapes []string
	var cmds []string
	background := 0.0
	// One go test per thread count, with GOMAXPROCS set to match: given
	// several -cpu values, go test runs each sub-benchmark's first timed
	// pass of a value at the previous value's GOMAXPROCS (BenchmarkSgemm
	// "on 1 thread" then measured two threads' speed).
	for _, procs := range gemmThreads {
		args := []string{"test", "-run=NONE", "-bench=Sgemm|GemmKernel", "-count=" + strconv.Itoa(h.opts.rounds), "-cpu=" + strconv.Itoa(procs), "./runtime"}
		cmds = append(cmds, fmt.Sprintf("GOMAXPROCS=%d go %s", procs, strings.Join(args, " ")))
		fmt.Fprintf(os.Stderr, "bench: %s\n", cmds[len(cmds)-1])
		cmd := h.goCmd(h.root, args...)
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(procs))
		out, bg, err := h.runMeasured(cmd)
		if err != nil {
			return nil, err
		}
		background = max(background, bg)
		for _, line := range strings.Split(string(out), "\n") {
			m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			f := strings.Fields(m[4])
			for i := 0; i+1 < len(f); i += 2 {
				if f[i+1] != "GFLOPS" {
					continue
				}
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					return nil, fmt.Errorf("benchmark line %q: %v", line, err)
				}
				shape := strings.TrimPrefix(m[1], "BenchmarkSgemm/")
				if k, ok := strings.CutPrefix(m[1], "BenchmarkGemmKernel/"); ok {
					shape = "micro-kernel " + k
				}
				if gflops[shape] == nil {
					gflops[shape] = map[int][]float64{}
					shapes = append(shapes, shape)
				}
				gflops[shape][procs] = append(gflops[shape][procs], v)
			}
		}
	}
	if len(shapes) == 0 {
		return nil, fmt.Errorf("no GFLOPS in the benchmarks' output")
	}
	var tb, mb strings.Builder
	fmt.Fprintf(&tb, "\nruntime.Sgemm, GFLOPS (median over %d runs, min–max) by threads (-cpu)\n", h.opts.rounds)
	tw := tabwriter.NewWriter(&tb, 2, 8, 2, ' ', tabwriter.AlignRight)
	head := []string{"m×n×k"}
	for _, p := range gemmThreads {
		head = append(head, fmt.Sprintf("%d thread(s)", p))
	}
	head = append(head, fmt.Sprintf("speed-up %d→%d", gemmThreads[0], gemmThreads[len(gemmThreads)-1]))
	fmt.Fprintf(tw, "%s\t\n", strings.Join(head, "\t"))
	fmt.Fprintf(&mb, "`runtime.Sgemm` (`BenchmarkSgemm` in runtime/gemm_bench_test.go), GFLOPS: median over %d runs (min–max). "+
		"The micro-kernel rows (`BenchmarkGemmKernel`) run one register tile's kernel on panels held in L1, on each of the threads at once, and give their total rate: "+
		"what the CPUs' vector units sustain with nothing else in the way.\n\n", h.opts.rounds)
	fmt.Fprintf(&mb, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-1))
	for _, s := range shapes {
		row := []string{s}
		if !strings.HasPrefix(s, "micro-kernel") {
			row[0] = strings.ReplaceAll(s, "x", "×")
		}
		for _, p := range gemmThreads {
			xs := gflops[s][p]
			if len(xs) == 0 {
				row = append(row, "–")
				continue
			}
			row = append(row, fmt.Sprintf("%.1f (%.1f–%.1f)", median(xs), slices.Min(xs), slices.Max(xs)))
		}
		first, last := gflops[s][gemmThreads[0]], gflops[s][gemmThreads[len(gemmThreads)-1]]
		row = append(row, fmt.Sprintf("%.2f×", median(last)/median(first)))
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
		fmt.Fprintf(&mb, "| %s |\n", strings.Join(row, " | "))
	}
	tw.Flush()
	xs := gflops[fmt.Sprintf("%dx%dx%d", gemmSize, gemmSize, gemmSize)]
	var parts []string
	for _, p := range gemmThreads {
		if ceil := gemmCeiling(gflops, p); ceil > 0 && len(xs[p]) > 0 {
			parts = append(parts, fmt.Sprintf("%.0f %% of %.1f on %d thread(s)", 100*median(xs[p])/ceil, ceil, p))
		}
	}
	if len(parts) > 0 {
		line := fmt.Sprintf("Sgemm at %d³ reaches %s: its median against the fastest micro-kernel's median on as many threads (the most multiply-adds these CPUs sustained).",
			gemmSize, strings.Join(parts, " and "))
		fmt.Fprintf(&tb, "%s\n", line)
		fmt.Fprintf(&mb, "\n%s\n", line)
	}
	load := fmt.Sprintf("Other processes used %.2f CPUs just before the benchmark and at most %.2f on average during its runs (from /proc/stat).", quiet, background)
	if background >= quietLoad {
		load += " The machine was not quiet: these numbers are disturbed."
	}
	fmt.Fprintf(&tb, "%s\n", load)
	fmt.Fprintf(&mb, "\n%s\n\nThe benchmarks themselves: `%s`.\n", load, strings.Join(cmds, "`, then `"))
	return &report{text: tb.String(), markdown: mb.String()}, nil
}

// gemmCeiling is the highest median micro-kernel rate on procs threads, or
// 0 when no micro-kernel was measured there.
func gemmCeiling(gflops map[string]map[int][]float64, procs int) float64 {
	best := 0.0
	for s, byThreads := range gflops {
		if strings.HasPrefix(s, "micro-kernel") && len(byThreads[procs]) > 0 {
			best = max(best, median(byThreads[procs]))
		}
	}
	return best
}
