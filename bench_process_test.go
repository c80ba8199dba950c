package aplex_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// The process executor's own figures; the raw pipe ping-pong floor between
// the same two processes is BenchmarkRoundTrip in internal/proc, and the
// bench module (./bench) runs everything side by side with the peers.

var pNoop = aplex.Register("bench.noop", func(_ context.Context, x int) (int, error) { return x, nil })

// pHash hashes n times: a fixed amount of CPU work.
var pHash = aplex.Register("bench.hash", func(_ context.Context, n int) ([]byte, error) {
	sum := sha256.Sum256(nil)
	for range n {
		sum = sha256.Sum256(sum[:])
	}
	return sum[:], nil
})

// hashesIn returns how many hashes one core does in d.
func hashesIn(d time.Duration) int {
	sum := sha256.Sum256(nil)
	n := 0
	for start := time.Now(); time.Since(start) < d; n += 1000 {
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	return n
}

func benchProcess(b *testing.B, opts ...aplex.Option) *aplex.Executor {
	ex, err := aplex.NewProcessExecutor(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ex.Close() })
	return ex
}

// BenchmarkProcessRoundTrip is one no-op work at a time: Submit, then Get.
func BenchmarkProcessRoundTrip(b *testing.B) {
	ex := benchProcess(b, aplex.WithPoolSize(1))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		roundTrip(b, ex, pNoop, i)
	}
}

// BenchmarkProcessMap is tiny-work throughput through Map on 2 processes.
func BenchmarkProcessMap(b *testing.B) {
	ex := benchProcess(b, aplex.WithPoolSize(2))
	ctx := context.Background()
	for _, chunk := range []int{1, 100} {
		b.Run("chunk="+itoa(chunk), func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for _, err := range aplex.Map(ctx, ex, pNoop, seq(b.N, nil), aplex.ChunkSize(chunk)) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "works/s")
		})
	}
}

// BenchmarkCPUBound runs 64 works of ~20 ms of hashing, reporting the wall
// time against the ideal total/cores, on goroutine and process workers.
func BenchmarkCPUBound(b *testing.B) {
	const works, ms, cores = 64, 20, 2
	ideal := time.Duration(works*ms/cores) * time.Millisecond
	ctx := context.Background()
	n := hashesIn(ms * time.Millisecond)
	inputs := func(yield func(int) bool) {
		for range works {
			if !yield(n) {
				return
			}
		}
	}
	run := func(b *testing.B, ex *aplex.Executor) {
		start := time.Now()
		for range b.N {
			for _, err := range aplex.Map(ctx, ex, pHash, inputs) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		wall := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(wall.Milliseconds()), "wall-ms")
		b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
	}
	b.Run("thread", func(b *testing.B) {
		ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(cores))
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close()
		run(b, ex)
	})
	b.Run("process", func(b *testing.B) { run(b, benchProcess(b, aplex.WithPoolSize(cores))) })
}

var pSleep10ms = aplex.Register("bench.sleep10ms", func(_ context.Context, x int) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return x, nil
})

// BenchmarkProcessFanOut is BenchmarkFanOut on process workers: 10,000
// works sleeping 10 ms on 4 processes × 300, wall time against the ideal
// (ceil(10000/1200) × 10 ms).
func BenchmarkProcessFanOut(b *testing.B) {
	ctx := context.Background()
	ex := benchProcess(b, aplex.WithPoolSize(fanOutPool), aplex.WithMaxWorksPerWorker(fanOutPer))
	warm := make([]*aplex.Future[int], 2*fanOutPool)
	for i := range warm { // every worker started and serving
		f, err := aplex.Submit(ctx, ex, pNoop, i)
		if err != nil {
			b.Fatal(err)
		}
		warm[i] = f
	}
	for _, f := range warm {
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
	benchFanOut(b, context.Background(), ex, pSleep10ms)
}

// BenchmarkProcessAllThenCollect submits b.N no-op works to 2 processes,
// then collects every result.
func BenchmarkProcessAllThenCollect(b *testing.B) {
	benchProcessAllThenCollect(b, context.Background())
}

// BenchmarkProcessAllThenCollectCancellable is BenchmarkProcessAllThenCollect
// under a ctx that can end, as a caller's request ctx: the core watches it
// for every work sent, to cancel the work the moment it ends.
func BenchmarkProcessAllThenCollectCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchProcessAllThenCollect(b, ctx)
}

// BenchmarkProcessAllThenCollectTimeout is BenchmarkProcessAllThenCollect
// under a ctx with a deadline, as a request's timeout: each work is sent
// the time left, and killed with its worker if it runs past it.
func BenchmarkProcessAllThenCollectTimeout(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	benchProcessAllThenCollect(b, ctx)
}

// benchProcessAllThenCollect is BenchmarkProcessAllThenCollect under ctx.
// A fresh pool's first burst pays once for what the timed ones reuse (the
// worker processes' heaps grow, their runners' goroutines are made), so a
// burst of up to warmUpWorks works runs untimed first, as the bench
// module's report warms its pools.
func benchProcessAllThenCollect(b *testing.B, ctx context.Context) {
	ex := benchProcess(b, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(256))
	submitThenGet(b, ctx, ex, pNoop, make([]*aplex.Future[int], min(b.N, warmUpWorks)))
	submitAllGetAllCtx(b, ctx, ex, pNoop)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "works/s")
}

// warmUpWorks bounds the untimed burst benchProcessAllThenCollect runs on
// a fresh pool.
const warmUpWorks = 20_000

// BenchmarkProcessResizeGrow is the time to grow a process pool by one
// worker, from Resize to the first work it serves: the pool's one worker
// is busy, a work waits in the queue, and the new worker takes it. The
// shrink back is not timed.
func BenchmarkProcessResizeGrow(b *testing.B) {
	ex := benchProcess(b, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	ctx := context.Background()
	dir := b.TempDir()
	busy, err := aplex.Submit(ctx, ex, pHold, holdArg{Dir: dir, N: "busy"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f, err := aplex.Submit(ctx, ex, pNoop, i)
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.Resize(ctx, 2); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := ex.Resize(ctx, 1); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if _, err := busy.Get(ctx); err != nil {
		b.Fatal(err)
	}
}
