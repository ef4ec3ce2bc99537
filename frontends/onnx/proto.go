package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// A small reader for the parts of the ONNX protobuf that onnx-go does not
// report or gets wrong: opset imports, node names and domains, ordered node
// inputs and outputs, graph input and output shapes with symbolic
// dimensions, and the layout of every tensor (so that data onnx-go would
// misread, such as bools, or that would make it allocate without bound, is
// caught first with an error naming the tensor). Field numbers are those of
// onnx.proto.

type protoModel struct {
	irVersion int64
	opsets    map[string]int64
	graph     protoGraph
}

type protoGraph struct {
	name         string
	nodes        []protoNode
	initializers []protoTensor
	inputs       []protoValueInfo
	outputs      []protoValueInfo
}

type protoNode struct {
	name, opType, domain string
	inputs, outputs      []string
	attrs                []protoAttr
}

type protoAttr struct {
	name    string
	typ     int64
	tensors []protoTensor // the t field (and tensors, which we reject)
	hasSub  bool          // g or graphs set
}

type protoTensor struct {
	name      string
	dataType  int64
	dims      []int64
	rawLen    int
	hasRaw    bool
	typedLen  int // elements in the typed *_data field for the dtype
	external  bool
	segmented bool
	// raw bool data, decoded here because onnx-go reads 8 bytes per bool.
	raw []byte
}

type protoValueInfo struct {
	name     string
	elemType int64
	hasShape bool
	dims     []protoDim
}

type protoDim struct {
	value    int64
	param    string
	symbolic bool
}

// ONNX TensorProto.DataType values.
const (
	dtFloat   = 1
	dtUint8   = 2
	dtInt8    = 3
	dtUint16  = 4
	dtInt16   = 5
	dtInt32   = 6
	dtInt64   = 7
	dtString  = 8
	dtBool    = 9
	dtFloat16 = 10
	dtDouble  = 11
)

var dtypeNames = map[int64]string{
	0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
	8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64",
	15: "COMPLEX128", 16: "BFLOAT16",
}

func dtypeName(t int64) string {
	if s, ok := dtypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("dtype %d", t)
}

// fieldFunc handles one field; v is the varint value or b the bytes.
type fieldFunc func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error

// walk decodes a message field by field, skipping groups and fixed-width
// fields it does not need.
func walk(msg []byte, f fieldFunc) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		var v uint64
		var b []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(msg)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(msg)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(msg)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := f(num, typ, v, b); err != nil {
			return err
		}
	}
	return nil
}

func wantBytes(typ protowire.Type, field string) error {
	if typ != protowire.BytesType {
		return fmt.Errorf("malformed protobuf: field %s has wire type %d", field, typ)
	}
	return nil
}

// packedInts reads a repeated int64 field that may be packed or not.
func packedInts(typ protowire.Type, v uint64, b []byte, out *[]int64) error {
	if typ == protowire.VarintType {
		*out = append(*out, int64(v))
		return nil
	}
	if typ != protowire.BytesType {
		return fmt.Errorf("malformed protobuf: repeated int with wire type %d", typ)
	}
	for len(b) > 0 {
		x, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return fmt.Errorf("malformed protobuf: %v", protowire.ParseError(n))
		}
		*out = append(*out, int64(x))
		b = b[n:]
	}
	return nil
}

// countPacked counts the elements of a repeated numeric field.
func countPacked(typ protowire.Type, b []byte, width int) (int, error) {
	switch typ {
	case protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type:
		return 1, nil
	case protowire.BytesType:
		if width > 0 {
			if len(b)%width != 0 {
				return 0, fmt.Errorf("packed field of %d bytes is not a multiple of %d", len(b), width)
			}
			return len(b) / width, nil
		}
		n := 0
		for len(b) > 0 {
			_, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return 0, fmt.Errorf("malformed packed varints")
			}
			b = b[k:]
			n++
		}
		return n, nil
	}
	return 0, fmt.Errorf("malformed protobuf: wire type %d", typ)
}

