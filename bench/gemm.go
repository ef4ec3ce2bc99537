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
	summary: "runtime.Sgemm GFLOPS on 1 and 2 threads (go test -bench=Sgemm ./runtime)",
	heading: "GEMM throughput",
	run:     runGemm,
}

// gemmThreads are the -cpu values the gemm scenario measures.
var gemmThreads = []int{1, 2}

// benchLine matches a benchmark result line: the name with an optional
// -GOMAXPROCS suffix, the iteration count and the measurements.
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(.*)$`)

func runGemm(h *harness) (*report, error) {
	cpus := joinInts(gemmThreads, ",")
	args := []string{"test", "-run=NONE", "-bench=Sgemm", "-count=" + strconv.Itoa(h.opts.rounds), "-cpu=" + cpus, "./runtime"}
	quiet := h.waitQuiet()
	fmt.Fprintf(os.Stderr, "bench: go %s\n", strings.Join(args, " "))
	out, background, err := h.runMeasured(h.goCmd(h.root, args...))
	if err != nil {
		return nil, err
	}
	// gflops[shape][threads] are the runs' GFLOPS.
	gflops := map[string]map[int][]float64{}
	var shapes []string
	for _, line := range strings.Split(string(out), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		procs := 1
		if m[2] != "" {
			procs, _ = strconv.Atoi(m[2])
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
			if gflops[shape] == nil {
				gflops[shape] = map[int][]float64{}
				shapes = append(shapes, shape)
			}
			gflops[shape][procs] = append(gflops[shape][procs], v)
		}
	}
	if len(shapes) == 0 {
		return nil, fmt.Errorf("no GFLOPS in the benchmark output:\n%s", out)
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
	fmt.Fprintf(&mb, "`runtime.Sgemm` (`BenchmarkSgemm` in runtime/gemm_bench_test.go), GFLOPS: median over %d runs (min–max).\n\n", h.opts.rounds)
	fmt.Fprintf(&mb, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-1))
	for _, s := range shapes {
		row := []string{strings.ReplaceAll(s, "x", "×")}
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
	load := fmt.Sprintf("Other processes used %.2f CPUs just before the benchmark and %.2f on average during it (from /proc/stat).", quiet, background)
	if background >= quietLoad {
		load += " The machine was not quiet: these numbers are disturbed."
	}
	fmt.Fprintf(&tb, "%s\n", load)
	fmt.Fprintf(&mb, "\n%s\n\nThe benchmark itself: `go %s`.\n", load, strings.Join(args, " "))
	return &report{text: tb.String(), markdown: mb.String()}, nil
}
