package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
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
// futures that have ended and those still pending, each in argument order.
// err is ctx.Err() if ctx ended first, or an error for bad arguments (an
// unknown mode, a nil future).
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
	ended := make(chan int, len(futures))
	for i, f := range futures {
		f.base().onDone(func() { ended <- i })
	}
	n := 0
	for n < len(futures) {
		select {
		case i := <-ended:
			n++
			if mode == FirstCompleted || (mode == FirstError && futures[i].Err() != nil) {
				return partition(futures)
			}
		case <-ctx.Done():
			done, pending, _ = partition(futures)
			return done, pending, ctx.Err()
		}
	}
	return partition(futures)
}

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
// with a nil error. If ctx ends first it yields (nil, ctx.Err()) and stops.
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
