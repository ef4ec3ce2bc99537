package runtime

import (
	"runtime"
	"sync"
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
	n    int
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
			for j := range p.jobs {
				j.t.Run(j.lo, j.hi)
				p.wg.Done()
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
	for c := 1; c < chunks; c++ {
		pool.jobs <- poolJob{t: t, lo: c * n / chunks, hi: (c + 1) * n / chunks}
	}
	t.Run(0, n/chunks)
	pool.wg.Wait()
}
