// Package npy reads NumPy .npy and .npz files holding little-endian float32
// or integer arrays, the format of the fixtures' reference data.
package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Array is an array with its shape: float32 data in Data, or, for integer
// arrays, the values in Ints.
type Array struct {
	Shape []int
	Data  []float32
	Ints  []int64
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

// Decode parses .npy bytes of dtype <f4, <i8 or <i4 in C order.
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
	m := descrRe.FindStringSubmatch(h)
	if m == nil || m[1] != "<f4" && m[1] != "<i8" && m[1] != "<i4" {
		return nil, fmt.Errorf("want dtype <f4, <i8 or <i4, header %q", h)
	}
	descr := m[1]
	if m := orderRe.FindStringSubmatch(h); m == nil || m[1] != "False" {
		return nil, fmt.Errorf("want C order, header %q", h)
	}
	m = shapeRe.FindStringSubmatch(h)
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
	width := 4
	if descr == "<i8" {
		width = 8
	}
	if len(data) != width*n {
		return nil, fmt.Errorf("have %d bytes of data, shape %v needs %d", len(data), a.Shape, width*n)
	}
	switch descr {
	case "<f4":
		a.Data = make([]float32, n)
		for i := range a.Data {
			a.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case "<i8":
		a.Ints = make([]int64, n)
		for i := range a.Ints {
			a.Ints[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
		}
	case "<i4":
		a.Ints = make([]int64, n)
		for i := range a.Ints {
			a.Ints[i] = int64(int32(binary.LittleEndian.Uint32(data[4*i:])))
		}
	}
	return a, nil
}

// ReadNPZ reads every array of a .npz archive (a zip of .npy files), keyed
// by entry name without the .npy suffix.
func ReadNPZ(path string) (map[string]*Array, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	out := map[string]*Array{}
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, f.Name, err)
		}
		a, err := Decode(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, f.Name, err)
		}
		out[strings.TrimSuffix(f.Name, ".npy")] = a
	}
	return out, nil
}
