package engine

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
)

// gatedWork returns a work that returns its argument once gate is closed.
func gatedWork(gate <-chan struct{}) *Work[int, int] {
	return Fn(func(_ context.Context, v int) (int, error) {
		<-gate
		return v, nil
	})
}

// await receives from ch, or fails the test if that takes 10 seconds: a
// Get woken for another's end leaves that end's wake blocked on a full
// channel, and the work's goroutine with it.
func await[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case v := <-ch:
		return v
	case <-timeout.C:
		t.Fatal("still waiting after 10 s")
		panic("unreachable")
	}
}

// shutdownWithin shuts ex down, giving up after 10 seconds, so that a
// test that failed with a work stuck does not hang.
func shutdownWithin(t *testing.T, ex *Executor) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ex.Shutdown(ctx); err != nil {
		t.Error(err)
	}
}

// parkedOn reports whether a Get is parked on t (its node is in t's
// callbacks).
func parkedOn(t *task) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fired {
		return false // end holds the outcome
	}
	for n := t.end; n != nil; n = n.next {
		if n.wake != nil && !n.closes {
			return true
		}
	}
	return false
}

// TestParkedGetWhoseCtxEndsLeavesOnlyTheCallbacks checks the way out of a
// parked Get (a pooled node in the task's callbacks, parkedGets) when its
// ctx ends first: the node is unlinked, the callbacks registered around it
// stay and run once, and a later Get waits for the work and gets its value.
func TestParkedGetWhoseCtxEndsLeavesOnlyTheCallbacks(t *testing.T) {
	ex, err := NewThreadExecutor(WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownWithin(t, ex)
	gate := make(chan struct{})
	f, err := Submit(context.Background(), ex, gatedWork(gate), 42)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan int, 2)
	f.OnDone(func(int, error) { ran <- 1 })
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := f.Get(ctx)
		got <- err
	}()
	testutil.WaitFor(t, "the Get parked", func() bool { return parkedOn(&f.t) })
	f.OnDone(func(int, error) { ran <- 2 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Get whose ctx ended: %v, want context.Canceled", err)
	}
	if parkedOn(&f.t) {
		t.Fatal("the Get's node stayed in the callbacks after its ctx ended")
	}
	close(gate)
	if v, err := f.Get(context.Background()); v != 42 || err != nil {
		t.Fatalf("Get after the work returned: %v, %v", v, err)
	}
	if a, b := <-ran, <-ran; a != 1 || b != 2 {
		t.Fatalf("callbacks ran as %d, %d; want 1, 2", a, b)
	}
}

// TestParkedGetsNeverWakeBeforeTheirWorkEnds races a parked Get's ctx
// against its work's end, so that the end sometimes takes a node whose Get
// has given up; each round then parks a fresh Get, which may be handed a
// pooled node, and checks that it returned only once its own work had
// ended, with its own value: a node that went back to the pool with a wake
// pending would let it return early.
func TestParkedGetsNeverWakeBeforeTheirWorkEnds(t *testing.T) {
	ex, err := NewThreadExecutor(WithPoolSize(2), WithMaxWorksPerWorker(2))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownWithin(t, ex)
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		gate := make(chan struct{})
		racing, err := Submit(context.Background(), ex, gatedWork(gate), i)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan error, 1)
		go func() {
			_, err := racing.Get(ctx)
			got <- err
		}()
		// Spun rather than WaitFor: a millisecond's sleep a round would
		// cut the rounds that race.
		for !parkedOn(&racing.t) && !racing.t.finished() {
			runtime.Gosched()
		}
		go cancel()
		close(gate)
		if err := await(t, got); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("round %d: racing Get: %v", i, err)
		}
		cancel()

		next := make(chan struct{})
		f, err := Submit(context.Background(), ex, gatedWork(next), -i)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var (
			v        int
			getErr   error
			finished bool // when Get returned
		)
		go func() {
			v, getErr = f.Get(context.Background())
			finished = f.t.finished()
			close(done)
		}()
		for !parkedOn(&f.t) && !f.t.finished() {
			runtime.Gosched()
		}
		close(next)
		await(t, done)
		if !finished || v != -i || getErr != nil {
			t.Fatalf("round %d: Get returned %v, %v before its work ended: %v", i, v, getErr, !finished)
		}
	}
}

// TestRemoteDoneChannelIsInTheTasksAllocation: a remote task's Get waits
// on its done channel while it reads its worker's replies, once per round
// trip, so the channel lives in the task's remoteJob rather than in a node
// of its own: with the node, a process round trip took 7 allocations
// instead of 6 (root BenchmarkProcessRoundTrip). Done and the end of the
// task see the same channel.
func TestRemoteDoneChannelIsInTheTasksAllocation(t *testing.T) {
	ex, tr := startHand(t)
	f, err := Submit(context.Background(), ex, &Work[int, int]{name: "late"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := <-tr.w.jobs
	done := f.t.doneCh()
	if f.t.end != nil || f.t.rjob().done == nil {
		t.Fatal("a remote task's done channel is a callback node, not its job's")
	}
	if f.Done() != done {
		t.Fatal("Done returned another channel")
	}
	v, err := wire.MarshalValue(42)
	if err != nil {
		t.Fatal(err)
	}
	tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Value: v}}}})
	<-done
	if got, err := f.Get(context.Background()); got != 42 || err != nil {
		t.Fatalf("Get = %v, %v", got, err)
	}
}
