package ir

import "fmt"

func init() {
	register(OpGemm, OpDef{
		Name: "Gemm", MinArgs: 2, MaxArgs: 3, Results: 1,
		NewAttrs: newGemmAttrs,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer:  inferGemm,
		Kernel: "Gemm",
		Call:   callGemm,
		Cost:   costMatMul,
	})
	register(OpMatMul, OpDef{
		Name: "MatMul", MinArgs: 2, MaxArgs: 2, Results: 1,
		MinStage: StageImported, MaxStage: StageTraining,
		Infer:  inferMatMul,
		Kernel: "MatMul",
		Call:   callMatMul,
		Cost:   costMatMul,
	})
}

func inferGemm(n *Node) ([]TensorType, error) {
	a := n.Attrs.(*GemmAttrs)
	for i := range n.Args {
		if n.Args[i] == nil {
			continue
		}
		if err := wantF32(n, i); err != nil {
			return nil, err
		}
		if i < 2 {
			if err := wantRank(n, i, 2); err != nil {
				return nil, err
			}
		}
	}
	sa, sb := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	if a.TransA && sa.HasBatch() {
		return nil, fmt.Errorf("trans_a on a batched A %v is not supported", sa)
	}
	m, k := sa[0], sa[1]
	if a.TransA {
		m, k = k, m
	}
	kb, nn := sb[0], sb[1]
	if a.TransB {
		kb, nn = nn, kb
	}
	if k == BatchDim || kb == BatchDim || nn == BatchDim {
		return nil, fmt.Errorf("only the rows of A may be the batch: A %v, B %v", sa, sb)
	}
	if k != kb {
		return nil, fmt.Errorf("inner dimensions differ: A %v (trans_a=%v), B %v (trans_b=%v)", sa, a.TransA, sb, a.TransB)
	}
	out := Shape{m, nn}
	if c := n.Arg(2); c != nil {
		bc, err := broadcastShapes(out, c.Type.Shape)
		if err != nil || !bc.Equal(out) {
			return nil, fmt.Errorf("C %v does not broadcast to %v", c.Type.Shape, out)
		}
	}
	return []TensorType{{DType: F32, Shape: out}}, nil
}

// inferMatMul handles what PyTorch exports: 2-D and batched N-D operands
// with numpy broadcasting of the leading dimensions.
func inferMatMul(n *Node) ([]TensorType, error) {
	for i := 0; i < 2; i++ {
		if err := wantF32(n, i); err != nil {
			return nil, err
		}
		if n.Args[i].Type.Shape.Rank() < 2 {
			return nil, fmt.Errorf("argument %d: vectors (rank 1) are not supported, have %v", i, n.Args[i].Type)
		}
	}
	sa, sb := n.Args[0].Type.Shape, n.Args[1].Type.Shape
	ra, rb := len(sa), len(sb)
	if sa[ra-1] != sb[rb-2] || sa[ra-1] == BatchDim {
		return nil, fmt.Errorf("inner dimensions differ: %v times %v", sa, sb)
	}
	if sb[rb-1] == BatchDim {
		return nil, fmt.Errorf("the batch cannot be a column dimension: %v times %v", sa, sb)
	}
	lead, err := broadcastShapes(sa[:ra-2], sb[:rb-2])
	if err != nil {
		return nil, err
	}
	out := append(lead, sa[ra-2], sb[rb-1])
	return []TensorType{{DType: F32, Shape: out}}, nil
}

func costMatMul(n *Node) Cost {
	sa := n.Args[0].Type.Shape
	y := n.Results[0].Type.Shape
	k := sa[len(sa)-1]
	if n.Op == OpGemm && n.Attrs.(*GemmAttrs).TransA {
		k = sa[0]
	}
	macs := int64(y.Static()) * int64(k)
	var in int64
	for _, a := range n.Args {
		if a != nil {
			in += int64(a.Type.Shape.Static())
		}
	}
	return Cost{FLOPs: 2 * macs, Bytes: 4 * (in + int64(y.Static())), Params: paramElems(n)}
}

