package codegen

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/dave/jennifer/jen"
	"github.com/smhgen/smhgen/ir"
)

// trainCode is the training program's share of the generated file.
type trainCode struct {
	consts, fields, inits []jen.Code
	backward, commit      []jen.Code
}

// roleGroup maps a parameter's role to the optimizer group that holds it.
var roleGroup = map[ir.Role]string{
	ir.RoleWeight: "GroupWeights", ir.RoleBias: "GroupBias",
	ir.RoleNormScale: "GroupNorm", ir.RoleNormBias: "GroupNorm",
	ir.RoleSMHPool: "GroupSMHFactors", ir.RoleSMHScale: "GroupSMHScales",
	ir.RoleOther: "GroupWeights",
}

// trainBodies emits the training program in three parts: forward and loss
// (returning early on bad labels or a non-finite loss, before anything in
// the model changed), backward, and the commit of the optimizer step and
// the running statistics.
func (e *emitter) trainBodies() (*trainCode, error) {
	t := e.train
	pkg := e.opts.Package
	nodes := t.g.Nodes
	loss, side := -1, len(nodes)
	for i, n := range nodes {
		switch {
		case n.Op == ir.OpSoftmaxCrossEntropy && loss < 0:
			loss = i
		case n.Op == ir.OpSoftmaxCrossEntropy:
			return nil, fmt.Errorf("codegen: the training graph has two losses")
		case n.Op.Def().SideEffect && side == len(nodes):
			side = i
		case !n.Op.Def().SideEffect && side < len(nodes):
			return nil, fmt.Errorf("codegen: node %s comes after the training step's side effects", n.Op)
		}
	}
	if loss < 0 || loss > side {
		return nil, fmt.Errorf("codegen: the training graph has no loss before its updates")
	}
	tc := &trainCode{}

	fwd, err := t.stmts(nodes[:loss])
	if err != nil {
		return nil, err
	}
	ln := nodes[loss]
	c, args, err := t.call(ln, t.field(ln))
	if err != nil {
		return nil, err
	}
	lossStmts := []jen.Code{
		jen.Comment(nodeComment(ln)),
		jen.List(jen.Id("loss"), jen.Err()).Op(":=").Qual(RuntimePath, c.Func).Call(args...),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Lit(0), jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": %w"), jen.Err()))),
		jen.If(jen.Qual("math", "IsNaN").Call(jen.Float64().Parens(jen.Id("loss"))).Op("||").Qual("math", "IsInf").Call(jen.Float64().Parens(jen.Id("loss")), jen.Lit(0))).Block(
			jen.Return(jen.Id("loss"), jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": the loss is %v; the step is skipped"), jen.Id("loss"))),
		),
	}
	bwd, err := t.stmts(nodes[loss+1 : side])
	if err != nil {
		return nil, err
	}
	locals := t.declare()
	tc.backward = append([]jen.Code{
		jen.Id("m").Dot("training").Call(),
		jen.If(jen.Id("batch").Op("<").Lit(1)).Block(
			jen.Return(jen.Lit(0), jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": batch size %d, want at least 1"), jen.Id("batch"))),
		),
		inputCheck(pkg, jen.Lit(0)),
		jen.If(jen.Len(jen.Id("labels")).Op("!=").Id("batch")).Block(
			jen.Return(jen.Lit(0), jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": %d labels for a batch of %d"), jen.Len(jen.Id("labels")), jen.Id("batch"))),
		),
		jen.Id("m").Dot("reserve").Call(jen.Id("batch").Op("*").Id("trainArenaSize")),
	}, locals...)
	tc.backward = append(append(append(tc.backward, fwd...), lossStmts...), bwd...)
	tc.backward = append(tc.backward, jen.Return(jen.Id("loss"), jen.Nil()))

	// The commit: one optimizer step over every Update, then the other side
	// effects (running statistics) in order.
	var params []jen.Code
	var others []*ir.Node
	numTrain := 0
	for _, n := range nodes[side:] {
		if n.Op != ir.OpUpdate {
			others = append(others, n)
			continue
		}
		p, g := n.Args[0], n.Args[1]
		if ir.Root(g).Kind != ir.KindResult || g.Type.Shape.HasBatch() {
			return nil, fmt.Errorf("codegen: the gradient of %q does not live in the fixed arena", p.Name)
		}
		off, size := t.woff[p], p.Type.Shape.Static()
		numTrain += size
		params = append(params, jen.Values(jen.Dict{
			jen.Id("Name"):  jen.Lit(p.Name),
			jen.Id("Group"): jen.Qual(RuntimePath, roleGroup[p.Param.Role]),
			jen.Id("Data"):  jen.Id("m").Dot("w").Index(jen.Lit(off).Op(":").Lit(off + size)),
			jen.Id("Grad"):  t.fixedSlice(g),
		}))
	}
	sideStmts, err := t.stmts(others)
	if err != nil {
		return nil, err
	}
	tc.commit = append(t.declare(), jen.Id("m").Dot("Optimizer").Call().Dot("Step").Call(jen.Id("m").Dot("params")))
	tc.commit = append(tc.commit, sideStmts...)
	tc.commit = append(tc.commit, jen.Id("m").Dot("step").Op("++"))
	if e.cached {
		tc.commit = append(tc.commit, jen.Id("m").Dot("stale").Op("=").True())
	}
	tc.inits = []jen.Code{
		jen.If(jen.Id("m").Dot("params").Op("!=").Nil()).Block(jen.Return()),
		jen.Id("m").Dot("tfixed").Op("=").Make(jen.Index().Float32(), jen.Id("trainFixedSize")),
		jen.Id("m").Dot("params").Op("=").Index().Qual(RuntimePath, "Param").Values(params...),
	}
	tc.fields = []jen.Code{
		jen.Id("tfixed").Index().Float32().Comment("training values without a batch dimension: gradients"),
		jen.Id("seed").Uint64().Comment("chosen by WithSeed; with step, fixes dropout masks"),
		jen.Id("noDropout").Bool().Comment("set by WithoutDropout"),
		jen.Id("randomInit").Bool().Comment("set by WithRandomInit"),
		jen.Id("step").Uint64().Comment("training steps taken"),
		jen.Id("opt").Qual(RuntimePath, "Optimizer"),
		jen.Id("params").Index().Qual(RuntimePath, "Param").Comment("what the optimizer updates: weights and their gradients"),
	}
	tc.consts = []jen.Code{
		jen.Comment("trainArenaSize and trainFixedSize are training's activation memory per"), jen.Comment("sample and its fixed values (gradients)."),
		jen.Id("trainArenaSize").Op("=").Lit(t.g.Arena),
		jen.Id("trainFixedSize").Op("=").Lit(t.g.Fixed),
		jen.Comment("structureHash identifies the weight layout that checkpoints hold."),
		jen.Id("structureHash").Op("=").Lit(e.structureHash()),
		jen.Comment("maxOptState bounds the optimizer state a checkpoint may hold."),
		jen.Id("maxOptState").Op("=").Lit(4 * numTrain),
	}
	return tc, nil
}

