package codegen

import (
	"fmt"
	"strconv"

	"github.com/dave/jennifer/jen"
	"github.com/smhgen/smhgen/ir"
)

// program is one graph's share of the generated package: its kernels'
// parameter fields and their set-up, and the calls that run it.
type program struct {
	e      *emitter
	g      *ir.Graph
	prefix string            // of the Model fields holding kernel parameters
	ins    []string          // the Go names of the graph inputs
	woff   map[*ir.Value]int // weights offset of parameters and constants
	fields []jen.Code
	inits  []jen.Code
	used   *locals // the locals the statements being emitted use
	fixed  string  // the Model field holding the fixed arena
}

// locals records which slices and the batch size a function body reads.
type locals struct {
	a, w, f, n bool
}

// program checks g and lays out its weights.
func (e *emitter) program(g *ir.Graph, prefix string, stage ir.Stage) (*program, error) {
	if !g.Planned {
		return nil, fmt.Errorf("codegen: the graph has no memory plan")
	}
	if err := ir.Verify(g, stage); err != nil {
		return nil, fmt.Errorf("codegen: invalid graph: %w", err)
	}
	p := &program{e: e, g: g, prefix: prefix, woff: map[*ir.Value]int{}, used: &locals{}, fixed: "fixed"}
	if stage == ir.StageTraining {
		// Training has its own fixed arena (gradients), allocated on
		// first use, so inference alone never pays for it.
		p.fixed = "tfixed"
	}
	if e.poff == nil {
		if err := e.layoutParams(g); err != nil {
			return nil, err
		}
	}
	for i, v := range g.Params {
		p.woff[v] = e.poff[i]
	}
	if err := e.layoutConsts(p); err != nil {
		return nil, err
	}
	for i, in := range g.Inputs {
		switch {
		case in.Type.DType == ir.I32:
			p.ins = append(p.ins, "labels")
		case len(g.Inputs) == 1 || prefix == "t" && i == 0:
			p.ins = append(p.ins, "x")
		default:
			p.ins = append(p.ins, "x"+strconv.Itoa(i))
		}
	}
	return p, nil
}

// field is the Model field holding node n's kernel parameters.
func (p *program) field(n *ir.Node) string { return p.prefix + strconv.Itoa(n.Results[0].ID) }

// sideField names the parameters of a node without results.
func (p *program) sideField(i int) string { return p.prefix + "s" + strconv.Itoa(i) }

// call emits the runtime call for n, registering its parameter field.
func (p *program) call(n *ir.Node, field string) (*ir.KernelCall, []jen.Code, error) {
	c, err := ir.Call(n)
	if err != nil {
		return nil, nil, err
	}
	var args []jen.Code
	if c.Params != nil {
		lit, err := structLit(c.Params)
		if err != nil {
			return nil, nil, err
		}
		p.fields = append(p.fields, jen.Id(field).Qual(RuntimePath, c.Params.Type).Comment(nodeComment(n)))
		p.inits = append(p.inits, jen.Id("m").Dot(field).Op("=").Add(lit))
		if c.Func == "Dropout" || c.Func == "DropoutBackward" {
			p.inits = append(p.inits, jen.If(jen.Id("m").Dot("noDropout")).Block(jen.Id("m").Dot(field).Dot("Ratio").Op("=").Lit(0)))
		}
		p.inits = append(p.inits,
			jen.If(jen.Err().Op(":=").Id("m").Dot(field).Dot("Init").Call(), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit("node %s: %w"), jen.Lit(nodeComment(n)), jen.Err())),
			))
		args = append(args, jen.Op("&").Id("m").Dot(field))
	}
	if c.HasN {
		if c.N == ir.RuntimeBatch {
			p.used.n = true
			args = append(args, jen.Id("n"))
		} else {
			args = append(args, jen.Lit(c.N))
		}
	}
	if c.HasStep {
		args = append(args, jen.Id("m").Dot("step"))
	}
	for _, b := range c.Bufs {
		switch b.Kind {
		case ir.BufResult:
			args = append(args, p.buf(n.Results[b.Index]))
		case ir.BufArg:
			args = append(args, p.buf(n.Args[b.Index]))
		default:
			args = append(args, jen.Nil())
		}
	}
	return c, args, nil
}

