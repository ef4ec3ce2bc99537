package runtime

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a unit of data-parallel work: Run processes the items [lo, hi).
// Kernels keep their Task values in long-lived places (a parameter struct,
// a package variable guarded by the pool) so that handing one to the pool
// allocates nothing.
type Task interface {
	Run(lo, hi int)
}

// workerPool is a fixed set of goroutines, started once, that take chunks of
// a ParallelFor. Only one ParallelFor uses the workers at a time; a caller
// that finds them busy (another goroutine's model, or a nested call) runs its
// loop on its own goroutine instead of waiting, so the pool never deadlocks
// and concurrent models still make progress.
type workerPool struct {
	once sync.Once
	busy sync.Mutex
	jobs chan poolJob
	wg   sync.WaitGroup
	left atomic.Int32 // chunks handed to helpers and not yet finished
	n    int
}

// poolSpin is how long, in nanoseconds, an idle helper keeps polling for
// its next chunk, and a caller for its helpers' chunks, before blocking. A
// blocked goroutine takes 15-20 µs to wake on this machine (a futex
// wake-up in a VM), which BenchmarkParallelForAfterSerialWork measures; a
// model's kernels call ParallelFor every few to few hundred microseconds,
// so without the spin every call would pay that. OpenMP runtimes spin for
// the same reason (for far longer by default). SetPoolSpin changes it.
var poolSpin atomic.Int64

// DefaultPoolSpin is the pool's spin before SetPoolSpin: long enough to
// bridge the serial stretches between a model's kernels, short enough that
// an idle model burns no measurable CPU.
const DefaultPoolSpin = 100 * time.Microsecond

func init() { poolSpin.Store(int64(DefaultPoolSpin)) }

// SetPoolSpin sets how long the worker pool's goroutines poll for work
// before they block, and returns the previous setting. Zero makes them
// block at once: the least CPU spent waiting (for battery-powered devices,
// or a machine shared with busier processes), at the price of a wake-up
// (15-20 µs here) on each parallel kernel call that follows serial work.
// Negative durations count as zero.
func SetPoolSpin(d time.Duration) time.Duration {
	return time.Duration(poolSpin.Swap(int64(max(d, 0))))
}

type poolJob struct {
	t      Task
	lo, hi int
}

var pool workerPool

func (p *workerPool) start() {
	// Start enough goroutines for the larger of GOMAXPROCS and the CPU
	// count, so that raising GOMAXPROCS later (as go test -cpu does) takes
	// effect; Workers caps the split by the current GOMAXPROCS.
	p.n = max(runtime.GOMAXPROCS(0), runtime.NumCPU(), 1)
	p.jobs = make(chan poolJob, p.n)
	// The caller's goroutine works too, so n-1 helpers suffice.
	for i := 1; i < p.n; i++ {
		go func() {
			for {
				j := p.take()
				j.t.Run(j.lo, j.hi)
				// Done before the count falls, so that a caller that sees
				// zero finds the WaitGroup already released.
				p.wg.Done()
				p.left.Add(-1)
			}
		}()
	}
}

// Workers reports how many goroutines ParallelFor spreads work over: the
// current GOMAXPROCS, capped by the goroutines the pool started with.
func Workers() int {
	pool.once.Do(pool.start)
	return max(1, min(runtime.GOMAXPROCS(0), pool.n))
}

// ParallelFor runs t.Run over [0, n) split into contiguous chunks of at least
// grain items, one chunk per worker, and returns when all are done. Chunk
// boundaries depend only on n, grain and Workers(), so a kernel whose chunks
// write disjoint outputs is deterministic.
func ParallelFor(n, grain int, t Task) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	w := Workers()
	chunks := (n + grain - 1) / grain
	if chunks > w {
		chunks = w
	}
	if chunks <= 1 || !pool.busy.TryLock() {
		t.Run(0, n)
		return
	}
	defer pool.busy.Unlock()
	pool.wg.Add(chunks - 1)
	pool.left.Add(int32(chunks - 1))
	for c := 1; c < chunks; c++ {
		pool.jobs <- poolJob{t: t, lo: c * n / chunks, hi: (c + 1) * n / chunks}
	}
	t.Run(0, n/chunks)
	pool.await()
}

