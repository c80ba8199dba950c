package engine

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// handTransport is a one-worker transport driven by hand: the test sees
// each job sent and answers it when it likes.
type handTransport struct {
	sink xport.Sink
	w    *handWorker
}

type handWorker struct{ jobs chan uint64 }

func (tr *handTransport) Start(_ context.Context, sink xport.Sink) error {
	tr.sink = sink
	tr.w = &handWorker{jobs: make(chan uint64, 16)}
	sink.Join(tr.w)
	return nil
}
func (tr *handTransport) MaxMessage() int { return 1 << 20 }
func (tr *handTransport) Close(context.Context) error {
	tr.sink.Lost(tr.w, nil)
	return nil
}

func (w *handWorker) Slot() int        { return 0 }
func (w *handWorker) Info() xport.Info { return xport.Info{ID: "hand"} }
func (w *handWorker) Capacity() int    { return 4 }
func (w *handWorker) Send(jobs []*wire.Job) {
	for _, j := range jobs {
		w.jobs <- j.ID
	}
}
func (w *handWorker) Cancel([]uint64) {}
func (w *handWorker) Kill(error)      {}
func (w *handWorker) Close()          {}

// startOver starts a process-kind executor over tr.
func startOver(t *testing.T, tr xport.Transport, opts ...Option) *Executor {
	t.Helper()
	cfg, err := buildConfig(kindProcess, opts)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := startRemote(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// startHand starts a process-kind executor over a handTransport, closed
// when the test ends.
func startHand(t *testing.T) (*Executor, *handTransport) {
	t.Helper()
	tr := &handTransport{}
	ex := startOver(t, tr)
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Error(err)
		}
	})
	return ex, tr
}

// endedCtx reports that it ended (Err) while its Done channel never
// closes, so the core's watch on it never fires: it stands for the moment
// between a caller's ctx ending and that watch running.
type endedCtx struct{ context.Context }

func (endedCtx) Done() <-chan struct{} { return make(chan struct{}) }
func (endedCtx) Err() error            { return context.DeadlineExceeded }

// TestResultArrivingAfterCallerCtxEndedIsTheCtxError is the regression test
// for the parity flake: a remote result that arrives after the caller's ctx
// ended, but before the core's watch on that ctx has run, made the future
// succeed; a goroutine work in the same spot ends with ctx.Err().
func TestResultArrivingAfterCallerCtxEndedIsTheCtxError(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "late"}
	f, err := Submit(context.Background(), ex, w, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := <-tr.w.jobs
	// Submit refuses an ended ctx, so the caller's ctx ends after it.
	f.t.parent = endedCtx{context.Background()}
	v, err := wire.MarshalValue(42)
	if err != nil {
		t.Fatal(err)
	}
	tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Value: v}}}})
	if _, err := f.Get(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("result after the caller's ctx ended: %v, want %v", err, context.DeadlineExceeded)
	}
}

// TestOutstandingIsTheJobTable: the core's job table is the transports'
// only record of what a worker holds (the cluster transport kept its own
// copy per member for resends, departures and orphan cancels). Outstanding
// lists the jobs sent and not answered, in id order, as copies, with the
// cancelled ones; nothing for a worker the core does not know.
func TestOutstandingIsTheJobTable(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "held"}
	var fs []*Future[int]
	var ids []uint64
	for i := range 3 {
		f, err := Submit(context.Background(), ex, w, i)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
		ids = append(ids, <-tr.w.jobs)
	}
	v, err := wire.MarshalValue(1)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(id uint64) {
		tr.sink.Done(tr.w, []wire.Result{{ID: id, Items: []wire.Outcome{{Value: v}}}})
	}
	answer(ids[0])
	if !fs[1].Cancel() {
		t.Fatal("Cancel of a running work returned false")
	}
	jobs, cancelled := tr.sink.Outstanding(tr.w)
	var got []uint64
	for _, j := range jobs {
		got = append(got, j.ID)
	}
	if !slices.Equal(got, ids[1:]) || !slices.Equal(cancelled, ids[1:2]) {
		t.Errorf("Outstanding = jobs %v, cancelled %v; want jobs %v, cancelled %v", got, cancelled, ids[1:], ids[1:2])
	}
	if len(jobs) > 0 && jobs[0] == &fs[1].t.rjob().job {
		t.Error("Outstanding returned the core's own job, not a copy")
	}
	if jobs, cancelled := tr.sink.Outstanding(&handWorker{}); jobs != nil || cancelled != nil {
		t.Errorf("Outstanding of an unknown worker = %v, %v; want nothing", jobs, cancelled)
	}
	answer(ids[1])
	answer(ids[2])
	if jobs, _ := tr.sink.Outstanding(tr.w); len(jobs) != 0 {
		t.Errorf("Outstanding after every answer: %d jobs", len(jobs))
	}
}

