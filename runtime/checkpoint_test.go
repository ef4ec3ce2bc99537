package runtime

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleCheckpoint() *Checkpoint {
	return &Checkpoint{Structure: 0xabc, Step: 7, Seed: 42, Weights: []float32{1, -2, 3.5},
		OptKind: "*runtime.SGD", OptStep: 7, OptState: [][]float32{{0.1, 0.2}, {0.3}}}
}

func TestCheckpointRoundTrip(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteCheckpoint(&b, sampleCheckpoint()))
	c, err := ReadCheckpoint(bytes.NewReader(b.Bytes()), 0xabc, 3, 3)
	require.NoError(t, err)
	assert.Equal(t, sampleCheckpoint(), c)
}

// TestCheckpointRejects: every kind of damage is an ErrCheckpoint error.
func TestCheckpointRejects(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteCheckpoint(&b, sampleCheckpoint()))
	good := b.Bytes()
	flip := func(i int) []byte { c := bytes.Clone(good); c[i] ^= 1; return c }
	for _, c := range []struct {
		name string
		data []byte
		hash uint64
		n    int
		want string
	}{
		{"empty", nil, 0xabc, 3, "not a smhgen checkpoint"},
		{"other format", []byte("PK\x03\x04 a zip file"), 0xabc, 3, "not a smhgen checkpoint"},
		{"other model", good, 0xdef, 3, "saved by another model"},
		{"other size", good, 0xabc, 4, "3 weights, this model has 4"},
		{"truncated", good[:len(good)-9], 0xabc, 3, "checksum mismatch"},
		{"corrupted weight", flip(48), 0xabc, 3, "checksum mismatch"},
		{"version", flip(8), 0xabc, 3, "format version"},
		{"too long", append(bytes.Clone(good), make([]byte, 1<<20)...), 0xabc, 3, "larger than"},
		{"trailing", append(bytes.Clone(good), 0), 0xabc, 3, "checksum mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadCheckpoint(bytes.NewReader(c.data), c.hash, c.n, 3)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrCheckpoint), "%v", err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ckpt")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	// A writer that fails half-way leaves the old file and no temporary.
	err := WriteFileAtomic(p, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("interrupted")
	})
	require.Error(t, err)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(b))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1)
	require.NoError(t, WriteFileAtomic(p, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }))
	b, _ = os.ReadFile(p)
	assert.Equal(t, "new", string(b))
}
