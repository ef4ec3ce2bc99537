//go:build !amd64 || purego

package runtime

// convDirectWidth is 0: this build has no direct-convolution kernel.
const convDirectWidth = 0

// fwdDirect reports false: this build has no direct-convolution kernel.
func (p *Conv2DParams) fwdDirect(gs *gemmScratch, cs *convScratch, par bool, x, y, w []float32) bool {
	return false
}
