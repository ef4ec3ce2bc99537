package npy

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encode(header string, data []float32) []byte {
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	b = append(b, header...)
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestDecode(t *testing.T) {
	a, err := Decode(encode("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}))
	require.NoError(t, err)
	assert.Equal(t, []int{2, 3}, a.Shape)
	assert.Equal(t, float32(5), a.Data[4])
	assert.True(t, math.IsInf(float64(a.Data[5]), -1))
	s, err := Decode(encode("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", []float32{7}))
	require.NoError(t, err)
	assert.Empty(t, s.Shape)
	assert.Equal(t, []float32{7}, s.Data)
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want string
	}{
		{[]byte("hello"), "not a .npy file"},
		{encode("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", []float32{1, 2}), "want dtype <f4, <i8 or <i4"},
		{encode("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", []float32{1}), "want C order"},
		{encode("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", []float32{1}), "shape [3] needs 12"},
	} {
		_, err := Decode(c.b)
		assert.ErrorContains(t, err, c.want)
	}
}

func TestReadNPZ(t *testing.T) {
	z, err := ReadNPZ("../../testdata/models/lenet5.train.npz")
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1, 28, 28}, z["input"].Shape)
	assert.Len(t, z["labels"].Ints, 2)
	assert.Len(t, z["grad/conv1.weight"].Data, 150)
	assert.Empty(t, z["loss"].Shape)
}
