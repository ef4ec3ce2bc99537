// Package npy reads and writes NumPy .npy files holding little-endian
// float32 arrays, the format of the fixtures' reference inputs and outputs.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is a float32 array with its shape.
type Array struct {
	Shape []int
	Data  []float32
}

var (
	descrRe = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	orderRe = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRe = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// ReadFile reads a .npy file of dtype <f4 in C order.
func ReadFile(path string) (*Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	a, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return a, nil
}

// Decode parses .npy bytes of dtype <f4 in C order.
func Decode(b []byte) (*Array, error) {
	if len(b) < 10 || !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		return nil, fmt.Errorf("not a .npy file")
	}
	major := b[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf("unsupported .npy version %d", major)
	}
	if off+hlen > len(b) {
		return nil, fmt.Errorf("truncated header")
	}
	h := string(b[off : off+hlen])
	if m := descrRe.FindStringSubmatch(h); m == nil || m[1] != "<f4" {
		return nil, fmt.Errorf("want dtype <f4, header %q", h)
	}
	if m := orderRe.FindStringSubmatch(h); m == nil || m[1] != "False" {
		return nil, fmt.Errorf("want C order, header %q", h)
	}
	m := shapeRe.FindStringSubmatch(h)
	if m == nil {
		return nil, fmt.Errorf("no shape in header %q", h)
	}
	a := &Array{}
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad shape %q", m[1])
		}
		a.Shape = append(a.Shape, d)
		n *= d
	}
	data := b[off+hlen:]
	if len(data) != 4*n {
		return nil, fmt.Errorf("have %d bytes of data, shape %v needs %d", len(data), a.Shape, 4*n)
	}
	a.Data = make([]float32, n)
	for i := range a.Data {
		a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return a, nil
}
