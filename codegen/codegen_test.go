package codegen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dave/jennifer/jen"
	"github.com/smhgen/smhgen/internal/irinterp"
	"github.com/smhgen/smhgen/ir"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileText is a small graph whose every name tries to escape into the
// generated code, and whose constants need exact bits: an infinite clip
// bound, negative zero and a denormal operand.
const hostileText = `graph "g" opset=14
input v0:f32[N,4] "x\"; panic(1) //"
param v1:f32[3,4] weight trainable "w*/ func init() { panic(2) } /*"
param v2:f32[3] bias trainable "\n//go:generate rm -rf /\n"
const v3:f32[3] = [-0,1e-45,2.5]
const v4:f32[] = [+Inf]
const v5:f32[] = [-1]
v6:f32[N,3] = Gemm v0 v1 v2 {trans_b=true} "` + "`" + `backtick` + "`" + ` package main"
v7:f32[N,3] = Add v6 v3 "func"
v8:f32[N,3] = Clip v7 v5 v4 "日本語 \u2028 \x00"
output v8 "out\"put"
`

// hostileGraph parses hostileText, gives it weights, runs the inference
// pipeline and returns it with an input and the interpreter's output.
func hostileGraph(t *testing.T) (*ir.Graph, []float32, []float32) {
	g, err := ir.Parse(hostileText)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, p := range g.Params {
		p.Param.Data = make([]float32, p.Type.Shape.Static())
		for i := range p.Param.Data {
			p.Param.Data[i] = float32(rng.NormFloat64())
		}
	}
	pl, err := passes.NewPipeline(passes.Cleanup, passes.Fold, passes.Fuse, passes.DCE, passes.Plan)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, nil, ""))
	in := make([]float32, 8)
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	out, err := irinterp.Run(g, 2, in)
	require.NoError(t, err)
	want := make([]float32, len(out[0].Data))
	for i, v := range out[0].Data {
		want[i] = float32(v)
	}
	return g, in, want
}

// TestHostileNamesStayInert: model-file text reaches the generated source
// only inside string literals and comments that cannot end early; the
// source parses, is marked generated, and has exactly the declarations
// codegen writes.
func TestHostileNamesStayInert(t *testing.T) {
	g, _, _ := hostileGraph(t)
	out, err := Generate(g, Options{Package: "hostile", Source: "a\n//go:generate evil\n.onnx", WeightsFile: "h.weights"})
	require.NoError(t, err)
	src := string(out.Go)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "h.go", out.Go, parser.ParseComments)
	require.NoError(t, err, src)
	assert.True(t, ast.IsGenerated(f))
	var decls []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			decls = append(decls, d.Name.Name)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.ValueSpec:
					decls = append(decls, s.Names[0].Name)
				case *ast.TypeSpec:
					decls = append(decls, s.Name.Name)
				}
			}
		}
	}
	assert.ElementsMatch(t, []string{"weightsBlob", "InputSize", "OutputSize", "numWeights", "arenaSize", "fixedSize", "numParams",
		"InputShape", "OutputShape", "Model", "New", "init", "NumParams", "reserve", "Forward", "Tensor", "weightsOnce", "weightsData", "weights"}, decls)
	// Comments never carry a directive; no line starts with hostile text.
	var s scanner.Scanner
	file := fset.AddFile("h.go", -1, len(out.Go))
	s.Init(file, out.Go, nil, scanner.ScanComments)
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.COMMENT {
			assert.NotContains(t, lit, "\n//go:generate", "a comment carries a directive")
			continue
		}
	}
	for _, line := range strings.Split(src, "\n") {
		assert.False(t, strings.HasPrefix(strings.TrimSpace(line), "//go:generate"), "line %q", line)
	}
}

func TestNonFiniteLiterals(t *testing.T) {
	assert.Equal(t, "math.Float32frombits(2139095040)", renderCode(lit32(float32(math.Inf(1)))))
	assert.Equal(t, "math.Float32frombits(2143289344)", renderCode(lit32(float32(math.NaN()))))
	assert.Equal(t, "float32(0.5)", renderCode(lit32(0.5)))
}

func TestPackageNames(t *testing.T) {
	for in, want := range map[string]string{"resnet8a_bn": "resnet8abn", "9lives": "lives", "": "model", "Net-V2": "netv2", "ÄÖ": "model", "func": "model"} {
		assert.Equal(t, want, PackageName(in), in)
	}
	assert.True(t, IsIdentifier("net"))
	assert.False(t, IsIdentifier("type"))
	assert.False(t, IsIdentifier("1x"))
	assert.False(t, IsIdentifier("a-b"))
}

func TestGenerateRejects(t *testing.T) {
	g, _, _ := hostileGraph(t)
	_, err := Generate(g, Options{Package: "go", WeightsFile: "w"})
	assert.ErrorContains(t, err, "not a Go identifier")
	for _, w := range []string{"../w", "_w.weights", ".w", "w*.weights", "w[1].weights", "w\r"} {
		_, err = Generate(g, Options{Package: "x", WeightsFile: w})
		assert.ErrorContains(t, err, "plain file name", w)
	}
	g.Planned = false
	_, err = Generate(g, Options{Package: "x", WeightsFile: "w"})
	assert.ErrorContains(t, err, "no memory plan")
}

// renderCode renders one expression.
func renderCode(c jen.Code) string {
	return fmt.Sprintf("%#v", c)
}
