// LeNet-5 (testdata/models/lenet5.onnx) compiled by smhgen, kept as the
// example of generating code with go generate. lenet.go and lenet.weights
// are generated (the package documentation is theirs); the test fails when
// they are stale. To regenerate:
//
//	go generate ./examples/lenet

package lenet

//go:generate go run github.com/smhgen/smhgen/cmd/smhgen -pkg lenet -o lenet.go ../../testdata/models/lenet5.onnx
