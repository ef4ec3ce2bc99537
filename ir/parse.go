package ir

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse reads the text form that Format writes. Parameters come back without
// data. Value IDs are kept, so Format(Parse(Format(g))) == Format(g).
func Parse(text string) (*Graph, error) {
	p := &parser{vals: map[int]*Value{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		toks, err := lex(s)
		if err == nil {
			err = p.line(toks)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.g == nil {
		return nil, fmt.Errorf("no graph header")
	}
	maxID := -1
	for id := range p.vals {
		maxID = max(maxID, id)
	}
	p.g.nextValue = maxID + 1
	p.g.nextNode = len(p.g.Nodes)
	return p.g, nil
}

type tokKind uint8

const (
	tWord tokKind = iota
	tString
	tPunct
)

type token struct {
	kind tokKind
	text string
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return nil, fmt.Errorf("bad string at column %d: %v", i+1, err)
			}
			u, _ := strconv.Unquote(q)
			out = append(out, token{tString, u})
			i += len(q)
		case strings.IndexByte("=:,[]{}@", c) >= 0:
			out = append(out, token{tPunct, string(c)})
			i++
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, token{tWord, s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at column %d", c, i+1)
		}
	}
	return out, nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+' || c == '-' || c == '?'
}

type parser struct {
	g    *Graph
	vals map[int]*Value
	toks []token
	pos  int
}

func (p *parser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *parser) next() (token, error) {
	if p.pos >= len(p.toks) {
		return token{}, fmt.Errorf("unexpected end of line")
	}
	p.pos++
	return p.toks[p.pos-1], nil
}

func (p *parser) expect(kind tokKind, text string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.kind != kind || (text != "" && t.text != text) {
		return fmt.Errorf("want %q, have %q", text, t.text)
	}
	return nil
}

func (p *parser) word() (string, error) {
	t, err := p.next()
	if err != nil {
		return "", err
	}
	if t.kind != tWord {
		return "", fmt.Errorf("want a word, have %q", t.text)
	}
	return t.text, nil
}

func (p *parser) str() (string, error) {
	t, err := p.next()
	if err != nil {
		return "", err
	}
	if t.kind != tString {
		return "", fmt.Errorf("want a quoted string, have %q", t.text)
	}
	return t.text, nil
}

func (p *parser) done() error {
	if t := p.peek(); t != nil {
		return fmt.Errorf("unexpected %q at end of line", t.text)
	}
	return nil
}

func parseValueID(w string) (int, error) {
	if !strings.HasPrefix(w, "v") {
		return 0, fmt.Errorf("want a value such as v3, have %q", w)
	}
	id, err := strconv.Atoi(w[1:])
	if err != nil || id < 0 {
		return 0, fmt.Errorf("bad value name %q", w)
	}
	return id, nil
}

// decl parses "vID:TYPE" and registers a new value.
func (p *parser) decl(kind ValueKind) (*Value, error) {
	w, err := p.word()
	if err != nil {
		return nil, err
	}
	id, err := parseValueID(w)
	if err != nil {
		return nil, err
	}
	if _, dup := p.vals[id]; dup {
		return nil, fmt.Errorf("v%d defined twice", id)
	}
	if err := p.expect(tPunct, ":"); err != nil {
		return nil, err
	}
	t, err := p.typ()
	if err != nil {
		return nil, err
	}
	v := &Value{ID: id, Kind: kind, Type: t}
	p.vals[id] = v
	return v, nil
}

func (p *parser) typ() (TensorType, error) {
	w, err := p.word()
	if err != nil {
		return TensorType{}, err
	}
	if w == "?" {
		return TensorType{}, nil
	}
	d, err := ParseDType(w)
	if err != nil {
		return TensorType{}, err
	}
	words, err := p.list()
	if err != nil {
		return TensorType{}, err
	}
	s := Shape{}
	for _, x := range words {
		if x == "N" {
			s = append(s, BatchDim)
			continue
		}
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 {
			return TensorType{}, fmt.Errorf("bad dimension %q", x)
		}
		s = append(s, n)
	}
	return TensorType{DType: d, Shape: s}, nil
}

// list parses "[w,w,...]".
func (p *parser) list() ([]string, error) {
	if err := p.expect(tPunct, "["); err != nil {
		return nil, err
	}
	var out []string
	if t := p.peek(); t != nil && t.kind == tPunct && t.text == "]" {
		p.pos++
		return out, nil
	}
	for {
		w, err := p.word()
		if err != nil {
			return nil, err
		}
		out = append(out, w)
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		if t.kind == tPunct && t.text == "]" {
			return out, nil
		}
		if t.kind != tPunct || t.text != "," {
			return nil, fmt.Errorf("want , or ], have %q", t.text)
		}
	}
}

func (p *parser) ref() (*Value, error) {
	w, err := p.word()
	if err != nil {
		return nil, err
	}
	if w == "_" {
		return nil, nil
	}
	id, err := parseValueID(w)
	if err != nil {
		return nil, err
	}
	v, ok := p.vals[id]
	if !ok {
		return nil, fmt.Errorf("v%d is used before it is defined", id)
	}
	return v, nil
}

func (p *parser) line(toks []token) error {
	p.toks, p.pos = toks, 0
	head := toks[0]
	if head.kind == tWord {
		switch head.text {
		case "graph":
			return p.header()
		case "input", "param", "const", "output":
			if p.g == nil {
				return fmt.Errorf("%s before the graph header", head.text)
			}
			p.pos++
			switch head.text {
			case "input":
				return p.input()
			case "param":
				return p.param()
			case "const":
				return p.konst()
			default:
				return p.output()
			}
		}
	}
	if p.g == nil {
		return fmt.Errorf("node before the graph header")
	}
	return p.node()
}

func (p *parser) header() error {
	if p.g != nil {
		return fmt.Errorf("second graph header")
	}
	p.pos++
	name, err := p.str()
	if err != nil {
		return err
	}
	g := New(name, 0)
	for p.peek() != nil {
		key, err := p.word()
		if err != nil {
			return err
		}
		if err := p.expect(tPunct, "="); err != nil {
			return err
		}
		val, err := p.word()
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("%s: %v", key, err)
		}
		switch key {
		case "opset":
			g.Opset = n
		case "export_batch":
			g.ExportBatch = n
		case "arena":
			g.Arena, g.Planned = n, true
		case "fixed":
			g.Fixed, g.Planned = n, true
		default:
			return fmt.Errorf("unknown graph field %q", key)
		}
	}
	p.g = g
	return nil
}

