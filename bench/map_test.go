package bench_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/alitto/pond/v2"
	"github.com/aplex-go/aplex/bench"
)

// BenchmarkMap (workload 5) maps a no-op work over 100,000 inputs, results
// in input order: aplex.Map on the goroutine executor with ChunkSize 1 and
// 100, the floor (NumCPU goroutines taking chunks of indices from a
// channel), conc's iter.Map and a pond task group. It reports works/s,
// ns/work and allocs/work.
func BenchmarkMap(b *testing.B) {
	n := scaled(100_000)
	ctx := context.Background()
	cores := runtime.NumCPU()
	for _, chunk := range []int{1, 100} {
		b.Run("aplex-thread/chunk="+strconv.Itoa(chunk), func(b *testing.B) {
			ex, err := bench.NewThreadExecutor(bench.DefaultShape())
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			mapBench(b, n, func(in, out []int) error { return bench.MapAll(ctx, ex, bench.Noop.Work, in, out, chunk) })
		})
	}
	for _, chunk := range []int{1, 100} {
		b.Run("chunked-map/chunk="+strconv.Itoa(chunk), func(b *testing.B) {
			mapBench(b, n, func(in, out []int) error { bench.ChunkedMap(cores, chunk, bench.Noop.Fn, in, out); return nil })
		})
	}
	b.Run("conc-iter-map", func(b *testing.B) {
		mapBench(b, n, func(in, out []int) error { bench.ConcMap(bench.Noop.Fn, in, out); return nil })
	})
	b.Run("pond-group", func(b *testing.B) {
		p := pond.NewResultPool[int](bench.DefaultShape().Total())
		defer p.StopAndWait()
		mapBench(b, n, func(in, out []int) error { return bench.PondGroup(p, bench.Noop.Fn, in, out) })
	})
}

// mapBench times b.N maps of n inputs with run and reports per-work figures.
func mapBench(b *testing.B, n int, run func(in, out []int) error) {
	in, out := bench.Args(n), make([]int, n)
	b.ReportAllocs()
	m0 := mallocs()
	b.ResetTimer()
	for range b.N {
		if err := run(in, out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	allocs := mallocs() - m0
	for i, v := range out {
		if v != in[i] {
			b.Fatalf("out[%d] = %d, want %d", i, v, in[i])
		}
	}
	works := float64(b.N * n)
	b.ReportMetric(works/b.Elapsed().Seconds(), "works/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/works, "ns/work")
	b.ReportMetric(float64(allocs)/works, "allocs/work")
}
