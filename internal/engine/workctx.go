package engine

import (
	"context"
	"time"

	"github.com/aplex-go/aplex/internal/lazyctx"
)

// workCtx is the ctx an in-process work runs with. It is a view of its
// task (same memory), so it costs no allocation: a lazy ctx
// (internal/lazyctx) whose state is the task's lc, guarded by the task's
// lock; its done channel is made only when the work asks for it, and the
// watch on the caller's ctx is registered only then.
//
// Cancellation comes from the caller's ctx (parent), from Cancel, from a
// shutdown, and from the call's Deadline. The caller's ctx ending cancels
// the task, not only the ctx, as it does on every kind of worker: the
// future ends cancelled with the ctx's error (see ctxOwner.ParentEnded).
// Values come from the caller's ctx first, then from the worker's ctx
// (WithWorkerInit).
type workCtx task

func (t *task) workContext() *workCtx { return (*workCtx)(t) }

// ctxOwner is the task as its lazy ctx's owner: a view of its own, so that
// the Owner methods are not methods of the ctx a work is handed.
type ctxOwner task

func (c *workCtx) owner() *ctxOwner { return (*ctxOwner)(c) }

func (o *ctxOwner) Parent() context.Context { return o.parent }
func (o *ctxOwner) Lazy() *lazyctx.State    { return &o.lc }
func (o *ctxOwner) Lock()                   { o.mu.Lock() }
func (o *ctxOwner) Unlock()                 { o.mu.Unlock() }

// ParentEnded ends the work because the caller's ctx ended with err: it
// cancels the task, which ends the ctx (task.cancel, stopWork), or, when
// the work has returned already, ends the ctx alone.
func (o *ctxOwner) ParentEnded(err error) {
	if !(*task)(o).cancel(err) {
		lazyctx.Cancel(o, err)
	}
}

func (c *workCtx) Deadline() (time.Time, bool) { return lazyctx.Deadline(c.owner()) }

func (c *workCtx) Done() <-chan struct{} { return lazyctx.Done(c.owner()) }

func (c *workCtx) Err() error { return lazyctx.Err(c.owner()) }

func (c *workCtx) Value(key any) any {
	p := c.parent
	if ob := (*task)(c).ob(); ob != nil {
		p = ob.ctx // the observer's ctx, derived from parent (Observer)
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
func (c *workCtx) AfterFunc(f func()) (stop func() bool) { return lazyctx.AfterFunc(c.owner(), f) }

// cancel ends the ctx with err (the first cause wins) and runs the
// callbacks registered with AfterFunc, outside the lock.
func (c *workCtx) cancel(err error) { lazyctx.Cancel(c.owner(), err) }

// release stops the watchers once the work has returned.
func (c *workCtx) release() { lazyctx.Release(c.owner()) }

func (c *workCtx) String() string { return "aplex.workCtx" }
