package trainrun

import (
	"io"
	"testing"

	"github.com/smhgen/smhgen/train"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuickTraining is the CI version of the experiments' quick path: on
// small MNIST subsets, the dense LeNet-5's loss falls over two epochs, and
// the model compressed to a quarter of its weights learns far beyond chance
// (10%) in one.
func TestQuickTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and trains models")
	}
	recipe := train.Spec{Model: "lenet5", Data: "mnist", Batch: 64, LR: 0.05, FactorLR: 0.2, Momentum: 0.9, Nesterov: true,
		WeightDecay: 5e-4, Warmup: 20, Crop: 2, Seed: 1, Subset: 3000, TestSubset: 1000}

	dense := recipe
	dense.Epochs = 2
	r, err := Run(dense, io.Discard, io.Discard)
	require.NoError(t, err)
	require.Len(t, r.Loss, 2)
	assert.Less(t, r.Loss[1], r.Loss[0], "the dense model's loss does not fall")
	assert.Equal(t, 61706, r.Trainable)

	smh := recipe
	smh.Epochs, smh.Fraction = 1, 0.25
	r, err = Run(smh, io.Discard, io.Discard)
	require.NoError(t, err)
	t.Logf("SMH at 25%%: %d trainable, test accuracy %.1f%% after one epoch on %d images", r.Trainable, 100*r.Final, smh.Subset)
	assert.Greater(t, r.Final, 0.6, "SMH at 25%% learns little beyond chance")
	assert.Less(t, r.Trainable, 61706/3)
}
