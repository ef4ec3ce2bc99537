package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// smhTarget is the project's bound on SMH's training step time relative to
// the dense model.
const smhTarget = 1.10

const (
	resnet20Model = "testdata/models/big/resnet20_bn.onnx"
	lenet5Model   = "testdata/models/lenet5.onnx"
)

var smhScenario = &scenario{
	name:    "smh",
	summary: "SMH's overheads: ResNet-20 dense vs -fraction 0.25 fused and cached, LeNet-5 dense vs -fraction 0.1",
	heading: "SMH overheads",
	run:     runSMH,
}

// smhGroups are the smh scenario's models and variants; the first variant
// of each group is its baseline.
func smhGroups() []group {
	return []group{
		{title: "ResNet-20 (" + resnet20Model + ")", variants: []variant{
			{pkg: "resnet20", label: "dense", model: resnet20Model},
			{pkg: "resnet20smh", label: "SMH 0.25 fused", model: resnet20Model, flags: []string{"-fraction", "0.25"}},
			{pkg: "resnet20smhc", label: "SMH 0.25 cached", model: resnet20Model, flags: []string{"-fraction", "0.25", "-smh-inference=cached"}},
		}},
		{title: "LeNet-5 (" + lenet5Model + ")", variants: []variant{
			{pkg: "lenet5", label: "dense", model: lenet5Model},
			{pkg: "lenet5smh", label: "SMH 0.1 fused", model: lenet5Model, flags: []string{"-fraction", "0.1"}},
		}},
	}
}

// The batch sizes of the model scenarios.
const trainBatch = 64

var inferBatches = []int{64, 1}

func runSMH(h *harness) (*report, error) {
	groups := smhGroups()
	ts, mod, err := h.timeGroups(groups, trainBatch, inferBatches)
	if err != nil {
		return nil, err
	}
	var text, md strings.Builder
	md.WriteString(fmt.Sprintf("Times are wall-clock per call: a training step (forward, loss, backward and the SGD update, "+
		"momentum 0.9, learning rate %g) at batch %d on fixed-seed random data, and Forward at batches %s, all after a warm-up. "+
		"Each round times every package in cycles of one call each, reversing the order every cycle, so that the machine's "+
		"drifting speed affects all alike; ×dense is the median over the rounds of the ratio to the dense package in the same "+
		"round (range over the rounds in parentheses), and the summary also gives the ratio of single calls made in the same cycle. "+
		"The packages are the default `-mode=auto` (trainable) ones, so Forward folds BatchNorm's running statistics into the "+
		"convolution at every call (`Conv2DBatchNorm`) instead of once at compile time. \"SMH kernels alone\" times, in the same rounds, what SMH adds to a training step on the "+
		"package's own layout: one `SMHWeight` per compressed tensor (which a fused Forward also does) and one `SMHGradSum`.\n\n",
		h.opts.lr, trainBatch, joinInts(inferBatches, " and ")))
	for _, t := range ts {
		a, b := groupTables(t, trainBatch, inferBatches)
		text.WriteString(a)
		md.WriteString(b)
		a, b = kernelTables(t, trainBatch)
		text.WriteString(a)
		md.WriteString(b)
	}

	// The headline ratios.
	train := measure{"train", trainBatch}
	var lines []string
	r20, lenet := ts[0], ts[1]
	for _, pkg := range []string{"resnet20smh", "resnet20smhc"} {
		med, lo, hi := r20.ratio(pkg, "resnet20", train)
		verdict := "the median meets"
		if med > smhTarget {
			verdict = "the median misses"
		}
		pm, q1, q3, n := r20.pairedRatio(pkg, "resnet20", train)
		lines = append(lines, fmt.Sprintf("ResNet-20 training step, %s / dense: %.3f (rounds %.3f–%.3f; single steps paired in time: median %.3f, quartiles %.3f–%.3f, %d pairs); %s the target ≤ %.2f",
			r20.label(pkg), med, lo, hi, pm, q1, q3, n, verdict, smhTarget))
	}
	for _, b := range inferBatches {
		med, lo, hi := r20.ratio("resnet20smh", "resnet20smhc", measure{"forward", b})
		lines = append(lines, fmt.Sprintf("ResNet-20 Forward at batch %d, fused / cached: %.3f (rounds %.3f–%.3f)", b, med, lo, hi))
	}
	med, lo, hi := lenet.ratio("lenet5smh", "lenet5", train)
	pm, q1, q3, n := lenet.pairedRatio("lenet5smh", "lenet5", train)
	lines = append(lines, fmt.Sprintf("LeNet-5 training step, SMH 0.1 / dense: %.3f (rounds %.3f–%.3f; single steps paired in time: median %.3f, quartiles %.3f–%.3f, %d pairs)", med, lo, hi, pm, q1, q3, n))
	text.WriteString("Summary (medians of per-round ratios):\n")
	md.WriteString("Summary (medians of the per-round ratios, with their range over the rounds):\n\n")
	for _, l := range lines {
		fmt.Fprintf(&text, "  %s\n", l)
		fmt.Fprintf(&md, "- %s\n", l)
	}
	md.WriteString("\n")

	if h.opts.profile {
		a, b, err := profileGroups(mod, groups)
		if err != nil {
			return nil, err
		}
		text.WriteString(a)
		md.WriteString(b)
	}
	return &report{text: text.String(), markdown: md.String()}, nil
}

