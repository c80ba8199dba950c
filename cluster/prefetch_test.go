package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/obstest"
	"github.com/aplex-go/aplex/internal/wire"
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

// TestResentAheadJobIsNamedStartedAgain: a worker's Started lost in a NATS
// outage was never sent again (the resend after it answers results from
// memory, not starts), so its work stayed without WorkStarted and without
// the kill timer of its Deadline(d). The test plays the executor, on raw
// NATS, against a real worker: after a Resend Run of two jobs sent ahead
// and started, one running and one finished, the worker names both
// started again, each before its result.
func TestResentAheadJobIsNamedStartedAgain(t *testing.T) {
	x := newRawExecutor(t, "resend-started", "w1")
	// events reads the worker's messages until the result of job last,
	// as "S<id>" for a start named and "R<id>" for a result.
	events := func(last uint64) []string {
		t.Helper()
		var out []string
		for {
			switch m := x.next(x.replies).(type) {
			case *wire.Started:
				for _, id := range m.IDs {
					out = append(out, fmt.Sprintf("S%d", id))
				}
			case *wire.Results:
				for _, r := range m.Results {
					out = append(out, fmt.Sprintf("R%d", r.ID))
					if r.ID == last {
						return out
					}
				}
			default:
				t.Fatalf("unexpected %v from the worker", m.Kind())
			}
		}
	}
	jobs := []wire.Job{
		{ID: 1, Name: block.Name(), Args: arg(t, "resend-started-1"), Ahead: true},
		{ID: 2, Name: square.Name(), Args: arg(t, 3), Ahead: true},
	}
	x.send(&wire.Run{ReplyTo: x.inbox, Slots: 2, Jobs: jobs})
	got := events(2)
	if !startsBeforeResults(got, 1, 2) {
		t.Fatalf("first delivery: %v; want S1, S2 and R2, S2 before R2", got)
	}
	// The executor heard nothing of that (lost in an outage) and sends
	// both again; then it cancels job 1.
	x.send(&wire.Run{ReplyTo: x.inbox, Slots: 2, Resend: true, Jobs: jobs})
	x.send(&wire.Cancel{ReplyTo: x.inbox, IDs: []uint64{1}})
	got = events(1)
	if !startsBeforeResults(got, 1, 2) {
		t.Fatalf("after the resend: %v; want S1, S2, R2 and R1, each start before its result", got)
	}
}

// startsBeforeResults reports whether events (as TestResentAheadJobIsNamedStartedAgain
// reads them) name each of ids started, and before its result if any.
func startsBeforeResults(events []string, ids ...uint64) bool {
	for _, id := range ids {
		s := slices.Index(events, fmt.Sprintf("S%d", id))
		r := slices.Index(events, fmt.Sprintf("R%d", id))
		if s < 0 || (r >= 0 && r < s) {
			return false
		}
	}
	return true
}
