package atomicfile

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// killTarget is set in the child process TestKilledMidWrite starts.
const killTarget = "ATOMICFILE_KILL_TARGET"

// TestMain lets the test binary act as a writer that dies mid-write.
func TestMain(m *testing.M) {
	if path := os.Getenv(killTarget); path != "" {
		err := Write(path, 0o644, func(w io.Writer) error {
			// Half a megabyte of the new content, then wait to be killed.
			w.Write(bytes.Repeat([]byte("new!"), 1<<17))
			os.Stdout.WriteString("half written\n")
			time.Sleep(time.Minute)
			return nil
		})
		if err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKilledMidWrite kills (SIGKILL, no chance to clean up) a process in
// the middle of replacing a file: the old file must still be there, whole.
func TestKilledMidWrite(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "model.ckpt")
	old := bytes.Repeat([]byte("old."), 1000)
	require.NoError(t, os.WriteFile(target, old, 0o644))

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killTarget+"="+target)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "half written\n", line)
	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()

	got, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, old, got, "the old file was replaced by a partial one")
	// What is left is the temporary file, named so it cannot be mistaken
	// for the target.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() != "model.ckpt" {
			assert.True(t, strings.HasPrefix(e.Name(), ".model.ckpt.tmp"), e.Name())
		}
	}
}