func parseModel(data []byte) (*protoModel, error) {
	m := &protoModel{opsets: map[string]int64{}}
	sawGraph := false
	err := walk(data, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1: // ir_version
			m.irVersion = int64(v)
		case 8: // opset_import
			if err := wantBytes(typ, "opset_import"); err != nil {
				return err
			}
			var domain string
			var version int64
			if err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
				switch num {
				case 1:
					domain = string(b)
				case 2:
					version = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			m.opsets[domain] = version
		case 7: // graph
			if err := wantBytes(typ, "graph"); err != nil {
				return err
			}
			sawGraph = true
			return parseGraph(b, &m.graph)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sawGraph {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	return m, nil
}

func parseGraph(b []byte, g *protoGraph) error {
	return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		if num == 1 || num == 2 || num == 5 || num == 11 || num == 12 || num == 15 {
			if err := wantBytes(typ, "graph field"); err != nil {
				return err
			}
		}
		switch num {
		case 1:
			n, err := parseNode(b)
			if err != nil {
				return err
			}
			g.nodes = append(g.nodes, n)
		case 2:
			g.name = string(b)
		case 5:
			t, err := parseTensor(b)
			if err != nil {
				return err
			}
			g.initializers = append(g.initializers, t)
		case 11, 12:
			vi, err := parseValueInfo(b)
			if err != nil {
				return err
			}
			if num == 11 {
				g.inputs = append(g.inputs, vi)
			} else {
				g.outputs = append(g.outputs, vi)
			}
		case 15:
			return fmt.Errorf("sparse initializers are not supported")
		}
		return nil
	})
}

func parseNode(b []byte) (protoNode, error) {
	var n protoNode
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			n.inputs = append(n.inputs, string(b))
		case 2:
			n.outputs = append(n.outputs, string(b))
		case 3:
			n.name = string(b)
		case 4:
			n.opType = string(b)
		case 7:
			n.domain = string(b)
		case 5:
			if err := wantBytes(typ, "attribute"); err != nil {
				return err
			}
			a, err := parseAttr(b)
			if err != nil {
				return err
			}
			n.attrs = append(n.attrs, a)
		}
		return nil
	})
	return n, err
}

func parseAttr(b []byte) (protoAttr, error) {
	var a protoAttr
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			a.name = string(b)
		case 20:
			a.typ = int64(v)
		case 5, 10: // t, tensors
			if err := wantBytes(typ, "attribute tensor"); err != nil {
				return err
			}
			t, err := parseTensor(b)
			if err != nil {
				return err
			}
			a.tensors = append(a.tensors, t)
		case 6, 11: // g, graphs
			a.hasSub = true
		}
		return nil
	})
	return a, err
}

func parseTensor(b []byte) (protoTensor, error) {
	var t protoTensor
	type field struct {
		typ protowire.Type
		b   []byte
	}
	var typed []field
	var typedNums []protowire.Number
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			return packedInts(typ, v, b, &t.dims)
		case 2:
			t.dataType = int64(v)
		case 3:
			t.segmented = true
		case 8:
			t.name = string(b)
		case 9:
			t.hasRaw, t.rawLen, t.raw = true, len(b), b
		case 13:
			t.external = true
		case 14:
			if v == 1 {
				t.external = true
			}
		case 4, 5, 6, 7, 10, 11:
			typed = append(typed, field{typ, b})
			typedNums = append(typedNums, num)
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	// The typed field that holds this dtype's data: float_data (4) for
	// FLOAT, int32_data (5) for INT32/BOOL/INT8/..., int64_data (7),
	// double_data (10), uint64_data (11), string_data (6).
	want := map[int64]protowire.Number{dtFloat: 4, dtInt32: 5, dtBool: 5, dtInt8: 5, dtUint8: 5, dtInt16: 5, dtUint16: 5, dtFloat16: 5, dtInt64: 7, dtDouble: 10, dtString: 6}[t.dataType]
	width := map[protowire.Number]int{4: 4, 10: 8, 11: 8}
	for i, f := range typed {
		if typedNums[i] != want {
			continue
		}
		c, err := countPacked(f.typ, f.b, width[typedNums[i]])
		if err != nil {
			return t, fmt.Errorf("tensor %q: %v", t.name, err)
		}
		t.typedLen += c
	}
	return t, nil
}

