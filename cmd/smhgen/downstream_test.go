package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDownstreamGoGenerate is a user's whole flow in a module of their own:
// smhgen as a tool dependency (the tool directive go get -tool writes), a
// //go:generate go tool smhgen
// line, go generate, go vet, go run.
func TestDownstreamGoGenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds smhgen and a module")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("go.mod", fmt.Sprintf("module example.com/app\n\ngo 1.26\n\nrequire github.com/smhgen/smhgen v0.0.0\n\nreplace github.com/smhgen/smhgen => %s\n", root))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	write("go.sum", string(sum))
	model, err := os.ReadFile(filepath.Join(root, "testdata/models/lenet5.onnx"))
	require.NoError(t, err)
	write("digits/lenet5.onnx", string(model))
	write("digits/gen.go", "package digits\n\n//go:generate go tool smhgen -o digits.go lenet5.onnx\n")
	write("main.go", `package main

import (
	"fmt"

	"example.com/app/digits"
)

func main() {
	m := digits.New()
	out, err := m.Forward(make([]float32, digits.InputSize), 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(out), m.NumParams())
}
`)
	run := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	// Users run go get -tool github.com/smhgen/smhgen/cmd/smhgen@latest;
	// with no published release to resolve here, add the same tool
	// directive with go mod edit.
	run("mod", "edit", "-tool=github.com/smhgen/smhgen/cmd/smhgen")
	run("mod", "tidy")
	run("generate", "./...")
	require.FileExists(t, filepath.Join(dir, "digits", "digits.weights"))
	run("vet", "./...")
	require.Equal(t, "10 61706\n", run("run", "."))
	// -check passes right after generating.
	run("tool", "smhgen", "-check", "-o", "digits/digits.go", "digits/lenet5.onnx")
}