// TestARequeuedWorkEndsWhenItsCallersCtxEnds: a remote work put back in the
// queue to run again (Retry after its worker was lost) waits there like
// any queued work, and its caller's ctx ending ends it at once. The queue
// took it back without a watch on that ctx: with no worker to run it, its
// future waited until one joined.
func TestARequeuedWorkEndsWhenItsCallersCtxEnds(t *testing.T) {
	ex, tr := startHand(t)
	w := &Work[int, int]{name: "requeued"}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Submit(ctx, ex, w, 1, Retry(1))
	if err != nil {
		t.Fatal(err)
	}
	<-tr.w.jobs
	tr.sink.Lost(tr.w, errors.New("worker gone"))
	if n := ex.c.queue.len(); n != 1 {
		t.Fatalf("after its worker was lost, %d works queued; want the retried one", n)
	}
	cancel()
	wait, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if _, err := f.Get(wait); !errors.Is(err, context.Canceled) || wait.Err() != nil {
		t.Fatalf("Get of the requeued work whose caller's ctx ended: %v (wait: %v)", err, wait.Err())
	}
}

// TestQueuedRemoteWorkKeepsItsWatch: a remote work queued with a ctx that
// can end is watched once, from its Submit to its end: its dispatch used
// to stop the queue's watch and its send to register another, two
// context.AfterFunc per work, which halved the throughput of works
// submitted with such a ctx (root BenchmarkProcessAllThenCollect: 229 k
// against 535 k works/s). The watch kept still cancels the sent work.
// (Works under one ctx now share one watch: TestRemoteWorksUnderOneCtxShareOneWatch.)
func TestQueuedRemoteWorkKeepsItsWatch(t *testing.T) {
	ex, tr := startHand(t)
	ctx, cancel := countingCtx(t)
	w := &Work[int, int]{name: "watched"}
	const n = 6 // the hand worker runs 4; 2 queue
	fs := submitN(t, ctx, ex, w, n)
	for range 2 { // answer two: the queued ones are sent
		answerOK(t, tr, <-tr.w.jobs)
	}
	var running []uint64
	for range 4 {
		running = append(running, <-tr.w.jobs)
	}
	if got := ctx.registered.Load(); got != 1 {
		t.Fatalf("%d watches registered for %d works under one ctx, want 1", got, n)
	}
	cancel()
	ended := 0
	for _, f := range fs {
		if _, err := f.Get(context.Background()); errors.Is(err, context.Canceled) {
			ended++
		}
	}
	if ended != n-2 {
		t.Fatalf("%d works ended cancelled by their ctx, want the %d still running", ended, n-2)
	}
	// Their worker answers the cancel, freeing its slots for the Close.
	for _, id := range running {
		answerCanceled(tr, id)
	}
}

// watchCountingCtx counts the watches registered on it, and those still
// armed: neither stopped nor fired. Its values hide the cancelCtx it
// wraps, so that context.AfterFunc uses its method (else the context
// package would register with that cancelCtx directly).
type watchCountingCtx struct {
	context.Context
	registered, live atomic.Int32
}

func (c *watchCountingCtx) Value(any) any { return nil }

func (c *watchCountingCtx) AfterFunc(f func()) func() bool {
	c.registered.Add(1)
	c.live.Add(1)
	var once sync.Once
	disarm := func() { once.Do(func() { c.live.Add(-1) }) }
	stop := context.AfterFunc(c.Context, func() { disarm(); f() })
	return func() bool {
		stopped := stop()
		if stopped {
			disarm()
		}
		return stopped
	}
}

// countingCtx returns a watchCountingCtx over a ctx that can end, and its
// cancel, also called when the test ends.
func countingCtx(t *testing.T) (*watchCountingCtx, context.CancelFunc) {
	parent, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &watchCountingCtx{Context: parent}, cancel
}

