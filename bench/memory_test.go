package bench_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// BenchmarkMemory (workload 4) keeps 100,000 works sleeping 1 s in flight at
// once (each then waits until all have started, so a slow start cannot let
// the first ones end early). Per work, above the baseline taken before the pool is built, it
// reports: heap plus goroutine stacks in use after a garbage collection
// taken once every work has started (live-B/work, the steady figure, and
// its goroutine-stack part, stack-B/work); the
// peak of the same sampled every 25 ms until every result is back, garbage
// included (inuse-B/work); and the peak growth of the memory obtained from
// the OS (sys-B/work: meaningful only when the benchmark runs alone in its
// process, as cmd/report runs it).
func BenchmarkMemory(b *testing.B) {
	works := scaled(100_000)
	cores := runtime.NumCPU()
	shape := bench.Shape{Workers: cores, PerWorker: (works + cores - 1) / cores}
	for _, im := range bench.Impls(false) {
		b.Run(im.Name, func(b *testing.B) {
			args, out := bench.Args(works), make([]int, works)
			var peak bench.MemPeak
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				release := bench.ArmSleep1s()
				s := bench.StartMemSampler(25 * time.Millisecond)
				r := newRunner(b, im, shape)
				var live sync.WaitGroup
				live.Go(func() {
					// Once every work has started, measure what they hold,
					// then let them end.
					defer release()
					for bench.Sleep1sStarted.Load() < int64(works) {
						time.Sleep(time.Millisecond)
					}
					s.Live()
				})
				err := r.Run(bench.Sleep1s, args, out)
				release()
				if err != nil {
					b.Fatal(err)
				}
				live.Wait()
				p := s.Stop()
				r.Close()
				peak.Live = max(peak.Live, p.Live)
				peak.LiveStack = max(peak.LiveStack, p.LiveStack)
				peak.InUse = max(peak.InUse, p.InUse)
				peak.Sys = max(peak.Sys, p.Sys)
			}
			wall := time.Since(start) / time.Duration(b.N)
			b.StopTimer()
			checkSum(b, args, out)
			b.ReportMetric(float64(peak.Live)/float64(works), "live-B/work")
			b.ReportMetric(float64(peak.LiveStack)/float64(works), "stack-B/work")
			b.ReportMetric(float64(peak.InUse)/float64(works), "inuse-B/work")
			b.ReportMetric(float64(peak.Sys)/float64(works), "sys-B/work")
			b.ReportMetric(float64(wall)/1e6, "wall-ms")
		})
	}
}
