package codegen

import (
	"github.com/dave/jennifer/jen"
	"github.com/smhgen/smhgen/ir"
)

// smhAPI emits, for a compressed model, the compression's numbers as
// constants, the per-tensor report, and DenseWeight.
func (e *emitter) smhAPI(f *jen.File, cached bool) error {
	r := ir.ReportSMH(e.eval.g)
	if r == nil {
		return nil
	}
	f.Const().Defs(
		jen.Comment("SMHVariant is the compression: product (Structured Multi-Hashing),"), jen.Comment("hash (HashedNets) or kron (sum of Kronecker products)."),
		jen.Id("SMHVariant").Op("=").Lit(r.Variant),
		jen.Comment("SMHSide and SMHRank are the virtual matrix's side d and its rank r"), jen.Comment("(for kron, the Kronecker terms)."),
		jen.Id("SMHSide").Op("=").Lit(r.D),
		jen.Id("SMHRank").Op("=").Lit(r.Rank),
		jen.Comment("SMHHashed is the number of weights read from the pool; SMHPool the"), jen.Comment("pool's size, SMHScales the per-tensor scales'."),
		jen.Id("SMHHashed").Op("=").Lit(r.Hashed),
		jen.Id("SMHPool").Op("=").Lit(r.Pool),
		jen.Id("SMHScales").Op("=").Lit(r.Scales),
		jen.Comment("DenseParams is what the uncompressed model trains; NumParams is what"), jen.Comment("this one does (pool, scales and the uncompressed parameters)."),
		jen.Id("DenseParams").Op("=").Lit(r.Dense),
	)
	var items []jen.Code
	for _, t := range r.Tensors {
		items = append(items, jen.Values(jen.Dict{
			jen.Id("Name"): jen.Lit(t.Name), jen.Id("Shape"): ints(t.Shape),
			jen.Id("Offset"): jen.Lit(t.Offset), jen.Id("Count"): jen.Lit(t.Count), jen.Id("ScaleInit"): lit32(t.ScaleInit),
		}))
	}
	doc(f, "SMHTensor is one compressed weight: its name in the model file, its\nshape, its place in the virtual weight vector and its scale's first value.")
	f.Type().Id("SMHTensor").Struct(
		jen.Id("Name").String(),
		jen.Id("Shape").Index().Int(),
		jen.List(jen.Id("Offset"), jen.Id("Count")).Int(),
		jen.Id("ScaleInit").Float32(),
	)
	doc(f, "SMHTensors lists the compressed weights in the order they are laid out.")
	f.Func().Id("SMHTensors").Params().Index().Id("SMHTensor").Block(jen.Return(jen.Index().Id("SMHTensor").Values(items...)))

	// DenseWeight reconstructs through each tensor's own kernel parameters.
	var cases []jen.Code
	seen := map[string]bool{}
	ev := e.eval
	for _, n := range ir.SMHTensors(ev.g) {
		if seen[n.Name] {
			continue
		}
		seen[n.Name] = true
		size := n.Results[0].Type.Shape.Static()
		cases = append(cases, jen.Case(jen.Lit(n.Name)).Block(
			jen.Id("w").Op(":=").Make(jen.Index().Float32(), jen.Lit(size)),
			jen.Qual(RuntimePath, "SMHWeight").Call(jen.Op("&").Id("m").Dot(ev.field(n)), jen.Id("w"), ev.weightSlice(n.Args[0]), ev.weightSlice(n.Args[1])),
			jen.Return(jen.Id("w")),
		))
	}
	doc(f, "DenseWeight returns a new slice holding the named compressed weight as\nthe model computes it from the pool (row-major), or nil for a name that\nis not compressed.")
	method(f, "DenseWeight").Params(jen.Id("name").String()).Index().Float32().Block(
		jen.Switch(jen.Id("name")).Block(cases...),
		jen.Return(jen.Nil()),
	)
	return nil
}

// weightSlice renders a parameter through the model rather than a local.
func (p *program) weightSlice(v *ir.Value) jen.Code {
	off := p.woff[ir.Root(v)]
	return jen.Id("m").Dot("w").Index(jen.Lit(off).Op(":").Lit(off + v.Type.Shape.Static()))
}
