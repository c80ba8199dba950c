package aplex

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

var errCanceled = context.Canceled

// Task states. A task moves queued → running → done, or queued → done; the
// first two transitions happen under the executor's lock, the last by CAS so
// that exactly one of "the work finished" and "the future was cancelled"
// decides the outcome (rule 5).
const (
	stQueued uint32 = iota
	stRunning
	stDone
)

// runner is the typed half of a task: it knows A and R.
type runner interface {
	// runLocal runs the work in the calling goroutine and completes the task.
	runLocal(ctx context.Context, t *task)
	// deliver completes the task from a remote worker's outcomes.
	deliver(t *task, items []wire.Outcome)
	// fail completes the task with err (worker lost, shutdown, …).
	fail(t *task, err error)
}

// task is the untyped core of one dispatch unit (a work or a Map chunk). It
// lives inside the typed object, so a Submit costs one allocation for the
// task, future and argument together.
type task struct {
	c     *core
	r     runner
	state atomic.Uint32

	// Set under the executor lock.
	prev, next *task   // queue or worker running list
	w          *worker // the worker it was dispatched to
	meta       any
	parent     context.Context // the caller's ctx
	deadlineD  time.Duration   // per-work deadline, from dispatch
	retries    int
	watch      func() bool // stops the watch on parent while queued or remote

	// The outcome; written before done is closed, read after.
	err       error
	cancelled bool
	done      chan struct{}

	mu        sync.Mutex
	callbacks []func()
	fired     bool

	// In-process: the work's context. Remote: the job sent to the worker.
	wctx      workCtx
	job       wire.Job
	killTimer *time.Timer // remote: kill the worker if the work ignores a cancel
}

func (t *task) init(c *core, r runner, parent context.Context, cc *callConfig) {
	t.c, t.r = c, r
	t.parent = parent
	t.meta = cc.meta
	t.deadlineD = cc.deadline
	t.retries = cc.retries
	t.done = make(chan struct{})
}

// settle moves a running task to done; the caller then writes the outcome
// and calls finish. False means the future already ended (cancelled).
func (t *task) settle() bool { return t.state.CompareAndSwap(stRunning, stDone) }

// finish publishes the outcome: it must follow a successful settle (or a
// queued → done move under the lock).
func (t *task) finish(err error, cancelled bool) {
	t.err, t.cancelled = err, cancelled
	countOutcome(t, err, cancelled)
	close(t.done)
	t.mu.Lock()
	cbs := t.callbacks
	t.callbacks, t.fired = nil, true
	t.mu.Unlock()
	for _, cb := range cbs {
		cb()
	}
}

// onDone runs cb once the task is done (at once if it is).
func (t *task) onDone(cb func()) {
	t.mu.Lock()
	if !t.fired {
		t.callbacks = append(t.callbacks, cb)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	cb()
}

// cancel ends the future with err unless it already ended. A queued task
// leaves the queue; a running one has its work cancelled wherever it runs,
// and its worker slot stays taken until the work has really stopped.
func (t *task) cancel(err error) bool {
	for {
		switch t.state.Load() {
		case stDone:
			return false
		case stQueued:
			if t.c.dequeue(t) {
				t.finish(err, true)
				return true
			}
			// Dispatched meanwhile: go round again.
		case stRunning:
			if t.settle() {
				t.finish(err, true)
				t.c.stopWork(t, err)
				return true
			}
		}
	}
}

// doneErr returns the task's error once done, nil before.
func (t *task) doneErr() error {
	select {
	case <-t.done:
		return t.err
	default:
		return nil
	}
}
