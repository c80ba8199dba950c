package promaplex_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/promaplex"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	aplex.Main() // serves works in the worker processes
	goleak.VerifyTestMain(m)
}

var (
	double = aplex.Register("promaplex.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	fail   = aplex.Register("promaplex.fail", func(context.Context, int) (int, error) { return 0, errors.New("no") })
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestMetricsOfProcessExecutor runs works on real worker processes and
// reads the exported metrics back through a pedantic registry.
func TestMetricsOfProcessExecutor(t *testing.T) {
	m := promaplex.New("test")
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	runDoubles(t, ex, 3)
	ctx := ctxT(t)
	f, err := aplex.Submit(ctx, ex, fail, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx); err == nil {
		t.Fatal("fail succeeded")
	}
	for _, err := range aplex.Map(ctx, ex, double, func(yield func(int) bool) {
		for i := range 4 {
			yield(i)
		}
	}, aplex.ChunkSize(2)) {
		if err != nil {
			t.Fatal(err)
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("a pedantic registry: %v", err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"aplex_work_queue_seconds", "aplex_work_run_seconds", "aplex_worker_restarts_total", "aplex_workers", "aplex_works_queued", "aplex_works_running", "aplex_works_total"}
	if !slices.Equal(names, want) {
		t.Fatalf("metrics %v, want exactly %v", names, want)
	}
	problems, err := testutil.CollectAndLint(m)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	const exp = `
# HELP aplex_works_total Works ended, by work and outcome (ok, error, cancelled, rejected). A Map chunk counts as one work.
# TYPE aplex_works_total counter
aplex_works_total{executor="test",outcome="error",work="promaplex.fail"} 1
aplex_works_total{executor="test",outcome="ok",work="promaplex.double"} 5
# HELP aplex_workers Workers in the pool: joined, not lost or recycled.
# TYPE aplex_workers gauge
aplex_workers{executor="test"} 2
# HELP aplex_works_queued Works waiting for a worker.
# TYPE aplex_works_queued gauge
aplex_works_queued{executor="test"} 0
# HELP aplex_works_running Works holding a worker (or waiting to be sent again after their worker was lost).
# TYPE aplex_works_running gauge
aplex_works_running{executor="test"} 0
# HELP aplex_worker_restarts_total Workers that replaced a lost or recycled one.
# TYPE aplex_worker_restarts_total counter
aplex_worker_restarts_total{executor="test"} 0
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(exp), "aplex_works_total", "aplex_workers", "aplex_works_queued", "aplex_works_running", "aplex_worker_restarts_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m, "aplex_work_run_seconds"); n != 2 {
		t.Fatalf("run-time histograms: %d series, want one per work", n)
	}
}

// TestMetricsCountRestarts recycles a process worker after each job.
func TestMetricsCountRestarts(t *testing.T) {
	m := promaplex.New("recycle")
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithRecycleAfter(1), aplex.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	runDoubles(t, ex, 3)
	// The third work ran on the third process: two replaced the first
	// (a fourth may be starting).
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "aplex_worker_restarts_total" {
			if n := mf.GetMetric()[0].GetCounter().GetValue(); n < 2 {
				t.Fatalf("restarts %v, want at least 2", n)
			}
			return
		}
	}
	t.Fatal("no aplex_worker_restarts_total")
}

// runDoubles runs n works of double on ex, one after the other.
func runDoubles(t *testing.T, ex *aplex.Executor, n int) {
	t.Helper()
	ctx := ctxT(t)
	for i := range n {
		f, err := aplex.Submit(ctx, ex, double, i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
