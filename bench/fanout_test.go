package bench_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// BenchmarkFanOut (workload 2) runs 10,000 works sleeping 10 ms at 1,200 in
// flight: aplex as 4 workers × 300 (the process executor: 4 worker
// processes × 300, and again with WithPrefetch(300)), the others with a
// limit of 1,200. It reports the wall
// time of one batch in steady state (wall-ms), its ratio to the ideal
// ceil(10000/1200) × 10 ms (x-ideal), the first batch's ratio
// (first-x-ideal) and the CPU spent per work (cpu-us/work, from
// getrusage): this process's during every batch, the first included, plus,
// for the process executor, its workers' whole lives (counted once they
// are reaped, start-up included).
// Every runner first runs a few no-op works, so that a process executor's
// start-up stays out of every figure but the CPU, then one whole batch,
// untimed: a fresh pool's first burst pays once for what steady state
// reuses (its goroutines; in fresh worker processes, their heaps' growth:
// 20-40 ms more for aplex-process), so it is reported on its own.
func BenchmarkFanOut(b *testing.B) {
	works := scaled(10_000)
	shape := bench.Shape{Workers: 4, PerWorker: 300}
	ideal := time.Duration((works+shape.Total()-1)/shape.Total()) * 10 * time.Millisecond
	for _, im := range bench.FanOutImpls() {
		if im.Unbounded {
			continue // one goroutine per work would sleep all at once
		}
		b.Run(im.Name, func(b *testing.B) {
			r := newRunner(b, im, shape)
			closeRunner := sync.OnceFunc(r.Close)
			defer closeRunner()
			warm := 2 * shape.Workers
			if err := r.Run(bench.Noop, bench.Args(warm), make([]int, warm)); err != nil {
				b.Fatal(err)
			}
			args, out := bench.Args(works), make([]int, works)
			cpu0, children0, start := bench.CPUTime(), bench.ChildrenCPUTime(), time.Now()
			if err := r.Run(bench.Sleep10ms, args, out); err != nil {
				b.Fatal(err)
			}
			first := time.Since(start)
			checkSum(b, args, out)
			clear(out) // the timed batches must write every result again
			b.ReportAllocs()
			b.ResetTimer()
			start = time.Now()
			for range b.N {
				if err := r.Run(bench.Sleep10ms, args, out); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start) / time.Duration(b.N)
			cpu := bench.CPUTime() - cpu0
			b.StopTimer()
			closeRunner() // reaps a process executor's workers
			cpu += bench.ChildrenCPUTime() - children0
			checkSum(b, args, out)
			b.ReportMetric(float64(wall)/1e6, "wall-ms")
			b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
			b.ReportMetric(float64(first)/float64(ideal), "first-x-ideal")
			b.ReportMetric(float64(cpu)/1e3/float64((b.N+1)*works), "cpu-us/work")
		})
	}
}
