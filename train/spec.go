package train

import (
	"fmt"

	"github.com/smhgen/smhgen/datasets"
)

// Spec is one training run: the model and its compression, the data and
// the recipe.
type Spec struct {
	Model string `json:"model"` // a fixture name (testdata/models[/big]/NAME.onnx) or a path
	Data  string `json:"data"`  // "mnist" or "fashion"

	Fraction float64 `json:"fraction,omitempty"`
	Params   int     `json:"params,omitempty"`
	Variant  string  `json:"variant,omitempty"` // product (default), hash, kron
	ConvOnly bool    `json:"conv_only,omitempty"`

	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	FactorLR    float64 `json:"factor_lr"`
	Momentum    float64 `json:"momentum"`
	Nesterov    bool    `json:"nesterov"`
	WeightDecay float64 `json:"weight_decay"`
	Warmup      int     `json:"warmup"`
	Crop        int     `json:"crop"`
	Flip        bool    `json:"flip"`
	Reinit      bool    `json:"reinit"`   // He-initialise instead of the model file's weights
	Subset      int     `json:"subset"`   // training images, 0 for all
	TestSubset  int     `json:"test_sub"` // test images, 0 for all
	Seed        uint64  `json:"seed"`

	CSV        string `json:"csv,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Result     string `json:"result,omitempty"` // JSON Result written here
}

// Result is what a run reports.
type Result struct {
	Spec      Spec      `json:"spec"`
	Trainable int       `json:"trainable"`
	TestAcc   []float64 `json:"test_acc"`
	Loss      []float64 `json:"loss"`
	Final     float64   `json:"final"`
	Seconds   float64   `json:"seconds"`
}

// Load returns a data set's training and test splits, standardised with the
// training split's statistics and cut to the given sizes (0 for all).
func Load(data string, train, test int) (*datasets.Set, *datasets.Set, error) {
	var load func(bool) (*datasets.Set, error)
	var mean, std float32
	switch data {
	case "mnist":
		load, mean, std = datasets.MNIST, datasets.MNISTMean, datasets.MNISTStd
	case "fashion":
		load, mean, std = datasets.FashionMNIST, datasets.FashionMean, datasets.FashionStd
	default:
		return nil, nil, fmt.Errorf("unknown data set %q (want mnist or fashion)", data)
	}
	tr, err := load(true)
	if err != nil {
		return nil, nil, err
	}
	te, err := load(false)
	if err != nil {
		return nil, nil, err
	}
	tr.Normalize(mean, std)
	te.Normalize(mean, std)
	// The test split is sorted by class (Fashion-MNIST's): take an
	// interleaved subset so every class is present.
	return tr.Shuffled(1).Subset(train), te.Shuffled(2).Subset(test), nil
}