func (p *parser) input() error {
	v, err := p.decl(KindInput)
	if err != nil {
		return err
	}
	if v.Name, err = p.str(); err != nil {
		return err
	}
	p.g.Inputs = append(p.g.Inputs, v)
	return p.done()
}

func (p *parser) param() error {
	v, err := p.decl(KindParam)
	if err != nil {
		return err
	}
	role, err := p.word()
	if err != nil {
		return err
	}
	prm := &Param{}
	found := false
	for i, r := range roleNames {
		if r == role {
			prm.Role, found = Role(i), true
		}
	}
	if !found {
		return fmt.Errorf("unknown role %q", role)
	}
	if t := p.peek(); t != nil && t.kind == tWord && t.text == "trainable" {
		prm.Trainable = true
		p.pos++
	}
	if v.Name, err = p.str(); err != nil {
		return err
	}
	v.Param = prm
	p.g.Params = append(p.g.Params, v)
	return p.done()
}

func (p *parser) konst() error {
	v, err := p.decl(KindConst)
	if err != nil {
		return err
	}
	if !v.Type.Known() {
		return fmt.Errorf("constant v%d needs a type", v.ID)
	}
	if err := p.expect(tPunct, "="); err != nil {
		return err
	}
	words, err := p.list()
	if err != nil {
		return err
	}
	c := &Tensor{DType: v.Type.DType, Shape: v.Type.Shape}
	if c.DType == F32 {
		c.F32 = make([]float32, 0, len(words))
	} else {
		c.I64 = make([]int64, 0, len(words))
	}
	for _, w := range words {
		switch {
		case c.DType == F32:
			f, err := strconv.ParseFloat(w, 32)
			if err != nil {
				return fmt.Errorf("constant element %q: %v", w, err)
			}
			c.F32 = append(c.F32, float32(f))
		case w == "N":
			c.I64 = append(c.I64, SymBatch)
		default:
			n, err := strconv.ParseInt(w, 10, 64)
			if err != nil || n == math.MinInt64 {
				return fmt.Errorf("constant element %q is not an integer", w)
			}
			c.I64 = append(c.I64, n)
		}
	}
	if err := c.check(); err != nil {
		return err
	}
	v.Const = c
	if p.peek() != nil {
		if v.Name, err = p.str(); err != nil {
			return err
		}
	}
	p.g.Consts = append(p.g.Consts, v)
	return p.done()
}

