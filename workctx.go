package aplex

import (
	"context"
	"time"
)

// workCtx is the ctx an in-process work runs with. It is a view of its
// task (same memory), so it costs no allocation: its done channel is made
// only when the work asks for it, and the watch on the caller's ctx is
// registered only then.
//
// Cancellation comes from the caller's ctx (parent), from Cancel, from a
// shutdown, and from the call's Deadline. Values come from the caller's ctx
// first, then from the worker's ctx (WithWorkerInit).
type workCtx task

func (t *task) workContext() *workCtx { return (*workCtx)(t) }

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
	if c.ctxDone != nil {
		return c.ctxDone
	}
	c.ctxDone = make(chan struct{})
	if c.ctxErr == nil {
		c.ctxErr = c.expiredLocked()
	}
	if c.ctxErr != nil {
		close(c.ctxDone)
		return c.ctxDone
	}
	if c.parent.Done() != nil {
		c.ctxStop = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
	}
	if !c.deadline.IsZero() {
		c.ctxTimer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	}
	return c.ctxDone
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
	if c.ctxErr == nil {
		c.ctxErr = c.expiredLocked()
		if c.ctxErr != nil && c.ctxDone != nil {
			close(c.ctxDone)
		}
	}
	return c.ctxErr
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

// cancel ends the ctx with err (the first cause wins).
func (c *workCtx) cancel(err error) {
	c.mu.Lock()
	if c.ctxErr == nil {
		c.ctxErr = err
		if c.ctxDone != nil {
			close(c.ctxDone)
		}
	}
	c.mu.Unlock()
}

// release stops the watchers once the work has returned.
func (c *workCtx) release() {
	c.mu.Lock()
	stop, timer := c.ctxStop, c.ctxTimer
	c.ctxStop, c.ctxTimer = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if timer != nil {
		timer.Stop()
	}
}

func (c *workCtx) String() string { return "aplex.workCtx" }
