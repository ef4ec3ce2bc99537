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

// Generate emits an inference-only package for a graph that has been
// through the inference pipeline (planned, at StageLowered at most).
func Generate(g *ir.Graph, opts Options) (*Output, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	e := &emitter{opts: opts}
	eval, err := e.program(g, "k", ir.StageLowered)
	if err != nil {
		return nil, err
	}
	e.eval = eval
	return generateSafely(e)
}

// GenerateTrainable emits a package that both runs and trains a model:
// Forward from eval (the TrainedInference pipeline's graph) and TrainStep
// from train (the Training pipeline's), which must hold the same parameters
// in the same order; they share the weights.
func GenerateTrainable(eval, train *ir.Graph, opts Options) (*Output, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := sameParams(eval, train); err != nil {
		return nil, err
	}
	e := &emitter{opts: opts}
	var err error
	if e.eval, err = e.program(eval, "e", ir.StageLowered); err != nil {
		return nil, err
	}
	if e.train, err = e.program(train, "t", ir.StageTraining); err != nil {
		return nil, err
	}
	return generateSafely(e)
}

func checkOptions(opts Options) error {
	if !IsIdentifier(opts.Package) {
		return fmt.Errorf("codegen: package name %q is not a Go identifier", opts.Package)
	}
	// go:embed reads the name as a pattern and skips files starting with
	// '.' or '_': only a plain name embeds the one file meant.
	if opts.WeightsFile == "" || strings.ContainsAny(opts.WeightsFile, "/\\ \"`\n\r\t*?[]") ||
		strings.HasPrefix(opts.WeightsFile, ".") || strings.HasPrefix(opts.WeightsFile, "_") {
		return fmt.Errorf("codegen: weights file name %q must be a plain file name", opts.WeightsFile)
	}
	return nil
}

func sameParams(a, b *ir.Graph) error {
	if len(a.Params) != len(b.Params) {
		return fmt.Errorf("codegen: the inference graph has %d parameters, the training graph %d", len(a.Params), len(b.Params))
	}
	for i, p := range a.Params {
		q := b.Params[i]
		if p.Name != q.Name || !p.Type.Equal(q.Type) || p.Param.Trainable != q.Param.Trainable {
			return fmt.Errorf("codegen: parameter %d is %q %v in the inference graph, %q %v in the training graph", i, p.Name, p.Type, q.Name, q.Type)
		}
	}
	return nil
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
	cached      bool // the inference program caches compressed weights
	opts        Options
	eval, train *program
	weights     []float32
	poff        []int // weights offset of each parameter, in Params order
}

// layoutParams places every parameter in the weights vector, in graph order.
func (e *emitter) layoutParams(g *ir.Graph) error {
	for _, p := range g.Params {
		if p.Param.Data == nil {
			return fmt.Errorf("codegen: parameter %q has no data", p.Name)
		}
		e.poff = append(e.poff, len(e.weights))
		e.weights = append(e.weights, p.Param.Data...)
	}
	return nil
}

// layoutConsts places the constants a program's kernels read as buffers
// after everything placed so far.
func (e *emitter) layoutConsts(p *program) error {
	for _, n := range p.g.Nodes {
		if n.Op.Def().View || n.Op == ir.OpUpdate {
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
			if _, done := p.woff[v]; done || v.Kind != ir.KindConst {
				continue
			}
			if v.Const.DType != ir.F32 {
				return fmt.Errorf("codegen: %v constant v%d read as a buffer", v.Const.DType, v.ID)
			}
			p.woff[v] = len(e.weights)
			e.weights = append(e.weights, v.Const.F32...)
		}
	}
	// A graph output may be a constant that no kernel reads.
	for i, o := range p.g.Outputs {
		v := ir.Root(o)
		if o.Type.DType != ir.F32 {
			return fmt.Errorf("codegen: output %q is %v, want f32", p.g.OutputNames[i], o.Type)
		}
		if _, done := p.woff[v]; done || v.Kind != ir.KindConst {
			continue
		}
		p.woff[v] = len(e.weights)
		e.weights = append(e.weights, v.Const.F32...)
	}
	return nil
}

// generateSafely turns a panic of emission (always a compiler bug) into an
// error.
func generateSafely(e *emitter) (out *Output, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("codegen: internal error: %v", r)
		}
	}()
	return e.generate()
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
	case ir.SeedOffset:
		return jen.Id("m").Dot("seed").Op("+").Lit(uint64(x)), nil
	case *ir.Struct:
		return structLit(x)
	case ir.StructList:
		items := make([]jen.Code, len(x.Items))
		for i, it := range x.Items {
			s, ok := it.(*ir.Struct)
			if !ok {
				return nil, fmt.Errorf("codegen: list item %T", it)
			}
			fields := make([]jen.Code, len(s.Fields))
			for j, f := range s.Fields {
				v, err := value(f.Value)
				if err != nil {
					return nil, err
				}
				fields[j] = jen.Id(f.Name).Op(":").Add(v)
			}
			items[i] = jen.Values(fields...)
		}
		return jen.Index().Qual(RuntimePath, x.Type).Values(items...), nil
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

// nodeComment shows a node in a comment. Model-file text appears only
// inside a Go-quoted string, so it cannot end the comment or start a line.
func nodeComment(n *ir.Node) string {
	s := n.Op.String()
	if len(n.Results) > 0 {
		s = "v" + strconv.Itoa(n.Results[0].ID) + " = " + s
	}
	if n.Name != "" {
		s += " " + strconv.Quote(n.Name)
	}
	return s
}
