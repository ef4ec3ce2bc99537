package ir

// ValueKind says where a value comes from.
type ValueKind uint8

// The sources of a value.
const (
	// KindResult values are computed by a node.
	KindResult ValueKind = iota
	// KindInput values are graph inputs that callers supply at run time.
	KindInput
	// KindParam values are tensors held by the model: weights, biases,
	// normalisation statistics.
	KindParam
	// KindConst values are small compile-time constants (shapes, axes,
	// scalar operands) whose data the IR carries and prints.
	KindConst
)

// Value is an SSA value: defined once, by a node, a graph input, a parameter
// or a constant.
type Value struct {
	ID    int
	Name  string // from the model file; for messages only, never trusted as an identifier
	Type  TensorType
	Kind  ValueKind
	Def   *Node  // defining node, for KindResult
	Param *Param // for KindParam
	Const *Tensor
	// Offset is where a planned result lives: in Graph.Arena (in elements
	// per sample, scaled by the batch at run time) for batched values, in
	// the fixed arena for the others. Views share their root's offset.
	// Meaningful only when Graph.Planned.
	Offset int
	uses   int
}

// Uses is how many node arguments and graph outputs refer to v.
func (v *Value) Uses() int { return v.uses }

// Role says what a parameter is for; passes such as SMH hashing and optimizer
// grouping decide by it.
type Role uint8

// Parameter roles, set by the frontend from the parameter's first consumer.
const (
	RoleOther Role = iota
	RoleWeight
	RoleBias
	RoleNormScale
	RoleNormBias
	RoleNormMean
	RoleNormVar
	// RoleSMHPool is the shared pool compressed weights are read from (the
	// factors L and R of P = L·R, or a hash table).
	RoleSMHPool
	// RoleSMHScale is the vector of per-tensor scales of compressed weights.
	RoleSMHScale
)

var roleNames = [...]string{"other", "weight", "bias", "norm_scale", "norm_bias", "norm_mean", "norm_var", "smh_pool", "smh_scale"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role?"
}

// Param is the payload of a KindParam value.
type Param struct {
	// Data holds the initial values in row-major order; nil when the graph
	// was parsed from text, which carries no weights.
	Data      []float32
	Trainable bool
	Role      Role
}

// Node is one operation. Its attribute struct is the op's typed attribute
// type (see OpDef.Attrs), or nil for ops without attributes.
type Node struct {
	ID      int
	Op      Op
	Name    string // from the model file; for messages only
	Args    []*Value
	Results []*Value
	Attrs   any
}

// Graph is a model in topological order. IDs are dense and sequential, so
// passes can index slices by them.
type Graph struct {
	Name    string
	Opset   int
	Inputs  []*Value
	Outputs []*Value
	// OutputNames are the model file's names for Outputs, one each.
	OutputNames []string
	// ExportBatch is the static batch size the model file was exported
	// with (PyTorch bakes it into shape constants), or 0 when its batch
	// dimension was symbolic.
	ExportBatch int
	// Planned says memory planning has placed every result: Arena is the
	// batched arena's size in elements per sample, Fixed the size of the
	// arena for values without a batch dimension.
	Planned      bool
	Arena, Fixed int
	Params       []*Value
	Consts       []*Value
	Nodes        []*Node

	nextValue int
	nextNode  int
}

// New returns an empty graph.
func New(name string, opset int) *Graph {
	return &Graph{Name: name, Opset: opset}
}

// NumValueIDs is one more than the largest value ID handed out, the length a
// slice indexed by value ID needs.
func (g *Graph) NumValueIDs() int { return g.nextValue }

// NumNodeIDs is one more than the largest node ID handed out.
func (g *Graph) NumNodeIDs() int { return g.nextNode }

func (g *Graph) newValue(name string, kind ValueKind, t TensorType) *Value {
	v := &Value{ID: g.nextValue, Name: name, Kind: kind, Type: t}
	g.nextValue++
	return v
}

// AddInput appends a graph input.
func (g *Graph) AddInput(name string, t TensorType) *Value {
	v := g.newValue(name, KindInput, t)
	g.Inputs = append(g.Inputs, v)
	return v
}

// AddParam appends a parameter.
func (g *Graph) AddParam(name string, t TensorType, p *Param) *Value {
	v := g.newValue(name, KindParam, t)
	v.Param = p
	g.Params = append(g.Params, v)
	return v
}

// AddConst appends a constant; its type is the tensor's.
func (g *Graph) AddConst(name string, c *Tensor) *Value {
	v := g.newValue(name, KindConst, c.Type())
	v.Const = c
	g.Consts = append(g.Consts, v)
	return v
}

// AddOutput appends v to the graph outputs under the given name.
func (g *Graph) AddOutput(name string, v *Value) {
	g.Outputs = append(g.Outputs, v)
	g.OutputNames = append(g.OutputNames, name)
	v.uses++
}

// SetOutputs replaces the graph outputs.
func (g *Graph) SetOutputs(names []string, vs []*Value) {
	for _, o := range g.Outputs {
		o.uses--
	}
	g.Outputs, g.OutputNames = nil, nil
	for i, v := range vs {
		g.AddOutput(names[i], v)
	}
}

// Builder adds nodes to a graph at one insertion point: the end, or before a
// given node. It is the only way passes create nodes, so use counts and
// topological order stay right.
type Builder struct {
	g      *Graph
	before *Node
}

// Append returns a builder that adds nodes at the end of the graph.
func (g *Graph) Append() *Builder { return &Builder{g: g} }

