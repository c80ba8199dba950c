package engine

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/lazyctx"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

var errCanceled = context.Canceled

// Task states. A task moves queued → running → settled → finished, or
// queued → settled → finished. queued → running happens under the
// executor's lock; running → settled is a CAS, so that exactly one of "the
// work finished" and "the future was cancelled" decides the outcome (rule
// 5); finished is stored once the outcome is written, so readers that see
// it may read the outcome without a lock. A future that ended cancelled
// finishes in stCancelled, a finished state too (finished): the state word
// carries that part of the outcome, which saves the task a field.
const (
	stQueued uint32 = iota
	stRunning
	stSettled
	stFinished
	stCancelled
)

// Watch states of a task (task.watch): whether a watch on its caller's
// ctx would cancel it, and which.
const (
	watchNone   uint8 = iota // none: its ctx cannot end, or nothing watches it yet
	watchShared              // a member of the core's shared watch on its ctx's Done (ctxwatch.go)
	watchFired               // that shared watch fired: nothing left to stop
)

// runner is the typed half of a task: it knows A and R.
type runner interface {
	// Run runs the dispatched work in the calling goroutine, one of the
	// core's runners, completes the task and frees its slot; it returns
	// the next work for that goroutine (see beginLocal).
	gopool.Task
	// deliver completes the task from a remote worker's outcomes.
	deliver(t *task, items []wire.Outcome)
	// fail completes the task with err (worker lost, shutdown, …).
	fail(t *task, err error)
	// name names the work, for errors and logs.
	name() string
}

// task is the untyped core of one dispatch unit (a work or a Map chunk). It
// lives inside the typed object, so a Submit costs one allocation for the
// task, future and argument together; the done channel is made only when
// someone asks for it (Done, a remote task's Get) before the work has
// finished: an in-process task's Get parks on a pooled node (wait).
type task struct {
	r     runner
	state atomic.Uint32
	// retries is the number of resends left (Retry), an int16 packed with
	// the two bytes below beside state: the task's layout keeps a Submit's
	// allocation (the task inside the call) in the 128-byte size class
	// (TestSubmitAllocationStaysInItsSizeClass).
	retries int16
	watch   uint8 // watchNone, watchShared or watchFired; under the executor lock (ctxwatch.go)
	fired   bool  // guarded by mu: the callbacks ran or are running

	// Set under the executor lock (prev and next: under the lock of the
	// list they are in, the executor's queue or the worker's running list).
	prev, next *task
	w          *worker         // the worker it was dispatched to
	parent     context.Context // the caller's ctx
	// x holds its executor and what only some tasks need: set by init,
	// never nil after.
	x *taskExtra

	mu sync.Mutex // guards fired and end until the task has finished
	// end is one word with two uses in turn. Until the task finishes, it
	// heads the list of its callbacks (newest first; the done channel
	// among them: doneCh), under mu. finish takes that list and, still
	// under mu and before the state becomes a finished one, writes the
	// outcome's error in its place: a box (boxErr), nil after a success;
	// whoever sees a finished state may read it without the lock
	// (outcomeErr). One word for both keeps a Submit's allocation in the
	// 128-byte size class (TestSubmitAllocationStaysInItsSizeClass).
	end *callback

	// The in-process work's ctx (workctx.go): a view of the task itself,
	// with the call's Deadline. Its values come from the caller's ctx, then
	// the worker's (w.ctx).
	lc lazyctx.State
}

// taskExtra is a task's executor and what only some tasks need, out of
// line: a Submit of a task with an int argument and result is then one
// allocation in the 128-byte size class (a fan-out's CPU follows the bytes
// it allocates). Without an observer, the in-process tasks of one call
// share the call's (callConfig.extra), or, with neither Meta nor Deadline,
// their executor's (Executor.extra); a remote task has its own, in its
// remoteJob (init); an observed task too, made with its taskObs
// (observe.go).
type taskExtra struct {
	// ex is the task's executor (ex.c its core). A queued or running
	// task keeps it reachable so: see newExecutor.
	ex       *Executor
	meta     any           // Meta
	deadline time.Duration // Deadline(d), from dispatch
	ob       *taskObs      // with an observer only
	rj       *remoteJob    // remote executors only
}

