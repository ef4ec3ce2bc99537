// Package codegen turns a planned IR graph into one standalone Go package:
// a Model type, its constructor and Forward, with the weights in a binary
// file next to the source that the package embeds. Emission is driven by
// the op table: each node becomes one call into the runtime package, built
// from the op's KernelCall; nothing here knows any op.
package codegen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"go/token"
	"hash/crc32"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/dave/jennifer/jen"
	"github.com/smhgen/smhgen/ir"
)

// RuntimePath is the import path of the kernels generated code calls.
const RuntimePath = "github.com/smhgen/smhgen/runtime"

// Options name what is generated.
type Options struct {
	// Package is the generated package's name; it must be a Go identifier.
	Package string
	// Source is the model file's name, for the header comment.
	Source string
	// WeightsFile is the base name of the weights file the package embeds.
	WeightsFile string
}

// Output is a generated package: the Go source and the weights it embeds.
type Output struct {
	Go      []byte
	Weights []byte
}

// WeightsMagic starts every weights file; the version is its last bytes.
const WeightsMagic = "SMHGW001"

// weightsHeader is magic, element count (uint64) and CRC-32 (IEEE) of the
// data (uint32) and 4 reserved bytes, all little-endian.
const weightsHeader = 24

// Generate emits the package for a graph that has been through the
// inference pipeline (planned, at StageLowered at most).
func Generate(g *ir.Graph, opts Options) (*Output, error) {
	if !g.Planned {
		return nil, fmt.Errorf("codegen: the graph has no memory plan")
	}
	if err := ir.Verify(g, ir.StageLowered); err != nil {
		return nil, fmt.Errorf("codegen: invalid graph: %w", err)
	}
	if !IsIdentifier(opts.Package) {
		return nil, fmt.Errorf("codegen: package name %q is not a Go identifier", opts.Package)
	}
	if opts.WeightsFile == "" || strings.ContainsAny(opts.WeightsFile, "/\\ \"`\n") {
		return nil, fmt.Errorf("codegen: weights file name %q must be a plain file name", opts.WeightsFile)
	}
	e := &emitter{g: g, opts: opts, woff: map[*ir.Value]int{}}
	if err := e.layoutWeights(); err != nil {
		return nil, err
	}
	src, err := e.file()
	if err != nil {
		return nil, err
	}
	return &Output{Go: src, Weights: e.weightsBlob()}, nil
}

// IsIdentifier reports whether s can name a Go package.
func IsIdentifier(s string) bool {
	if s == "" || token.IsKeyword(s) || s == "_" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || i > 0 && unicode.IsDigit(r)) || r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// PackageName derives a package name from a file or directory name:
// lower-case ASCII letters and digits, never starting with a digit, "model"
// when nothing is left.
func PackageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && b.Len() > 0 {
			b.WriteRune(r)
		}
	}
	if !IsIdentifier(b.String()) {
		return "model"
	}
	return b.String()
}

type emitter struct {
	g       *ir.Graph
	opts    Options
	woff    map[*ir.Value]int // offset of each param or constant in the weights
	weights []float32
	// The locals of the forward body that emitted code uses.
	useA, useW, useF, useN bool
}

// layoutWeights places every parameter, then every constant a kernel reads
// as a buffer, in one float32 vector.
func (e *emitter) layoutWeights() error {
	add := func(v *ir.Value, data []float32) {
		e.woff[v] = len(e.weights)
		e.weights = append(e.weights, data...)
	}
	for _, p := range e.g.Params {
		if p.Param.Data == nil {
			return fmt.Errorf("codegen: parameter %q has no data", p.Name)
		}
		add(p, p.Param.Data)
	}
	for _, n := range e.g.Nodes {
		if n.Op.Def().View {
			continue
		}
		c, err := ir.Call(n)
		if err != nil {
			return err
		}
		for _, b := range c.Bufs {
			if b.Kind != ir.BufArg {
				continue
			}
			v := ir.Root(n.Args[b.Index])
			if v.Kind != ir.KindConst || e.hasOffset(v) {
				continue
			}
			if v.Const.DType != ir.F32 {
				return fmt.Errorf("codegen: %v constant v%d read as a buffer", v.Const.DType, v.ID)
			}
			add(v, v.Const.F32)
		}
	}
	return nil
}

