//go:build !amd64 || purego

package runtime

// convDirectWidth is 0: this build has no direct-convolution kernel.
const convDirectWidth = 0

// fwdDirect reports false: this build has no direct-convolution kernel.
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32, ep *convEpi) (done, epiDone bool) {
	return false, false
}

// gradFilterDirect reports false: this build has no direct convolutions.
func (p *Conv2DParams) gradFilterDirect(gs *gemmScratch, cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) bool {
	return false
}

// gradFilterWide reports false: this build has no direct convolutions.
func (p *Conv2DParams) gradFilterWide(cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) bool {
	return false
}

// dwGradFilterWide reports false: this build has no wide-form kernels.
func (p *Conv2DParams) dwGradFilterWide(cs *convScratch, n, k, c int, dw, x, dy []float32) bool {
	return false
}

// dwPlane3x3Wide reports false: this build has no wide-form kernels.
func dwPlane3x3Wide(cs *convScratch, y []float32, oh, ow int, pad []float32, pw, rs int, k *[9]float32) bool {
	return false
}

// dwStride2Wide reports false: this build has no wide-form kernels.
func (p *Conv2DParams) dwStride2Wide(cs *convScratch, yp, xp, wk []float32) bool { return false }

// dwGradInStride2Wide reports false: this build has no wide-form kernels.
func (p *Conv2DParams) dwGradInStride2Wide(cs *convScratch, dxp, dyp, wk []float32) bool {
	return false
}

// padRowsVec reports false: this build has no vector kernel for it.
func padRowsVec(rows, x []float32, w, pw, padL int) bool { return false }

// convDirectTPanel is empty: this build has no direct convolutions.
type convDirectTPanel struct{}

// gemmStridedB reports false: this build has no kernel that reads B in
// place.
func gemmStridedB(g *gemmImpl) bool { return false }

// gemmStridedTile is never called in this build (gemmStridedB is false).
func gemmStridedTile(k int, a, b []float32, offs []int32, masks []uint32, c []float32, ldc, mr, nr int, overwrite bool) {
	panic("runtime: gemmStridedTile without a strided kernel")
}

// convWino is empty: this build has no Winograd kernels.
type convWino struct{ ns int }

// buildWino does nothing: this build has no Winograd kernels.
func (p *Conv2DParams) buildWino() {}

// fwdWino reports false: this build has no Winograd kernels.
func (p *Conv2DParams) fwdWino(gs *gemmScratch, cs *convScratch, x, y, w []float32, ns int) bool {
	return false
}
