package bench_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// hashRounds calibrates the CPU-bound work once per process.
var hashRounds = sync.OnceValues(func() (int, time.Duration) { return bench.HashRounds(20 * time.Millisecond) })

// BenchmarkCPU (workload 3) runs 64 works of about 20 ms of SHA-256 each,
// NumCPU at a time (aplex as NumCPU workers × 1, the process executor in
// NumCPU child processes). It reports the wall time of the batch (wall-ms)
// and its ratio to the ideal, the works' total serial time divided by the
// cores (x-ideal), one work being timed alone just before each batch
// (work-ms).
func BenchmarkCPU(b *testing.B) {
	works := scaled(64)
	rounds, _ := hashRounds()
	cores := runtime.NumCPU()
	shape := bench.Shape{Workers: cores, PerWorker: 1}
	for _, im := range bench.Impls(true) {
		b.Run(im.Name, func(b *testing.B) {
			r := newRunner(b, im, shape)
			defer r.Close()
			// Time one work alone right before the batch, so that the ideal
			// follows the machine's load of the moment.
			took := bench.TimeRounds(rounds)
			ideal := time.Duration(works) * took / time.Duration(cores)
			args, out := bench.Fill(works, rounds), make([]int, works)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if err := r.Run(bench.Hash, args, out); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start) / time.Duration(b.N)
			b.StopTimer()
			checkSum(b, bench.Fill(works, bench.Hash.Fn(rounds)), out)
			b.ReportMetric(float64(wall)/1e6, "wall-ms")
			b.ReportMetric(float64(wall)/float64(ideal), "x-ideal")
			b.ReportMetric(float64(took)/1e6, "work-ms")
		})
	}
}
