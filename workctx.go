package aplex

import (
	"context"
	"sync"
	"time"
)

// workCtx is the ctx a work runs with in-process. It is part of the task,
// so it costs no allocation: its done channel is made only when the work
// asks for it, and the watch on the caller's ctx is registered only then.
//
// Cancellation comes from the caller's ctx (parent), from Cancel, from a
// shutdown, and from the call's Deadline. Values come from the caller's ctx
// first, then from the worker's ctx (WithWorkerInit).
type workCtx struct {
	parent   context.Context
	values   context.Context // the worker's ctx; values only
	deadline time.Time       // zero: none of our own

	mu    sync.Mutex
	done  chan struct{}
	err   error
	stop  func() bool // stops the watch on parent
	timer *time.Timer
}

func (c *workCtx) reset(parent, values context.Context, deadline time.Time) {
	c.parent, c.values, c.deadline = parent, values, deadline
}

func (c *workCtx) Deadline() (time.Time, bool) {
	pd, ok := c.parent.Deadline()
	if c.deadline.IsZero() || (ok && pd.Before(c.deadline)) {
		return pd, ok
	}
	return c.deadline, true
}

func (c *workCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err == nil {
		c.err = c.expiredLocked()
	}
	if c.err != nil {
		close(c.done)
		return c.done
	}
	if c.parent.Done() != nil {
		c.stop = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	}
	if !c.deadline.IsZero() {
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	}
	return c.done
}

// expiredLocked reports a cause the ctx should already have.
func (c *workCtx) expiredLocked() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *workCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = c.expiredLocked()
		if c.err != nil && c.done != nil {
			close(c.done)
		}
	}
	return c.err
}

func (c *workCtx) Value(key any) any {
	if v := c.parent.Value(key); v != nil {
		return v
	}
	if c.values != nil {
		return c.values.Value(key)
	}
	return nil
}

// cancel ends the ctx with err (first cause wins).
func (c *workCtx) cancel(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		if c.done != nil {
			close(c.done)
		}
	}
	c.mu.Unlock()
}

// release stops the watchers once the work has returned.
func (c *workCtx) release() {
	c.mu.Lock()
	stop, timer := c.stop, c.timer
	c.stop, c.timer = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if timer != nil {
		timer.Stop()
	}
}

func (c *workCtx) String() string { return "aplex.workCtx" }
