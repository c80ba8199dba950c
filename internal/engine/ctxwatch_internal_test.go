package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// answerOK answers job id with a result of 0.
func answerOK(t *testing.T, tr *handTransport, id uint64) {
	t.Helper()
	v, err := wire.MarshalValue(0)
	if err != nil {
		t.Fatal(err)
	}
	tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Value: v}}}})
}

// answerCanceled answers job id as a worker answers a cancelled job.
func answerCanceled(tr *handTransport, id uint64) {
	tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Err: &wire.Error{Code: wire.CodeCanceled, Message: "canceled"}}}}})
}

// submitN submits n works of w under ctx.
func submitN(t *testing.T, ctx context.Context, ex *Executor, w *Work[int, int], n int) []*Future[int] {
	t.Helper()
	fs := make([]*Future[int], n)
	for i := range fs {
		f, err := Submit(ctx, ex, w, i)
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
	}
	return fs
}

// valueKey keys the value of a ctx derived to add only a value.
type valueKey struct{}

// newFullOneSlotExecutor returns a goroutine executor of one slot, held by
// a work until release, which then waits for that work: works submitted
// meanwhile queue without room. A test that fails first has it released
// before the executor's shutdown.
func newFullOneSlotExecutor(t *testing.T) (ex *Executor, release func()) {
	t.Helper()
	ex = newOneSlotExecutor(t)
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // runs before the executor's, registered earlier
	busy := Fn(func(_ context.Context, x int) (int, error) { <-gate; return x, nil })
	held, err := Submit(context.Background(), ex, busy, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ex, func() {
		t.Helper()
		open()
		if _, err := held.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoteWorksUnderOneCtxShareOneWatch: remote works submitted under
// one ctx, sent or queued, and under ctxs derived from it that add only
// values, are watched by one context.AfterFunc, not one each (a third of
// the throughput of process works under a request's ctx went to those).
// Its end still cancels every one of them, queued or sent; works under
// another ctx meanwhile are watched on theirs and not touched; and once
// the works have ended, no watch is left armed on either ctx.
func TestRemoteWorksUnderOneCtxShareOneWatch(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "shared"}
	a, cancelA := countingCtx(t)
	b, _ := countingCtx(t)

	fa := submitN(t, a, ex, w, 2)
	fa = append(fa, submitN(t, context.WithValue(a, valueKey{}, 1), ex, w, 2)...) // the hand worker's 4 slots
	fb := submitN(t, b, ex, w, 1)                                                 // queued behind them
	fa = append(fa, submitN(t, a, ex, w, 2)...)                                   // queued too
	if got := a.registered.Load(); got != 1 {
		t.Fatalf("%d watches registered on a ctx for 6 works under it, want 1", got)
	}
	if got := b.registered.Load(); got != 1 {
		t.Fatalf("%d watches registered on another ctx for its work, want 1", got)
	}
	var sent []uint64
	for range 4 {
		sent = append(sent, <-tr.w.jobs)
	}

	cancelA()
	for i, f := range fa {
		if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("work %d under the ended ctx: %v, want context.Canceled", i, err)
		}
	}
	if fb[0].t.finished() {
		t.Fatalf("the work under the other ctx ended with the first ctx: %v", fb[0].t.outcomeErr())
	}
	for _, id := range sent { // the worker answers the cancels: B's work is sent
		answerCanceled(tr, id)
	}
	answerOK(t, tr, <-tr.w.jobs)
	if _, err := fb[0].Get(context.Background()); err != nil {
		t.Fatalf("the work under the other ctx: %v", err)
	}
	for name, c := range map[string]*watchCountingCtx{"ended": a, "other": b} {
		if got := c.live.Load(); got != 0 {
			t.Errorf("%d watches still armed on the %s ctx once its works ended", got, name)
		}
	}
}

// TestSharedWatchStopsWithItsLastWork: the shared watch is stopped when
// the last work under it ends, so it holds nothing (the executor among it)
// from a long-lived ctx; the next works under that ctx claim it again.
func TestSharedWatchStopsWithItsLastWork(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "shared"}
	ctx, _ := countingCtx(t)
	for round := 1; round <= 3; round++ {
		fs := submitN(t, ctx, ex, w, 3)
		if got := ctx.live.Load(); got != 1 {
			t.Fatalf("round %d: %d watches armed for 3 works in flight, want 1", round, got)
		}
		for range fs {
			answerOK(t, tr, <-tr.w.jobs)
		}
		for _, f := range fs {
			if _, err := f.Get(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := ctx.live.Load(); got != 0 {
			t.Fatalf("round %d: %d watches armed once every work ended, want 0", round, got)
		}
		if got := ctx.registered.Load(); got != int32(round) {
			t.Fatalf("round %d: %d watches registered, want one a round", round, got)
		}
	}
}

// lateErrCtx is a ctx that has ended but whose first Err says it has
// not: it stands for a ctx ending just after Submit checked it.
type lateErrCtx struct {
	context.Context
	asked atomic.Bool
}

func (c *lateErrCtx) Err() error {
	if !c.asked.Swap(true) {
		return nil
	}
	return c.Context.Err()
}

// TestWorkSubmittedAsItsCtxEndsIsCancelled: a remote work submitted as
// its ctx ends, past Submit's check, joins the shared watch whose
// function is about to run, or claims it again on the ended ctx: either
// way it ends cancelled, with every work under that ctx.
func TestWorkSubmittedAsItsCtxEndsIsCancelled(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "late"}
	for round := range 20 {
		parent, cancel := context.WithCancel(context.Background())
		first := submitN(t, parent, ex, w, 1)[0]
		firstID := <-tr.w.jobs
		cancel() // its watch's function now races the next Submit for core.mu
		late := submitN(t, &lateErrCtx{Context: parent}, ex, w, 1)[0]
		lateID := <-tr.w.jobs
		for name, f := range map[string]*Future[int]{"first": first, "late": late} {
			if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: the %s work: %v, want context.Canceled", round, name, err)
			}
		}
		answerCanceled(tr, firstID)
		answerCanceled(tr, lateID)
	}
}

