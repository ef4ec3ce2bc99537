package ir

// FanIn is the number of inputs each output of a weight sees, from the op
// that reads it as its weight (He initialisation's fan-in), or 0 when no
// convolution or dense layer reads p as a weight.
func FanIn(g *Graph, p *Value) int {
	fi, _ := fans(g, p)
	return fi
}

// FanOut is PyTorch's fan-out of a weight: outputs times kernel size for a
// convolution, output features for a dense layer; 0 when no such layer
// reads p as a weight.
func FanOut(g *Graph, p *Value) int {
	_, fo := fans(g, p)
	return fo
}

func fans(g *Graph, p *Value) (in, out int) {
	for _, n := range g.Users(p) {
		if n.Arg(1) != p {
			continue
		}
		s := p.Type.Shape
		switch n.Op {
		case OpConv:
			return s[1] * s[2] * s[3], s[0] * s[2] * s[3]
		case OpGemm:
			if n.Attrs.(*GemmAttrs).TransB {
				return s[1], s[0]
			}
			return s[0], s[1]
		case OpMatMul:
			return s[len(s)-2], s[len(s)-1]
		}
	}
	return 0, 0
}
