package bench_test

import (
	"context"
	"sync"
	"testing"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/bench"
)

// BenchmarkCluster (workload 7) measures the cluster executor over NATS
// with bench.ClusterWorkers local worker processes: one no-op work at a
// time (rtt: ns/op is one round trip), then aplex.Map over 100,000 no-op
// inputs with ChunkSize 100 (works/s). The floor is a raw NATS
// request/reply between the same processes (this one and the unsealed
// executor's workers, which also answer plain requests), in the same run.
// "unsealed" and "sealed" (a pool key) run on one NATS server in this
// process, reached in-process as the embedded default does; "embedded" is
// the default set-up itself (its own server, sealed with its generated
// key). Each executor is started once, on first use, and its workers have
// all answered before anything is timed.
func BenchmarkCluster(b *testing.B) {
	ctx := context.Background()
	srv, err := bench.StartNATS()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close) // after the deferred Close of the executors below
	var mu sync.Mutex
	exs := map[string]*aplex.Executor{}
	// executor returns the executor of kind, starting it on first use; the
	// parent benchmark closes them all when it ends.
	executor := func(sb *testing.B, kind string) *aplex.Executor {
		mu.Lock()
		defer mu.Unlock()
		if ex := exs[kind]; ex != nil {
			return ex
		}
		var ex *aplex.Executor
		var err error
		switch kind {
		case "unsealed":
			ex, err = bench.NewClusterExecutor(srv, false, true)
		case "sealed":
			ex, err = bench.NewClusterExecutor(srv, true, false)
		case "embedded":
			ex, err = bench.NewEmbeddedClusterExecutor()
		}
		if err != nil {
			sb.Fatal(err)
		}
		exs[kind] = ex
		return ex
	}
	defer func() {
		// Before the server's clean-up: the workers leave while it is up.
		for _, ex := range exs {
			if err := ex.Close(); err != nil {
				b.Error(err)
			}
		}
	}()
	kinds := []string{"unsealed", "sealed", "embedded"}

	b.Run("rtt/raw-nats", func(b *testing.B) {
		executor(b, "unsealed") // its workers answer the echo
		r, err := bench.DialRawNATS(srv)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		b.ReportAllocs()
		b.ResetTimer()
		if err := r.RoundTrips(b.N); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "works/s")
	})
	for _, kind := range kinds {
		b.Run("rtt/"+kind, func(b *testing.B) {
			ex := executor(b, kind)
			args := bench.Args(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			if err := bench.Window(ctx, ex, bench.Noop.Work, args, 1); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "works/s")
		})
	}
	n := scaled(100_000)
	for _, kind := range kinds {
		b.Run("map/chunk=100/"+kind, func(b *testing.B) {
			ex := executor(b, kind)
			mapBench(b, n, func(in, out []int) error { return bench.MapAll(ctx, ex, bench.Noop.Work, in, out, 100) })
		})
	}
}
