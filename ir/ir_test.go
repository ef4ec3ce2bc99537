package ir

import (
	"go/ast"
	goparser "go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpTableComplete(t *testing.T) {
	for _, op := range Ops() {
		d := op.Def()
		require.NotEmpty(t, d.Name, "op %d has no definition", op)
		assert.NotNil(t, d.Infer, "%s: no shape rule", d.Name)
		assert.NotNil(t, d.Cost, "%s: no cost", d.Name)
		assert.True(t, d.Results > 0 || d.SideEffect, "%s: no results and no side effect", d.Name)
		assert.LessOrEqual(t, d.MinArgs, d.MaxArgs, d.Name)
		assert.LessOrEqual(t, d.MinStage, d.MaxStage, d.Name)
		switch {
		case op == OpUpdate:
			// Emitted as one optimizer step over every Update node.
		case d.MaxStage >= StageTyped:
			assert.True(t, d.Kernel != "" && d.Call != nil || d.View, "%s reaches code generation but names no kernel", d.Name)
		default:
			assert.NotNil(t, d.Fold, "%s is import-only but cannot be folded away", d.Name)
		}
		if d.NewAttrs != nil {
			a := d.NewAttrs()
			assert.Equal(t, "", formatAttrs(a, d.NewAttrs()), "%s: defaults must print as nothing", d.Name)
		}
		got, ok := LookupOp(d.Name)
		assert.True(t, ok && got == op, "%s: LookupOp does not find it", d.Name)
	}
}

// TestKernelsExistInRuntime fails when an op names a runtime function that
// the runtime package does not define, so emission stays data.
func TestKernelsExistInRuntime(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "runtime", "*.go"))
	require.NoError(t, err)
	defined := map[string]bool{}
	fset := gotoken.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		af, err := goparser.ParseFile(fset, f, src, goparser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.IsExported() {
				defined[fd.Name.Name] = true
			}
		}
	}
	for _, op := range Ops() {
		if k := op.Def().Kernel; k != "" {
			assert.True(t, defined[k], "op %s names kernel runtime.%s, which does not exist", op, k)
		}
	}
}

const lenetIR = `graph "lenet" opset=14 export_batch=2
input v0:f32[N,1,28,28] "input"
param v1:f32[6,1,5,5] weight trainable "conv1.weight"
param v2:f32[6] bias trainable "conv1.bias"
param v3:f32[10,1176] weight trainable "fc.weight"
param v4:f32[10] bias trainable "fc.bias"
const v5:i64[2] = [N,-1] "shape"
const v6:f32[] = [NaN] "odd \"name\"\n"
v7:f32[N,6,28,28] = Conv v0 v1 v2 {pads=[2,2,2,2]} "/conv1/Conv"
v8:f32[N,6,28,28] = Relu v7
v9:f32[N,6,14,14] = MaxPool v8 {kernel_shape=[2,2] strides=[2,2]} "/pool"
v10:f32[N,1176] = Reshape v9 v5
v11:f32[N,10] = Gemm v10 v3 v4 {trans_b=true} "/fc/Gemm"
v12:f32[N,10] = Clip v11 _ v6
output v12 "output"
`

