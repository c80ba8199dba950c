package cluster_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/spawn"
)

// Works of the tests of process options that apply to local workers.
var (
	// localArgs returns the worker process's arguments.
	localArgs = aplex.Register("cluster.args", func(context.Context, int) ([]string, error) { return os.Args, nil })
	// localBloat holds mib MiB of touched memory until its ctx ends.
	localBloat = aplex.Register("cluster.bloat", func(ctx context.Context, mib int) (int, error) {
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		<-ctx.Done()
		return len(b), ctx.Err()
	})
)

// TestLocalWorkersRunWithWorkerCommand: WithWorkerCommand applied to
// process executors only; a cluster executor refused it, so its local
// workers could only be this binary, run without arguments. They now run
// the command given, with its arguments, and only local workers take it.
func TestLocalWorkersRunWithWorkerCommand(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithWorkerCommand(self, "worker-arg-1", "worker-arg-2"))
	args, err := get(t, submit(t, ex, localArgs, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{self, "worker-arg-1", "worker-arg-2"}; !slices.Equal(args, want) {
		t.Errorf("local worker's arguments = %q, want %q", args, want)
	}
}

// TestLocalWorkerOverItsMemoryLimitIsKilledAndReplaced: WithWorkerMemoryLimit
// applied to process executors only. A local cluster worker whose resident
// memory goes over it is now killed, as a process worker is: its works fail
// with a *aplex.WorkerError saying so, and the slot gets a new worker.
// Where resident memory cannot be read, the constructor refuses the limit
// rather than never enforce it.
func TestLocalWorkerOverItsMemoryLimitIsKilledAndReplaced(t *testing.T) {
	opts := []aplex.Option{cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)), aplex.WithWorkerMemoryLimit(64 << 20)}
	if !spawn.MemorySupported {
		_, err := cluster.NewExecutor(opts...)
		if err == nil || !strings.Contains(err.Error(), "not supported on this system") {
			t.Fatalf("NewExecutor = %v, want the memory limit refused", err)
		}
		return
	}
	ex := newExecutor(t, opts...)
	first := ex.Stats().Workers[0].PID
	_, err := get(t, submit(t, ex, localBloat, 256))
	var we *aplex.WorkerError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, "memory limit 64 MiB exceeded") || we.PID != first {
		t.Fatalf("bloated work: err = %v, want a *WorkerError of pid %d naming the memory limit", err, first)
	}
	waitFor(t, 10*time.Second, "the slot's new worker", func() bool {
		ws := ex.Stats().Workers
		return len(ws) == 1 && ws[0].PID != 0 && ws[0].PID != first
	})
	if v, err := get(t, submit(t, ex, square, 7)); err != nil || v != 49 {
		t.Fatalf("after the kill: %v, %v", v, err)
	}
}

// TestLocalWorkersAreRecycled: WithRecycleAfter applied to process
// executors only. A local cluster worker is now retired from dispatch as
// it is sent its n-th work of this executor, leaves once those ended, and
// a fresh process takes its slot: no process runs more than n works, a
// burst included, and every work succeeds.
func TestLocalWorkersAreRecycled(t *testing.T) {
	const n = 3
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithRecycleAfter(n), aplex.WithMaxWorksPerWorker(2),
		aplex.WithWorkerOutput(newTestLog(t)))
	var fs []*aplex.Future[string]
	for range 10 { // a burst: the queue holds most of it while slots recycle
		fs = append(fs, submit(t, ex, whoami, time.Millisecond))
	}
	ran := map[string]int{}
	for _, f := range fs {
		who, err := get(t, f)
		if err != nil {
			t.Fatalf("a work failed: %v", err)
		}
		ran[who]++
	}
	if len(ran) < 4 {
		t.Errorf("10 works ran on %d processes (%v); want at least 4, %d works each at most", len(ran), ran, n)
	}
	for who, k := range ran {
		if k > n {
			t.Errorf("process %s ran %d works; want at most %d", who, k, n)
		}
	}
	// Stats.Restarts counts the processes replaced, recycled ones included.
	if s := ex.Stats(); s.Restarts != uint64(len(ran)-1) || s.Completed != 10 {
		t.Errorf("Stats: %d restarts, %d completed; want %d and 10", s.Restarts, s.Completed, len(ran)-1)
	}
}
