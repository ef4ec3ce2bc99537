//go:build !amd64 || purego

package runtime

// convDirectWidth is 0: this build has no direct-convolution kernel.
const convDirectWidth = 0

// fwdDirect reports false: this build has no direct-convolution kernel.
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32) bool {
	return false
}

// gradFilterDirect reports false: this build has no direct convolutions.
func (p *Conv2DParams) gradFilterDirect(gs *gemmScratch, cs *convScratch, par bool, n0, n1 int, dst, x, dy []float32) bool {
	return false
}

// convDirectTPanel is empty: this build has no direct convolutions.
type convDirectTPanel struct{}