// TestQueuedThreadWorksUnderOneCtxShareOneWatch: works queued on a full
// goroutine executor under one ctx share one watch, which is stopped once
// the last of them starts; that ctx ending while they wait cancels every
// one, and none of them runs.
func TestQueuedThreadWorksUnderOneCtxShareOneWatch(t *testing.T) {
	ex, release := newFullOneSlotExecutor(t)
	var ran atomic.Int32
	w := Fn(func(_ context.Context, x int) (int, error) { ran.Add(1); return x, nil })

	ctx, cancel := countingCtx(t)
	fs := submitN(t, ctx, ex, w, 5)
	if got := ctx.registered.Load(); got != 1 {
		t.Fatalf("%d watches registered for 5 queued works under one ctx, want 1", got)
	}
	cancel()
	for i, f := range fs {
		if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("queued work %d: %v, want context.Canceled", i, err)
		}
	}

	// Again under a ctx that stays: the watch goes once the works start.
	ctx2, _ := countingCtx(t)
	fs = submitN(t, ctx2, ex, w, 5)
	release()
	for _, f := range fs {
		if _, err := f.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := ran.Load(); got != 5 {
		t.Fatalf("%d works ran, want the 5 of the ctx that stayed (the cancelled ones never start)", got)
	}
	if reg, live := ctx2.registered.Load(), ctx2.live.Load(); reg != 1 || live != 0 {
		t.Fatalf("%d watches registered and %d still armed once the works started, want 1 and 0", reg, live)
	}
}

// TestEachOfSeveralCtxsSharesItsOwnWatch: works queued under several
// ctxs at once, more of them than the core keeps stopped watches for
// (maxIdleWatches), share one watch per ctx. Each ctx's end cancels its
// own works only, and once every work has left, no watch is left armed on
// any of them. (A first version had 8 shared watches, and a ninth ctx's
// works were watched one by one.)
func TestEachOfSeveralCtxsSharesItsOwnWatch(t *testing.T) {
	ex, release := newFullOneSlotExecutor(t)
	w := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	const perCtx = 3
	type caller struct {
		ctx    *watchCountingCtx
		cancel context.CancelFunc
		fs     []*Future[int]
	}
	callers := make([]caller, maxIdleWatches+4)
	for i := range callers {
		ctx, cancel := countingCtx(t)
		callers[i] = caller{ctx: ctx, cancel: cancel}
	}
	for range perCtx { // interleaved, as concurrent callers would
		for i := range callers {
			callers[i].fs = append(callers[i].fs, submitN(t, callers[i].ctx, ex, w, 1)...)
		}
	}
	for i, c := range callers {
		if got := c.ctx.registered.Load(); got != 1 {
			t.Errorf("ctx %d: %d watches registered for its %d queued works, want 1", i, got, perCtx)
		}
	}
	// End every other ctx: their works end cancelled, the others wait on.
	for i := 0; i < len(callers); i += 2 {
		callers[i].cancel()
		for _, f := range callers[i].fs {
			if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
				t.Fatalf("ctx %d ended: its work %v, want context.Canceled", i, err)
			}
		}
	}
	for i := 1; i < len(callers); i += 2 {
		for _, f := range callers[i].fs {
			if f.t.finished() {
				t.Fatalf("ctx %d still on: its work ended with another ctx (%v)", i, f.t.outcomeErr())
			}
		}
	}
	release()
	for i := 1; i < len(callers); i += 2 {
		for _, f := range callers[i].fs {
			if _, err := f.Get(context.Background()); err != nil {
				t.Fatalf("ctx %d still on: %v", i, err)
			}
		}
	}
	for i, c := range callers {
		if got := c.ctx.live.Load(); got != 0 {
			t.Errorf("ctx %d: %d watches still armed once its works left", i, got)
		}
	}
}