// TestCancelledQueuedWorkStopsItsWatch is the regression test for a leak:
// a queued work cancelled by Future.Cancel (or a shutdown, which cancels
// the same way) left its watch on its caller's ctx registered, holding
// the task and so its executor, until that ctx ended: for a long-lived
// ctx, for ever, one more per cancelled work. In-process and remote.
func TestCancelledQueuedWorkStopsItsWatch(t *testing.T) {
	for _, kind := range []string{"thread", "remote"} {
		t.Run(kind, func(t *testing.T) {
			var ex *Executor
			var release func()
			w := &Work[int, int]{name: "queued"}
			switch kind {
			case "thread":
				ex, release = newFullOneSlotExecutor(t)
				w = Fn(func(_ context.Context, x int) (int, error) { return x, nil })
			case "remote":
				var tr *handTransport
				ex, tr = startHand(t)
				var ids []uint64
				for i := range 4 { // the hand worker's slots
					if _, err := Submit(context.Background(), ex, w, i); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, <-tr.w.jobs)
				}
				release = func() {
					for _, id := range ids {
						answerOK(t, tr, id)
					}
				}
			}
			defer release()
			ctx, _ := countingCtx(t)
			const n = 10
			for i := range n {
				f, err := Submit(ctx, ex, w, i)
				if err != nil {
					t.Fatal(err)
				}
				if !f.Cancel() {
					t.Fatalf("work %d: Cancel of a queued work returned false", i)
				}
			}
			if got := ctx.live.Load(); got != 0 {
				t.Fatalf("%d watches still armed on the caller's ctx after %d queued works were cancelled", got, n)
			}
		})
	}
}

// silentTransport is a handTransport whose Close reports nothing lost:
// the core then fails the jobs left itself (remote.close).
type silentTransport struct{ handTransport }

func (tr *silentTransport) Close(context.Context) error { return nil }

// TestJobsLeftAtCloseStopTheirWatch: the jobs a transport's Close leaves
// unanswered are failed by the core, and their watches on their callers'
// ctx stopped, as when a worker is lost: they held the closed executor
// until those contexts ended.
func TestJobsLeftAtCloseStopTheirWatch(t *testing.T) {
	tr := &silentTransport{}
	ex := startOver(t, tr, WithKillGrace(10*time.Millisecond))
	ctx, _ := countingCtx(t)
	f, err := Submit(ctx, ex, &Work[int, int]{name: "left"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	<-tr.w.jobs
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(context.Background()); err == nil {
		t.Fatal("a job left at Close succeeded; want it failed")
	}
	if got := ctx.live.Load(); got != 0 {
		t.Fatalf("%d watches still armed on the caller's ctx after Close failed the job", got)
	}
}

// TestStartHeardAsTheFutureIsCancelledIsNotReported: a worker's Started
// handled while a Cancel ends the same future must not report WorkStarted
// after WorkFinished, nor write the observer's state of the work while
// the Cancel's WorkFinished reads it (a data race found by
// TestObserverSeesEachPrefetchedWorkInOrder under -race: the Started
// handler checked that the future had not ended, then a shared watch's
// cancel ended it before the handler reported the start).
func TestStartHeardAsTheFutureIsCancelledIsNotReported(t *testing.T) {
	ob := &seqObserver{seqs: map[int][]WorkEvent{}}
	tr := &handTransport{}
	ex := startOver(t, tr, WithMaxWorksPerWorker(1), WithPrefetch(1), WithObserver(ob))
	defer ex.Close()
	w := &Work[int, int]{name: "raced"}
	ctx := context.Background()
	first, err := Submit(ctx, ex, w, 0) // takes the worker's one slot
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := Submit(context.WithValue(ctx, obsID{}, 1), ex, w, 1) // sent ahead of a free slot
	if err != nil {
		t.Fatal(err)
	}
	firstID, aheadID := <-tr.w.jobs, <-tr.w.jobs
	testHookStartHeard = func(tk *task) {
		// The future ends now, between the handler's check and its report.
		go ahead.Cancel()
		for !tk.finished() {
			runtime.Gosched()
		}
	}
	defer func() { testHookStartHeard = nil }()
	tr.sink.Started(tr.w, []uint64{aheadID})
	testHookStartHeard = nil
	if !ahead.Cancelled() {
		t.Fatal("the work sent ahead was not cancelled")
	}
	answerCanceled(tr, aheadID)
	answerOK(t, tr, firstID)
	if _, err := first.Get(ctx); err != nil {
		t.Fatal(err)
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	checkWorkEvents(t, 0, 1, ahead, ob.seqs[1])
}
