package lenet

import (
	"math/rand/v2"
	"testing"
)

// benchBatch is the batch size of the benchmarks, the one the performance
// issue compares against PyTorch at.
const benchBatch = 64

func benchData() ([]float32, []int32) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, benchBatch*InputSize)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	labels := make([]int32, benchBatch)
	for i := range labels {
		labels[i] = int32(r.IntN(10))
	}
	return x, labels
}

// BenchmarkTrainStep times one training step at batch 64 and reports
// images per second.
func BenchmarkTrainStep(b *testing.B) {
	m := New()
	x, labels := benchData()
	for b.Loop() {
		if _, err := m.TrainStep(x, labels, benchBatch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkForward times inference at batch 64.
func BenchmarkForward(b *testing.B) {
	m := New()
	x, _ := benchData()
	for b.Loop() {
		if _, err := m.Forward(x, benchBatch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "images/s")
}
