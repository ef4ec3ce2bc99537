package codegen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileMain runs the packages compiled from hostile.onnx and
// hostile_clean.onnx (the same network, once with names built to break
// generated code and once with plain ones) side by side: they must agree
// bit for bit in inference and in training, and the hostile names must
// still work as names.
const hostileMain = `package conformance

import (
	"bytes"
	"math"
	"testing"

	"conformance/clean"
	"conformance/hostile"
)

func input(batch int) []float32 {
	x := make([]float32, 16*batch)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)*0.7)) * 2
	}
	return x
}

func same(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d values against %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s[%d]: hostile %v, clean %v", what, i, a[i], b[i])
		}
	}
}

func TestHostileBehavesLikeClean(t *testing.T) {
	h, c := hostile.New(), clean.New()
	for _, batch := range []int{1, 3} {
		x := input(batch)
		a, err := h.Forward(x, batch)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Forward(x, batch)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "Forward", a, b)
	}
	x, labels := input(4), []int32{0, 2, 1, 2}
	for step := 0; step < 5; step++ {
		la, err := h.TrainStep(x, labels, 4)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := c.TrainStep(x, labels, 4)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float32bits(la) != math.Float32bits(lb) {
			t.Fatalf("step %d: loss %v against %v", step, la, lb)
		}
	}
	hp, cp := h.Params(), c.Params()
	if len(hp) != len(cp) {
		t.Fatalf("%d parameters against %d", len(hp), len(cp))
	}
	for i := range hp {
		same(t, "param "+cp[i].Name, hp[i].Data, cp[i].Data)
	}

	// The model file's names are the model's names, verbatim.
	names := map[string]string{
		"w*/ func init() { panic(2) } /*": "w",
		"\n//go:generate rm -rf /\n":       "b",
		"type":                            "fw",
		"const":                           "fb",
	}
	for hn, cn := range names {
		if h.Tensor(hn) == nil {
			t.Errorf("Tensor(%q) is nil", hn)
		}
		same(t, "Tensor "+cn, h.Tensor(hn), c.Tensor(cn))
	}

	// A checkpoint carries the hostile names and loads back.
	var buf bytes.Buffer
	if err := h.Save(&buf); err != nil {
		t.Fatal(err)
	}
	h2 := hostile.New()
	if err := h2.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	a, _ := h.Forward(input(2), 2)
	b, _ := h2.Forward(input(2), 2)
	same(t, "Forward after Load", a, b)
	if err := c.Load(bytes.NewReader(buf.Bytes())); err == nil {
		t.Error("the clean model loads a checkpoint whose tensors it does not have")
	}
}
`

// TestHostileFixture compiles testdata/models/hostile.onnx, whose every
// name tries to escape into Go (quotes, backticks, newlines, comment ends,
// //go: directives, keywords, a fake "Code generated" header, unicode line
// separators, empty and duplicate node names), next to hostile_clean.onnx.
// The hostile source must declare exactly what the clean one declares,
// carry no directive and no second generated header, and the two packages
// must behave identically.
func TestHostileFixture(t *testing.T) {
	dir := tempModule(t)
	for pkg, file := range map[string]string{"hostile": "hostile.onnx", "clean": "hostile_clean.onnx"} {
		require.True(t, generateTrainable(t, filepath.Join(models, file), dir, pkg), file)
	}
	shape := func(pkg string) (decls, imports []string, src string) {
		b, err := os.ReadFile(filepath.Join(dir, pkg, pkg+".go"))
		require.NoError(t, err)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, pkg+".go", b, parser.ParseComments)
		require.NoError(t, err)
		assert.True(t, ast.IsGenerated(f), pkg)
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil {
					name = "(Model)." + name
				}
				decls = append(decls, name)
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							decls = append(decls, n.Name)
						}
					case *ast.TypeSpec:
						decls = append(decls, s.Name.Name)
					case *ast.ImportSpec:
						p, _ := strconv.Unquote(s.Path.Value)
						imports = append(imports, p)
					}
				}
			}
		}
		sort.Strings(decls)
		sort.Strings(imports)
		return decls, imports, string(b)
	}
	hd, hi, hsrc := shape("hostile")
	cd, ci, _ := shape("clean")
	assert.Equal(t, cd, hd, "the hostile names changed the declarations")
	assert.Equal(t, ci, hi, "the hostile names changed the imports")
	for i, line := range strings.Split(hsrc, "\n") {
		l := strings.TrimSpace(line)
		if l != "//go:embed hostile.weights" {
			assert.False(t, strings.HasPrefix(l, "//go:"), "line %d is a directive: %q", i+1, line)
		}
		if i > 0 {
			// Quoted inside a comment the fake header is inert; as a
			// comment of its own it would mark the file as evil's.
			assert.False(t, strings.HasPrefix(l, "// Code generated"), "line %d: %q", i+1, line)
		}
		assert.NotContains(t, line, "\u2028", "line %d keeps a raw line separator", i+1)
	}

	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostile_test.go"), []byte(hostileMain), 0o644))
	goTest(t, dir, "-v", ".")
}