func TestParsePrintRoundTrip(t *testing.T) {
	g, err := Parse(lenetIR)
	require.NoError(t, err)
	require.NoError(t, Verify(g, StageTyped))
	assert.Equal(t, lenetIR, Format(g))
	g2, err := Parse(Format(g))
	require.NoError(t, err)
	assert.Equal(t, Format(g), Format(g2))
	assert.Equal(t, 13, g.NumValueIDs())
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"no header", "input v0:f32[N] \"x\"\n", "before the graph header"},
		{"use before def", "graph \"g\" opset=14\nv1:f32[N] = Relu v0\noutput v1 \"y\"\n", "v0 is used before it is defined"},
		{"unknown op", "graph \"g\" opset=14\ninput v0:f32[N] \"x\"\nv1:f32[N] = Frobnicate v0\n", "unknown op"},
		{"duplicate id", "graph \"g\" opset=14\ninput v0:f32[N] \"x\"\nv0:f32[N] = Relu v0\n", "defined twice"},
		{"bad attr", "graph \"g\" opset=14\ninput v0:f32[N,1,4,4] \"x\"\nv1:f32[N,1,4,4] = MaxPool v0 {kernel=[1,1]}\n", "no attribute \"kernel\""},
		{"bad dtype", "graph \"g\" opset=14\ninput v0:f16[N] \"x\"\n", "unknown dtype"},
		{"const length", "graph \"g\" opset=14\nconst v0:i64[3] = [1,2]\n", "holds 2 integer elements, want 3"},
		{"bad string", "graph \"g\" opset=14\ninput v0:f32[N] \"x\n", "bad string"},
		{"attrs on op without", "graph \"g\" opset=14\ninput v0:f32[N] \"x\"\nv1:f32[N] = Relu v0 {a=1}\n", "takes no attributes"},
		{"stray token", "graph \"g\" opset=14\ninput v0:f32[N] \"x\" extra\n", "unexpected"},
		{"result count", "graph \"g\" opset=14\ninput v0:f32[N] \"x\"\nv1:f32[N], v2:f32[N] = Relu v0\n", "has 1 results"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// TestVerifyCatches breaks a valid graph in one way at a time and expects
// Verify to say so.
func TestVerifyCatches(t *testing.T) {
	for _, c := range []struct {
		name  string
		stage Stage
		text  string // replaces the graph when set
		edit  func(g *Graph)
		want  string
	}{
		{name: "wrong recorded type", stage: StageTyped, edit: func(g *Graph) { g.Nodes[1].Results[0].Type = Of(F32, BatchDim, 6, 27, 28) }, want: "want f32[N,6,28,28], have f32[N,6,27,28]"},
		{name: "untyped at typed stage", stage: StageTyped, edit: func(g *Graph) { g.Nodes[1].Results[0].Type = TensorType{} }, want: "type not inferred"},
		{name: "arity", stage: StageTyped, edit: func(g *Graph) { g.Nodes[1].Args = append(g.Nodes[1].Args, g.Inputs[0]); g.Inputs[0].uses++ }, want: "want 1 arguments, have 2"},
		{name: "attribute type", stage: StageTyped, edit: func(g *Graph) { g.Nodes[0].Attrs = &PoolAttrs{} }, want: "attributes: want *ir.ConvAttrs, have *ir.PoolAttrs"},
		{name: "use count", stage: StageImported, edit: func(g *Graph) { g.Inputs[0].uses = 7 }, want: "recorded 7 uses, counted 1"},
		{name: "order", stage: StageImported, edit: func(g *Graph) { g.Nodes[0], g.Nodes[1] = g.Nodes[1], g.Nodes[0] }, want: "not defined before its use"},
		{name: "param data", stage: StageImported, edit: func(g *Graph) { g.Params[0].Param.Data = make([]float32, 3) }, want: "holds 3 values"},
		{name: "static arg not const", stage: StageTyped, edit: func(g *Graph) {
			n := g.Nodes[3]
			g.SetArg(n, 1, g.Params[0])
		}, want: "must be a constant"},
		{name: "output undefined", stage: StageImported, edit: func(g *Graph) { g.Outputs[0] = &Value{ID: 99} }, want: "output 0: value not defined"},
		{name: "import-only op at typed", stage: StageTyped, text: `graph "g" opset=14
input v0:f32[N,3] "x"
v1:i64[2] = Shape v0
v2:f32[N,3] = Reshape v0 v1
output v2 "y"
`, want: "op Shape is not legal at stage typed"},
		{name: "batch not first", stage: StageTyped, text: `graph "g" opset=14
input v0:f32[3,N] "x"
v1:f32[3,N] = Relu v0
output v1 "y"
`, want: "batch dimension must come first"},
		{name: "auto_pad unresolved", stage: StageTyped, text: `graph "g" opset=14
input v0:f32[N,1,4,4] "x"
param v1:f32[1,1,3,3] weight "w"
v2:f32[N,1,4,4] = Conv v0 v1 {auto_pad="SAME_UPPER"}
output v2 "y"
`, want: "auto_pad must be resolved"},
		{name: "no outputs", stage: StageImported, text: `graph "g" opset=14
input v0:f32[N,1,4,4] "x"
`, want: "no outputs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := lenetIR
			if c.text != "" {
				text = c.text
			}
			g, err := Parse(text)
			require.NoError(t, err)
			for _, p := range g.Params {
				p.Param.Data = make([]float32, p.Type.Shape.Static())
			}
			if c.edit != nil {
				c.edit(g)
			}
			err = Verify(g, c.stage)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestBuilderKeepsUseCounts(t *testing.T) {
	g, err := Parse(lenetIR)
	require.NoError(t, err)
	relu := g.Nodes[1]
	// Insert a second Relu before the pool and route the pool through it.
	n, err := g.Before(g.Nodes[2]).AddInfer(OpRelu, "extra", nil, relu.Results[0])
	require.NoError(t, err)
	g.ReplaceAllUses(relu.Results[0], n.Results[0])
	g.SetArg(n, 0, relu.Results[0]) // ReplaceAllUses also rewrote n's own argument
	require.NoError(t, Verify(g, StageTyped))
	assert.Equal(t, 1, relu.Results[0].Uses())
	assert.Equal(t, []*Node{g.Nodes[3]}, g.Users(n.Results[0]))
	// Dropping the extra node's users makes it dead.
	g.ReplaceAllUses(n.Results[0], relu.Results[0])
	assert.Equal(t, 1, g.RemoveDead())
	require.NoError(t, Verify(g, StageTyped))
	assert.Equal(t, lenetIR, Format(g))
}

func TestRenumberIsDense(t *testing.T) {
	g, err := Parse(strings.Replace(lenetIR, "v12", "v40", -1))
	require.NoError(t, err)
	g.Renumber()
	require.NoError(t, Verify(g, StageTyped))
	assert.Equal(t, lenetIR, Format(g))
}