// core returns t's executor's core.
func (t *task) core() *core { return t.x.ex.c }

// meta returns the call's Meta value, nil if none.
func (t *task) meta() any { return t.x.meta }

// deadlineD returns the call's per-work Deadline, 0 if none.
func (t *task) deadlineD() time.Duration { return t.x.deadline }

// rjob returns the task's remote job, nil for an in-process task. init
// asks before it sets an in-process task's x, hence the nil check.
func (t *task) rjob() *remoteJob {
	if t.x == nil {
		return nil
	}
	return t.x.rj
}

// ob returns the task's observer state, nil without an observer.
func (t *task) ob() *taskObs { return t.x.ob }

// remoteJob is what a remote executor keeps per task.
type remoteJob struct {
	job       wire.Job
	killTimer *time.Timer  // kills the worker if the work ignores a cancel or its deadline
	killArm   uint32       // counts armKill's timers and stopTimers' stops, under core.mu: only the last timer armed, not stopped, may kill
	send      [1]*wire.Job // backs the slice handed to Worker.Send
	arg1      [1][]byte    // backs job.Args for one argument (Submit, a Map chunk of one)
	// on is the worker it was last sent to, for a waiter to read its
	// replies (xport.Reader); set under core.mu, read without it.
	on atomic.Pointer[worker]
	// ahead: sent ahead of a free slot (WithPrefetch) and not yet heard
	// to start (wire.Started): its WorkStarted and the kill timer of its
	// Deadline(d) wait for that. Under core.mu.
	ahead bool
	x     taskExtra // the task's taskExtra, whose rj points back here
	// done is the task's done channel (doneCh), made by the first that
	// asks, guarded by the task's mu; an in-process task's is a node in
	// its callbacks instead, out of its allocation.
	done chan struct{}
}

// setRemoteJob makes t a remote task whose job is rj, both in one
// allocation (remoteCall, remoteChunk), before init.
func (t *task) setRemoteJob(rj *remoteJob) {
	rj.x.rj = rj
	t.x = &rj.x
}

// closedChan is the Done channel of futures that ended before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// init readies t, a call's task, to be submitted to ex; cc is bound to ex
// (bindTo).
func (t *task) init(ex *Executor, r runner, parent context.Context, cc *callConfig) {
	t.r = r
	t.parent = parent
	switch rj := t.rjob(); {
	case rj != nil: // a remote task's taskExtra is its own (setRemoteJob)
		rj.x.ex = ex
		if cc.extra != nil {
			rj.x.meta, rj.x.deadline = cc.extra.meta, cc.extra.deadline
		}
	case cc.extra != nil:
		t.x = cc.extra
	default:
		t.x = &ex.extra
	}
	t.retries = int16(cc.retries) // at most maxRetries (Retry)
}

// settle claims a running task's outcome; the caller then writes it with
// finish. False means the future already ended (cancelled).
func (t *task) settle() bool { return t.state.CompareAndSwap(stRunning, stSettled) }

// settleReturned claims the outcome of a work that returned in this
// process; the caller then writes it with finish. When the caller's ctx
// ended while the work ran, it decides instead, as it does for a remote
// work (whose watch on the caller's ctx cancels it at once): the future
// ends cancelled with the ctx's error, whatever the work returned. False
// means the outcome is written already.
func (t *task) settleReturned() bool {
	if !t.settle() {
		return false
	}
	if err := t.parent.Err(); err != nil {
		t.finish(err, true)
		return false
	}
	return true
}

