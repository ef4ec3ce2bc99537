package lenet

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/internal/npy"
	rt "github.com/smhgen/smhgen/runtime"
)

// TestMatchesPyTorch runs the committed package on the fixture's input.
func TestMatchesPyTorch(t *testing.T) {
	in, err := npy.ReadFile("../../testdata/models/lenet5.input.npy")
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFile("../../testdata/models/lenet5.output.npy")
	if err != nil {
		t.Fatal(err)
	}
	got, err := New().Forward(in.Data, in.Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Data {
		if d := math.Abs(float64(got[i] - want.Data[i])); d > 1e-4*math.Max(1, math.Abs(float64(want.Data[i]))) {
			t.Fatalf("output %d: have %v, want %v", i, got[i], want.Data[i])
		}
	}
}

// TestGeneratedIsFresh runs this package's go:generate command with -check:
// it fails when lenet.go or lenet.weights differ from what smhgen writes
// today.
func TestGeneratedIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate "); ok {
			args = strings.Fields(rest)
		}
	}
	if len(args) < 3 || args[0] != "go" || args[1] != "run" {
		t.Fatalf("no go:generate go run line in doc.go")
	}
	cmd := exec.Command("go", append([]string{"run", args[2], "-check"}, args[3:]...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the generated files are stale (run go generate ./examples/lenet):\n%s", out)
	}
}

// Example shows the generated API: New, Forward and the shape metadata.
func Example() {
	m := New()
	x := make([]float32, 2*InputSize) // two blank 1x28x28 images
	scores, err := m.Forward(x, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println(InputShape(), OutputShape(), len(scores), m.NumParams())
	// Output: [1 28 28] [10] 20 61706
}

// FuzzLoad: the generated Load takes any bytes without panicking, and when
// it refuses them the model is exactly as it was.
func FuzzLoad(f *testing.F) {
	m := New()
	var ck bytes.Buffer
	if err := m.Save(&ck); err != nil {
		f.Fatal(err)
	}
	f.Add(ck.Bytes())
	m.SetOptimizer(&rt.SGD{LR: 0.01, Momentum: 0.9})
	x := make([]float32, 2*InputSize)
	if _, err := m.TrainStep(x, []int32{1, 2}, 2); err != nil {
		f.Fatal(err)
	}
	ck.Reset()
	if err := m.Save(&ck); err != nil {
		f.Fatal(err)
	}
	f.Add(ck.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		m := New()
		m.SetOptimizer(&rt.SGD{LR: 0.01, Momentum: 0.9})
		before := append([]float32(nil), m.Tensor("conv1.weight")...)
		if err := m.Load(bytes.NewReader(data)); err != nil {
			after := m.Tensor("conv1.weight")
			for i := range before {
				if math.Float32bits(before[i]) != math.Float32bits(after[i]) {
					t.Fatalf("a failed Load changed the weights")
				}
			}
			if m.Steps() != 0 {
				t.Fatalf("a failed Load changed the step")
			}
		}
	})
}
