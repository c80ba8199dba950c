package aplex_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// The benchmarks here run aplex beside its floors in the same run; the
// bench module (./bench) adds the peer libraries. Compare ns/op as ratios:
//
//	go test -run '^$' -bench . -benchmem -count 5 .

var noop = aplex.Fn(func(_ context.Context, x int) (int, error) { return x, nil })

// BenchmarkSubmitGet submits b.N no-op works, then collects every result.
func BenchmarkSubmitGet(b *testing.B) {
	b.Run("aplex", func(b *testing.B) {
		ex, err := aplex.NewThreadExecutor(aplex.WithMaxWorksPerWorker(1 << 20))
		if err != nil {
			b.Fatal(err)
		}
		defer ex.Close()
		submitAllGetAll(b, ex, noop)
	})
	// The floor: one goroutine per work delivering its result on a channel.
	b.Run("raw-goroutine", func(b *testing.B) {
		results := make([]chan int, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			ch := make(chan int, 1)
			results[i] = ch
			go func(x int) { ch <- x }(i)
		}
		for _, ch := range results {
			<-ch
		}
	})
	// A goroutine per work bounded by a semaphore, results in a slice.
	b.Run("raw-goroutine-semaphore", func(b *testing.B) {
		sem := make(chan struct{}, 600)
		out := make([]int, b.N)
		var wg sync.WaitGroup
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			sem <- struct{}{}
			wg.Go(func() { out[i] = i; <-sem })
		}
		wg.Wait()
	})
}

// BenchmarkFanOut runs 10,000 works sleeping 10 ms on 4 workers × 300 and
// reports the wall time against the ideal (ceil(10000/1200) × 10 ms).
func BenchmarkFanOut(b *testing.B) { benchThreadFanOut(b, context.Background()) }

// BenchmarkFanOutCancellable is BenchmarkFanOut under a ctx that can end,
// as a caller's request ctx: the works queued without room are watched on
// it (context.AfterFunc), so that none starts once it ends.
func BenchmarkFanOutCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchThreadFanOut(b, ctx)
}

// benchThreadFanOut is benchFanOut on a goroutine executor of the
// fan-out's shape, under ctx.
func benchThreadFanOut(b *testing.B, ctx context.Context) {
	sleep := aplex.Fn(func(_ context.Context, x int) (int, error) { time.Sleep(10 * time.Millisecond); return x, nil })
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(fanOutPool), aplex.WithMaxWorksPerWorker(fanOutPer))
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	benchFanOut(b, ctx, ex, sleep)
}

// The fan-out benchmarks' shape: 10,000 works sleeping 10 ms on 4 workers
// × 300.
const fanOutWorks, fanOutPool, fanOutPer = 10_000, 4, 300

// benchFanOut submits fanOutWorks works w to ex under ctx, then collects
// them, b.N times, and reports the wall time of a batch against the ideal
// (ceil(10000/1200) × 10 ms).
func benchFanOut(b *testing.B, ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int]) {
	const slots = fanOutPool * fanOutPer
	ideal := time.Duration((fanOutWorks+slots-1)/slots) * 10 * time.Millisecond
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		fs := make([]*aplex.Future[int], fanOutWorks)
		for i := range fs {
			f, err := aplex.Submit(ctx, ex, w, i)
			if err != nil {
				b.Fatal(err)
			}
			fs[i] = f
		}
		for _, f := range fs {
			if _, err := f.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	wall := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(wall.Microseconds())/1e3, "wall-ms")
	b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
}

// BenchmarkMap runs no-op works through Map, reporting works per second.
func BenchmarkMap(b *testing.B) {
	ctx := context.Background()
	for _, chunk := range []int{1, 100} {
		b.Run("chunk="+itoa(chunk), func(b *testing.B) {
			ex, err := aplex.NewThreadExecutor()
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			for _, err := range aplex.Map(ctx, ex, noop, seq(b.N, nil), aplex.ChunkSize(chunk)) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "works/s")
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkSubmitGetDefaultCap is BenchmarkSubmitGet with the default
// capacity (NumCPU workers × 300): most works wait in the queue and run on
// the goroutines of works that finished.
func BenchmarkSubmitGetDefaultCap(b *testing.B) {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	submitAllGetAll(b, ex, noop)
}

// submitAllGetAll submits b.N works w(i), then collects every result.
func submitAllGetAll(b *testing.B, ex *aplex.Executor, w *aplex.Work[int, int]) {
	submitAllGetAllCtx(b, context.Background(), ex, w)
}

// submitAllGetAllCtx is submitAllGetAll under ctx.
func submitAllGetAllCtx(b *testing.B, ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int]) {
	fs := make([]*aplex.Future[int], b.N)
	b.ReportAllocs()
	b.ResetTimer()
	submitThenGet(b, ctx, ex, w, fs)
}

// submitThenGet submits len(fs) works w into fs, then gets each.
func submitThenGet(b *testing.B, ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], fs []*aplex.Future[int]) {
	var err error
	for i := range fs {
		if fs[i], err = aplex.Submit(ctx, ex, w, i); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThreadRoundTrip submits one no-op work at a time and waits for
// it: the latency of a work on a goroutine worker.
func BenchmarkThreadRoundTrip(b *testing.B) {
	ex, err := aplex.NewThreadExecutor()
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		roundTrip(b, ex, noop, i)
	}
}

// roundTrip submits w(i) to ex and waits for it.
func roundTrip(b *testing.B, ex *aplex.Executor, w *aplex.Work[int, int], i int) {
	ctx := context.Background()
	f, err := aplex.Submit(ctx, ex, w, i)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Get(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkThreadRoundTripUnderLoad is BenchmarkThreadRoundTrip beside
// goroutines that keep the scheduler busy (each spins 20 µs, then yields),
// with the median and tail latency of a round trip: a waiter must be woken
// straight after its work, not queued behind them.
func BenchmarkThreadRoundTripUnderLoad(b *testing.B) {
	for _, busy := range []int{8, 64} {
		b.Run(fmt.Sprintf("busy=%d", busy), func(b *testing.B) {
			ex, err := aplex.NewThreadExecutor()
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range busy {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						for start := time.Now(); time.Since(start) < 20*time.Microsecond; {
						}
						runtime.Gosched()
					}
				})
			}
			lat := make([]time.Duration, 0, 1<<16)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				roundTrip(b, ex, noop, i)
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(start))
				}
			}
			close(stop)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