func parseValueInfo(b []byte) (protoValueInfo, error) {
	var vi protoValueInfo
	err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch num {
		case 1:
			vi.name = string(b)
		case 2: // TypeProto
			if err := wantBytes(typ, "type"); err != nil {
				return err
			}
			return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
				if num != 1 { // tensor_type only
					if num == 4 || num == 5 || num == 6 || num == 8 || num == 9 {
						return fmt.Errorf("value %q is not a tensor", vi.name)
					}
					return nil
				}
				if err := wantBytes(typ, "tensor_type"); err != nil {
					return err
				}
				return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
					switch num {
					case 1:
						vi.elemType = int64(v)
					case 2:
						vi.hasShape = true
						return walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
							if num != 1 {
								return nil
							}
							var d protoDim
							d.symbolic = true
							err := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
								switch num {
								case 1:
									d.value, d.symbolic = int64(v), false
								case 2:
									d.param = string(b)
								}
								return nil
							})
							vi.dims = append(vi.dims, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return vi, err
}

// elemSize is the byte width of raw data for the dtypes we read.
func elemSize(dt int64) int {
	switch dt {
	case dtFloat, dtInt32:
		return 4
	case dtInt64, dtDouble:
		return 8
	case dtBool, dtUint8, dtInt8:
		return 1
	case dtFloat16, dtInt16, dtUint16:
		return 2
	}
	return 0
}

// checkTensor validates a tensor's layout before onnx-go touches it: a
// supported dtype, non-negative dims within the element limit, data of
// exactly the length the dims imply, stored inline.
func checkTensor(t *protoTensor, maxElems int64) error {
	if t.external {
		return fmt.Errorf("tensor %q: external data is not supported", t.name)
	}
	if t.segmented {
		return fmt.Errorf("tensor %q: segmented tensors are not supported", t.name)
	}
	n := int64(1)
	for _, d := range t.dims {
		if d < 0 {
			return fmt.Errorf("tensor %q: negative dimension in %v", t.name, t.dims)
		}
		if d != 0 && n > math.MaxInt64/d {
			return fmt.Errorf("tensor %q: dimensions %v overflow", t.name, t.dims)
		}
		n *= d
	}
	if n > maxElems {
		return fmt.Errorf("tensor %q: %d elements exceed the limit of %d (see -max-params)", t.name, n, maxElems)
	}
	switch t.dataType {
	case dtFloat, dtInt64, dtInt32:
	case dtBool:
		return fmt.Errorf("tensor %q: BOOL tensors are not supported", t.name)
	default:
		return fmt.Errorf("tensor %q: element type %s is not supported (want FLOAT, INT64 or INT32)", t.name, dtypeName(t.dataType))
	}
	have := int64(t.typedLen)
	if t.hasRaw {
		if t.rawLen%elemSize(t.dataType) != 0 {
			return fmt.Errorf("tensor %q: %d bytes of raw data is not a whole number of %s elements", t.name, t.rawLen, dtypeName(t.dataType))
		}
		have = int64(t.rawLen / elemSize(t.dataType))
	}
	if have != n {
		return fmt.Errorf("tensor %q: holds %d elements, its dimensions %v need %d", t.name, have, t.dims, n)
	}
	if n == 0 {
		// onnx-go refuses tensors without data ("No data found").
		return fmt.Errorf("tensor %q: empty tensors are not supported", t.name)
	}
	return nil
}