// TestMembersOfAFiredWatchDoNotCountAgainstTheNext: works whose shared
// watch fired leave it later (their worker answers the cancel); by then
// the watch serves the next ctx, and their leaving must not count against
// that ctx's works, whose watch would stop early and leave them running
// once it ends.
func TestMembersOfAFiredWatchDoNotCountAgainstTheNext(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "two claims"}
	a, cancelA := countingCtx(t)
	fa := submitN(t, a, ex, w, 2)
	idsA := []uint64{<-tr.w.jobs, <-tr.w.jobs}
	cancelA()
	for _, f := range fa {
		if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("work under the first ctx: %v, want context.Canceled", err)
		}
	}
	// Only the first ctx's watch was armed, so the next ctx may take the
	// same one; the first ctx's works still hold their slots.
	b, cancelB := countingCtx(t)
	fb := submitN(t, b, ex, w, 2)
	idsB := []uint64{<-tr.w.jobs, <-tr.w.jobs}
	for _, id := range idsA {
		answerCanceled(tr, id)
	}
	if got := b.live.Load(); got != 1 {
		t.Fatalf("%d watches armed on the second ctx with its 2 works running, want 1", got)
	}
	cancelB()
	for _, f := range fb {
		if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("work under the second ctx: %v, want context.Canceled", err)
		}
	}
	for _, id := range idsB {
		answerCanceled(tr, id)
	}
	if a.live.Load() != 0 || b.live.Load() != 0 {
		t.Fatalf("watches left armed: %d on the first ctx, %d on the second", a.live.Load(), b.live.Load())
	}
}

// TestWatchedCtxDeadlineArmsNoTimerPerWork: a remote work under a ctx
// with a deadline, which a watch cancels as it passes, arms no kill timer
// of its own (two allocations and a third of the throughput of works
// under a request's timeout); a work whose deadline is its call's
// Deadline(d), which nothing else watches, does.
func TestWatchedCtxDeadlineArmsNoTimerPerWork(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "timed"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	fs := submitN(t, ctx, ex, w, 2)
	f, err := Submit(context.Background(), ex, w, 0, Deadline(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for range 3 {
		ids = append(ids, <-tr.w.jobs)
	}
	ex.c.mu.Lock()
	for i, f := range fs {
		if f.t.rjob().killTimer != nil {
			t.Errorf("work %d under a watched ctx with a deadline armed a kill timer", i)
		}
	}
	if f.t.rjob().killTimer == nil {
		t.Error("the work with Deadline(d) armed no kill timer")
	}
	ex.c.mu.Unlock()
	for _, id := range ids {
		answerOK(t, tr, id)
	}
}

// TestSharedWatchFiringKeepsTheUnwatchedCount: a work queued behind a
// runner being woken has no watch (submit: the runner hands it out at
// once) and is counted in core.unwatched until it leaves the queue. When a
// shared watch on the same ctx fired, it claimed that work as one of its
// members (marked it watchFired) and cancelled it; leaving the queue so, the
// work no longer looked unwatched and the count stayed up for good, so
// every drain with works queued walked the whole queue for unwatched works
// that were not there.
func TestSharedWatchFiringKeepsTheUnwatchedCount(t *testing.T) {
	ex, release := newFullOneSlotExecutor(t)
	defer release()
	w := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := submitN(t, ctx, ex, w, 2) // both queued and watched: one shared watch
	// Leave the second as submit leaves a work queued behind a runner
	// being woken: no watch of its own, counted as unwatched.
	c := ex.c
	c.mu.Lock()
	second := &fs[1].t
	c.unwatchLocked(second)
	c.unwatched++
	c.unlock()

	cancel() // the shared watch, still armed by the first, fires
	for i, f := range fs {
		if _, err := f.Get(context.Background()); !errors.Is(err, context.Canceled) {
			t.Fatalf("queued work %d: %v, want context.Canceled", i, err)
		}
	}
	c.mu.Lock()
	n, queued := c.unwatched, c.queue.len()
	c.unlock()
	if queued != 0 || n != 0 {
		t.Fatalf("%d works queued and %d counted as queued unwatched once the ctx's works ended, want 0 and 0", queued, n)
	}
}
