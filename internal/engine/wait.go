package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
)

// WaitMode says when Wait returns.
type WaitMode int

// Wait modes, as in Python's concurrent.futures.wait.
const (
	// FirstCompleted returns when any future ends.
	FirstCompleted WaitMode = iota + 1
	// FirstError returns when any future ends with an error, or when all end.
	FirstError
	// AllCompleted returns when every future has ended.
	AllCompleted
)

// String returns the mode's name.
func (m WaitMode) String() string {
	switch m {
	case FirstCompleted:
		return "FirstCompleted"
	case FirstError:
		return "FirstError"
	case AllCompleted:
		return "AllCompleted"
	}
	return fmt.Sprintf("WaitMode(%d)", int(m))
}

// Wait waits for futures as mode says, or until ctx ends, and returns the
// futures that have ended and those still pending, each in argument order
// (a future given twice is listed twice: nothing is deduplicated).
// err is ctx.Err() if ctx ended first (not when the futures are there as
// well), or an error for bad arguments (an unknown mode, a nil future).
// Wait with AllCompleted wakes once or twice for a large fan-out; a loop
// of Gets on a goroutine executor costs about as little, since a Get
// yields before it parks while works are queued (see Future.Get), and is
// woken by each future it finds running only once none are.
func Wait(ctx context.Context, mode WaitMode, futures ...Awaitable) (done, pending []Awaitable, err error) {
	if ctx == nil {
		return nil, nil, errors.New("aplex: Wait: nil context")
	}
	if mode < FirstCompleted || mode > AllCompleted {
		return nil, nil, fmt.Errorf("aplex: Wait: unknown mode %v", mode)
	}
	for i, f := range futures {
		if f == nil || f.base() == nil {
			return nil, nil, fmt.Errorf("aplex: Wait: future %d is nil", i)
		}
	}
	if len(futures) == 0 {
		return nil, nil, nil
	}
	if mode == AllCompleted {
		return waitAll(ctx, futures)
	}
	w := &waiter{mode: mode, woken: make(chan struct{}, 1)}
	w.left.Store(int64(len(futures)))
	ended := func() { w.ended(false) }
	var nodes []callback
	for i, f := range futures {
		t := f.base()
		if t.finished() {
			w.ended(f.Err() != nil) // no callback for what has ended
			if len(w.woken) > 0 {
				break // the condition holds already
			}
			continue
		}
		if mode == FirstError {
			t.onDone(func() { w.ended(f.Err() != nil) })
			continue
		}
		// FirstCompleted need not know which future ended: one callback
		// for all, the list nodes in one allocation.
		if len(nodes) == 0 {
			nodes = make([]callback, len(futures)-i)
		}
		n := &nodes[0]
		nodes = nodes[1:]
		n.fn = ended
		t.onDoneNode(n)
	}
	select {
	case <-w.woken:
	case <-ctx.Done():
		select {
		case <-w.woken: // the futures are there too: no error
		default:
			done, pending, _ = partition(futures)
			return done, pending, ctx.Err()
		}
	}
	return partition(futures)
}

// waitAll is Wait(AllCompleted). It waits on each future still running,
// from the last to the first: works run roughly in the order they were
// submitted, so by the time the last has ended the others mostly have too,
// and a fan-out of thousands is waited for with a wake-up or two rather
// than one per future found running, and without registering anything on
// the futures it finds ended.
func waitAll(ctx context.Context, futures []Awaitable) (done, pending []Awaitable, err error) {
	for i := len(futures) - 1; i >= 0; i-- {
		f := futures[i]
		if f.base().finished() {
			continue
		}
		select {
		case <-f.Done():
		case <-ctx.Done():
			done, pending, _ = partition(futures)
			if len(pending) == 0 {
				return done, nil, nil // they ended too: no error
			}
			return done, pending, ctx.Err()
		}
	}
	return slices.Clone(futures), nil, nil
}

// waiter is one Wait for the first future that ends (or fails): the
// futures' callbacks count down and wake it once its mode's condition
// holds, not at every future that ends.
type waiter struct {
	mode  WaitMode
	left  atomic.Int64  // futures not ended yet
	woken chan struct{} // capacity 1: the condition held
}

// ended counts one future that ended (failed: with an error) and wakes
// the Wait on the first end (FirstCompleted), the first error
// (FirstError) or the last end (every mode).
func (w *waiter) ended(failed bool) {
	if w.left.Add(-1) == 0 || w.mode == FirstCompleted || (failed && w.mode == FirstError) {
		select {
		case w.woken <- struct{}{}:
		default:
		}
	}
}

// partition splits futures into those that have ended and the others.
func partition(futures []Awaitable) (done, pending []Awaitable, err error) {
	for _, f := range futures {
		select {
		case <-f.Done():
			done = append(done, f)
		default:
			pending = append(pending, f)
		}
	}
	return done, pending, nil
}

// AsCompleted yields the futures as they end, in completion order, each
// with a nil error, once per time it is given. If ctx ends first it yields
// (nil, ctx.Err()) and stops.
// Bad arguments (a nil ctx, a nil future) are yielded as the only error,
// as Wait returns them.
func AsCompleted(ctx context.Context, futures ...Awaitable) iter.Seq2[Awaitable, error] {
	var err error
	if ctx == nil {
		err = errors.New("aplex: AsCompleted: nil context")
	}
	for i, f := range futures {
		if err == nil && (f == nil || f.base() == nil) {
			err = fmt.Errorf("aplex: AsCompleted: future %d is nil", i)
		}
	}
	return func(yield func(Awaitable, error) bool) {
		if err != nil {
			yield(nil, err)
			return
		}
		ended := make(chan Awaitable, len(futures))
		for _, f := range futures {
			f.base().onDone(func() { ended <- f })
		}
		for range futures {
			select {
			case f := <-ended:
				if !yield(f, nil) {
					return
				}
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
		}
	}
}