func (e *emitter) hasOffset(v *ir.Value) bool {
	_, ok := e.woff[v]
	return ok
}

func (e *emitter) weightsBlob() []byte {
	var b bytes.Buffer
	b.WriteString(WeightsMagic)
	data := make([]byte, 4*len(e.weights))
	for i, v := range e.weights {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	var hdr [16]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(len(e.weights)))
	binary.LittleEndian.PutUint32(hdr[8:], crc32.ChecksumIEEE(data))
	b.Write(hdr[:])
	b.Write(data)
	return b.Bytes()
}

// lit32 renders a float32 exactly; non-finite values, which have no Go
// literal, become math.Float32frombits calls.
func lit32(f float32) jen.Code {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return jen.Qual("math", "Float32frombits").Call(jen.Lit(int(math.Float32bits(f))))
	}
	return jen.Lit(f)
}

func ints(v []int) jen.Code {
	if v == nil {
		return jen.Nil()
	}
	items := make([]jen.Code, len(v))
	for i, x := range v {
		items[i] = jen.Lit(x)
	}
	return jen.Index().Int().Values(items...)
}

// value renders one field of a runtime struct literal.
func value(v any) (jen.Code, error) {
	switch x := v.(type) {
	case int:
		return jen.Lit(x), nil
	case bool:
		return jen.Lit(x), nil
	case float32:
		return lit32(x), nil
	case uint64:
		return jen.Lit(x), nil
	case []int:
		return ints(x), nil
	case [][]int:
		items := make([]jen.Code, len(x))
		for i, s := range x {
			items[i] = ints(s)
		}
		return jen.Index().Index().Int().Values(items...), nil
	case ir.Sym:
		return jen.Qual(RuntimePath, string(x)), nil
	case *ir.Struct:
		return structLit(x)
	}
	return nil, fmt.Errorf("codegen: unsupported field value %T", v)
}

func structLit(s *ir.Struct) (jen.Code, error) {
	fields := make([]jen.Code, len(s.Fields))
	for i, f := range s.Fields {
		v, err := value(f.Value)
		if err != nil {
			return nil, err
		}
		fields[i] = jen.Id(f.Name).Op(":").Add(v)
	}
	return jen.Qual(RuntimePath, s.Type).Values(fields...), nil
}

// paramsField is the Model field holding node n's kernel parameters.
func paramsField(n *ir.Node) string { return "k" + strconv.Itoa(n.Results[0].ID) }

// nodeComment shows a node in a comment. Model-file text appears only
// inside a Go-quoted string, so it cannot end the comment or start a line.
func nodeComment(n *ir.Node) string {
	s := "v" + strconv.Itoa(n.Results[0].ID) + " = " + n.Op.String()
	if n.Name != "" {
		s += " " + strconv.Quote(n.Name)
	}
	return s
}

// buf renders the buffer a value lives in, sliced to its exact extent;
// inputs are named by ins.
func (e *emitter) buf(v *ir.Value, ins []string) jen.Code {
	root := ir.Root(v)
	size := v.Type.Shape.Static()
	switch root.Kind {
	case ir.KindInput:
		for i, in := range e.g.Inputs {
			if in == root {
				return jen.Id(ins[i])
			}
		}
	case ir.KindParam, ir.KindConst:
		e.useW = true
		off := e.woff[root]
		return jen.Id("w").Index(jen.Lit(off).Op(":").Lit(off + size))
	}
	if !v.Type.Shape.HasBatch() {
		e.useF = true
		return jen.Id("f").Index(jen.Lit(root.Offset).Op(":").Lit(root.Offset + size))
	}
	e.useA, e.useN = true, true
	lo := jen.Lit(root.Offset).Op("*").Id("n")
	if root.Offset == 0 {
		lo = jen.Lit(0)
	}
	return jen.Id("a").Index(lo.Op(":").Lit(root.Offset + size).Op("*").Id("n"))
}
