package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/aplex-go/aplex/internal/testutil"
)

// TestRunnerFindingTheLockTakenLeavesTheDrainToItsHolder checks the
// convoy's cure (freeLocal): a runner that finishes while works are queued
// and the executor's lock is taken frees its slot and parks instead of
// waiting for the lock, and the queued work starts once the holder
// unlocks, not before and not never.
func TestRunnerFindingTheLockTakenLeavesTheDrainToItsHolder(t *testing.T) {
	ex := newOneSlotExecutor(t)
	started, gate := make(chan struct{}), make(chan struct{})
	blocking := Fn(func(context.Context, int) (int, error) { close(started); <-gate; return 1, nil })
	quick := Fn(func(context.Context, int) (int, error) { return 2, nil })

	first, err := Submit(context.Background(), ex, blocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-started // its runner is past runnerStarted, which takes the lock
	second, err := Submit(context.Background(), ex, quick, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second.t.state.Load() != stQueued {
		t.Fatal("the second work did not wait in the queue behind the first")
	}

	ex.c.mu.Lock()
	locked := true
	defer func() { // a failed wait must not leave the executor locked
		if locked {
			ex.c.unlock()
		}
	}()
	close(gate)
	testutil.WaitFor(t, "the runner frees its slot and asks for a drain", func() bool {
		return ex.c.needDrain.Load() && ex.c.running.Load() == 0
	})
	testutil.WaitFor(t, "the runner parks", func() bool { return ex.c.runners.Parked() == 1 })
	if got := second.t.state.Load(); got != stQueued {
		t.Fatalf("the queued work left the queue (state %d) while the lock was held", got)
	}
	locked = false
	ex.c.unlock()

	if v, err := first.Get(context.Background()); v != 1 || err != nil {
		t.Fatalf("first work: %d, %v", v, err)
	}
	if v, err := second.Get(context.Background()); v != 2 || err != nil {
		t.Fatalf("second work: %d, %v", v, err)
	}
	if ex.c.needDrain.Load() {
		t.Error("the drain was asked for still after it ran")
	}
}

// TestShortWorksThroughAContendedLockAllComplete runs a backlog of no-op
// works, submitted from several goroutines at once, through two workers
// of two slots: the runners find the lock taken all the time, by each
// other and by the submitters. Every work must run once, and the executor
// must end idle.
func TestShortWorksThroughAContendedLockAllComplete(t *testing.T) {
	ex, err := NewThreadExecutor(WithPoolSize(2), WithMaxWorksPerWorker(2))
	if err != nil {
		t.Fatal(err)
	}
	const submitters, each = 4, 5_000
	var ran [submitters * each]int32
	var mu sync.Mutex // guards ran: a work that ran twice shows as 2
	w := Fn(func(_ context.Context, i int) (int, error) {
		mu.Lock()
		ran[i]++
		mu.Unlock()
		return i, nil
	})
	var wg sync.WaitGroup
	errs := make(chan error, submitters)
	for s := range submitters {
		wg.Go(func() {
			fs := make([]*Future[int], 0, each)
			for i := s * each; i < (s+1)*each; i++ {
				f, err := Submit(context.Background(), ex, w, i)
				if err != nil {
					errs <- err
					return
				}
				fs = append(fs, f)
			}
			for k, f := range fs {
				if v, err := f.Get(context.Background()); err != nil || v != s*each+k {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal("a work failed or returned another's result:", err)
	}
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, n := range ran {
		if n != 1 {
			t.Fatalf("work %d ran %d times", i, n)
		}
	}
	if st := ex.Stats(); st.Running != 0 || st.Queued != 0 || st.Completed != submitters*each {
		t.Fatalf("Stats after the backlog: %+v", st)
	}
}
