package runtime

import (
	"fmt"
	"math"
)

// EpilogueKind selects the elementwise activation that a kernel fuses into its
// output pass, so that a Conv followed by Relu or Clip costs one sweep over
// memory instead of two.
type EpilogueKind uint8

const (
	// EpilogueNone leaves the output as computed.
	EpilogueNone EpilogueKind = iota
	// EpilogueRelu replaces negative outputs by zero (NaN stays NaN, as in ONNX Relu).
	EpilogueRelu
	// EpilogueClip clamps outputs to [Min, Max] (NaN stays NaN, as in ONNX
	// Clip); ReLU6 is Clip with Min 0 and Max 6.
	EpilogueClip
)

// Epilogue is an activation fused after a kernel's bias. The zero value is
// EpilogueNone; Min and Max matter only for EpilogueClip.
type Epilogue struct {
	Kind     EpilogueKind
	Min, Max float32
}

// Validate reports an unknown kind or clip bounds that select nothing, so
// geometry checks (Conv2DParams.Init) can fail at construction rather than
// produce silently wrong activations.
func (e Epilogue) Validate() error {
	switch e.Kind {
	case EpilogueNone, EpilogueRelu:
		return nil
	case EpilogueClip:
		if math.IsNaN(float64(e.Min)) || math.IsNaN(float64(e.Max)) || e.Min > e.Max {
			return fmt.Errorf("epilogue clip: bounds [%v, %v]: want Min <= Max, neither NaN", e.Min, e.Max)
		}
		return nil
	}
	return fmt.Errorf("epilogue: unknown kind %d", e.Kind)
}

// Apply runs the activation in place over x. It is exported so that other
// kernels with a bias pass (and generated code) can reuse the same semantics.
func (e Epilogue) Apply(x []float32) {
	if e.Kind != EpilogueNone && vecClamp(x, x, negZero, e.lo(), e.hi()) {
		return
	}
	e.applyGo(x)
}

// applyGo is Apply's portable loop.
func (e Epilogue) applyGo(x []float32) {
	switch e.Kind {
	case EpilogueRelu:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case EpilogueClip:
		lo, hi := e.Min, e.Max
		for i, v := range x {
			if v < lo {
				x[i] = lo
			} else if v > hi {
				x[i] = hi
			}
		}
	}
}

// applyBias adds bias to x (when hasBias) and runs the activation, in one
// pass over x because the row was just written by a GEMM and is still hot.
func (e Epilogue) applyBias(x []float32, bias float32, hasBias bool) {
	if !hasBias {
		e.Apply(x)
		return
	}
	if vecClamp(x, x, bias, e.lo(), e.hi()) {
		return
	}
	e.applyBiasGo(x, bias)
}

// applyBiasGo is applyBias's portable loop with a bias.
func (e Epilogue) applyBiasGo(x []float32, bias float32) {
	switch e.Kind {
	case EpilogueNone:
		for i := range x {
			x[i] += bias
		}
	case EpilogueRelu:
		for i, v := range x {
			v += bias
			if v < 0 {
				v = 0
			}
			x[i] = v
		}
	case EpilogueClip:
		lo, hi := e.Min, e.Max
		for i, v := range x {
			v += bias
			if v < lo {
				v = lo
			} else if v > hi {
				v = hi
			}
			x[i] = v
		}
	}
}

// negZero added to a float leaves it as it is, -0 included.
var negZero = float32(math.Copysign(0, -1))

// lo and hi are the bounds the activation clamps to (infinite where it
// does not clamp).
func (e Epilogue) lo() float32 {
	switch e.Kind {
	case EpilogueRelu:
		return 0
	case EpilogueClip:
		return e.Min
	}
	return float32(math.Inf(-1))
}

func (e Epilogue) hi() float32 {
	if e.Kind == EpilogueClip {
		return e.Max
	}
	return float32(math.Inf(1))
}
