package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// TestAutoscaleSizesTheLocalWorkers: WithAutoscale applied to process
// executors only. On a cluster executor it now sizes the local workers as
// it sizes a process pool: from min (here 0: no local worker while
// nothing waits) up to max while works wait, and back to min once they
// have been idle; Resize is refused meanwhile, as on a process executor.
func TestAutoscaleSizesTheLocalWorkers(t *testing.T) {
	ex := newExecutor(t, aplex.WithAutoscale(0, 2, 200*time.Millisecond), aplex.WithMaxWorksPerWorker(1),
		aplex.WithWorkerOutput(newTestLog(t)))
	if s := ex.Stats(); s.Size != 0 || len(s.Workers) != 0 {
		t.Fatalf("autoscaled local workers start with Size %d, %d workers; want min 0", s.Size, len(s.Workers))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var fs []*aplex.Future[int]
	for i := range 3 {
		f, err := aplex.Submit(ctx, ex, block, "autoscale-"+itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	waitFor(t, 20*time.Second, "two local workers running a work each", dispatched(ex, 2))
	waitFor(t, 5*time.Second, "the scale-ups to be counted", func() bool { return ex.Stats().ScaleUps == 2 })
	if s := ex.Stats(); s.Size != 2 || len(s.Workers) != 2 || s.Queued != 1 {
		t.Fatalf("under a backlog: Size %d, %d workers, %d queued; want max 2, and the third work waiting", s.Size, len(s.Workers), s.Queued)
	}
	if err := ex.Resize(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "WithAutoscale") {
		t.Fatalf("Resize of autoscaled local workers = %v, want it refused", err)
	}
	cancel()
	for _, f := range fs {
		if _, err := get(t, f); !errors.Is(err, context.Canceled) {
			t.Fatalf("a work ended with %v, want its caller's cancel", err)
		}
	}
	waitFor(t, 20*time.Second, "the idle local workers to be retired", func() bool {
		s := ex.Stats()
		return s.Size == 0 && len(s.Workers) == 0 && s.ScaleDowns == 2
	})
}

// TestAutoscaleReplacesSpawnLocalWorkers: both would set the number of
// local workers; the executor refuses the pair rather than pick one.
func TestAutoscaleReplacesSpawnLocalWorkers(t *testing.T) {
	_, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(2), aplex.WithAutoscale(1, 3, time.Second))
	if err == nil || !strings.Contains(err.Error(), "SpawnLocalWorkers and WithAutoscale do not combine") {
		t.Fatalf("NewExecutor = %v, want the pair refused", err)
	}
}
