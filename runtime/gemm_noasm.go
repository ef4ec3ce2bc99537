//go:build !amd64 || purego

package runtime

// gemmImpls lists the GEMM implementations this build can run, preferred
// first: without assembly, only the portable one.
func gemmImpls() []*gemmImpl { return []*gemmImpl{gemmGo} }

// gemmUse is the implementation Sgemm runs.
var gemmUse = gemmImpls()[0]

// gemmAdd sets dst[i] += src[i] over dst (src is at least as long).
func gemmAdd(dst, src []float32) { gemmAddGo(dst, src) }

// gemmGather2 sets dst[i] = src[2*i] over dst (src has at least
// 2*len(dst)-1 elements).
func gemmGather2(dst, src []float32) { gemmGather2Go(dst, src) }

// vecClamp reports false: the Go loops do the work.
func vecClamp(dst, src []float32, bias, lo, hi float32) bool { return false }

// vecReluGrad reports false: the Go loop does the work.
func vecReluGrad(dst, g, z []float32) bool { return false }

// vecDwAcc3 reports false: the Go loop does the work.
func vecDwAcc3(y, x []float32, w0, w1, w2 float32) bool { return false }

// vecDwSet9 reports false: the Go loop does the work.
func vecDwSet9(y, r0, r1, r2 []float32, w *[9]float32) bool { return false }

// vecDwDot3 reports 0: the Go loop does the work.
func vecDwDot3(g, x []float32, acc *[24]float32) int { return 0 }

// vecClipGrad reports false: the Go loop does the work.
func vecClipGrad(dst, g, z []float32, lo, hi float32) bool { return false }

// vecBnSum reports whether x is empty: the Go loops do the work.
func vecBnSum(x []float32, acc *[8]float64) bool { return len(x) == 0 }

// vecBnSqDev reports whether x is empty: the Go loops do the work.
func vecBnSqDev(x []float32, mean float64, acc *[8]float64) bool { return len(x) == 0 }

// vecBnGrad reports whether dy is empty: the Go loops do the work.
func vecBnGrad(dy, x []float32, mean float64, acc *[16]float64) bool { return len(dy) == 0 }

// vecBnAffine reports false: the Go loop does the work.
func vecBnAffine(y, x []float32, m, a float32) bool { return false }

// vecBnGradX reports false: the Go loop does the work.
func vecBnGradX(dx, dy, x []float32, ka, kb, kd, m float32) bool { return false }

// vecMaxPool2Back reports 0: the Go loop does the work.
func vecMaxPool2Back(dx0, dx1, x0, x1, dy []float32) int { return 0 }
