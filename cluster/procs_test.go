package cluster_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// localProcs returns its worker process's GOMAXPROCS.
var localProcs = aplex.Register("cluster.gomaxprocs", func(context.Context, int) (int, error) { return runtime.GOMAXPROCS(0), nil })

// TestLocalWorkersOfAnOversubscribedPoolShareTheCores checks that local
// workers get the GOMAXPROCS process workers get: in a pool of more local
// workers than cores, twice an even share (here one P each).
func TestLocalWorkersOfAnOversubscribedPoolShareTheCores(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // restored after the test
	if err := os.Unsetenv("GOMAXPROCS"); err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // MaxProcs counts this process's Ps
	n := 2*runtime.GOMAXPROCS(0) + 1
	ex := newExecutor(t, cluster.SpawnLocalWorkers(n), aplex.WithMaxWorksPerWorker(1))
	fs := make([]*aplex.Future[int], n)
	for i := range fs {
		fs[i] = submit(t, ex, localProcs, i)
	}
	for i, f := range fs {
		got, err := get(t, f)
		if err != nil {
			t.Fatal(err)
		}
		if got != 1 {
			t.Errorf("work %d ran in a worker with GOMAXPROCS %d, want 1 (%d local workers on %d cores)", i, got, n, runtime.GOMAXPROCS(0))
		}
	}
}
