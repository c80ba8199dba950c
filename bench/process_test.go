package bench_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/bench"
)

// BenchmarkProcess (workload 6) measures round trips to other processes:
// one no-op work at a time (rtt: ns/op is one round trip), then 64 and 256
// in flight (ns/op per work, works/s), against the raw pipe ping-pong floor
// (one echo child on fds 3/4; pipe-floor through os.File, pipe-floor-raw
// with the raw system calls aplex's pipes use) and a go-plugin net/rpc
// plugin in the same run; for one at a time also the floor with one goroutine hand-off in the
// parent (pipe-handoff: a reader goroutine passes each reply to the
// waiting one). aplex runs one worker process there, like the floor. Then, on the
// default pool (NumCPU processes): b.N no-op works submitted all then
// collected (in batches of OverheadBatch), and aplex.Map over 100,000
// inputs with ChunkSize 1 and 100.
func BenchmarkProcess(b *testing.B) {
	ctx := context.Background()
	one := bench.Shape{Workers: 1, PerWorker: 300}
	for _, inflight := range []int{1, 64, 256} {
		name := "inflight=" + strconv.Itoa(inflight)
		if inflight == 1 {
			name = "rtt"
		}
		for _, floor := range []struct {
			name  string
			start func() (*bench.PipePeer, error)
		}{{"pipe-floor", bench.StartPipePeer}, {"pipe-floor-raw", bench.StartRawPipePeer}} {
			b.Run(name+"/"+floor.name, func(b *testing.B) {
				p, err := floor.start()
				if err != nil {
					b.Fatal(err)
				}
				perWork(b, func() { p.Close() }, func() error {
					if inflight == 1 {
						return p.RoundTrips(b.N)
					}
					return p.Pipelined(b.N, inflight)
				})
			})
		}
		if inflight == 1 {
			b.Run(name+"/pipe-handoff", func(b *testing.B) {
				p, err := bench.StartPipePeer()
				if err != nil {
					b.Fatal(err)
				}
				perWork(b, func() { p.Close() }, func() error { return p.RoundTripsHandoff(b.N) })
			})
		}
		b.Run(name+"/aplex-process", func(b *testing.B) {
			ex := newProcess(b, one)
			args := bench.Args(b.N)
			perWork(b, func() { ex.Close() }, func() error { return bench.Window(ctx, ex, bench.Noop.Work, args, inflight) })
		})
		b.Run(name+"/go-plugin", func(b *testing.B) {
			p, err := bench.StartPlugin()
			if err != nil {
				b.Fatal(err)
			}
			perWork(b, p.Close, func() error { return p.Calls(b.N, inflight) })
		})
	}
	b.Run("all-then-collect/aplex-process", func(b *testing.B) {
		ex := newProcess(b, bench.DefaultShape())
		args, out := bench.Args(b.N), make([]int, b.N)
		perWork(b, func() { ex.Close() }, func() error {
			for i := 0; i < b.N; i += OverheadBatch {
				j := min(i+OverheadBatch, b.N)
				if err := bench.SubmitAll(ctx, ex, bench.Noop.Work, args[i:j], out[i:j]); err != nil {
					return err
				}
			}
			return nil
		})
	})
	n := scaled(100_000)
	for _, chunk := range []int{1, 100} {
		b.Run("map/chunk="+strconv.Itoa(chunk)+"/aplex-process", func(b *testing.B) {
			ex := newProcess(b, bench.DefaultShape())
			defer ex.Close()
			mapBench(b, n, func(in, out []int) error { return bench.MapAll(ctx, ex, bench.Noop.Work, in, out, chunk) })
		})
	}
}

// newProcess starts a process executor of shape s and waits until every
// worker has answered one work, so start-up stays out of the timing.
func newProcess(b *testing.B, s bench.Shape) *aplex.Executor {
	b.Helper()
	ex, err := bench.NewProcessExecutor(s)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]int, 2*s.Workers)
	if err := bench.SubmitAll(context.Background(), ex, bench.Noop.Work, bench.Args(len(out)), out); err != nil {
		ex.Close()
		b.Fatal(err)
	}
	return ex
}

// perWork times run, which does b.N works, then calls stop, which must
// end the child processes and wait for them. It reports works/s and the CPU
// time of this process and its children per work (cpu-us/work, from
// getrusage once the children have been reaped).
func perWork(b *testing.B, stop func(), run func() error) {
	stop = sync.OnceFunc(stop)
	b.Cleanup(stop)
	b.ReportAllocs()
	self, children := bench.CPUTime(), bench.ChildrenCPUTime()
	b.ResetTimer()
	if err := run(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	stop()
	cpu := bench.CPUTime() - self + bench.ChildrenCPUTime() - children
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "works/s")
	b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-us/work")
}
