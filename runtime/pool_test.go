package runtime

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type countTask struct {
	hits []int32
}

func (c *countTask) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		atomic.AddInt32(&c.hits[i], 1)
	}
}

func TestParallelForCoversEachItemOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 64, 1001} {
		for _, grain := range []int{0, 1, 5, 4096} {
			ct := &countTask{hits: make([]int32, n)}
			ParallelFor(n, grain, ct)
			for i, h := range ct.hits {
				require.Equal(t, int32(1), h, "n=%d grain=%d item %d", n, grain, i)
			}
		}
	}
}

type nestedTask struct {
	inner *countTask
}

func (nt *nestedTask) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		ParallelFor(len(nt.inner.hits), 1, nt.inner)
	}
}

func TestParallelForNestedAndConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nt := &nestedTask{inner: &countTask{hits: make([]int32, 100)}}
			ParallelFor(8, 1, nt)
			for _, h := range nt.inner.hits {
				if h != 8 {
					t.Errorf("have %d hits, want 8", h)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestParallelForAllocatesNothing(t *testing.T) {
	ct := &countTask{hits: make([]int32, 1000)}
	ParallelFor(1000, 1, ct)
	allocs := testing.AllocsPerRun(100, func() { ParallelFor(1000, 1, ct) })
	require.Zero(t, allocs)
}

// TestSetPoolSpin: with the spin off the helpers block between calls, and
// the work is still all done, once.
func TestSetPoolSpin(t *testing.T) {
	require.Equal(t, DefaultPoolSpin, SetPoolSpin(0))
	defer SetPoolSpin(DefaultPoolSpin)
	for range 3 {
		ct := &countTask{hits: make([]int32, 100)}
		ParallelFor(100, 1, ct)
		for i, h := range ct.hits {
			require.Equal(t, int32(1), h, "item %d", i)
		}
		time.Sleep(time.Millisecond) // let the helper block
	}
	require.Equal(t, time.Duration(0), SetPoolSpin(-time.Second))
	require.Equal(t, time.Duration(0), SetPoolSpin(DefaultPoolSpin))
}

// unitCounter counts the units it runs, each once gate is closed.
type unitCounter struct {
	ran  atomic.Int32
	gate chan struct{}
}

func (c *unitCounter) Run(lo, hi int) {
	<-c.gate
	c.ran.Add(int32(hi - lo))
}

// TestSideWork: posted units run exactly once, whoever runs them; only one
// sideWork is on offer at a time; one whose units are all done gives way
// to the next even if its poster never finished it (a Forward that
// panicked), and its late finish does not withdraw the new offer.
func TestSideWork(t *testing.T) {
	if Workers() < 2 {
		t.Skip("side work needs a helper")
	}
	var a, b sideWork
	ta := unitCounter{gate: make(chan struct{})}
	tb := unitCounter{gate: make(chan struct{})}
	close(tb.gate)
	require.True(t, a.post(&ta, 5))
	// No unit of a can finish before the gate opens.
	require.False(t, b.post(&tb, 3), "a second offer while the first has units left")
	close(ta.gate)
	for a.runOne() {
	}
	for a.done.Load() < 5 { // a helper may be running the last one
	}
	require.Equal(t, int32(5), ta.ran.Load())
	// a is done but not finished: b replaces it.
	require.True(t, b.post(&tb, 3))
	a.finish()
	require.Same(t, &b, poolSide.Load(), "a late finish withdrew another offer")
	b.finish()
	require.Equal(t, int32(3), tb.ran.Load())
	require.Nil(t, poolSide.Load())
	require.False(t, a.post(&ta, 0), "an empty offer")
}
