package ir

import (
	"fmt"
	"strconv"
)

// Op identifies an operation. Everything about an op (arity, attributes,
// shape rule, kernel, gradient, cost, the stages where it is legal) lives in
// its OpDef, filled in by the ops_*.go file of its family.
type Op uint16

// The operations. Ops up to OpSlice carry data and survive into generated
// code; the import-only ops after them must be gone by StageTyped.
const (
	OpInvalid Op = iota

	OpConv
	OpGemm
	OpMatMul
	OpBatchNorm

	OpRelu
	OpClip
	OpSigmoid
	OpHardSigmoid
	OpHardSwish
	OpAdd
	OpSub
	OpMul
	OpDiv

	OpGlobalAveragePool
	OpAveragePool
	OpMaxPool

	OpFlatten
	OpReshape
	OpSqueeze
	OpUnsqueeze
	OpConcat
	OpTranspose
	OpGather
	OpSlice
	OpPad
	OpReduceMean

	OpSoftmax
	OpLogSoftmax
	OpDropout

	// Import-only ops: shape computations folded to constants, and no-ops.
	OpIdentity
	OpShape
	OpConstantOfShape
	OpCast

	// Structured Multi-Hashing (ops_smh.go): a weight read from the shared
	// pool, and the pool's gradient.
	OpSMHReconstruct
	OpSMHGradSum

	// Training ops: the train-mode forward of BatchNorm, backward kernels,
	// the loss and parameter updates (ops_train.go).
	OpBatchNormTrain
	OpBatchNormRunningUpdate
	OpSoftmaxCrossEntropy
	OpUpdate
	OpConvGradInput
	OpConvGradFilter
	OpConvGradBias
	OpGemmGrad
	OpMatMulGrad
	OpBatchNormGrad
	OpReluGrad
	OpClipGrad
	OpSigmoidGrad
	OpHardSigmoidGrad
	OpHardSwishGrad
	OpBroadcastGrad
	OpMaxPoolGrad
	OpAveragePoolGrad
	OpGlobalAveragePoolGrad
	OpPadGrad
	OpSliceGrad
	OpGatherGrad
	OpReduceMeanGrad
	OpSoftmaxGrad
	OpLogSoftmaxGrad
	OpDropoutGrad

	numOps
)

// Stage names how far a graph has been compiled; each op is legal in a range
// of stages, which Verify enforces.
type Stage uint8

// The compilation stages, in pipeline order.
const (
	// StageImported is the frontend's output: ONNX-like ops, shapes of
	// intermediate values not yet known.
	StageImported Stage = iota
	// StageTyped has every value typed with static shapes (batch symbolic)
	// and no shape computations or no-ops left.
	StageTyped
	// StageLowered adds compiler-introduced ops such as the SMH family and
	// fused kernels.
	StageLowered
	// StageTraining adds backward, loss and optimizer ops.
	StageTraining
)

var stageNames = [...]string{"imported", "typed", "lowered", "training"}

func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

// ParseStage is the inverse of Stage.String.
func ParseStage(s string) (Stage, error) {
	for i, n := range stageNames {
		if n == s {
			return Stage(i), nil
		}
	}
	return 0, fmt.Errorf("unknown stage %q (want imported, typed, lowered or training)", s)
}

// Cost estimates the work of one node for one sample (batch size 1).
type Cost struct {
	FLOPs  int64 // multiply-adds count as two
	Bytes  int64 // bytes read and written by the kernel
	Params int64 // parameter elements read
}

// GradFunc builds the backward nodes of n with b, given the gradients of its
// results (nil where a result has none) and which arguments need a gradient
// (those a trainable parameter flows into), and returns the gradient of each
// argument it was asked for (nil elsewhere).
type GradFunc func(b *Builder, n *Node, dResults []*Value, need []bool) ([]*Value, error)

// OpDef is everything the compiler knows about an op.
type OpDef struct {
	Name             string
	MinArgs, MaxArgs int
	Results          int
	// NewAttrs returns a pointer to the op's attribute struct holding the
	// ONNX defaults; nil for ops without attributes.
	NewAttrs func() any
	// MinStage and MaxStage bound the stages where the op may appear.
	MinStage, MaxStage Stage
	// StaticArgs is a bit set of argument positions that must be constants
	// from StageTyped on (shapes, axes, pads, clip bounds).
	StaticArgs uint32
	// Infer computes the result types from the argument types (and the data
	// of static arguments).
	Infer func(n *Node) ([]TensorType, error)
	// Fold evaluates the node when all its arguments are constants; nil for
	// ops constant folding leaves alone.
	Fold func(n *Node) ([]*Tensor, error)
	// FoldsFromTypes marks ops that fold once their arguments are typed,
	// constant or not (Shape).
	FoldsFromTypes bool
	// Canonicalize rewrites attributes into their explicit form once the
	// argument types are known (auto_pad into pads); nil when there is
	// nothing to rewrite.
	Canonicalize func(n *Node) error
	// Kernel names the runtime function that computes the op, so emission is
	// data; empty for view ops and ops that never reach code generation.
	Kernel string
	// Call describes the runtime call for a node of this op (see
	// KernelCall); nil for view ops and ops that never reach code
	// generation. Its Func is Kernel.
	Call func(n *Node) (*KernelCall, error)
	// View ops reinterpret their first argument's buffer without copying.
	View bool
	// SideEffect ops have no results and act on state (an optimizer
	// update, running statistics): dead-code removal keeps them, and their
	// arguments stay live to the end of the program.
	SideEffect bool
	// Grad is the reverse-mode rule; nil for ops that are not differentiable
	// or whose rule the training pipeline does not yet provide.
	Grad GradFunc
	// Cost estimates the work per sample.
	Cost func(n *Node) Cost
}

