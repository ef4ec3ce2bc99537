package ir

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Text form, one item per line, in this order:
//
//	graph "lenet5" opset=14 export_batch=2
//	input v0:f32[N,1,28,28] "input"
//	param v1:f32[6,1,5,5] weight trainable "conv1.weight"
//	const v3:i64[2] = [N,-1]
//	v4:f32[N,6,28,28] = Conv v0 v1 v2 {pads=[2,2,2,2]} "/conv1/Conv"
//	output v9 "output"
//
// Names from the model file appear only as Go-quoted strings, so no model
// text can break the format. Attributes equal to the op's defaults are
// omitted. Parameter data is not printed; constant data is.

// Print writes g in the text form.
func Print(w io.Writer, g *Graph) error {
	_, err := io.WriteString(w, Format(g))
	return err
}

// Format returns g in the text form.
func Format(g *Graph) string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s opset=%d", strconv.Quote(g.Name), g.Opset)
	if g.ExportBatch != 0 {
		fmt.Fprintf(&b, " export_batch=%d", g.ExportBatch)
	}
	if g.Planned {
		fmt.Fprintf(&b, " arena=%d fixed=%d", g.Arena, g.Fixed)
	}
	b.WriteByte('\n')
	for _, v := range g.Inputs {
		fmt.Fprintf(&b, "input %s %s\n", valueDecl(v), strconv.Quote(v.Name))
	}
	for _, v := range g.Params {
		p := v.Param
		fmt.Fprintf(&b, "param %s %s", valueDecl(v), p.Role)
		if p.Trainable {
			b.WriteString(" trainable")
		}
		fmt.Fprintf(&b, " %s\n", strconv.Quote(v.Name))
	}
	for _, v := range g.Consts {
		fmt.Fprintf(&b, "const %s = %s", valueDecl(v), formatConstData(v.Const))
		if v.Name != "" {
			fmt.Fprintf(&b, " %s", strconv.Quote(v.Name))
		}
		b.WriteByte('\n')
	}
	for _, n := range g.Nodes {
		b.WriteString(formatNode(n, g.Planned))
		b.WriteByte('\n')
	}
	for i, v := range g.Outputs {
		fmt.Fprintf(&b, "output %s %s\n", valueRef(v), strconv.Quote(g.OutputNames[i]))
	}
	return b.String()
}

// FormatNode prints one node line, for dumps and error messages.
func FormatNode(n *Node) string { return formatNode(n, false) }

func formatNode(n *Node, withOffsets bool) string {
	var b strings.Builder
	for i, r := range n.Results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(valueDecl(r))
		if withOffsets && Root(r).Kind == KindResult {
			b.WriteString("@" + strconv.Itoa(r.Offset))
		}
	}
	if len(n.Results) > 0 {
		b.WriteString(" = ")
	}
	b.WriteString(n.Op.String())
	for _, a := range n.Args {
		b.WriteByte(' ')
		if a == nil {
			b.WriteByte('_')
		} else {
			b.WriteString(valueRef(a))
		}
	}
	if n.Attrs != nil && n.Op.Def().NewAttrs != nil {
		if s := formatAttrs(n.Attrs, n.Op.Def().NewAttrs()); s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	if n.Name != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(n.Name))
	}
	return b.String()
}

func valueRef(v *Value) string { return "v" + strconv.Itoa(v.ID) }

func valueDecl(v *Value) string { return valueRef(v) + ":" + v.Type.String() }

func formatConstData(t *Tensor) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < t.Len(); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case t.DType == F32:
			b.WriteString(formatFloat(float64(t.F32[i]), 32))
		case t.I64[i] == SymBatch:
			b.WriteByte('N')
		default:
			b.WriteString(strconv.FormatInt(t.I64[i], 10))
		}
	}
	b.WriteByte(']')
	return b.String()
}
