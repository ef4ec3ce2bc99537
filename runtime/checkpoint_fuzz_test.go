package runtime

import (
	"bytes"
	"testing"
)

// FuzzReadCheckpoint: any bytes give a checkpoint or an error, never a
// panic; an accepted checkpoint writes back to the same bytes.
func FuzzReadCheckpoint(f *testing.F) {
	var b bytes.Buffer
	WriteCheckpoint(&b, sampleCheckpoint())
	f.Add(b.Bytes())
	f.Add([]byte("SMHGCKPT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadCheckpoint(bytes.NewReader(data), 0xabc, 3, 3)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteCheckpoint(&out, c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("accepted checkpoint writes back differently")
		}
	})
}
