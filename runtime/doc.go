// Package runtime holds the numeric kernels that smhgen-generated packages call:
// convolution, GEMM, pooling, batch normalisation, activations, elementwise
// arithmetic with broadcasting, losses, optimizers, initialisers and the
// Structured Multi-Hashing pool reconstruction, each forward and backward.
//
// Conventions, shared by every kernel in the package:
//
//   - Tensors are caller-owned []float32 in row-major NCHW order; labels are
//     []int32. Kernels never allocate their outputs.
//   - A kernel with geometry takes a pointer to a small parameter struct
//     (Conv2DParams, PoolParams, ...) that describes one sample; the batch
//     size is a separate argument n, so one struct serves every batch size.
//     The struct is long-lived (generated code keeps one per graph node) and
//     kernels may keep scratch space in its unexported fields: the first call
//     at a given size may allocate, later calls allocate nothing.
//   - Arguments come in the order params, n, outputs, inputs (the order of
//     copy(dst, src)). Outputs are overwritten unless the kernel's name or doc
//     says it accumulates.
//   - Parallel kernels run on one persistent worker pool sized by GOMAXPROCS;
//     no goroutine is started per call.
//   - Each kernel has a plain reference implementation in the tests that its
//     results are compared against, and each backward kernel is checked
//     against central finite differences.
//
// Besides the standard library the package imports only
// golang.org/x/sys/cpu, to choose the assembly GEMM kernels by CPU feature,
// so generated code carries no other third-party dependency.
package runtime