// finish publishes the outcome of a settled task.
func (t *task) finish(err error, cancelled bool) {
	box := boxErr(err)
	countOutcome(t, err, cancelled)
	if t.ob() != nil { // before the future ends: its waiters see the event done
		t.core().observeFinished(t, err, cancelled, false)
	}
	t.mu.Lock()
	cbs := t.end
	t.end = box
	if cancelled {
		t.state.Store(stCancelled)
	} else {
		t.state.Store(stFinished)
	}
	t.fired = true
	var done chan struct{}
	if rj := t.rjob(); rj != nil {
		done = rj.done
	}
	t.mu.Unlock()
	if done != nil {
		close(done)
	}
	// The done channel and the parked Gets first, then the callbacks in
	// the order they were registered. A woken Get reuses its node: next
	// is read before the wake.
	var order *callback
	for cbs != nil {
		next := cbs.next
		switch {
		case cbs.closes:
			done = cbs.wake
			close(done)
		case cbs.wake != nil:
			cbs.next = nil
			cbs.wake <- struct{}{}
		default:
			cbs.next, order = order, cbs
		}
		cbs = next
	}
	if done != nil {
		if r := t.reader(); r != nil {
			r.Interrupt(done) // a Get reading for t stops (if it did not end t itself)
		}
	}
	for ; order != nil; order = order.next {
		order.fn()
	}
}

// The boxes of the standard ctx errors, shared by the tasks that end with
// them (never written, never in a list).
var (
	canceledBox = &callback{err: context.Canceled}
	deadlineBox = &callback{err: context.DeadlineExceeded}
)

// boxErr returns err boxed for a finished task's end, nil for nil: an
// error is two words, most works end without one, and the common causes
// share one box each.
func boxErr(err error) *callback {
	switch err {
	case nil:
		return nil
	case context.Canceled:
		return canceledBox
	case context.DeadlineExceeded:
		return deadlineBox
	}
	return &callback{err: err}
}

// outcomeErr returns the error of a finished task, nil after a success.
// The caller has seen the state finished (finished, endedCancelled).
func (t *task) outcomeErr() error {
	if t.end == nil {
		return nil
	}
	return t.end.err
}

// callback is one function to run once a task is done, in a list; or,
// with wake set, one Get to wake (parked); or, with closes set too, the
// task's done channel (doneCh), closed once it has finished, made only
// when someone asks for it. Once the task has finished, a callback in its
// end is none of those but the box of its outcome's error (boxErr).
type callback struct {
	fn     func()
	next   *callback
	wake   chan struct{} // capacity 1, a parked Get's (parkedGets); or the done channel
	closes bool          // wake is the done channel
	err    error         // a finished task's error, in its box
}

// parkedGets keeps the nodes of Gets that parked, each with its channel:
// a Get that must wait for an in-process work (a collecting loop does so
// for about half the works of a fan-out) would otherwise make a done
// channel per future, and the collector pays for those allocations.
var parkedGets = sync.Pool{New: func() any { return &callback{wake: make(chan struct{}, 1)} }}

// testHookGetParks, set by tests before any Get, is called as a Get parks
// on an in-process task.
var testHookGetParks func(*task)