// timeGroups builds every group's packages in one module and times each
// group in its own run of the benchmark program.
func (h *harness) timeGroups(groups []group, batch int, infer []int) ([]*timings, *module, error) {
	var models []string
	for _, g := range groups {
		for _, v := range g.variants {
			if !slices.Contains(models, v.model) {
				models = append(models, v.model)
			}
		}
	}
	if err := h.ensureModels(models...); err != nil {
		return nil, nil, err
	}
	mod, err := h.buildModule(groups)
	if err != nil {
		return nil, nil, err
	}
	var ts []*timings
	for _, g := range groups {
		t, err := mod.timeGroup(g, batch, infer)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, t)
	}
	return ts, mod, nil
}

// label is the table name of a package of the group.
func (t *timings) label(pkg string) string {
	for _, v := range t.group.variants {
		if v.pkg == pkg {
			return v.label
		}
	}
	return pkg
}

// groupTables formats one group's medians and ratios to its baseline as
// plain text and as Markdown.
func groupTables(t *timings, batch int, infer []int) (text, md string) {
	ms := []measure{{"train", batch}}
	for _, b := range infer {
		ms = append(ms, measure{"forward", b})
	}
	base := t.group.variants[0].pkg
	var tb, mb strings.Builder
	fmt.Fprintf(&tb, "\n%s: medians over %d rounds, GOMAXPROCS %d\n", t.group.title, t.rounds, t.procs)
	tw := tabwriter.NewWriter(&tb, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(&mb, "### %s\n\n", t.group.title)
	head := []string{"variant", "smhgen flags", "trainable params"}
	for _, m := range ms {
		head = append(head, m.String()+" (ms)", "×"+t.group.variants[0].label)
	}
	fmt.Fprintf(tw, "%s\t\n", strings.Join(head, "\t"))
	fmt.Fprintf(&mb, "| %s |\n|---|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-2))
	for _, v := range t.group.variants {
		flags := strings.Join(v.flags, " ")
		if flags == "" {
			flags = "(none)"
		}
		row := []string{v.label, flags, fmt.Sprint(t.params[v.pkg])}
		for _, m := range ms {
			med := t.median(v.pkg, m)
			r, lo, hi := t.ratio(v.pkg, base, m)
			if len(t.times[v.pkg][m]) == 0 {
				row = append(row, "–", "–")
				continue
			}
			row = append(row, fmtMs(med), fmt.Sprintf("%.3f (%.2f–%.2f)", r, lo, hi))
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(row, "\t"))
		mdRow := slices.Clone(row)
		if flags != "(none)" {
			mdRow[1] = "`" + flags + "`"
		}
		fmt.Fprintf(&mb, "| %s |\n", strings.Join(mdRow, " | "))
	}
	tw.Flush()
	load := fmt.Sprintf("Other processes used %.2f CPUs just before the timing and %.2f on average during it (from /proc/stat).", t.quiet, t.background)
	if t.background >= quietLoad {
		load += " The machine was not quiet: these numbers are disturbed."
	}
	fmt.Fprintf(&tb, "%s\n\n", load)
	fmt.Fprintf(&mb, "\n%s\n\n", load)
	return tb.String(), mb.String()
}

// profileGroups profiles the training step of every variant that trains
// and breaks its CPU time down by kernel class, next to the baseline's.
func profileGroups(mod *module, groups []group) (text, md string, err error) {
	var tb, mb strings.Builder
	mb.WriteString(fmt.Sprintf("#### Where the training time goes\n\nCPU profiles of %v of training steps per package "+
		"(`-profile`); CPU milliseconds per step by kernel (flat time: worker goroutines included; with %s "+
		"threads the CPU time can exceed the wall time).\n\n", mod.h.opts.profTime, mod.h.machine.nproc))
	for _, g := range groups {
		var sums []*profileSummary
		for _, v := range g.variants {
			s, err := mod.profile(v.pkg, "train", trainBatch)
			if err != nil {
				return "", "", err
			}
			sums = append(sums, s)
		}
		a, b := profileTables(g, sums)
		tb.WriteString(a)
		mb.WriteString(b)
	}
	return tb.String(), mb.String(), nil
}

// profileTables formats the kernel breakdown of one group's profiles.
func profileTables(g group, sums []*profileSummary) (text, md string) {
	var tb, mb strings.Builder
	fmt.Fprintf(&tb, "\nTraining step CPU profile, %s: CPU ms per step by kernel (Δ: minus %s)\n", g.title, g.variants[0].label)
	fmt.Fprintf(&mb, "%s, CPU ms per step (Δ: difference from %s):\n\n", g.title, g.variants[0].label)
	tw := tabwriter.NewWriter(&tb, 2, 8, 2, ' ', tabwriter.AlignRight)
	head := []string{"kernel"}
	for i, v := range g.variants {
		head = append(head, v.label)
		if i > 0 {
			head = append(head, "Δ")
		}
	}
	fmt.Fprintf(tw, "%s\t\n", strings.Join(head, "\t"))
	fmt.Fprintf(&mb, "| %s |\n|---|%s\n", strings.Join(head, " | "), strings.Repeat("---:|", len(head)-1))
	base := sums[0]
	row := func(name string, val func(*profileSummary) float64) {
		cells := []string{name}
		for i, s := range sums {
			cells = append(cells, fmt.Sprintf("%.2f", val(s)))
			if i > 0 && !strings.HasPrefix(name, "other processes") {
				cells = append(cells, fmt.Sprintf("%+.2f", val(s)-val(base)))
			} else if i > 0 {
				cells = append(cells, "")
			}
		}
		fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t"))
		fmt.Fprintf(&mb, "| %s |\n", strings.Join(cells, " | "))
	}
	for i, c := range kernelClasses {
		used := i < 2 && len(sums) > 1 // always show the SMH kernels
		for _, s := range sums {
			used = used || s.byClass[c.name] >= 0.005
		}
		if used {
			row(c.name, func(s *profileSummary) float64 { return s.byClass[c.name] })
		}
	}
	row("total CPU", func(s *profileSummary) float64 { return s.cpuMs })
	row("wall time during the profile", func(s *profileSummary) float64 { return s.wallMs })
	row("other processes' CPU use (CPUs)", func(s *profileSummary) float64 { return s.load })
	tw.Flush()
	mb.WriteString("\n")
	for _, s := range sums[1:] {
		fmt.Fprintf(&tb, "\n%s: the functions with the most CPU time (ms per step, flat)\n", s.pkg)
		fmt.Fprintf(&mb, "Top functions of %s (CPU ms per step, flat): ", s.pkg)
		var items []string
		for i, e := range s.top {
			if i == 12 {
				break
			}
			fmt.Fprintf(&tb, "  %8.2f  %s\n", e.flat, shortName(e.name))
			items = append(items, fmt.Sprintf("`%s` %.2f", shortName(e.name), e.flat))
		}
		mb.WriteString(strings.Join(items, ", ") + ".\n\n")
	}
	return tb.String(), mb.String()
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}

// kernelTables formats the SMH kernels' own times: one SMHWeight per
// compressed tensor (what a training step's forward, or a fused Forward,
// reconstructs) and one SMHGradSum (a training step's backward), also as a
// share of the baseline's training step measured in the same round.
func kernelTables(t *timings, batch int) (text, md string) {
	w, g := measure{"smh-weight", 0}, measure{"smh-gradsum", 0}
	train := measure{"train", batch}
	base := t.group.variants[0].pkg
	var tb, mb strings.Builder
	for _, v := range t.group.variants {
		ws, gs, bs := t.times[v.pkg][w], t.times[v.pkg][g], t.times[base][train]
		if len(ws) == 0 || len(gs) == 0 {
			continue
		}
		var share []float64
		for i := range min(len(ws), len(gs), len(bs)) {
			if bs[i] > 0 {
				share = append(share, (ws[i]+gs[i])/bs[i])
			}
		}
		line := fmt.Sprintf("%s, SMH kernels alone (same rounds): SMHWeight over all compressed tensors %s ms, SMHGradSum %s ms; "+
			"together %.2f%% (rounds %.2f–%.2f%%) of the %s training step",
			v.label, fmtMs(median(ws)), fmtMs(median(gs)), 100*median(share), 100*minOf(share), 100*maxOf(share), t.group.variants[0].label)
		fmt.Fprintf(&tb, "%s\n", line)
		fmt.Fprintf(&mb, "- %s.\n", line)
	}
	if tb.Len() > 0 {
		tb.WriteString("\n")
		mb.WriteString("\n")
	}
	return tb.String(), mb.String()
}

// fmtMs formats nanoseconds as milliseconds with about four significant
// digits.
func fmtMs(ns float64) string {
	ms := ns / 1e6
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2f", ms)
	}
	return fmt.Sprintf("%.3f", ms)
}
