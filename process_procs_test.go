package aplex_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/aplex-go/aplex"
)

// pProcs returns its worker process's GOMAXPROCS.
var pProcs = aplex.Register("test.gomaxprocs", func(context.Context, int) (int, error) { return runtime.GOMAXPROCS(0), nil })

// childProcs returns the GOMAXPROCS of every worker process of a process
// executor of size workers.
func childProcs(t *testing.T, size int, opts ...aplex.Option) []int {
	t.Helper()
	ex := newProcess(t, append(opts, aplex.WithPoolSize(size), aplex.WithMaxWorksPerWorker(1))...)
	fs := make([]*aplex.Future[int], size)
	for i := range fs {
		f, err := aplex.Submit(context.Background(), ex, pProcs, i)
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
	}
	got := make([]int, size)
	for i, f := range fs {
		v, err := f.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got[i] = v
	}
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestWorkersOfAnOversubscribedPoolShareTheCores checks the GOMAXPROCS a
// process executor gives its workers: in a pool of more processes than
// cores, twice an even share (here one P each); in a pool of no more
// processes than cores, the runtime's default, as before.
func TestWorkersOfAnOversubscribedPoolShareTheCores(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // restored after the test
	if err := os.Unsetenv("GOMAXPROCS"); err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // MaxProcs counts this process's Ps
	p := runtime.GOMAXPROCS(0)
	for i, got := range childProcs(t, 2*p+1) {
		if got != 1 {
			t.Errorf("worker %d of %d on %d cores runs with GOMAXPROCS %d, want 1", i, 2*p+1, p, got)
		}
	}
	for i, got := range childProcs(t, 1) {
		if got != runtime.NumCPU() {
			t.Errorf("worker %d of 1 runs with GOMAXPROCS %d, want the default %d", i, got, runtime.NumCPU())
		}
	}
}

// TestWorkersKeepTheUsersGOMAXPROCS checks that a GOMAXPROCS the user set,
// in this process's environment or with WithWorkerEnv, reaches the
// workers unchanged, however many they are.
func TestWorkersKeepTheUsersGOMAXPROCS(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // a pool the rule would change
	over := 2*runtime.GOMAXPROCS(0) + 1
	for i, got := range childProcs(t, over, aplex.WithWorkerEnv("GOMAXPROCS=4")) {
		if got != 4 {
			t.Errorf("WithWorkerEnv: worker %d runs with GOMAXPROCS %d, want the user's 4", i, got)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	for i, got := range childProcs(t, over) {
		if got != 3 {
			t.Errorf("environment: worker %d runs with GOMAXPROCS %d, want the user's 3", i, got)
		}
	}
}