// wait waits until t has finished or ctx is done (then returns ctx.Err()),
// reading t's worker's replies meanwhile if t is remote and nobody else
// does.
func (t *task) wait(ctx context.Context) error {
	if t.rjob() != nil {
		t.readFor(ctx)
		select {
		case <-t.doneCh():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// With works queued, yield once before parking: a loop of Gets
	// collecting a fan-out would otherwise be woken by each future's end,
	// ahead of the runnable works that end the next ones (a woken
	// goroutine runs next), and park again at once. The yield puts this
	// goroutine behind every runnable one of the process, which a Get
	// without a backlog must not pay: it parks at once, to be woken
	// straight after its work (TestGetDoesNotQueueBehindRunnableGoroutines,
	// TestAGetBehindQueuedWorksLetsAReadyWorkEndFirst).
	if t.core().queue.len() > 0 {
		runtime.Gosched()
		if t.finished() {
			return nil
		}
	}
	n := parkedGets.Get().(*callback)
	t.mu.Lock()
	if t.fired {
		t.mu.Unlock()
		parkedGets.Put(n)
		return nil
	}
	n.next, t.end = t.end, n
	t.mu.Unlock()
	if testHookGetParks != nil {
		testHookGetParks(t)
	}
	done := ctx.Done()
	if done == nil {
		<-n.wake
		parkedGets.Put(n)
		return nil
	}
	select {
	case <-n.wake:
		parkedGets.Put(n)
		return nil
	case <-done:
	}
	t.mu.Lock()
	unlinked := t.unlinkLocked(n)
	t.mu.Unlock()
	if unlinked {
		parkedGets.Put(n)
	} // else finish has taken the list and will wake n: n is left to the collector
	return ctx.Err()
}

// unlinkLocked removes n from t's callbacks; false if it is not there
// (finish has taken them). t.mu is held.
func (t *task) unlinkLocked(n *callback) bool {
	if t.fired {
		return false // end holds the outcome now
	}
	for p := &t.end; *p != nil; p = &(*p).next {
		if *p == n {
			*p, n.next = n.next, nil
			return true
		}
	}
	return false
}

// finished reports whether the outcome is published.
func (t *task) finished() bool { return t.state.Load() >= stFinished }

// endedCancelled reports whether the task finished cancelled.
func (t *task) endedCancelled() bool { return t.state.Load() == stCancelled }

// doneChan returns a channel closed once the task has finished, for a
// caller that will wait on it: a remote task's replies must then be read.
func (t *task) doneChan() <-chan struct{} {
	if t.finished() {
		return closedChan
	}
	t.needReplies()
	return t.doneCh()
}

// doneCh is doneChan for a caller that reads the replies itself (Get).
func (t *task) doneCh() <-chan struct{} {
	if t.finished() {
		return closedChan
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fired {
		return closedChan
	}
	if rj := t.rjob(); rj != nil {
		// A remote task's Get waits on it (reading its worker's replies
		// meanwhile): it lives in the task's allocation, as the job does.
		if rj.done == nil {
			rj.done = make(chan struct{})
		}
		return rj.done
	}
	for n := t.end; n != nil; n = n.next {
		if n.closes {
			return n.wake
		}
	}
	n := &callback{wake: make(chan struct{}), closes: true}
	n.next, t.end = t.end, n
	return n.wake
}

// onDone runs cb once the task is done (at once if it is).
func (t *task) onDone(cb func()) { t.onDoneNode(&callback{fn: cb}) }

// onDoneNode is onDone with the list node supplied, for callers that keep
// one inline (a Map chunk); n.fn is set and n is linked into no list.
func (t *task) onDoneNode(n *callback) {
	t.mu.Lock()
	if !t.fired {
		n.next, t.end = t.end, n
		t.mu.Unlock()
		t.needReplies()
		return
	}
	t.mu.Unlock()
	n.fn()
}

// reader returns the worker whose replies a waiter for t may read, nil if
// none (an in-process task, a transport without xport.Reader).
func (t *task) reader() xport.Reader {
	if t.rjob() == nil {
		return nil
	}
	if w := t.rjob().on.Load(); w != nil {
		return w.reader
	}
	return nil
}

// needReplies tells a remote task's worker that its replies are awaited
// by a channel or a callback rather than by a reading Get.
func (t *task) needReplies() {
	if r := t.reader(); r != nil {
		r.Need()
	}
}

// readFor reads the replies of t's worker in the calling goroutine, a Get,
// while it waits for t, if nobody else reads them (xport.Reader).
func (t *task) readFor(ctx context.Context) {
	if r := t.reader(); r != nil {
		r.ReadUntil(ctx, t.doneCh())
	}
}

// cancel ends the future with err unless it already ended. A queued task
// leaves the queue; a running one has its work cancelled wherever it runs,
// and its worker slot stays taken until the work has really stopped.
func (t *task) cancel(err error) bool {
	for {
		switch t.state.Load() {
		case stSettled, stFinished, stCancelled:
			return false
		case stQueued:
			if t.core().dequeue(t) {
				t.finish(err, true)
				return true
			}
			// Dispatched meanwhile: go round again.
		case stRunning:
			if t.settle() {
				t.finish(err, true)
				t.core().stopWork(t, err)
				t.core().cancelledRunning()
				return true
			}
		}
	}
}

// doneErr returns the task's error once finished, nil before.
func (t *task) doneErr() error {
	if t.finished() {
		return t.outcomeErr()
	}
	return nil
}
