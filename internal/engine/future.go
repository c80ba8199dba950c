package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/wire"
)

// Awaitable is what Wait and AsCompleted accept: any *Future.
type Awaitable interface {
	// Done returns a channel closed when the future has ended.
	Done() <-chan struct{}
	// Err returns the future's error once it has ended, nil before.
	Err() error
	// Cancel cancels the work; see Future.Cancel.
	Cancel() bool
	base() *task
}

// Future is the pending result of a submitted work. Every future ends —
// with a result, an error, or cancelled — including when its worker dies or
// the executor shuts down. All methods are safe for concurrent use. A nil
// *Future (what a Submit that failed returns) behaves as a future that
// ended with an error saying so, rather than panicking.
type Future[R any] struct {
	t   task
	val R
}

// Get waits until the future ends or ctx is done, and returns the work's
// result. A cancelled future returns an error matching context.Canceled. If
// ctx ends first, Get returns ctx.Err() and the work goes on. A nil ctx is
// an error, as for every function of the package that takes one.
//
// A Get that must wait for a work in this process (a goroutine executor's)
// is woken straight after the work ends, except while the executor has
// works queued: then it first yields the processor once
// (runtime.Gosched), so that works ready to end run before it, and a loop
// of Gets collecting a large fan-out parks far less often than once per
// future; in a busy program that yield can delay such a Get by a turn of
// the scheduler.
func (f *Future[R]) Get(ctx context.Context) (R, error) {
	if ctx == nil {
		var zero R
		return zero, errors.New("aplex: Get: nil context")
	}
	if f == nil {
		var zero R
		return zero, errNilFuture
	}
	if !f.t.finished() {
		if err := f.t.wait(ctx); err != nil {
			var zero R
			return zero, err
		}
	}
	if err := f.t.outcomeErr(); err != nil {
		var zero R
		return zero, err
	}
	return f.val, nil
}

// Done returns a channel that is closed when the future ends, for select.
func (f *Future[R]) Done() <-chan struct{} {
	if f == nil {
		return closedChan
	}
	return f.t.doneChan()
}

// Err returns the future's error once it has ended; nil while it runs and
// after a success.
func (f *Future[R]) Err() error {
	if f == nil {
		return errNilFuture
	}
	return f.t.doneErr()
}

// Cancel cancels the work. A queued work is removed and never starts; a
// running work has its ctx cancelled, in whatever process or machine it runs.
// Cancel returns true exactly when the future ends cancelled because of this
// call: Get then returns an error matching context.Canceled, whatever the
// work returns afterwards. On a future that already ended it returns false
// and changes nothing. The worker's slot is freed once the work really stops.
func (f *Future[R]) Cancel() bool { return f != nil && f.t.cancel(errCanceled) }

// Cancelled reports whether the future ended cancelled (by Cancel, by the
// caller's ctx while queued, or by a shutdown).
func (f *Future[R]) Cancelled() bool {
	return f != nil && f.t.endedCancelled()
}

// OnDone calls fn with the outcome once the future ends: at once, in the
// calling goroutine, if it has; otherwise in the goroutine that ends it, so
// fn should be quick. That goroutine is the executor's (the work's own, or
// the one reading a worker's results; on a process executor, that may be
// a Get waiting for another work of the same worker, which reads the
// results itself), and the executor's shutdown waits for it: fn must not
// call Shutdown or Close of that executor, nor wait for something that
// does. Hand such work to a goroutine of your own. (One that does so
// anyway does not hang: its Shutdown returns an error naming the callback
// at most the kill grace and two seconds after its ctx ended.) fn must not
// panic: run by the executor, a panic ends the program.
func (f *Future[R]) OnDone(fn func(R, error)) {
	if fn == nil {
		return
	}
	if f == nil {
		var zero R
		fn(zero, errNilFuture)
		return
	}
	f.t.onDone(func() {
		if err := f.t.outcomeErr(); err != nil {
			var zero R
			fn(zero, err)
			return
		}
		fn(f.val, nil)
	})
}

// errNilFuture is what a nil *Future ended with.
var errNilFuture = errors.New("aplex: nil *Future: the Submit that returned it failed (check its error)")

func (f *Future[R]) base() *task {
	if f == nil {
		return nil
	}
	return &f.t
}

// call is one submitted work: the future, the work and its argument in one
// allocation.
type call[A, R any] struct {
	Future[R]
	work *Work[A, R]
	arg  A
}

// Run runs the work in the calling goroutine (see beginLocal): the work's
// code runs right under this frame, which recovers its panic (a
// *PanicError outcome) and sees a runtime.Goexit.
func (c *call[A, R]) Run() (next gopool.Task) {
	t := &c.t
	wc, run := beginLocal(t)
	if !run {
		return endLocal(t, nil)
	}
	returned := false
	defer recoverWork(t, wc, &returned, &next)
	v, err := c.work.fn(wc, c.arg)
	returned = true
	if t.settleReturned() {
		c.val = v
		t.finish(err, false)
	}
	return endLocal(t, wc)
}

func (c *call[A, R]) deliver(t *task, items []wire.Outcome) {
	// As for a local work: a caller's ctx that ended decides, even when the
	// result beat the core's watch on that ctx here.
	if !t.settleReturned() {
		return // cancelled meanwhile: the outcome is dropped
	}
	// Settled, the value is ours to write: decode straight into it.
	var err error
	if len(items) != 1 {
		err = fmt.Errorf("%w: worker returned %d outcomes for one work", ErrEncoding, len(items))
	} else {
		err = decodeOutcomeInto(items[0], &c.val)
	}
	t.finish(err, false)
}

func (c *call[A, R]) name() string { return c.work.describe() }

// remoteCall is a call for a remote executor: the job sent to the worker
// lives in the same allocation.
type remoteCall[A, R any] struct {
	call[A, R]
	rj remoteJob
}

func (c *call[A, R]) fail(t *task, err error) {
	if t.settle() {
		t.finish(err, false)
	}
}

// recoverWork, deferred by call.Run around its work, completes t with a
// *PanicError if the work panicked, and frees its slot (next: the work
// Run returns). After a runtime.Goexit (recover returns nil) it cleans up
// as exitedLocal does. It leaves alone a panic raised once the work has
// returned (*returned set: a completion callback's, which ends the
// program as OnDone says).
func recoverWork(t *task, wc *workCtx, returned *bool, next *gopool.Task) {
	if *returned {
		return
	}
	v := recover()
	if v == nil {
		t.core().goexited(t)
		return
	}
	if t.settleReturned() {
		t.finish(&PanicError{Value: v, Stack: string(debug.Stack())}, false)
	}
	*next = endLocal(t, wc)
}

// runProtected runs fn, turning a panic into a *PanicError.
func runProtected[A, R any](ctx context.Context, fn func(context.Context, A) (R, error), a A) (r R, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return fn(ctx, a)
}

// decodeOutcomeInto decodes one remote outcome's value into *v, which
// holds R's zero value, or returns its error (and leaves *v zero). Decoded
// in place, the value needs no allocation of its own.
func decodeOutcomeInto[R any](o wire.Outcome, v *R) error {
	if o.Err != nil {
		return decodeError(o.Err)
	}
	if err := wire.DecodeValue(o.Value, v); err != nil {
		var zero R
		*v = zero
		return fmt.Errorf("%w: result: %v", ErrEncoding, err)
	}
	return nil
}
