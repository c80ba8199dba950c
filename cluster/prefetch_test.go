package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// A cluster worker holds the works sent beyond its slots (WithPrefetch):
// a held work cancelled ends at once and never runs, and a held work
// starts in the slot a running one frees.
func TestPrefetchHoldsWorksOnAClusterWorker(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithMaxWorksPerWorker(2), aplex.WithPrefetch(1),
		aplex.WithWorkerOutput(newTestLog(t)))
	a := submit(t, ex, block, "pf-a")
	b := submit(t, ex, block, "pf-b")
	waitFor(t, 5*time.Second, "a and b sent", dispatched(ex, 2))
	c := submit(t, ex, block, "pf-c") // held: the worker runs two
	waitFor(t, 5*time.Second, "c sent", dispatched(ex, 3))
	w := submit(t, ex, whoami, time.Duration(0))
	if q := ex.Stats().Queued; q != 1 {
		t.Errorf("Queued = %d with the worker's slots and prefetch full, want 1", q)
	}
	c.Cancel()
	if _, err := get(t, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled held work: %v", err)
	}
	// c's place went to w, held in turn behind a and b; a's end starts it.
	a.Cancel()
	if _, err := get(t, w); err != nil {
		t.Fatalf("held work after a slot freed: %v", err)
	}
	ran, err := get(t, submit(t, ex, hasStarted, "pf-c"))
	if err != nil || ran {
		t.Errorf("the cancelled held work ran: %v, %v", ran, err)
	}
	b.Cancel()
	if _, err := get(t, b); !errors.Is(err, context.Canceled) {
		t.Errorf("b: %v", err)
	}
}