// stmts emits the calls for nodes, skipping views. An Async
// SMHReconstruct (see passes.SMHPrefetch) is started where it stands and
// waited for just before the first call that reads it, or before the next
// one starts (the runtime runs one in the background at a time), or at
// the end.
func (p *program) stmts(nodes []*ir.Node) ([]jen.Code, error) {
	var out []jen.Code
	type started struct {
		v     *ir.Value
		field string
	}
	var pending []started
	wait := func(keep func(started) bool) {
		rest := pending[:0]
		for _, s := range pending {
			if keep(s) {
				rest = append(rest, s)
				continue
			}
			out = append(out, jen.Qual(RuntimePath, "SMHWeightWait").Call(jen.Op("&").Id("m").Dot(s.field)))
		}
		pending = rest
	}
	for _, n := range nodes {
		if n.Op.Def().View {
			continue
		}
		async := n.Op == ir.OpSMHReconstruct && n.Attrs.(*ir.SMHAttrs).Async
		wait(func(s started) bool {
			if async {
				return false
			}
			for _, a := range n.Args {
				if a != nil && ir.Root(a) == s.v {
					return false
				}
			}
			return true
		})
		field := ""
		if len(n.Results) > 0 {
			field = p.field(n)
		} else {
			field = p.sideField(len(p.fields))
		}
		c, args, err := p.call(n, field)
		if err != nil {
			return nil, err
		}
		out = append(out, jen.Comment(nodeComment(n)), jen.Qual(RuntimePath, c.Func).Call(args...))
		if async {
			pending = append(pending, started{n.Results[0], field})
		}
	}
	wait(func(started) bool { return false })
	return out, nil
}

// buf renders the buffer a value lives in, sliced to its exact extent.
func (p *program) buf(v *ir.Value) jen.Code {
	root := ir.Root(v)
	size := v.Type.Shape.Static()
	switch root.Kind {
	case ir.KindInput:
		for i, in := range p.g.Inputs {
			if in == root {
				return jen.Id(p.ins[i])
			}
		}
	case ir.KindParam, ir.KindConst:
		p.used.w = true
		off, ok := p.woff[root]
		if !ok {
			panic(fmt.Sprintf("codegen: v%d has no place in the weights", root.ID))
		}
		return jen.Id("w").Index(jen.Lit(off).Op(":").Lit(off + size))
	}
	if !v.Type.Shape.HasBatch() {
		p.used.f = true
		return jen.Id("f").Index(jen.Lit(root.Offset).Op(":").Lit(root.Offset + size))
	}
	p.used.a, p.used.n = true, true
	lo := jen.Lit(root.Offset).Op("*").Id("n")
	if root.Offset == 0 {
		lo = jen.Lit(0)
	}
	return jen.Id("a").Index(lo.Op(":").Lit(root.Offset + size).Op("*").Id("n"))
}

// fixedSlice renders a value in the fixed arena through the model (for set-up
// code outside a run, where the local f does not exist).
func (p *program) fixedSlice(v *ir.Value) jen.Code {
	root := ir.Root(v)
	size := v.Type.Shape.Static()
	return jen.Id("m").Dot(p.fixed).Index(jen.Lit(root.Offset).Op(":").Lit(root.Offset + size))
}

// declare returns the statement that binds the locals a body used, and
// resets the record for the next body.
func (p *program) declare() []jen.Code {
	var names, values []jen.Code
	for _, l := range []struct {
		used        bool
		name, value string
	}{{p.used.n, "n", ""}, {p.used.a, "a", "arena"}, {p.used.w, "w", "w"}, {p.used.f, "f", p.fixed}} {
		if !l.used {
			continue
		}
		names = append(names, jen.Id(l.name))
		if l.name == "n" {
			values = append(values, jen.Id("batch"))
		} else {
			values = append(values, jen.Id("m").Dot(l.value))
		}
	}
	p.used = &locals{}
	if len(names) == 0 {
		return nil
	}
	return []jen.Code{jen.List(names...).Op(":=").List(values...)}
}
