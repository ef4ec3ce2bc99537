package runtime

import (
	"testing"
	"time"
)

type poolNopTask struct{ sink [2]int }

func (t *poolNopTask) Run(lo, hi int) { t.sink[lo%2] += hi - lo }

// BenchmarkParallelForDispatch times a ParallelFor whose chunks do almost
// nothing: the cost of handing a chunk to a pool worker and waiting for it,
// which every parallel kernel call pays.
func BenchmarkParallelForDispatch(b *testing.B) {
	t := &poolNopTask{}
	for b.Loop() {
		ParallelFor(2, 1, t)
	}
}

type poolSpinTask struct{ d time.Duration }

func (t *poolSpinTask) Run(lo, hi int) { spinFor(t.d) }

func spinFor(d time.Duration) {
	for s := time.Now(); time.Since(s) < d; {
	}
}

// BenchmarkParallelForAfterSerialWork times 20 µs of work on the caller
// followed by a ParallelFor of two 10 µs chunks, the pattern of a training
// step's kernels: ideally 30 µs per op; more is the time a pool worker
// takes to wake up and start its chunk.
func BenchmarkParallelForAfterSerialWork(b *testing.B) {
	t := &poolSpinTask{d: 10 * time.Microsecond}
	for b.Loop() {
		spinFor(20 * time.Microsecond)
		ParallelFor(2, 1, t)
	}
}