// Before returns a builder that adds nodes just before n, in the order added.
func (g *Graph) Before(n *Node) *Builder { return &Builder{g: g, before: n} }

// Add creates a node with the op's number of results, their types unknown
// until InferNode runs. attrs must be the op's attribute type (or nil for ops
// without attributes, or to take the op's defaults).
func (b *Builder) Add(op Op, name string, attrs any, args ...*Value) *Node {
	g := b.g
	def := op.Def()
	if attrs == nil && def.NewAttrs != nil {
		attrs = def.NewAttrs()
	}
	n := &Node{ID: g.nextNode, Op: op, Name: name, Args: append([]*Value(nil), args...), Attrs: attrs}
	g.nextNode++
	for _, a := range args {
		if a != nil {
			a.uses++
		}
	}
	nres := def.Results
	for i := 0; i < nres; i++ {
		r := g.newValue("", KindResult, TensorType{})
		r.Def = n
		n.Results = append(n.Results, r)
	}
	if b.before == nil {
		g.Nodes = append(g.Nodes, n)
		return n
	}
	i := g.indexOf(b.before)
	g.Nodes = append(g.Nodes, nil)
	copy(g.Nodes[i+1:], g.Nodes[i:])
	g.Nodes[i] = n
	return n
}

// AddInfer is Add followed by InferNode, for passes that build typed graphs.
func (b *Builder) AddInfer(op Op, name string, attrs any, args ...*Value) (*Node, error) {
	n := b.Add(op, name, attrs, args...)
	return n, InferNode(n)
}

func (g *Graph) indexOf(n *Node) int {
	for i, m := range g.Nodes {
		if m == n {
			return i
		}
	}
	panic("ir: node " + n.Op.String() + " is not in the graph")
}

// MoveBefore moves node n to just before node at, keeping the order of
// the others. The caller keeps the graph's order valid: every argument of
// n must still be defined before it.
func (g *Graph) MoveBefore(n, at *Node) {
	if n == at {
		return
	}
	i := g.indexOf(n)
	g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
	j := g.indexOf(at)
	g.Nodes = append(g.Nodes, nil)
	copy(g.Nodes[j+1:], g.Nodes[j:])
	g.Nodes[j] = n
}

// SetArg replaces argument i of n.
func (g *Graph) SetArg(n *Node, i int, v *Value) {
	if old := n.Args[i]; old != nil {
		old.uses--
	}
	n.Args[i] = v
	if v != nil {
		v.uses++
	}
}

// ReplaceAllUses points every argument and graph output that reads old at
// new instead.
func (g *Graph) ReplaceAllUses(old, new *Value) {
	if old == new {
		return
	}
	for _, n := range g.Nodes {
		for i, a := range n.Args {
			if a == old {
				g.SetArg(n, i, new)
			}
		}
	}
	for i, o := range g.Outputs {
		if o == old {
			g.Outputs[i] = new
			old.uses--
			new.uses++
		}
	}
}

// Users lists the nodes that read v, in graph order, each once.
func (g *Graph) Users(v *Value) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		for _, a := range n.Args {
			if a == v {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// IsOutput reports whether v is a graph output.
func (g *Graph) IsOutput(v *Value) bool {
	for _, o := range g.Outputs {
		if o == v {
			return true
		}
	}
	return false
}

// Remove deletes n, whose results must be unused.
func (g *Graph) Remove(n *Node) {
	for _, r := range n.Results {
		if r.uses != 0 {
			panic("ir: removing " + n.Op.String() + " whose result is still used")
		}
	}
	i := g.indexOf(n)
	g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
	for _, a := range n.Args {
		if a != nil {
			a.uses--
		}
	}
}

// RemoveDead deletes nodes whose results nobody reads and parameters and
// constants nobody reads, repeating until nothing changes, and reports how
// many nodes went.
func (g *Graph) RemoveDead() int {
	removed := 0
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		dead := !n.Op.Def().SideEffect
		for _, r := range n.Results {
			if r.uses != 0 {
				dead = false
				break
			}
		}
		if dead {
			// Walking backwards, a node's users were visited first, so one
			// sweep removes whole dead chains.
			g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
			for _, a := range n.Args {
				if a != nil {
					a.uses--
				}
			}
			removed++
		}
	}
	g.Params = keepUsed(g.Params)
	g.Consts = keepUsed(g.Consts)
	return removed
}

func keepUsed(vs []*Value) []*Value {
	out := vs[:0]
	for _, v := range vs {
		if v.uses > 0 {
			out = append(out, v)
		}
	}
	for i := len(out); i < len(vs); i++ {
		vs[i] = nil
	}
	return out
}

// Values calls f for every value of the graph: inputs, params, consts, then
// node results in order.
func (g *Graph) Values(f func(*Value)) {
	for _, v := range g.Inputs {
		f(v)
	}
	for _, v := range g.Params {
		f(v)
	}
	for _, v := range g.Consts {
		f(v)
	}
	for _, n := range g.Nodes {
		for _, r := range n.Results {
			f(r)
		}
	}
}

// Root returns the value whose buffer v uses: v itself, or for a view the
// root of the value it views.
func Root(v *Value) *Value {
	for v.Kind == KindResult && v.Def.Op.Def().View {
		v = v.Def.Args[0]
	}
	return v
}

// Renumber reassigns dense IDs in printing order, so that a graph after
// several passes prints like a freshly built one.
func (g *Graph) Renumber() {
	id := 0
	g.Values(func(v *Value) { v.ID = id; id++ })
	g.nextValue = id
	for i, n := range g.Nodes {
		n.ID = i
	}
	g.nextNode = len(g.Nodes)
}
