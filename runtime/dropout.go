package runtime

import "fmt"

// DropoutParams describes training-mode dropout over a flat buffer. The mask
// is a pure function of (Seed, step, element index), see DropoutHash, so it
// needs no storage between forward and backward, does not depend on how the
// work is split over workers, and is the same on every machine. Give every
// dropout node its own Seed and pass the training step counter as step.
type DropoutParams struct {
	Ratio float32 // probability of dropping an element, in [0, 1)
	Seed  uint64  // distinct per dropout node; with the step it fixes the mask

	ok        bool
	threshold uint64
	scale     float32
	t         nnDropTask
}

// Init validates the ratio and precomputes the keep threshold and scale.
func (p *DropoutParams) Init() error {
	p.ok = false
	if !(p.Ratio >= 0 && p.Ratio < 1) {
		return fmt.Errorf("dropout: ratio %v: want in [0, 1)", p.Ratio)
	}
	p.threshold = uint64(float64(p.Ratio) * (1 << 24))
	p.scale = 1 / (1 - p.Ratio)
	p.t.p = p
	p.ok = true
	return nil
}

const nnGolden = 0x9E3779B97F4A7C15

// nnMix64 is the SplitMix64 output function.
func nnMix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// nnDropKey derives the per-call stream key from the seed and the step.
func nnDropKey(seed, step uint64) uint64 {
	return nnMix64((seed ^ nnMix64(step+nnGolden)) + nnGolden)
}

// DropoutHash returns the 64 random bits that decide element index of a
// dropout call:
//
//	mix(z)  = SplitMix64's output function:
//	          z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
//	          z = (z ^ z>>27) * 0x94D049BB133111EB
//	          return z ^ z>>31
//	γ       = 0x9E3779B97F4A7C15
//	key     = mix((seed ^ mix(step + γ)) + γ)
//	hash    = mix(key + (index+1)*γ)        (uint64 arithmetic, wrapping)
//
// that is, hash is output index+1 of a SplitMix64 generator whose state
// starts at key. The element is kept when hash>>40 (24 uniform bits) is at
// least floor(Ratio * 2^24).
func DropoutHash(seed, step, index uint64) uint64 {
	return nnMix64(nnDropKey(seed, step) + (index+1)*nnGolden)
}

type nnDropTask struct {
	p    *DropoutParams
	key  uint64
	y, x []float32
}

// Run implements Task.
func (t *nnDropTask) Run(lo, hi int) {
	y, x := t.y[lo:hi], t.x[lo:hi]
	th, sc := t.p.threshold, t.p.scale
	z := t.key + uint64(lo+1)*nnGolden
	for i, v := range x {
		if nnMix64(z)>>40 >= th {
			y[i] = v * sc
		} else {
			y[i] = 0
		}
		z += nnGolden
	}
}

func (p *DropoutParams) run(kernel string, step uint64, y, x []float32) {
	if !p.ok {
		nnPanicInit(kernel)
	}
	t := &p.t
	t.key = nnDropKey(p.Seed, step)
	t.y, t.x = y, nnNeed(kernel, "input", x, len(y))
	ParallelFor(len(y), 1<<14, t)
}

// Dropout writes y = x/(1-Ratio) for kept elements and 0 for dropped ones,
// over len(y) elements, with the mask of (Seed, step) (see DropoutHash).
func Dropout(p *DropoutParams, step uint64, y, x []float32) {
	p.run("Dropout", step, y, x)
}

// DropoutBackward writes dx = dy/(1-Ratio) where the forward call with the
// same step kept the element and 0 elsewhere, regenerating the mask.
func DropoutBackward(p *DropoutParams, step uint64, dx, dy []float32) {
	p.run("DropoutBackward", step, dx, dy)
}
