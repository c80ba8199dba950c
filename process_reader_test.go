package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/proc"
	"github.com/aplex-go/aplex/internal/testutil"
)

// A Get on a process work reads its worker's pipe itself when nobody else
// does (internal/proc/reader.go). These tests cover what that must not
// break: a future that ends otherwise (Cancel, the caller's ctx) still
// ends its Get at once, and replies nobody reads for are still read.

// oneProcess starts a process executor of one worker, closed at the end
// of the test.
func oneProcess(t *testing.T, opts ...aplex.Option) *aplex.Executor {
	t.Helper()
	ex, err := aplex.NewProcessExecutor(append([]aplex.Option{aplex.WithPoolSize(1), aplex.WithWorkerOutput(io.Discard)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// finishedOn records the goroutine that delivered each WorkFinished.
type finishedOn struct{ ids chan int }

func (o *finishedOn) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	if e.Kind == aplex.WorkFinished {
		o.ids <- testutil.GoroutineID()
	}
	return ctx
}

func (*finishedOn) ObserveWorker(aplex.WorkerEvent) {}

// TestGetReadsItsOwnReply: one work at a time, the reply is read and the
// future ended by the goroutine waiting in Get, not handed to it by the
// worker's reader goroutine (a thread wake-up more per round trip).
func TestGetReadsItsOwnReply(t *testing.T) {
	obs := &finishedOn{ids: make(chan int, 100)}
	ex := oneProcess(t, aplex.WithObserver(obs))
	me := testutil.GoroutineID()
	const n = 20
	mine := 0
	for i := range n {
		if got := mustGet(t, mustSubmit(t, ex, pDouble, i)); got != 2*i {
			t.Fatalf("double(%d) = %d", i, got)
		}
		if <-obs.ids == me {
			mine++
		}
	}
	// The first Get takes the pipe from the reader goroutine, and a reply
	// that beats the hand-over is delivered by the goroutine: on a loaded
	// machine some may be. One proves the path; most is the rule.
	t.Logf("%d of %d replies read by the waiting Get", mine, n)
	if mine == 0 {
		t.Fatal("no reply was read by the Get that waited for it")
	}
}

// pBlockUntil says it started by writing marker+".started", then ignores
// its ctx until the file marker exists.
var pBlockUntil = aplex.Register("test.block-until", func(_ context.Context, marker string) (int, error) {
	os.WriteFile(marker+".started", nil, 0o600)
	if _, err := testutil.AwaitMarker(marker); err != nil {
		return 0, err
	}
	return 7, nil
})

// blockedWork submits pBlockUntil and waits until it runs; release lets it
// return.
func blockedWork(t *testing.T, ex *aplex.Executor) (f *aplex.Future[int], release func()) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "release")
	f = mustSubmit(t, ex, pBlockUntil, marker)
	if _, err := testutil.AwaitMarker(marker + ".started"); err != nil {
		t.Fatal(err)
	}
	return f, func() {
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// getAsync runs f.Get(ctx) on a goroutine of its own.
func getAsync(ctx context.Context, f *aplex.Future[int]) chan error {
	got := make(chan error, 1)
	go func() {
		_, err := f.Get(ctx)
		got <- err
	}()
	return got
}

// wantCanceled checks that an asynchronous Get returned context.Canceled
// after what ended it.
func wantCanceled(t *testing.T, got chan error, after string) {
	t.Helper()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Get after %s: %v, want context.Canceled", after, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Get still waits after %s", after)
	}
}

// TestCancelEndsAPendingGet: a Get waiting for a process work that ignores
// its ctx (reading the pipe, or waiting for whoever reads it) returns as
// soon as the future is cancelled, not when the worker is killed (the kill
// grace is a minute); the pipe is read on afterwards. internal/proc's
// TestInterruptEndsAWaiterInThePipe holds a waiter in the pipe for sure.
func TestCancelEndsAPendingGet(t *testing.T) {
	ex := oneProcess(t, aplex.WithKillGrace(time.Minute))
	mustGet(t, mustSubmit(t, ex, pDouble, 1)) // the worker is up, the pipe free
	f, release := blockedWork(t, ex)
	got := getAsync(ctxT(t), f)
	if !f.Cancel() {
		t.Fatal("Cancel of a running work returned false")
	}
	wantCanceled(t, got, "Cancel")
	release()
	// The pipe is read on: the worker answers the next work.
	if got := mustGet(t, mustSubmit(t, ex, pDouble, 4)); got != 8 {
		t.Fatalf("next work: %d", got)
	}
}

// TestGetCtxEndsOnAProcessWork: a Get whose ctx ends while it waits for a
// process work returns ctx.Err(), the work goes on, and a later Get has
// its result (internal/proc's TestCtxEndsAWaiterInThePipe holds a waiter
// in the pipe for sure).
func TestGetCtxEndsOnAProcessWork(t *testing.T) {
	ex := oneProcess(t)
	mustGet(t, mustSubmit(t, ex, pDouble, 1))
	f, release := blockedWork(t, ex)
	ctx, cancel := context.WithCancel(ctxT(t))
	got := getAsync(ctx, f)
	cancel()
	wantCanceled(t, got, "its ctx ended")
	release()
	if v := mustGet(t, f); v != 7 {
		t.Fatalf("the work's result: %d, want 7", v)
	}
}

// TestRepliesNobodyGetsAreRead: after a Get that read the pipe left it,
// replies awaited by a callback, by a select on Done, or by nobody at all
// are read too.
func TestRepliesNobodyGetsAreRead(t *testing.T) {
	ex := oneProcess(t)
	ctx := ctxT(t)

	mustGet(t, mustSubmit(t, ex, pDouble, 1))
	called := make(chan int, 1)
	mustSubmit(t, ex, pDouble, 2).OnDone(func(v int, err error) {
		if err != nil {
			t.Error(err)
		}
		called <- v
	})
	select {
	case v := <-called:
		if v != 4 {
			t.Fatalf("OnDone got %d", v)
		}
	case <-ctx.Done():
		t.Fatal("OnDone never ran")
	}

	mustGet(t, mustSubmit(t, ex, pDouble, 1))
	f := mustSubmit(t, ex, pDouble, 3)
	select {
	case <-f.Done():
	case <-ctx.Done():
		t.Fatal("Done never closed")
	}

	mustGet(t, mustSubmit(t, ex, pDouble, 1))
	before := completed(ex)
	for i := range 3 {
		mustSubmit(t, ex, pDouble, i) // nobody looks at these futures
	}
	waitFor(t, "the unawaited works to complete", func() bool { return completed(ex) >= before+3 })
}

// completed is how many works the executor completed.
func completed(ex *aplex.Executor) uint64 { return ex.Stats().Completed }

// TestManyGetsOnOneWorker: Gets racing for one worker's pipe (one reads,
// the others wait for it or for the reader goroutine) all get their
// results.
func TestManyGetsOnOneWorker(t *testing.T) {
	ex := oneProcess(t)
	ctx := ctxT(t)
	var bad atomic.Int32
	const each = 50
	inGoroutines(8, func(g int) {
		for i := range each {
			x := g*each + i
			f, err := aplex.Submit(ctx, ex, pDouble, x)
			if err != nil {
				bad.Add(1)
				return
			}
			if v, err := f.Get(ctx); err != nil || v != 2*x {
				bad.Add(1)
			}
		}
	})
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d works failed or returned a wrong value", n)
	}
}