// structureHash is FNV-1a over the weight layout: every parameter's name,
// shape, offset and trainability, and the total size. A checkpoint saved by
// a model with another layout is refused.
func (e *emitter) structureHash() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "smhgen weights layout 1\n%d\n", len(e.weights))
	for i, p := range e.eval.g.Params {
		fmt.Fprintf(h, "%q %v %d %v\n", p.Name, p.Type, e.poff[i], p.Param.Trainable)
	}
	return h.Sum64()
}

// trainAPI emits the training half of the package's API.
func (e *emitter) trainAPI(f *jen.File, tc *trainCode) {
	pkg := e.opts.Package
	m := func(name string) *jen.Statement { return method(f, name) }
	xArgs := []jen.Code{jen.Id("x").Index().Float32(), jen.Id("labels").Index().Int32(), jen.Id("batch").Int()}
	lossErr := []jen.Code{jen.Float32(), jen.Error()}

	doc(f, "Option configures New.")
	f.Type().Id("Option").Func().Params(jen.Op("*").Id("Model"))
	doc(f, "WithSeed sets the seed of the model's random choices (dropout masks); the\ndefault is 0. The same seed and data give the same training run.")
	f.Func().Id("WithSeed").Params(jen.Id("seed").Uint64()).Id("Option").Block(
		jen.Return(jen.Func().Params(jen.Id("m").Op("*").Id("Model")).Block(jen.Id("m").Dot("seed").Op("=").Id("seed"))),
	)

	doc(f, "WithoutDropout turns dropout off in training, as in evaluation; useful\nto compare gradients with another framework's, or to fine-tune.")
	f.Func().Id("WithoutDropout").Params().Id("Option").Block(
		jen.Return(jen.Func().Params(jen.Id("m").Op("*").Id("Model")).Block(jen.Id("m").Dot("noDropout").Op("=").True())),
	)

	doc(f, "WithRandomInit replaces the weights of the model file by a fresh\n"+
		"initialisation drawn from the seed, to train from scratch: He-normal\n"+
		"convolution and dense weights (std sqrt(2/fan_in)), zero biases,\n"+
		"BatchNorm scale 1, shift 0, running mean 0 and variance 1; for a\n"+
		"compressed model, a new pool (entries of P with unit variance) and the\n"+
		"scales' initial values.")
	f.Func().Id("WithRandomInit").Params().Id("Option").Block(
		jen.Return(jen.Func().Params(jen.Id("m").Op("*").Id("Model")).Block(jen.Id("m").Dot("randomInit").Op("=").True())),
	)
	doc(f, "reinit draws the weights WithRandomInit asks for.")
	m("reinit").Params().Block(append(e.reinitBody(), staleStmt(e.cached))...)

	doc(f, "TrainStep runs one training step on batch samples x with integer class\n"+
		"labels: forward in training mode (batch statistics, dropout), softmax\n"+
		"cross-entropy averaged over the batch, backward, and one optimizer step.\n"+
		"It returns the loss before the step. Bad input, a label out of range or\n"+
		"a non-finite loss return an error and leave the model as it was. After\n"+
		"the first call at a given batch size, TrainStep allocates nothing.")
	m("TrainStep").Params(xArgs...).Params(lossErr...).Block(
		jen.List(jen.Id("loss"), jen.Err()).Op(":=").Id("m").Dot("backward").Call(jen.Id("x"), jen.Id("labels"), jen.Id("batch")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Id("loss"), jen.Err())),
		jen.Id("m").Dot("commit").Call(jen.Id("batch")),
		jen.Return(jen.Id("loss"), jen.Nil()),
	)
	doc(f, "Gradients computes the loss TrainStep would see and every parameter's\n"+
		"gradient (in Params) without changing the model.")
	m("Gradients").Params(xArgs...).Params(lossErr...).Block(
		jen.Return(jen.Id("m").Dot("backward").Call(jen.Id("x"), jen.Id("labels"), jen.Id("batch"))),
	)
	doc(f, "training allocates what training needs beyond inference, once: the\ngradients and the optimizer's view of the parameters.")
	m("training").Params().Block(tc.inits...)
	doc(f, "backward runs forward, loss and backward, leaving the gradients in the\nfixed arena.")
	m("backward").Params(xArgs...).Params(lossErr...).Block(tc.backward...)
	doc(f, "commit applies a successful step: the optimizer update, the running\nstatistics, the step counter.")
	m("commit").Params(jen.Id("batch").Int()).Block(tc.commit...)

	doc(f, "Optimizer returns the model's optimizer, setting the default (SGD with\nlearning rate 0.01 and momentum 0.9) if none was set.")
	m("Optimizer").Params().Qual(RuntimePath, "Optimizer").Block(
		jen.Id("m").Dot("training").Call(),
		jen.If(jen.Id("m").Dot("opt").Op("==").Nil()).Block(
			jen.Id("m").Dot("SetOptimizer").Call(jen.Id("defaultOptimizer").Call()),
		),
		jen.Return(jen.Id("m").Dot("opt")),
	)
	f.Func().Id("defaultOptimizer").Params().Qual(RuntimePath, "Optimizer").Block(
		jen.Return(jen.Op("&").Qual(RuntimePath, "SGD").Values(jen.Dict{jen.Id("LR"): jen.Lit(0.01), jen.Id("Momentum"): jen.Lit(0.9)})),
	)
	doc(f, "SetOptimizer makes o the model's optimizer, initialising its state for\n"+
		"the model's parameters (an optimizer serves one model). Its\n"+
		"hyperparameters, such as the learning rate, may change between steps.")
	m("SetOptimizer").Params(jen.Id("o").Qual(RuntimePath, "Optimizer")).Block(
		jen.Id("m").Dot("training").Call(),
		jen.Id("o").Dot("Init").Call(jen.Id("m").Dot("params")),
		jen.Id("m").Dot("opt").Op("=").Id("o"),
	)
	doc(f, "Params returns the trainable parameters as the optimizer sees them: each\n"+
		"one's name in the model file, its optimizer group, and the model's own\n"+
		"buffers for its values and its last gradient.")
	m("Params").Params().Index().Qual(RuntimePath, "Param").Block(
		jen.Id("m").Dot("training").Call(),
		jen.Return(jen.Id("m").Dot("params")),
	)
	doc(f, "Steps returns the number of training steps the model has taken.")
	m("Steps").Params().Uint64().Block(jen.Return(jen.Id("m").Dot("step")))

	doc(f, "Save writes a checkpoint: weights, normalisation statistics, the step\n"+
		"counter, the seed and the optimizer's state.")
	m("Save").Params(jen.Id("w").Qual("io", "Writer")).Error().Block(
		jen.Id("c").Op(":=").Op("&").Qual(RuntimePath, "Checkpoint").Values(jen.Dict{
			jen.Id("Structure"): jen.Id("structureHash"), jen.Id("Step"): jen.Id("m").Dot("step"),
			jen.Id("Seed"): jen.Id("m").Dot("seed"), jen.Id("Weights"): jen.Id("m").Dot("w"),
		}),
		jen.If(jen.Id("m").Dot("opt").Op("!=").Nil()).Block(
			jen.Id("c").Dot("OptKind").Op("=").Qual("fmt", "Sprintf").Call(jen.Lit("%T"), jen.Id("m").Dot("opt")),
			jen.List(jen.Id("c").Dot("OptStep"), jen.Id("c").Dot("OptState")).Op("=").Id("m").Dot("opt").Dot("State").Call(),
		),
		jen.Return(jen.Qual(RuntimePath, "WriteCheckpoint").Call(jen.Id("w"), jen.Id("c"))),
	)
	doc(f, "Load reads a checkpoint that Save wrote for this model. A checkpoint of\n"+
		"another model or format version, a truncated or corrupted one, or one\n"+
		"holding the state of another kind of optimizer is an error, and the\n"+
		"model is left as it was.")
	m("Load").Params(jen.Id("r").Qual("io", "Reader")).Error().Block(
		jen.List(jen.Id("c"), jen.Err()).Op(":=").Qual(RuntimePath, "ReadCheckpoint").Call(jen.Id("r"), jen.Id("structureHash"), jen.Id("numWeights"), jen.Id("maxOptState")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": %w"), jen.Err()))),
		jen.Id("m").Dot("training").Call(),
		jen.Id("opt").Op(":=").Id("m").Dot("opt"),
		jen.If(jen.Id("c").Dot("OptKind").Op("!=").Lit("")).Block(
			jen.If(jen.Id("opt").Op("==").Nil()).Block(
				jen.Id("opt").Op("=").Id("defaultOptimizer").Call(),
				jen.Id("opt").Dot("Init").Call(jen.Id("m").Dot("params")),
			),
			jen.If(jen.Id("kind").Op(":=").Qual("fmt", "Sprintf").Call(jen.Lit("%T"), jen.Id("opt")), jen.Id("kind").Op("!=").Id("c").Dot("OptKind")).Block(
				jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": the checkpoint holds %s state, the model's optimizer is a %s"), jen.Id("c").Dot("OptKind"), jen.Id("kind"))),
			),
			jen.If(jen.Err().Op(":=").Id("opt").Dot("SetState").Call(jen.Id("c").Dot("OptStep"), jen.Id("c").Dot("OptState")), jen.Err().Op("!=").Nil()).Block(
				jen.Return(jen.Qual("fmt", "Errorf").Call(jen.Lit(pkg+": %w"), jen.Err())),
			),
			jen.Id("m").Dot("opt").Op("=").Id("opt"),
		),
		jen.Copy(jen.Id("m").Dot("w"), jen.Id("c").Dot("Weights")),
		jen.Id("m").Dot("step").Op("=").Id("c").Dot("Step"),
		staleStmt(e.cached),
		jen.If(jen.Id("c").Dot("Seed").Op("!=").Id("m").Dot("seed")).Block(
			jen.Id("m").Dot("seed").Op("=").Id("c").Dot("Seed"),
			jen.Comment("Kernels that draw random numbers hold the seed."),
			jen.Return(jen.Id("m").Dot("init").Call()),
		),
		jen.Return(jen.Nil()),
	)
	doc(f, "SaveFile writes a checkpoint to path atomically: the file holds the old\ncheckpoint or the new one, never part of one.")
	m("SaveFile").Params(jen.Id("path").String()).Error().Block(
		jen.Return(jen.Qual(RuntimePath, "WriteFileAtomic").Call(jen.Id("path"), jen.Id("m").Dot("Save"))),
	)
	doc(f, "LoadFile reads a checkpoint from path (see Load).")
	m("LoadFile").Params(jen.Id("path").String()).Error().Block(
		jen.List(jen.Id("r"), jen.Err()).Op(":=").Qual("os", "Open").Call(jen.Id("path")),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
		jen.Defer().Id("r").Dot("Close").Call(),
		jen.Return(jen.Id("m").Dot("Load").Call(jen.Qual("bufio", "NewReader").Call(jen.Id("r")))),
	)
}

