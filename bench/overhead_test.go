package bench_test

import (
	"testing"

	"github.com/aplex-go/aplex/bench"
)

// BenchmarkOverhead (workload 1) submits no-op works that return a value,
// then collects every result, in batches of OverheadBatch: ns/op and
// allocs/op are per work. Every implementation gets aplex's default capacity
// (NumCPU × 300 in flight).
func BenchmarkOverhead(b *testing.B) {
	for _, im := range bench.Impls(false) {
		b.Run(im.Name, func(b *testing.B) {
			r := newRunner(b, im, bench.DefaultShape())
			defer r.Close()
			args, out := bench.Args(b.N), make([]int, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			if err := inBatches(r, bench.Noop, args, out); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			checkSum(b, args, out)
		})
	}
}

// OverheadBatch is how many works the overhead workloads submit before
// collecting them: a steady 10,000 pending futures, whatever b.N is (with
// all of b.N at once, the heap of pending futures, and so the garbage
// collector's share, would grow with the benchmark's own iteration count).
const OverheadBatch = 10_000

// inBatches runs args through r in batches of OverheadBatch.
func inBatches(r bench.Runner, t bench.Task, args, out []int) error {
	for i := 0; i < len(args); i += OverheadBatch {
		j := min(i+OverheadBatch, len(args))
		if err := r.Run(t, args[i:j], out[i:j]); err != nil {
			return err
		}
	}
	return nil
}
