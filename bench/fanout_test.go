package bench_test

import (
	"testing"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// BenchmarkFanOut (workload 2) runs 10,000 works sleeping 10 ms at 1,200 in
// flight: aplex as 4 workers × 300, the others with a limit of 1,200. It
// reports the wall time of one batch (wall-ms), its ratio to the ideal
// ceil(10000/1200) × 10 ms (x-ideal) and the CPU the process spent per
// work (cpu-us/work, from getrusage).
func BenchmarkFanOut(b *testing.B) {
	works := scaled(10_000)
	shape := bench.Shape{Workers: 4, PerWorker: 300}
	ideal := time.Duration((works+shape.Total()-1)/shape.Total()) * 10 * time.Millisecond
	for _, im := range bench.Impls(false) {
		if im.Unbounded {
			continue // one goroutine per work would sleep all at once
		}
		b.Run(im.Name, func(b *testing.B) {
			r := newRunner(b, im, shape)
			defer r.Close()
			args, out := bench.Args(works), make([]int, works)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, start := bench.CPUTime(), time.Now()
			for range b.N {
				if err := r.Run(bench.Sleep10ms, args, out); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start) / time.Duration(b.N)
			cpu := bench.CPUTime() - cpu0
			b.StopTimer()
			checkSum(b, args, out)
			b.ReportMetric(float64(wall)/1e6, "wall-ms")
			b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
			b.ReportMetric(float64(cpu)/1e3/float64(b.N*works), "cpu-us/work")
		})
	}
}
