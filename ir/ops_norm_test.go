package ir

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSoftmaxCallRows: the kernel runs n·Outer rows, so a static shape must
// count all its rows in Outer with n = 1, and a batched one its rows per
// sample with the run-time n. Canonicalisation has made the axis
// non-negative by the time Call sees it. (Dimension 0 of a static shape was once
// counted both in Outer and as n.)
func TestSoftmaxCallRows(t *testing.T) {
	for _, c := range []struct {
		x, axis     string
		outer, n, k int
	}{
		{"[N,4,5]", "2", 4, RuntimeBatch, 5},
		{"[3,4,5]", "2", 12, 1, 5},
		{"[5]", "0", 1, 1, 5},
		{"[N,10]", "1", 1, RuntimeBatch, 10},
	} {
		for _, op := range []string{"Softmax", "LogSoftmax"} {
			g, err := Parse("graph \"g\" opset=14\ninput v0:f32" + c.x + " \"x\"\nv1:f32" + c.x + " = " + op + " v0 {axis=" + c.axis + "}\noutput v1 \"y\"\n")
			require.NoError(t, err)
			call, err := Call(g.Nodes[0])
			require.NoError(t, err)
			assert.Equal(t, []Field{{"Outer", c.outer}, {"Inner", c.k}}, call.Params.Fields, "%s %s", op, c.x)
			assert.Equal(t, c.n, call.N, "%s %s", op, c.x)
		}
	}
}
