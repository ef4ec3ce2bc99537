package ir

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Attribute structs. Field tags name the attribute in the text form; the
// printer writes only fields that differ from the op's defaults (NewAttrs),
// and the parser starts from those defaults, so the text stays short and
// round-trips exactly. Supported field types: int, bool, float32, string,
// []int, DType.

// ConvAttrs are Conv's attributes. Pads are in ONNX order
// [top, left, bottom, right]; AutoPad is resolved into Pads by shape
// inference and is "NOTSET" from StageTyped on.
//
// Act is an activation fused into the convolution by the fuse pass: "" for
// none, "relu", or "clip" between ActMin and ActMax. It exists from
// StageLowered on.
type ConvAttrs struct {
	Strides   []int   `ir:"strides"`
	Pads      []int   `ir:"pads"`
	Dilations []int   `ir:"dilations"`
	Group     int     `ir:"group"`
	AutoPad   string  `ir:"auto_pad"`
	Act       string  `ir:"act"`
	ActMin    float32 `ir:"act_min"`
	ActMax    float32 `ir:"act_max"`
	// BN is an inference BatchNormalization fused after the convolution
	// and before Act (the Fuse pass): the node then has seven arguments,
	// X, W, the bias or nil, and the normalisation's scale, shift, mean
	// and variance, and BNEpsilon is its epsilon.
	BN        bool    `ir:"bn"`
	BNEpsilon float32 `ir:"bn_epsilon"`
	// Residual is an Add fused after the convolution (and BN) and before
	// Act (the Fuse pass): the node's last argument, after the bias slot
	// or the normalisation's four, is a tensor of the result's shape that
	// is added to it.
	Residual bool `ir:"residual"`
}

func newConvAttrs() any {
	return &ConvAttrs{Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, Group: 1, AutoPad: "NOTSET"}
}

// GemmAttrs are Gemm's attributes: Y = Alpha·op(A)·op(B) + Beta·C.
type GemmAttrs struct {
	Alpha  float32 `ir:"alpha"`
	Beta   float32 `ir:"beta"`
	TransA bool    `ir:"trans_a"`
	TransB bool    `ir:"trans_b"`
}

func newGemmAttrs() any { return &GemmAttrs{Alpha: 1, Beta: 1} }

// BatchNormAttrs are BatchNormalization's attributes. Momentum follows ONNX:
// running = Momentum·running + (1−Momentum)·batch.
type BatchNormAttrs struct {
	Epsilon  float32 `ir:"epsilon"`
	Momentum float32 `ir:"momentum"`
}

func newBatchNormAttrs() any { return &BatchNormAttrs{Epsilon: 1e-5, Momentum: 0.9} }

// HardSigmoidAttrs: y = max(0, min(1, Alpha·x + Beta)).
type HardSigmoidAttrs struct {
	Alpha float32 `ir:"alpha"`
	Beta  float32 `ir:"beta"`
}

func newHardSigmoidAttrs() any { return &HardSigmoidAttrs{Alpha: 0.2, Beta: 0.5} }

// PoolAttrs are MaxPool's and AveragePool's attributes (2-D). Pads are
// [top, left, bottom, right].
type PoolAttrs struct {
	KernelShape     []int  `ir:"kernel_shape"`
	Strides         []int  `ir:"strides"`
	Pads            []int  `ir:"pads"`
	Dilations       []int  `ir:"dilations"`
	CeilMode        bool   `ir:"ceil_mode"`
	CountIncludePad bool   `ir:"count_include_pad"`
	AutoPad         string `ir:"auto_pad"`
}

func newPoolAttrs() any {
	return &PoolAttrs{KernelShape: []int{1, 1}, Strides: []int{1, 1}, Pads: []int{0, 0, 0, 0}, Dilations: []int{1, 1}, AutoPad: "NOTSET"}
}

// AxisAttrs serve ops with a single axis: Flatten, Concat, Gather, Softmax,
// LogSoftmax. The axis is normalised to be non-negative by shape inference.
type AxisAttrs struct {
	Axis int `ir:"axis"`
}

func newAxis1Attrs() any { return &AxisAttrs{Axis: 1} }
func newAxis0Attrs() any { return &AxisAttrs{Axis: 0} }

// ReshapeAttrs: with AllowZero, a 0 in the target shape means size zero
// rather than "copy the input dimension".
type ReshapeAttrs struct {
	AllowZero bool `ir:"allowzero"`
}

func newReshapeAttrs() any { return &ReshapeAttrs{} }

// TransposeAttrs holds the permutation.
type TransposeAttrs struct {
	Perm []int `ir:"perm"`
}

func newTransposeAttrs() any { return &TransposeAttrs{} }

