package bench_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// BenchmarkFanOut (workload 2) runs 10,000 works sleeping 10 ms at 1,200 in
// flight: aplex as 4 workers × 300 (the process executor: 4 worker
// processes × 300), the others with a limit of 1,200. It reports the wall
// time of one batch (wall-ms), its ratio to the ideal ceil(10000/1200) ×
// 10 ms (x-ideal) and the CPU spent per work (cpu-us/work, from getrusage):
// this process's during the batches, plus, for the process executor, its
// workers' whole lives (counted once they are reaped, start-up included).
// Every runner first runs a few no-op works, so that a process executor's
// start-up stays out of the wall time.
func BenchmarkFanOut(b *testing.B) {
	works := scaled(10_000)
	shape := bench.Shape{Workers: 4, PerWorker: 300}
	ideal := time.Duration((works+shape.Total()-1)/shape.Total()) * 10 * time.Millisecond
	for _, im := range bench.Impls(true) {
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
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, children0, start := bench.CPUTime(), bench.ChildrenCPUTime(), time.Now()
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
			b.ReportMetric(float64(cpu)/1e3/float64(b.N*works), "cpu-us/work")
		})
	}
}
