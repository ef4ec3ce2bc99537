package ir

import (
	"fmt"
	"slices"
)

// SMHAttrs place one compressed tensor: Variant ("product", "hash" or
// "kron") with its geometry (D, Rank; Seed for hashing), the tensor's flat
// Offset in the virtual weight vector, its Shape, the index of its Scale in
// the scales vector, and its Tensor id (the hash's key). Cached
// reconstructions run once when the weights change rather than before each
// use. An Async one (product variant only, set by the smh-prefetch pass)
// starts where it stands and is waited for just before the first node that
// reads it, so that it runs in the worker pool's idle time meanwhile.
type SMHAttrs struct {
	Variant string `ir:"variant"`
	D       int    `ir:"d"`
	Rank    int    `ir:"rank"`
	Seed    int    `ir:"seed"`
	Offset  int    `ir:"offset"`
	Shape   []int  `ir:"shape"`
	Scale   int    `ir:"scale"`
	Tensor  int    `ir:"tensor"`
	Cached  bool   `ir:"cached"`
	Async   bool   `ir:"async"`
}

func newSMHAttrs() any { return &SMHAttrs{Variant: "product"} }

// SMHGradAttrs describe every tensor read from one pool, in the order of
// the gradient arguments of an SMHGradSum.
type SMHGradAttrs struct {
	Variant string `ir:"variant"`
	D       int    `ir:"d"`
	Rank    int    `ir:"rank"`
	Seed    int    `ir:"seed"`
	Offsets []int  `ir:"offsets"`
	Counts  []int  `ir:"counts"`
	Scales  []int  `ir:"scales"`
	Tensors []int  `ir:"tensors"`
}

func newSMHGradAttrs() any { return &SMHGradAttrs{Variant: "product"} }

// SMHPoolSize is the pool a variant needs for geometry d and rank.
func SMHPoolSize(variant string, d, rank int) int { return 2 * d * rank }

var smhVariants = map[string]Sym{"product": "SMHProduct", "hash": "SMHHash", "kron": "SMHKron"}

func smhWeightStruct(variant string, d, rank, seed, off, count, scale, tensor int) *Struct {
	return &Struct{Type: "SMHWeightParams", Fields: []Field{
		{"Variant", smhVariants[variant]}, {"D", d}, {"Rank", rank}, {"Off", off}, {"Count", count},
		{"Scale", scale}, {"Seed", uint64(seed)}, {"Tensor", uint64(tensor)},
	}}
}

func checkSMHArgs(n *Node, variant string, d, rank int) error {
	pool, scales := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	if _, ok := smhVariants[variant]; !ok {
		return fmt.Errorf("unknown variant %q", variant)
	}
	if pool.Rank() != 1 || scales.Rank() != 1 || pool.HasBatch() || scales.HasBatch() {
		return fmt.Errorf("pool %v and scales %v must be vectors", pool, scales)
	}
	if variant != "hash" && pool[0] != SMHPoolSize(variant, d, rank) {
		return fmt.Errorf("pool of %d values, a %s pool of side %d and rank %d has %d", pool[0], variant, d, rank, SMHPoolSize(variant, d, rank))
	}
	return nil
}

