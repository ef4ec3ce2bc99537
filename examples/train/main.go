// Command train compiles a model with smhgen, optionally compressed with
// Structured Multi-Hashing, and trains it on MNIST or Fashion-MNIST, showing
// progress, the test accuracy after each epoch, and saving a checkpoint.
//
//	go run ./examples/train -model lenet5 -fraction 0.1
//
// The model is compiled into a temporary module that requires this
// repository, as a user's module would, and trained there.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/smhgen/smhgen/internal/trainrun"
	"github.com/smhgen/smhgen/train"
)

func main() {
	var s train.Spec
	flag.StringVar(&s.Model, "model", "lenet5", "a fixture name (testdata/models or testdata/models/big) or a path to an .onnx file")
	flag.StringVar(&s.Data, "data", "mnist", "mnist or fashion")
	flag.Float64Var(&s.Fraction, "fraction", 0, "compress with SMH to this fraction of the weights (0: dense)")
	flag.IntVar(&s.Params, "params", 0, "compress with SMH to this many trainable values in all")
	flag.StringVar(&s.Variant, "smh", "product", "product (SMH), hash (HashedNets) or kron")
	flag.BoolVar(&s.ConvOnly, "conv-only", false, "compress convolutions only")
	flag.IntVar(&s.Epochs, "epochs", 3, "epochs")
	flag.IntVar(&s.Batch, "batch", 64, "batch size")
	flag.Float64Var(&s.LR, "lr", 0.05, "peak learning rate (cosine schedule after warm-up)")
	flag.Float64Var(&s.FactorLR, "factor-lr", 0.2, "peak learning rate of the SMH factors (about 4x lr)")
	flag.Float64Var(&s.Momentum, "momentum", 0.9, "SGD momentum")
	flag.BoolVar(&s.Nesterov, "nesterov", true, "Nesterov momentum")
	flag.Float64Var(&s.WeightDecay, "wd", 5e-4, "weight decay of weights and biases (none on factors, scales or BatchNorm)")
	flag.IntVar(&s.Warmup, "warmup", 100, "warm-up steps")
	flag.IntVar(&s.Crop, "crop", 2, "random crop padding in pixels (0: none)")
	flag.BoolVar(&s.Flip, "flip", false, "random horizontal flips (for Fashion-MNIST)")
	flag.BoolVar(&s.Reinit, "reinit", false, "start from a He initialisation instead of the model file's weights")
	flag.IntVar(&s.Subset, "subset", 0, "train on the first N images only (0: all)")
	flag.IntVar(&s.TestSubset, "test-subset", 0, "evaluate on N test images only (0: all)")
	flag.Uint64Var(&s.Seed, "seed", 1, "seed of initialisation, data order, augmentation and dropout")
	flag.StringVar(&s.CSV, "csv", "", "write a CSV row per epoch here")
	flag.StringVar(&s.Checkpoint, "ckpt", "", "save a checkpoint here (atomically) after each epoch")
	quick := flag.Bool("quick", false, "a short run: 1 epoch on 10,000 images, 2,000 test images")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "train: unexpected arguments %v\n", flag.Args())
		os.Exit(2)
	}
	if *quick {
		s.Epochs, s.Subset, s.TestSubset = 1, 10000, 2000
	}
	if _, err := trainrun.Run(s, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}