// PadAttrs: Mode is "constant", "reflect" or "edge".
type PadAttrs struct {
	Mode string `ir:"mode"`
}

func newPadAttrs() any { return &PadAttrs{Mode: "constant"} }

// ReduceAttrs are the reductions' attributes; the axes are an argument.
type ReduceAttrs struct {
	KeepDims          bool `ir:"keepdims"`
	NoopWithEmptyAxes bool `ir:"noop_with_empty_axes"`
}

func newReduceAttrs() any { return &ReduceAttrs{KeepDims: true} }

// DropoutAttrs: the ratio is an argument; Seed seeds training masks.
type DropoutAttrs struct {
	Seed int `ir:"seed"`
}

func newDropoutAttrs() any { return &DropoutAttrs{} }

// ShapeAttrs select dimensions [Start, End) (opset 15); End defaults to all.
type ShapeAttrs struct {
	Start int `ir:"start"`
	End   int `ir:"end"`
}

// ShapeEndAll is ShapeAttrs.End's default: through the last dimension.
const ShapeEndAll = math.MaxInt32

func newShapeAttrs() any { return &ShapeAttrs{End: ShapeEndAll} }

// ConstantOfShapeAttrs: the fill value and its element type.
type ConstantOfShapeAttrs struct {
	Value float64 `ir:"value"`
	DType DType   `ir:"dtype"`
}

func newConstantOfShapeAttrs() any { return &ConstantOfShapeAttrs{DType: F32} }

// CastAttrs: the target element type.
type CastAttrs struct {
	To DType `ir:"to"`
}

func newCastAttrs() any { return &CastAttrs{To: F32} }

// formatAttrs writes the fields of attrs that differ from def as
// "{name=value ...}", or "" when all are defaults.
func formatAttrs(attrs, def any) string {
	if attrs == nil {
		return ""
	}
	if reflect.TypeOf(attrs) != reflect.TypeOf(def) {
		// Only a broken graph gets here; Verify reports it, and the dump
		// must not panic while saying so.
		return fmt.Sprintf("{!attributes of type %T}", attrs)
	}
	av := reflect.ValueOf(attrs).Elem()
	dv := reflect.ValueOf(def).Elem()
	var parts []string
	for i := 0; i < av.NumField(); i++ {
		f := av.Type().Field(i)
		if reflect.DeepEqual(av.Field(i).Interface(), dv.Field(i).Interface()) {
			continue
		}
		parts = append(parts, f.Tag.Get("ir")+"="+formatAttrValue(av.Field(i)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func formatAttrValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case int:
		return strconv.Itoa(x)
	case bool:
		return strconv.FormatBool(x)
	case float32:
		return formatFloat(float64(x), 32)
	case float64:
		return formatFloat(x, 64)
	case string:
		return strconv.Quote(x)
	case DType:
		return x.String()
	case []int:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = strconv.Itoa(e)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	panic("ir: unsupported attribute field type " + v.Type().String())
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// setAttr parses text into the field of attrs tagged name.
func setAttr(attrs any, name string, val attrToken) error {
	av := reflect.ValueOf(attrs).Elem()
	for i := 0; i < av.NumField(); i++ {
		if av.Type().Field(i).Tag.Get("ir") != name {
			continue
		}
		fv := av.Field(i)
		switch fv.Interface().(type) {
		case int:
			n, err := strconv.Atoi(val.word)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			fv.SetInt(int64(n))
		case bool:
			b, err := strconv.ParseBool(val.word)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			fv.SetBool(b)
		case float32:
			f, err := strconv.ParseFloat(val.word, 32)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			fv.SetFloat(f)
		case float64:
			f, err := strconv.ParseFloat(val.word, 64)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			fv.SetFloat(f)
		case string:
			if !val.quoted {
				return fmt.Errorf("attribute %s: want a quoted string", name)
			}
			fv.SetString(val.word)
		case DType:
			d, err := ParseDType(val.word)
			if err != nil {
				return fmt.Errorf("attribute %s: %v", name, err)
			}
			fv.SetUint(uint64(d))
		case []int:
			if !val.isList {
				return fmt.Errorf("attribute %s: want a list", name)
			}
			l := make([]int, len(val.list))
			for j, w := range val.list {
				n, err := strconv.Atoi(w)
				if err != nil {
					return fmt.Errorf("attribute %s: %v", name, err)
				}
				l[j] = n
			}
			fv.Set(reflect.ValueOf(l))
		default:
			return fmt.Errorf("attribute %s has unsupported type", name)
		}
		return nil
	}
	return fmt.Errorf("no attribute %q", name)
}

// attrToken is one parsed attribute value: a word, a quoted string or a list
// of words.
type attrToken struct {
	word   string
	quoted bool
	isList bool
	list   []string
}