func (p *parser) output() error {
	v, err := p.ref()
	if err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("output needs a value")
	}
	name, err := p.str()
	if err != nil {
		return err
	}
	p.g.AddOutput(name, v)
	return p.done()
}

func (p *parser) node() error {
	var results []*Value
	for len(p.toks) > 1 && p.toks[1].kind == tPunct && p.toks[1].text == ":" {
		v, err := p.decl(KindResult)
		if err != nil {
			return err
		}
		results = append(results, v)
		if t := p.peek(); t != nil && t.kind == tPunct && t.text == "@" {
			p.pos++
			w, err := p.word()
			if err != nil {
				return err
			}
			if v.Offset, err = strconv.Atoi(w); err != nil || v.Offset < 0 {
				return fmt.Errorf("bad offset %q", w)
			}
		}
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.kind == tPunct && t.text == "=" {
			break
		}
		if t.kind != tPunct || t.text != "," {
			return fmt.Errorf("want , or =, have %q", t.text)
		}
	}
	opName, err := p.word()
	if err != nil {
		return err
	}
	op, ok := LookupOp(opName)
	if !ok {
		return fmt.Errorf("unknown op %q", opName)
	}
	def := op.Def()
	if len(results) != def.Results {
		return fmt.Errorf("%s has %d results, have %d", opName, def.Results, len(results))
	}
	var args []*Value
	for t := p.peek(); t != nil && t.kind == tWord; t = p.peek() {
		a, err := p.ref()
		if err != nil {
			return err
		}
		args = append(args, a)
	}
	var attrs any
	if def.NewAttrs != nil {
		attrs = def.NewAttrs()
	}
	if t := p.peek(); t != nil && t.kind == tPunct && t.text == "{" {
		p.pos++
		if attrs == nil {
			return fmt.Errorf("%s takes no attributes", opName)
		}
		if err := p.attrs(attrs); err != nil {
			return err
		}
	}
	n := p.g.Append().Add(op, "", attrs, args...)
	if t := p.peek(); t != nil && t.kind == tString {
		n.Name = t.text
		p.pos++
	}
	// The builder made fresh results; adopt the parsed ones instead (Parse
	// resets the ID counter once all lines are read).
	for i, r := range results {
		r.Def = n
		n.Results[i] = r
	}
	return p.done()
}

func (p *parser) attrs(dst any) error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.kind == tPunct && t.text == "}" {
			return nil
		}
		if t.kind != tWord {
			return fmt.Errorf("want an attribute name, have %q", t.text)
		}
		if err := p.expect(tPunct, "="); err != nil {
			return err
		}
		var val attrToken
		nt := p.peek()
		switch {
		case nt == nil:
			return fmt.Errorf("attribute %s has no value", t.text)
		case nt.kind == tString:
			val = attrToken{word: nt.text, quoted: true}
			p.pos++
		case nt.kind == tPunct && nt.text == "[":
			l, err := p.list()
			if err != nil {
				return err
			}
			val = attrToken{isList: true, list: l}
		default:
			w, err := p.word()
			if err != nil {
				return err
			}
			val = attrToken{word: w}
		}
		if err := setAttr(dst, t.text, val); err != nil {
			return err
		}
	}
}
