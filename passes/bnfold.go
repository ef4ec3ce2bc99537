package passes

import (
	"math"
	"slices"

	"github.com/smhgen/smhgen/ir"
)

// BNFold folds an inference BatchNormalization into the Conv that feeds it:
// with s = scale/sqrt(var+eps), W' = W·s per output channel and
// b' = (b−mean)·s + bias, computed in float64. The folded weight and bias
// are new parameters (the originals may have other users); a BatchNorm that
// does not follow a Conv it alone reads stays.
//
// Needs: StageTyped, inference only (folding is valid only with frozen
// statistics). Guarantees: no BatchNorm directly after a single-use Conv.
var BNFold = &Pass{
	Name:  "bnfold",
	Doc:   "fold inference BatchNorm into the preceding Conv",
	Stage: ir.StageTyped,
	After: []string{"fold"},
	Run: func(g *ir.Graph, c *Context) error {
		return applyRewrites(g, c, "bnfold", []rewrite{{"conv-bn", foldConvBN}})
	},
}

func foldConvBN(g *ir.Graph, bn *ir.Node) bool {
	if bn.Op != ir.OpBatchNorm {
		return false
	}
	conv := bn.Args[0].Def
	if conv == nil || conv.Op != ir.OpConv || conv.Results[0].Uses() != 1 || g.IsOutput(conv.Results[0]) || conv.Attrs.(*ir.ConvAttrs).BN {
		return false
	}
	w, b := conv.Args[1], conv.Arg(2)
	stats := bn.Args[1:5]
	for _, v := range append([]*ir.Value{w, b}, stats...) {
		if v != nil && v.Kind != ir.KindParam {
			return false
		}
	}
	k := w.Type.Shape[0]
	eps := float64(bn.Attrs.(*ir.BatchNormAttrs).Epsilon)
	var wd, bd []float32
	if w.Param.Data != nil && !slices.ContainsFunc(stats, func(v *ir.Value) bool { return v.Param.Data == nil }) {
		scale, shift, mean, vr := stats[0].Param.Data, stats[1].Param.Data, stats[2].Param.Data, stats[3].Param.Data
		per := len(w.Param.Data) / k
		wd, bd = make([]float32, len(w.Param.Data)), make([]float32, k)
		for o := 0; o < k; o++ {
			s := float64(scale[o]) / math.Sqrt(float64(vr[o])+eps)
			for i := o * per; i < (o+1)*per; i++ {
				wd[i] = float32(float64(w.Param.Data[i]) * s)
			}
			var b0 float64
			if b != nil && b.Param.Data != nil {
				b0 = float64(b.Param.Data[o])
			}
			bd[o] = float32((b0-float64(mean[o]))*s + float64(shift[o]))
		}
	}
	bname := stats[1].Name
	if b != nil {
		bname = b.Name
	}
	nw := g.AddParam(w.Name, w.Type, &ir.Param{Data: wd, Trainable: w.Param.Trainable, Role: ir.RoleWeight})
	nb := g.AddParam(bname, ir.Of(ir.F32, k), &ir.Param{Data: bd, Trainable: true, Role: ir.RoleBias})
	g.SetArg(conv, 1, nw)
	if b != nil {
		g.SetArg(conv, 2, nb)
	} else {
		conv.Args = append(conv.Args, nil)
		g.SetArg(conv, 2, nb)
	}
	g.ReplaceAllUses(bn.Results[0], conv.Results[0])
	g.Remove(bn)
	return true
}
