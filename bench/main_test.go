package bench_test

import (
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/bench"
)

// The benchmarks never assert a timing: they report figures, and
// cmd/report turns them into ratios. Run them all with
//
//	go test -run '^$' -bench . -benchmem
//
// -short scales the big workloads down tenfold (the report uses the real
// sizes).

func TestMain(m *testing.M) {
	// In a worker process of a process or cluster executor Main serves
	// works and never returns (a cluster worker of BenchmarkCluster's
	// unsealed executor also answers raw NATS requests: ServeClusterEcho);
	// in a raw-pipe or go-plugin child ServeChild never returns.
	// ProfileWorker does nothing unless asked (see its doc).
	bench.ProfileWorker()
	bench.ServeClusterEcho() // before Main, which never returns in a worker
	aplex.Main()
	bench.ServeChild()
	// Every runner's Close must leave no goroutine behind, the peers'
	// included: a leak would run on into the next benchmark's figures.
	// The goroutines already running are not the runners' (ants starts
	// its default pool's in its package init).
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// scaled returns n, or n/10 (at least 1) under -short.
func scaled(n int) int {
	if testing.Short() {
		return max(1, n/10)
	}
	return n
}

// newRunner builds im's runner.
func newRunner(b *testing.B, im bench.Impl, s bench.Shape) bench.Runner {
	b.Helper()
	r, err := im.New(s)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// checkSum fails b unless out holds the same values as want in any order,
// catching a runner that drops results (conc returns them in completion
// order).
func checkSum(b *testing.B, want, out []int) {
	b.Helper()
	var w, got int
	for i := range want {
		w += want[i]
		got += out[i]
	}
	if got != w {
		b.Fatalf("results sum to %d, want %d", got, w)
	}
}

// mallocs returns the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}
