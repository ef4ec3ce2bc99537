package ir

import (
	"testing"
)

// FuzzParse: Parse never panics, and whatever it accepts prints to a text
// that parses back to the same text.
func FuzzParse(f *testing.F) {
	f.Add(lenetIR)
	f.Add("graph \"g\" opset=14\ninput v0:f32[N,2] \"x\"\nv1:f32[N,2]@0 = Relu v0\noutput v1 \"y\"\n")
	f.Add("graph \"g\" opset=14 arena=4 fixed=0\ninput v0:f32[N,4] \"x\"\nparam v1:f32[4] weight trainable \"p\"\nv2:f32[N,4]@0 = Add v0 v1\nUpdate v1 v1\noutput v2 \"y\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		g, err := Parse(text)
		if err != nil {
			return
		}
		out := Format(g)
		g2, err := Parse(out)
		if err != nil {
			t.Fatalf("printed graph does not parse: %v\n%s", err, out)
		}
		if again := Format(g2); again != out {
			t.Fatalf("round trip changed the text:\n%s\n---\n%s", out, again)
		}
		// Verify must not panic on anything Parse accepts.
		_ = Verify(g, StageTraining)
	})
}