// take returns the next chunk for a helper, polling for up to poolSpin
// before it blocks.
func (p *workerPool) take() poolJob {
	var start time.Time
	spin := time.Duration(poolSpin.Load())
	for i := 0; ; i++ {
		select {
		case j := <-p.jobs:
			return j
		default:
		}
		if helpSide() {
			i = -1 // the spin starts again after side work
			continue
		}
		if i%32 == 0 {
			if i == 0 {
				start = time.Now()
			} else if time.Since(start) > spin {
				return <-p.jobs
			}
			// Let any other goroutine have this P while we wait.
			runtime.Gosched()
		}
	}
}

// await returns when every chunk handed to a helper has finished, polling
// for up to poolSpin before it blocks.
func (p *workerPool) await() {
	if p.left.Load() != 0 {
		start, spin := time.Now(), time.Duration(poolSpin.Load())
		for i := 1; p.left.Load() != 0; i++ {
			if helpSide() {
				start = time.Now()
				continue
			}
			if i%32 == 0 && time.Since(start) > spin {
				break
			}
		}
	}
	p.wg.Wait()
}

// sideWork is a Task's units offered to the pool's idle helpers: a helper
// polling for its next chunk (take) runs offered units one at a time, so
// work that the caller will need only later, such as the next layer's
// weights, fills the pauses between and within the current layer's
// parallel calls instead of running after them. At most one sideWork is
// offered at a time. A helper that picks up a unit finishes it before it
// looks at the job queue again, so units should take a few microseconds
// at most. The caller that posted the work calls finish before it reads
// the results; what no helper has claimed by then, it runs itself.
//
// Units are claimed by counting left down, so a helper holding a stale
// pointer to a sideWork that has been finished (left ≤ 0) claims nothing,
// and the fields written before left is set are visible to any helper
// whose claim succeeds.
type sideWork struct {
	t    Task
	n    atomic.Int32 // units posted
	left atomic.Int32 // units not yet claimed; unit u is claimed when left falls to u
	done atomic.Int32 // units finished
}

// poolSide is the sideWork on offer, or nil.
var poolSide atomic.Pointer[sideWork]

// post offers units [0, n) of t to the pool's helpers and reports whether
// it did: not when n < 1, when there is no helper, or when another
// sideWork is on offer. After a true post the caller must call finish.
func (w *sideWork) post(t Task, n int) bool {
	if n < 1 || Workers() < 2 {
		return false
	}
	// Work whose units are all done is replaced even if its poster has
	// not called finish (a Forward that panicked between its start and
	// its wait): finish withdraws only its own offer.
	cur := poolSide.Load()
	if cur != nil && (cur.left.Load() > 0 || cur.done.Load() < cur.n.Load()) {
		return false
	}
	w.t = t
	w.n.Store(int32(n))
	w.done.Store(0)
	w.left.Store(0)
	if !poolSide.CompareAndSwap(cur, w) {
		w.t = nil
		return false
	}
	// Claimable only now: a post that loses the race leaves nothing a
	// helper could have started.
	w.left.Store(int32(n))
	return true
}

// runOne runs one unclaimed unit and reports whether there was one.
func (w *sideWork) runOne() bool {
	u := w.left.Add(-1)
	if u < 0 {
		return false
	}
	w.t.Run(int(u), int(u)+1)
	w.done.Add(1)
	return true
}

// finish runs the units no helper has claimed, waits for the ones helpers
// are running (a unit's time at most), and withdraws the offer.
func (w *sideWork) finish() {
	for w.runOne() {
	}
	for i := 1; w.done.Load() < w.n.Load(); i++ {
		if i%64 == 0 {
			runtime.Gosched()
		}
	}
	poolSide.CompareAndSwap(w, nil)
	w.t = nil
}

// helpSide runs one unit of the sideWork on offer, if any, and reports
// whether it did.
func helpSide() bool {
	w := poolSide.Load()
	if w == nil || !w.runOne() {
		return false
	}
	sideHelped.Add(1)
	return true
}

// sideHelped counts the side units helpers have run, for the tests.
var sideHelped atomic.Int64