func init() {
	register(OpSMHReconstruct, OpDef{
		Name: "SMHReconstruct", MinArgs: 2, MaxArgs: 2, Results: 1,
		NewAttrs: newSMHAttrs,
		MinStage: StageLowered, MaxStage: StageTraining,
		Infer: func(n *Node) ([]TensorType, error) {
			a := n.Attrs.(*SMHAttrs)
			if err := checkSMHArgs(n, a.Variant, a.D, a.Rank); err != nil {
				return nil, err
			}
			count := Shape(a.Shape).Static()
			if a.Variant != "hash" && (a.Offset < 0 || a.Offset+count > a.D*a.D) {
				return nil, fmt.Errorf("tensor [%d, %d) outside the %d x %d virtual matrix", a.Offset, a.Offset+count, a.D, a.D)
			}
			if a.Async && (a.Cached || a.Variant != "product") {
				return nil, fmt.Errorf("async reconstruction of a cached or %s tensor", a.Variant)
			}
			if a.Scale < 0 || a.Scale >= n.Args[1].Type.Shape[0] {
				return nil, fmt.Errorf("scale %d of %d", a.Scale, n.Args[1].Type.Shape[0])
			}
			return []TensorType{shapeOf(a.Shape)}, nil
		},
		Kernel: "SMHWeight",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*SMHAttrs)
			fn := "SMHWeight"
			if a.Async {
				fn = "SMHWeightStart" // codegen adds the SMHWeightWait
			}
			return &KernelCall{Func: fn,
				Params: smhWeightStruct(a.Variant, a.D, a.Rank, a.Seed, a.Offset, Shape(a.Shape).Static(), a.Scale, a.Tensor),
				Bufs:   []BufRef{R(0), A(0), A(1)}}, nil
		},
		Cost: func(n *Node) Cost {
			a := n.Attrs.(*SMHAttrs)
			c := int64(Shape(a.Shape).Static())
			return Cost{FLOPs: 2 * c * int64(max(a.Rank, 1)), Bytes: 4 * c, Params: c}
		},
	})
	register(OpSMHGradSum, OpDef{
		Name: "SMHGradSum", MinArgs: 2, MaxArgs: 1 << 20, Results: 2,
		NewAttrs: newSMHGradAttrs,
		MinStage: StageTraining, MaxStage: StageTraining,
		Infer: func(n *Node) ([]TensorType, error) {
			a := n.Attrs.(*SMHGradAttrs)
			if err := checkSMHArgs(n, a.Variant, a.D, a.Rank); err != nil {
				return nil, err
			}
			k := len(n.Args) - 2
			if len(a.Offsets) != k || len(a.Counts) != k || len(a.Scales) != k || len(a.Tensors) != k {
				return nil, fmt.Errorf("%d gradients, attributes for %d/%d/%d/%d tensors", k, len(a.Offsets), len(a.Counts), len(a.Scales), len(a.Tensors))
			}
			for i, g := range n.Args[2:] {
				if g.Type.Shape.Static() != a.Counts[i] || g.Type.Shape.HasBatch() {
					return nil, fmt.Errorf("gradient %d is %v, want %d values", i, g.Type, a.Counts[i])
				}
			}
			return []TensorType{n.Args[0].Type, n.Args[1].Type}, nil
		},
		Kernel: "SMHGradSum",
		Call: func(n *Node) (*KernelCall, error) {
			a := n.Attrs.(*SMHGradAttrs)
			var ts []any
			for i := range a.Offsets {
				ts = append(ts, smhWeightStruct(a.Variant, a.D, a.Rank, a.Seed, a.Offsets[i], a.Counts[i], a.Scales[i], a.Tensors[i]))
			}
			bufs := []BufRef{R(0), R(1), A(0), A(1)}
			for i := 2; i < len(n.Args); i++ {
				bufs = append(bufs, A(i))
			}
			return &KernelCall{Func: "SMHGradSum", Params: &Struct{Type: "SMHGradParams", Fields: []Field{{"Tensors", StructList{Type: "SMHWeightParams", Items: ts}}}}, Bufs: bufs}, nil
		},
		Cost: func(n *Node) Cost {
			a := n.Attrs.(*SMHGradAttrs)
			var c int64
			for _, x := range a.Counts {
				c += int64(x)
			}
			return Cost{FLOPs: 4 * c * int64(max(a.Rank, 1))}
		},
	})
	// The weight's gradient goes back to the pool and the scales through a
	// one-tensor SMHGradSum; the smhgrad pass merges those of one pool.
	rule(OpSMHReconstruct, func(g *gb, n *Node, dy []*Value, need []bool) []*Value {
		a := n.Attrs.(*SMHAttrs)
		ga := &SMHGradAttrs{Variant: a.Variant, D: a.D, Rank: a.Rank, Seed: a.Seed,
			Offsets: []int{a.Offset}, Counts: []int{Shape(a.Shape).Static()}, Scales: []int{a.Scale}, Tensors: []int{a.Tensor}}
		vs := g.addN(OpSMHGradSum, ga, n.Args[0], n.Args[1], dy[0])
		if vs == nil {
			return nil
		}
		return []*Value{vs[0], vs[1]}
	})
}

// StructList is a field value holding a slice of struct literals of one
// runtime type; each item is a *Struct.
type StructList struct {
	Type  string
	Items []any
}

// SMHTensors lists the SMHReconstruct nodes of g in graph order.
func SMHTensors(g *Graph) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if n.Op == OpSMHReconstruct {
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b *Node) int { return a.Attrs.(*SMHAttrs).Tensor - b.Attrs.(*SMHAttrs).Tensor })
	return out
}
