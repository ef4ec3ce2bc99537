package codegen

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/frontends/onnx"
	"github.com/smhgen/smhgen/internal/npy"
	"github.com/smhgen/smhgen/passes"
	"github.com/stretchr/testify/require"
)

const models = "../testdata/models"

// fixtureModels lists the committed fixtures with their reference data, and
// the big ones when export.py has written them.
func fixtureModels(t *testing.T) (files []string) {
	all, err := filepath.Glob(filepath.Join(models, "*.onnx"))
	require.NoError(t, err)
	big, _ := filepath.Glob(filepath.Join(models, "big", "*.onnx"))
	for _, f := range append(all, big...) {
		b := filepath.Base(f)
		if strings.HasPrefix(b, "bad_") || b == "bool_initializer.onnx" {
			continue
		}
		files = append(files, f)
	}
	return files
}

// referenceName maps a fixture to the model whose .npy files it shares.
func referenceName(file string) string {
	m := strings.TrimSuffix(filepath.Base(file), ".onnx")
	for _, s := range []string{"_bn", "_dyn", "_op11"} {
		m = strings.TrimSuffix(m, s)
	}
	return m
}

// generate compiles one model into dir/pkg.
func generate(t *testing.T, file, dir, pkg string) {
	g, err := onnx.ImportFile(file, onnx.Options{})
	require.NoError(t, err)
	pl, err := passes.NewPipeline(passes.Inference()...)
	require.NoError(t, err)
	require.NoError(t, pl.Run(g, nil, ""))
	out, err := Generate(g, Options{Package: pkg, Source: filepath.Base(file), WeightsFile: pkg + ".weights"})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, pkg), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".go"), out.Go, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, pkg+".weights"), out.Weights, 0o644))
}

func writeFloats(t *testing.T, path string, data []float32) {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// tempModule makes a module that requires this repository through a
// replace directive, with this repository's go.sum.
func tempModule(t *testing.T) string {
	dir := t.TempDir()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	gomod := fmt.Sprintf("module conformance\n\ngo 1.26\n\nrequire github.com/smhgen/smhgen v0.0.0\n\nreplace github.com/smhgen/smhgen => %s\n", root)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	return dir
}

// goTest runs go test in dir and fails with its output.
func goTest(t *testing.T, dir string, args ...string) {
	cmd := exec.Command("go", append([]string{"test", "-count=1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go test in the generated module:\n%s", out)
	t.Logf("%s", out)
}

const conformanceMain = `package conformance

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
%s)

type model interface {
	Forward(x []float32, batch int) ([]float32, error)
	NumParams() int
}

var models = []struct {
	name string
	new  func() model
}{
%s}

func read(t *testing.T, path string) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// repeat builds a batch of n samples by cycling through the reference
// samples, so any batch size has a known answer.
func repeat(data []float32, per, n int) []float32 {
	have := len(data) / per
	out := make([]float32, 0, n*per)
	for i := 0; i < n; i++ {
		j := i %% have
		out = append(out, data[j*per:(j+1)*per]...)
	}
	return out
}

func TestConformance(t *testing.T) {
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			in, want := read(t, m.name+".in"), read(t, m.name+".want")
			net := m.new()
			per := len(in) / 2
			perOut := len(want) / 2
			for _, n := range []int{2, 1, 4, 3} {
				got, err := net.Forward(repeat(in, per, n), n)
				if err != nil {
					t.Fatal(err)
				}
				ref := repeat(want, perOut, n)
				if len(got) != len(ref) {
					t.Fatalf("batch %%d: %%d outputs, want %%d", n, len(got), len(ref))
				}
				var maxRef, maxDiff float64
				for i := range ref {
					maxRef = math.Max(maxRef, math.Abs(float64(ref[i])))
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-ref[i])))
				}
				if !(maxDiff <= 1e-4*math.Max(1, maxRef)) {
					t.Errorf("batch %%d: max |diff| %%g > 1e-4·max(1, %%g)", n, maxDiff, maxRef)
				}
			}
			x := repeat(in, per, 3)
			if allocs := testing.AllocsPerRun(5, func() { net.Forward(x, 3) }); allocs != 0 {
				t.Errorf("Forward allocates %%v times per call after warm-up", allocs)
			}
			if _, err := net.Forward(x[:len(x)-1], 3); err == nil {
				t.Error("Forward accepts an input of the wrong length")
			}
			if _, err := net.Forward(nil, 0); err == nil {
				t.Error("Forward accepts batch 0")
			}
		})
	}
}
`

// TestConformance compiles every fixture twice, inference-only (BatchNorm
// folded) and trainable, builds all the generated packages in one temporary
// module and checks each Forward against PyTorch's saved outputs at batch
// sizes 1 to 4, that it allocates nothing after warm-up, and that it rejects
// bad input with an error.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated code")
	}
	dir := tempModule(t)
	var imports, entries strings.Builder
	for _, f := range fixtureModels(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		pkg := PackageName(name)
		generate(t, f, dir, pkg)
		// The trainable package's Forward keeps BatchNorm as a kernel over
		// the running statistics: check it too.
		variants := []struct{ name, pkg string }{{name, pkg}}
		if generateTrainable(t, f, dir, "t"+pkg) {
			variants = append(variants, struct{ name, pkg string }{name + "_trainable", "t" + pkg})
		}
		ref := referenceName(f)
		in, err := npy.ReadFile(filepath.Join(models, ref+".input.npy"))
		require.NoError(t, err)
		want, err := npy.ReadFile(filepath.Join(models, ref+".output.npy"))
		require.NoError(t, err)
		require.Equal(t, 2, in.Shape[0])
		for _, variant := range variants {
			writeFloats(t, filepath.Join(dir, variant.name+".in"), in.Data)
			writeFloats(t, filepath.Join(dir, variant.name+".want"), want.Data)
			fmt.Fprintf(&imports, "\t%q\n", "conformance/"+variant.pkg)
			fmt.Fprintf(&entries, "\t{%q, func() model { return %s.New() }},\n", variant.name, variant.pkg)
		}
	}
	// A graph whose names are hostile and whose constants have no Go
	// literal: it must compile, vet clean and compute what the IR
	// interpreter computes.
	g, in, want := hostileGraph(t)
	out, err := Generate(g, Options{Package: "hostileir", Source: "evil\n//go:generate rm -rf /.onnx", WeightsFile: "hostileir.weights"})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "hostileir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostileir", "hostileir.go"), out.Go, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostileir", "hostileir.weights"), out.Weights, 0o644))
	writeFloats(t, filepath.Join(dir, "hostileir.in"), in)
	writeFloats(t, filepath.Join(dir, "hostileir.want"), want)
	fmt.Fprintf(&imports, "\t%q\n", "conformance/hostileir")
	fmt.Fprintf(&entries, "\t{%q, func() model { return hostileir.New() }},\n", "hostileir")

	src := fmt.Sprintf(conformanceMain, imports.String(), entries.String())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conformance_test.go"), []byte(src), 0o644))
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = dir
	vet.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := vet.CombinedOutput()
	require.NoError(t, err, "go vet on generated code:\n%s", b)
	goTest(t, dir, "-v", ".")
}