func callGemm(n *Node) (*KernelCall, error) {
	var sc Shape
	if c := n.Arg(2); c != nil {
		sc = c.Type.Shape
	}
	p, nArg, err := gemmParams(n.Attrs.(*GemmAttrs), n.Args[0].Type.Shape, n.Args[1].Type.Shape, sc, n.Arg(2) != nil)
	if err != nil {
		return nil, err
	}
	return &KernelCall{Func: "Gemm", Params: p, HasN: true, N: nArg,
		Bufs: []BufRef{R(0), A(0), A(1), ArgOrNil(n, 2)}}, nil
}

// gemmParams is the runtime's GemmParams for a Gemm of A (sa), B (sb) and,
// when hasC, C (sc), and the n to pass: the batch when A's rows are the
// batch, 1 otherwise.
func gemmParams(a *GemmAttrs, sa, sb, sc Shape, hasC bool) (*Struct, int, error) {
	rows, k := sa[0], sa[1]
	if a.TransA {
		rows, k = k, rows
	}
	cols := sb[1]
	if a.TransB {
		cols = sb[0]
	}
	m, nArg := rows, 1
	if rows == BatchDim {
		m, nArg = 1, RuntimeBatch
	}
	bias := "BiasNone"
	if hasC {
		switch {
		case sc.HasBatch():
			return nil, 0, fmt.Errorf("a batched C %v is not supported", sc)
		case sc.Static() == 1:
			bias = "BiasScalar"
		case sc.Equal(Shape{cols}) || sc.Equal(Shape{1, cols}):
			bias = "BiasRow"
		case rows != BatchDim && sc.Equal(Shape{rows, 1}):
			bias = "BiasColumn"
		case rows != BatchDim && sc.Equal(Shape{rows, cols}):
			bias = "BiasFull"
		default:
			return nil, 0, fmt.Errorf("C of shape %v is not supported", sc)
		}
	}
	return &Struct{Type: "GemmParams", Fields: []Field{
		{"M", m}, {"K", k}, {"N", cols}, {"TransA", a.TransA}, {"TransB", a.TransB},
		{"Alpha", a.Alpha}, {"Beta", a.Beta}, {"Bias", Sym(bias)},
	}}, nArg, nil
}

// matmulOperand splits a MatMul operand's shape into the runtime's leading
// dimensions, matrix rows and batch flag: a batched 2-D operand is one row
// per sample.
func matmulOperand(s Shape) (lead []int, rows int, batched bool) {
	r := len(s)
	if s[0] == BatchDim {
		if r == 2 {
			return []int{}, 1, true
		}
		return append([]int{}, s[1:r-2]...), s[r-2], true
	}
	return append([]int{}, s[:r-2]...), s[r-2], false
}

func callMatMul(n *Node) (*KernelCall, error) {
	p, nArg, err := matmulParams(n.Args[0].Type.Shape, n.Args[1].Type.Shape)
	if err != nil {
		return nil, err
	}
	return &KernelCall{Func: "MatMul", Params: p, HasN: true, N: nArg, Bufs: []BufRef{R(0), A(0), A(1)}}, nil
}

// matmulParams is the runtime's MatMulParams for A (sa) times B (sb), and
// the n to pass.
func matmulParams(sa, sb Shape) (*Struct, int, error) {
	aLead, m, aB := matmulOperand(sa)
	bLead, _, bB := matmulOperand(sb)
	if bB && len(sb) == 2 {
		return nil, 0, fmt.Errorf("a batched 2-D right operand %v is not supported", sb)
	}
	nArg := 1
	if aB || bB {
		nArg = RuntimeBatch
	}
	return &Struct{Type: "MatMulParams", Fields: []Field{
		{"M", m}, {"K", sa[len(sa)-1]}, {"N", sb[len(sb)-1]},
		{"ALead", aLead}, {"BLead", bLead}, {"BatchA", aB}, {"BatchB", bB},
	}}, nArg, nil
}
