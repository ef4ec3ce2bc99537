package codegen

// smhHarness runs in the generated module (see TestSMHGenerated).
const smhHarness = `package conformance

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	rt "github.com/smhgen/smhgen/runtime"
//IMPORTS
)

type smhModel interface {
	Forward(x []float32, batch int) ([]float32, error)
	Gradients(x []float32, labels []int32, batch int) (float32, error)
	Params() []rt.Param
	Tensor(name string) []float32
	DenseWeight(name string) []float32
	NumParams() int
	Save(w io.Writer) error
}

type tensor struct {
	name          string
	offset, count int
}

var smhModels = []struct {
	name, variant    string
	side, rank       int
	trainable, input int
	dense            int // trainable values of the uncompressed model
	weights          int // values in the weights file
	arena, fixed     int // inference activations per sample, fixed values
	cached           bool
	twin             string
	new              func() smhModel
	tensors          func() []tensor
}{
//MODELS
}

func batch(n, size int) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, n*size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(rng.IntN(10))
	}
	return x, y
}

func TestSMHModels(t *testing.T) {
	byName := map[string]smhModel{}
	for _, sm := range smhModels {
		t.Run(sm.name, func(t *testing.T) {
			m := sm.new()
			byName[sm.name] = m
			if m.NumParams() != sm.trainable {
				t.Errorf("NumParams %d, the report says %d", m.NumParams(), sm.trainable)
			}
			pool, scales := m.Tensor("smh.pool"), m.Tensor("smh.scales")
			if len(pool) == 0 || len(scales) == 0 {
				t.Fatal("no pool or scales")
			}
			midRow := 0
			for i, tn := range sm.tensors() {
				got := m.DenseWeight(tn.name)
				if len(got) != tn.count {
					t.Fatalf("%s: %d values, want %d", tn.name, len(got), tn.count)
				}
				if sm.variant != "product" {
					continue
				}
				d, r := sm.side, sm.rank
				if tn.offset%d != 0 || (tn.offset+tn.count)%d != 0 {
					midRow++
				}
				for e := 0; e < tn.count; e++ {
					idx := tn.offset + e
					row, col := idx/d, idx%d
					var v float64
					for k := 0; k < r; k++ {
						v += float64(pool[row*r+k]) * float64(pool[d*r+k*d+col])
					}
					want := float64(scales[i]) * v
					// float32 accumulation over r products of unit-size
					// entries: the error scales with the entry, not the sum.
					if math.Abs(float64(got[e])-want) > 1e-5*math.Abs(float64(scales[i]))*(1+math.Abs(v)) {
						t.Fatalf("%s[%d]: reconstructed %v, want %v", tn.name, e, got[e], want)
					}
				}
			}
			// A checkpoint holds the pool, the scales and the uncompressed
			// parameters (and BatchNorm statistics), not the dense weights.
			var ck bytes.Buffer
			if err := m.Save(&ck); err != nil {
				t.Fatal(err)
			}
			if ck.Len() > 4*sm.weights+1024 {
				t.Errorf("checkpoint of %d bytes, the weights file holds %d values", ck.Len(), sm.weights)
			}
			t.Logf("checkpoint %d bytes = %.3f of the dense model's %d trainable values", ck.Len(), float64(ck.Len())/float64(4*sm.dense), sm.dense)
			if sm.variant == "product" && midRow == 0 {
				t.Error("no tensor starts or ends mid-row: the case does not test the boundaries")
			}
			x, _ := batch(2, sm.input)
			y, err := m.Forward(x, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatal("Forward gives non-finite outputs")
				}
			}
		})
	}
	// Fused and cached agree.
	for _, sm := range smhModels {
		if !sm.cached {
			continue
		}
		c, f := byName[sm.name], byName[sm.twin]
		x, _ := batch(3, sm.input)
		yc, _ := c.Forward(x, 3)
		yc = append([]float32(nil), yc...)
		yf, _ := f.Forward(x, 3)
		for i := range yc {
			if math.Abs(float64(yc[i]-yf[i])) > 1e-6*math.Max(1, math.Abs(float64(yf[i]))) {
				t.Errorf("%s: cached %v, fused %v at %d", sm.name, yc[i], yf[i], i)
				break
			}
		}
	}
}

// TestSMHGradients checks the gradients of the pool and of the scales with
// central finite differences of the float32 loss: along the gradient
// direction of the whole pool, and element by element for each scale.
func TestSMHGradients(t *testing.T) {
	for _, sm := range smhModels {
		if sm.cached {
			continue
		}
		t.Run(sm.name, func(t *testing.T) {
			m := sm.new()
			x, y := batch(4, sm.input)
			if _, err := m.Gradients(x, y, 4); err != nil {
				t.Fatal(err)
			}
			var pool, scales rt.Param
			for _, p := range m.Params() {
				switch p.Name {
				case "smh.pool":
					pool = p
				case "smh.scales":
					scales = p
				}
			}
			loss := func() float64 {
				l, err := m.Gradients(x, y, 4)
				if err != nil {
					t.Fatal(err)
				}
				return float64(l)
			}
			g := append([]float32(nil), pool.Grad...)
			gs := append([]float32(nil), scales.Grad...)
			orig := append([]float32(nil), pool.Data...)
			var gn float64
			for _, v := range g {
				gn += float64(v) * float64(v)
			}
			gn = math.Sqrt(gn)
			const h = 1e-3
			shift := func(s float64) float64 {
				for i := range pool.Data {
					pool.Data[i] = orig[i] + float32(s*float64(g[i])/gn)
				}
				return loss()
			}
			fd := (shift(h) - shift(-h)) / (2 * h)
			shift(0)
			if math.Abs(fd-gn) > 2e-2*gn {
				t.Errorf("pool: directional finite difference %.5g, gradient norm %.5g", fd, gn)
			}
			t.Logf("pool: directional finite difference %.6g, gradient norm %.6g", fd, gn)
			// The scales, along their own gradient: a small joint move, as
			// each bias scale alone shifts every output of its layer across
			// ReLU and max-pool kinks.
			origS := append([]float32(nil), scales.Data...)
			var sn float64
			for _, v := range gs {
				sn += float64(v) * float64(v)
			}
			sn = math.Sqrt(sn)
			const hs = 1e-4
			shiftS := func(s float64) float64 {
				for i := range scales.Data {
					scales.Data[i] = origS[i] + float32(s*float64(gs[i])/sn)
				}
				return loss()
			}
			if sn < 1e-2 {
				// Behind a BatchNorm in training mode a layer's scale does
				// not change the loss: every compressed layer here is, and
				// the gradient is rounding noise.
				t.Logf("scales: gradient norm %.3g, the loss is invariant to them", sn)
				return
			}
			fds := (shiftS(hs) - shiftS(-hs)) / (2 * hs)
			shiftS(0)
			if math.Abs(fds-sn) > 2e-2*sn {
				t.Errorf("scales: directional finite difference %.5g, gradient norm %.5g", fds, sn)
			}
		})
	}
}

// TestSMHMemory measures the heap a model holds after New and one Forward
// at batch 1: fused inference keeps the pool and at most two layers'
// weights (the one in use and the next, reconstructed meanwhile: see
// passes.SMHPrefetch), cached keeps every reconstructed weight.
func TestSMHMemory(t *testing.T) {
	// One worker: the pool's helpers and callers running background
	// reconstruction units take packing scratch of their own at times
	// that vary from run to run, and that shared scratch, which grows
	// once, would land in one measurement or another.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	heap := func(f func() smhModel, input int) (uint64, smhModel) {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		m := f()
		x, _ := batch(1, input)
		m.Forward(x, 1)
		runtime.GC()
		runtime.ReadMemStats(&b)
		return b.HeapAlloc - a.HeapAlloc, m
	}
	for _, sm := range smhModels {
		if !sm.cached {
			continue
		}
		var twin func() smhModel
		for _, o := range smhModels {
			if o.name == sm.twin {
				twin = o.new
			}
		}
		// The kernels keep shared scratch (im2col buffers) once grown:
		// grow it first so that neither measurement pays for it.
		for range 5 {
			heap(twin, sm.input)
			heap(sm.new, sm.input)
		}
		// Shared scratch that one measurement grows stays grown, so the
		// smallest of a few is the model's own.
		hf, mf := heap(twin, sm.input)
		hc, mc := heap(sm.new, sm.input)
		for range 3 {
			f, _ := heap(twin, sm.input)
			c, _ := heap(sm.new, sm.input)
			hf, hc = min(hf, f), min(hc, c)
		}
		// Fused holds two weight tensors at most, with the biases read
		// alongside them (1% of the model here).
		var dense, largest, second int
		for _, tn := range sm.tensors() {
			dense += tn.count
			if tn.count > largest {
				largest, second = tn.count, largest
			} else {
				second = max(second, tn.count)
			}
		}
		pair := largest + second + dense/100
		t.Logf("%s: fused %d bytes, cached %d bytes; dense weights %d bytes, largest layer %d bytes, pool %d bytes, Model struct %d bytes",
			sm.name, hf, hc, 4*dense, 4*largest, 4*len(mf.Tensor("smh.pool")), reflect.ValueOf(mf).Elem().Type().Size())
		// Fused: the weights file's values twice (the decoded copy every
		// model starts from, and the model's own), the fixed arena (two
		// layers' reconstructed weights and other small values), one
		// sample's activations and the Model struct itself (every kernel's
		// parameters), with 20% and 64 KiB for the runtime's own and for
		// measurement noise.
		var twinEntry = sm
		for _, o := range smhModels {
			if o.name == sm.twin {
				twinEntry = o
			}
		}
		bound := 4*(2*twinEntry.weights+twinEntry.fixed+twinEntry.arena) + int(reflect.ValueOf(mf).Elem().Type().Size())
		if int(hf) > bound*12/10+64<<10 {
			t.Errorf("%s: fused inference holds %d bytes, more than the weights, two layers and the activations (%d)", sm.twin, hf, bound)
		}
		if int(hc)-int(hf) < 4*(dense-pair)*9/10 {
			t.Errorf("%s: cached holds %d bytes more than fused, the weights beyond the two largest tensors are %d", sm.name, int(hc)-int(hf), 4*(dense-pair))
		}
		_ = mc
	}
}
`
