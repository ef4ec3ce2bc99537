package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	require.NoError(t, WriteFile(p, []byte("one"), 0o600))
	require.NoError(t, WriteFile(p, []byte("two"), 0o644))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no temporary files left")
}

// TestFailedWriteKeepsOld: when the final rename cannot happen (the target
// is a non-empty directory), the target is untouched and the temporary file
// is gone.
func TestFailedWriteKeepsOld(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "keep"), 0o755))
	err := WriteFile(target, []byte("new"), 0o644)
	require.Error(t, err)
	assert.DirExists(t, filepath.Join(target, "keep"))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1)
	require.Error(t, WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644))
}
