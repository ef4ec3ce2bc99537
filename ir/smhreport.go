package ir

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// SMHTensorInfo is one compressed tensor as the report lists it.
type SMHTensorInfo struct {
	Name          string
	Shape         []int
	Offset, Count int
	ScaleInit     float32
}

// SMHReport describes a compressed graph: every tensor read from the pool
// and the honest parameter counts.
type SMHReport struct {
	Variant string
	D, Rank int
	// Hashed is the number of compressed (virtual) weights; Pool and
	// Scales the trainable values that replace them; Unhashed the
	// trainable values left as they were; Dense what the uncompressed
	// model trains (Hashed + Unhashed).
	Hashed, Pool, Scales, Unhashed, Dense int
	Tensors                               []SMHTensorInfo
}

// Trainable is the compressed model's trainable count: pool, scales and
// uncompressed parameters.
func (r *SMHReport) Trainable() int { return r.Pool + r.Scales + r.Unhashed }

// Ratio is the compressed model's trainable count over the dense one's.
func (r *SMHReport) Ratio() float64 { return float64(r.Trainable()) / float64(r.Dense) }

// ReportSMH reads the compression back from a graph's SMHReconstruct nodes
// and parameters; nil when the graph is not compressed.
func ReportSMH(g *Graph) *SMHReport {
	nodes := SMHTensors(g)
	if len(nodes) == 0 {
		return nil
	}
	r := &SMHReport{}
	var scales *Value
	seen := map[int]bool{}
	for _, n := range nodes {
		a := n.Attrs.(*SMHAttrs)
		if seen[a.Tensor] {
			continue // a training graph may hold a tensor's reconstruction once per use
		}
		seen[a.Tensor] = true
		r.Variant, r.D, r.Rank = a.Variant, a.D, a.Rank
		r.Pool = n.Args[0].Type.Shape.Static()
		scales = n.Args[1]
		info := SMHTensorInfo{Name: n.Name, Shape: append([]int{}, a.Shape...), Offset: a.Offset, Count: Shape(a.Shape).Static()}
		if d := scales.Param; d != nil && d.Data != nil {
			info.ScaleInit = d.Data[a.Scale]
		}
		r.Hashed += info.Count
		r.Tensors = append(r.Tensors, info)
	}
	r.Scales = scales.Type.Shape.Static()
	for _, p := range g.Params {
		if p.Param.Trainable && p.Param.Role != RoleSMHPool && p.Param.Role != RoleSMHScale {
			r.Unhashed += p.Type.Shape.Static()
		}
	}
	r.Dense = r.Hashed + r.Unhashed
	return r
}

// Write prints the report as a table and a summary.
func (r *SMHReport) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tensor\tshape\toffset\tcount\tscale init\t\n")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%.4g\t\n", strconv.Quote(t.Name), t.Shape, t.Offset, t.Count, t.ScaleInit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	geo := fmt.Sprintf("d=%d r=%d", r.D, r.Rank)
	switch r.Variant {
	case "hash":
		geo = fmt.Sprintf("%d buckets", r.Pool)
	case "kron":
		geo = fmt.Sprintf("d=%d, %d Kronecker terms", r.D, r.Rank)
	}
	_, err := fmt.Fprintf(w, "variant %s, %s: %d weights in %d tensors compressed into a pool of %d and %d scales\n"+
		"trainable: %d dense -> %d compressed (%d uncompressed), %.4f of the dense count (%.2fx fewer), %d bytes of float32\n",
		r.Variant, geo, r.Hashed, len(r.Tensors), r.Pool, r.Scales, r.Dense, r.Trainable(), r.Unhashed, r.Ratio(), 1/r.Ratio(), 4*r.Trainable())
	return err
}