// inGoroutines runs body(0) … body(n-1) on n goroutines and waits for
// them all.
func inGoroutines(n int, body func(g int)) {
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() { body(g) })
	}
	wg.Wait()
}

// TestReaderTurnsUnderMixedUse: one goroutine, then several racing, use
// one worker with every way to await a process work (Get, a Get whose ctx
// ends, Cancel then Get, OnDone, Done, nothing), so that the pipe changes
// readers in every order; every future must end, with the right value
// where one is due. Alone, each Get may read the pipe (its work is the
// only one in flight); racing, most wait for the reader goroutine.
func TestReaderTurnsUnderMixedUse(t *testing.T) {
	for _, goroutines := range []int{1, 6} {
		t.Run(fmt.Sprint(goroutines), func(t *testing.T) { mixedUse(t, goroutines) })
	}
}

func mixedUse(t *testing.T, goroutines int) {
	ex := oneProcess(t)
	ctx := ctxT(t)
	const each = 60
	var bad atomic.Int32
	fail := func() { bad.Add(1) }
	futures := make([][]*aplex.Future[int], goroutines)
	inGoroutines(goroutines, func(g int) {
		for i := range each {
			x := g*each + i
			f, err := aplex.Submit(ctx, ex, pDouble, x)
			if err != nil {
				fail()
				return
			}
			futures[g] = append(futures[g], f)
			switch i % 6 {
			case 0: // Get
				if v, err := f.Get(ctx); err != nil || v != 2*x {
					fail()
				}
			case 1: // a Get whose ctx ends at once; a later Get has it
				short, cancel := context.WithCancel(ctx)
				cancel()
				f.Get(short)
				if v, err := f.Get(ctx); err != nil || v != 2*x {
					fail()
				}
			case 2: // Cancel, then Get: cancelled or done
				f.Cancel()
				if v, err := f.Get(ctx); err != nil && !errors.Is(err, context.Canceled) || err == nil && v != 2*x {
					fail()
				}
			case 3: // OnDone
				got := make(chan int, 1)
				f.OnDone(func(v int, _ error) { got <- v })
				select {
				case v := <-got:
					if v != 2*x {
						fail()
					}
				case <-ctx.Done():
					fail()
				}
			case 4: // a select on Done
				select {
				case <-f.Done():
				case <-ctx.Done():
					fail()
				}
			case 5: // nobody waits now; checked below
			}
		}
	})
	for g := range goroutines {
		for _, f := range futures[g] {
			select {
			case <-f.Done():
			case <-ctx.Done():
				t.Fatal("a future never ended")
			}
		}
	}
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d awaits failed or got a wrong value", n)
	}
}

// TestAQueuedWorkDoesNotWaitForAnUnreadReply: after a round trip, a Get
// left the worker's pipe unread for the next Get to read. A work then
// submitted and never awaited holds the worker's only slot until its reply
// is read; a work queued behind it used to wait for the reader goroutine's
// idle grace (5 ms; forever here, where the grace is an hour) although
// its own Get was waiting.
func TestAQueuedWorkDoesNotWaitForAnUnreadReply(t *testing.T) {
	defer proc.SetIdleGrace(time.Hour)()
	ex := oneProcess(t, aplex.WithMaxWorksPerWorker(1), aplex.WithHeartbeatTimeout(time.Hour))
	mustGet(t, mustSubmit(t, ex, pDouble, 1)) // a round trip: the Get read its reply
	mustSubmit(t, ex, pDouble, 2)             // never awaited: holds the slot
	if got := mustGet(t, mustSubmit(t, ex, pDouble, 3)); got != 6 {
		t.Fatalf("the queued work: %d, want 6", got)
	}
}