// reinitBody re-draws every parameter from the model's seed: He-normal
// weights (std sqrt(2/fan_in), PyTorch's kaiming_normal_), zero biases,
// BatchNorm scale 1 and shift 0, running mean 0 and variance 1. Parameters
// of other roles keep their values.
func (e *emitter) reinitBody() []jen.Code {
	g := e.eval.g
	var body []jen.Code
	usesRNG := false
	r := ir.ReportSMH(g)
	for i, p := range g.Params {
		off, size := e.poff[i], p.Type.Shape.Static()
		buf := jen.Id("m").Dot("w").Index(jen.Lit(off).Op(":").Lit(off + size))
		fill := func(v float32) *jen.Statement {
			return jen.For(jen.Id("i").Op(":=").Range().Add(buf)).Block(
				jen.Id("m").Dot("w").Index(jen.Lit(off).Op("+").Id("i")).Op("=").Lit(v))
		}
		note := strconvQuote(p.Name)
		switch p.Param.Role {
		case ir.RoleWeight:
			if fan := ir.FanIn(g, p); fan > 0 {
				usesRNG = true
				body = append(body, jen.Qual(RuntimePath, "HeNormal").Call(buf, jen.Id("rng"), jen.Lit(fan)).Comment(note))
			}
		case ir.RoleBias, ir.RoleNormBias, ir.RoleNormMean:
			body = append(body, jen.Clear(buf).Comment(note))
		case ir.RoleNormScale, ir.RoleNormVar:
			body = append(body, fill(1).Comment(note))
		case ir.RoleSMHPool:
			usesRNG = true
			if r.Variant == "hash" {
				body = append(body, jen.Qual(RuntimePath, "Normal").Call(buf, jen.Id("rng"), jen.Lit(0), jen.Lit(1)).Comment(note))
			} else {
				half := off + size/2
				body = append(body, jen.Qual(RuntimePath, "SMHInitFactors").Call(
					jen.Id("m").Dot("w").Index(jen.Lit(off).Op(":").Lit(half)),
					jen.Id("m").Dot("w").Index(jen.Lit(half).Op(":").Lit(off+size)),
					jen.Id("rng"), jen.Lit(r.Rank)).Comment(note))
			}
		case ir.RoleSMHScale:
			vals := make([]jen.Code, len(p.Param.Data))
			for j, v := range p.Param.Data {
				vals[j] = lit32(v)
			}
			body = append(body, jen.Copy(buf, jen.Index().Float32().Values(vals...)).Comment(note))
		}
	}
	if usesRNG {
		body = append([]jen.Code{jen.Id("rng").Op(":=").Qual(RuntimePath, "NewRNG").Call(jen.Id("m").Dot("seed"))}, body...)
	}
	return body
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// staleStmt marks cached weights out of date, when the package caches them.
func staleStmt(cached bool) jen.Code {
	if !cached {
		return jen.Null()
	}
	return jen.Id("m").Dot("stale").Op("=").True()
}
