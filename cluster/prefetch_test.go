package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/obstest"
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

// A work a cluster worker holds (WithPrefetch) starts its Deadline(d) and
// its WorkStarted when it starts, as on every executor.
func TestPrefetchHeldWorkDeadlineCountsFromItsStartOnAClusterWorker(t *testing.T) {
	const d = 300 * time.Millisecond
	rec := &obstest.Recorder{}
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithMaxWorksPerWorker(1), aplex.WithPrefetch(1),
		aplex.WithObserver(rec), aplex.WithWorkerOutput(newTestLog(t)))
	a := submit(t, ex, block, "pfd-a")
	waitFor(t, 5*time.Second, "a sent", dispatched(ex, 1))
	sent := time.Now()
	w := submit(t, ex, whoami, time.Duration(0), aplex.Deadline(d)) // held behind a
	waitFor(t, 5*time.Second, "the held work to wait longer than its deadline", func() bool { return time.Since(sent) > 2*d })
	if n := len(rec.WorksOf(aplex.WorkStarted, "cluster.whoami")); n != 0 {
		t.Errorf("%d WorkStarted events for the held work before its slot freed, want 0", n)
	}
	a.Cancel()
	if _, err := get(t, w); err != nil {
		t.Fatalf("held work with Deadline(%v): %v, want its deadline counted from its start", d, err)
	}
	starts := rec.WorksOf(aplex.WorkStarted, "cluster.whoami")
	if len(starts) != 1 || starts[0].QueueWait < 2*d {
		t.Errorf("WorkStarted events of the held work: %+v, want one, after a QueueWait of at least %v", starts, 2*d)
	}
}
