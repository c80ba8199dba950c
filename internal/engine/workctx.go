package engine

import (
	"context"
	"sync/atomic"
	"time"
)

// workCtx is the ctx an in-process work runs with. It is a view of its
// task (same memory), so it costs no allocation: its done channel is made
// only when the work asks for it, and the watch on the caller's ctx is
// registered only then.
//
// Cancellation comes from the caller's ctx (parent), from Cancel, from a
// shutdown, and from the call's Deadline. The caller's ctx ending cancels
// the task, not only the ctx, as it does on every kind of worker: the
// future ends cancelled with the ctx's error (see parentEnded). Values come
// from the caller's ctx first, then from the worker's ctx (WithWorkerInit).
type workCtx task

func (t *task) workContext() *workCtx { return (*workCtx)(t) }

// ctxWatch is what a work's ctx needs only once something watches it: the
// watch on the caller's ctx, the deadline's timer and the callbacks of
// contexts derived from it. Out of line, so a task that nobody watches
// stays small.
type ctxWatch struct {
	stop  func() bool
	timer *time.Timer
	// target is what the deadline's timer cancels, emptied once the timer
	// is stopped: a stopped timer can stay in the runtime's timer heap, its
	// function reachable, until it would have fired, and the task points to
	// its executor, which must not stay reachable that long after it was
	// dropped (see core.armKill).
	target *atomic.Pointer[workCtx]
	funcs  map[*func()]struct{}
}

// watchLocked returns the ctx's watch state, making it.
func (c *workCtx) watchLocked() *ctxWatch {
	if c.ctxWatch == nil {
		c.ctxWatch = &ctxWatch{}
	}
	return c.ctxWatch
}

func (c *workCtx) Deadline() (time.Time, bool) {
	pd, ok := c.parent.Deadline()
	if c.deadline == 0 || (ok && pd.UnixNano() < c.deadline) {
		return pd, ok
	}
	return time.Unix(0, c.deadline), true
}

func (c *workCtx) Done() <-chan struct{} {
	c.mu.Lock()
	done := c.ctxDone
	if done != nil {
		c.mu.Unlock()
		return done
	}
	done = make(chan struct{})
	c.ctxDone = done
	if c.ctxErr == nil {
		if err := c.parent.Err(); err != nil {
			// The caller gave up before the work looked: that ends the task
			// (outside the lock, which is the task's), and so closes done.
			c.mu.Unlock()
			c.parentEnded(err)
			return done
		}
		c.ctxErr = c.expiredLocked()
	}
	if c.ctxErr != nil {
		close(done)
		c.mu.Unlock()
		return done
	}
	if c.parent.Done() != nil {
		c.watchLocked().stop = context.AfterFunc(c.parent, func() { c.parentEnded(c.parent.Err()) })
	}
	if c.deadline != 0 {
		w := c.watchLocked()
		w.target = new(atomic.Pointer[workCtx])
		w.target.Store(c)
		target := w.target
		w.timer = time.AfterFunc(time.Until(time.Unix(0, c.deadline)), func() {
			if c := target.Load(); c != nil {
				c.cancel(context.DeadlineExceeded)
			}
		})
	}
	c.mu.Unlock()
	return done
}

// expiredLocked reports a cause the ctx should already have.
func (c *workCtx) expiredLocked() error {
	if err := c.parent.Err(); err != nil {
		return err
	}
	if c.deadline != 0 && time.Now().UnixNano() >= c.deadline {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *workCtx) Err() error {
	c.mu.Lock()
	err := c.ctxErr
	if err == nil {
		err = c.expiredLocked()
	}
	settled := c.ctxErr != nil
	c.mu.Unlock()
	if !settled && err != nil {
		// Seen before its watch fired: end the ctx now, callbacks included.
		if perr := c.parent.Err(); perr != nil {
			c.parentEnded(perr)
		} else {
			c.cancel(err)
		}
		c.mu.Lock()
		err = c.ctxErr
		c.mu.Unlock()
	}
	return err
}

func (c *workCtx) Value(key any) any {
	p := c.parent
	if c.ob != nil {
		p = c.ob.ctx // the observer's ctx, derived from parent (Observer)
	}
	if v := p.Value(key); v != nil {
		return v
	}
	if c.w != nil && c.w.ctx != nil {
		return c.w.ctx.Value(key)
	}
	return nil
}

// AfterFunc arranges for f to be called once the ctx ends; stop
// unregisters it. The context package looks for this method: with it,
// context.WithCancel, WithTimeout and AfterFunc on a work's ctx register a
// callback here, as they do on a standard ctx, instead of starting a
// goroutine that waits on Done.
func (c *workCtx) AfterFunc(f func()) (stop func() bool) {
	c.Done() // arms the watches on the caller's ctx and the deadline
	c.mu.Lock()
	if c.ctxErr != nil {
		c.mu.Unlock()
		// Not in this goroutine: callers may hold their own lock here.
		go f()
		return func() bool { return false }
	}
	w := c.watchLocked()
	if w.funcs == nil {
		w.funcs = map[*func()]struct{}{}
	}
	key := &f
	w.funcs[key] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := w.funcs[key]
		delete(w.funcs, key)
		return ok
	}
}

// parentEnded ends the work because the caller's ctx ended with err: it
// cancels the task, which ends the ctx (task.cancel, stopWork), or, when
// the work has returned already, ends the ctx alone.
func (c *workCtx) parentEnded(err error) {
	if !(*task)(c).cancel(err) {
		c.cancel(err)
	}
}

// cancel ends the ctx with err (the first cause wins) and runs the
// callbacks registered with AfterFunc, outside the lock.
func (c *workCtx) cancel(err error) {
	c.mu.Lock()
	if c.ctxErr != nil {
		c.mu.Unlock()
		return
	}
	c.ctxErr = err
	if c.ctxDone != nil {
		close(c.ctxDone)
	}
	var fns map[*func()]struct{}
	if w := c.ctxWatch; w != nil {
		fns, w.funcs = w.funcs, nil
	}
	c.mu.Unlock()
	for f := range fns {
		(*f)()
	}
}

// release stops the watchers once the work has returned.
func (c *workCtx) release() {
	c.mu.Lock()
	w := c.ctxWatch
	c.ctxWatch = nil
	c.mu.Unlock()
	if w == nil {
		return
	}
	// Nothing cancels the ctx any more: contexts derived from it that
	// outlive the work are on their own, as with a standard ctx.
	if w.stop != nil {
		w.stop()
	}
	if w.timer != nil {
		w.timer.Stop()
		w.target.Store(nil)
	}
}

func (c *workCtx) String() string { return "aplex.workCtx" }