var opTable [numOps]OpDef

func register(op Op, d OpDef) {
	if opTable[op].Name != "" {
		panic("ir: op registered twice: " + d.Name)
	}
	// grads.go may have attached the gradient rule first: package init
	// order follows file names.
	if d.Grad == nil {
		d.Grad = opTable[op].Grad
	}
	opTable[op] = d
}

// Def returns the op's definition.
func (op Op) Def() *OpDef {
	if op >= numOps {
		return &opTable[OpInvalid]
	}
	return &opTable[op]
}

func (op Op) String() string {
	if op < numOps && opTable[op].Name != "" {
		return opTable[op].Name
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

// Ops lists every defined op in enum order.
func Ops() []Op {
	var out []Op
	for op := Op(1); op < numOps; op++ {
		out = append(out, op)
	}
	return out
}

// LookupOp finds an op by its printed name.
func LookupOp(name string) (Op, bool) {
	for op := Op(1); op < numOps; op++ {
		if opTable[op].Name == name {
			return op, true
		}
	}
	return OpInvalid, false
}

// IsStatic reports whether argument i of op must be a constant from
// StageTyped on.
func (d *OpDef) IsStatic(i int) bool { return i < 32 && d.StaticArgs&(1<<uint(i)) != 0 }

// NodeError is an error about one node, naming its op and model-file name.
type NodeError struct {
	Node *Node
	Err  error
}

func (e *NodeError) Error() string {
	if e.Node.Name != "" {
		return fmt.Sprintf("node %q (%s): %v", e.Node.Name, e.Node.Op, e.Err)
	}
	return fmt.Sprintf("node %s: %v", e.Node.Op, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// InferNode runs the op's shape rule and records the result types.
func InferNode(n *Node) error {
	ts, err := inferTypes(n)
	if err != nil {
		return err
	}
	for i, t := range ts {
		n.Results[i].Type = t
	}
	return nil
}

func inferTypes(n *Node) ([]TensorType, error) {
	def := n.Op.Def()
	if def.Infer == nil {
		return nil, &NodeError{n, fmt.Errorf("op %s has no shape rule", n.Op)}
	}
	if err := checkArity(n); err != nil {
		return nil, &NodeError{n, err}
	}
	for i, a := range n.Args {
		if a == nil {
			continue
		}
		if !a.Type.Known() {
			return nil, &NodeError{n, fmt.Errorf("argument %d (v%d) has no type yet", i, a.ID)}
		}
		if def.IsStatic(i) && a.Kind != KindConst {
			return nil, &NodeError{n, fmt.Errorf("argument %d (v%d) must be a constant, have a %s value", i, a.ID, kindName(a.Kind))}
		}
	}
	ts, err := def.Infer(n)
	if err != nil {
		return nil, &NodeError{n, err}
	}
	if len(ts) != len(n.Results) {
		return nil, &NodeError{n, fmt.Errorf("shape rule gave %d types for %d results", len(ts), len(n.Results))}
	}
	return ts, nil
}

func checkArity(n *Node) error {
	def := n.Op.Def()
	if len(n.Args) < def.MinArgs || len(n.Args) > def.MaxArgs {
		if def.MinArgs == def.MaxArgs {
			return fmt.Errorf("want %d arguments, have %d", def.MinArgs, len(n.Args))
		}
		return fmt.Errorf("want %d to %d arguments, have %d", def.MinArgs, def.MaxArgs, len(n.Args))
	}
	for i := 0; i < def.MinArgs; i++ {
		if n.Args[i] == nil {
			return fmt.Errorf("required argument %d is missing", i)
		}
	}
	return nil
}

func kindName(k ValueKind) string {
	switch k {
	case KindInput:
		return "input"
	case KindParam:
		return "param"
	case KindConst:
		return "const"
	}
	return "computed"
}

// Arg returns argument i of n, or nil when absent (optional arguments).
func (n *Node) Arg(i int) *Value {
	if i < len(n.Args) {
		return n.Args[i]
	}
	return nil
}
