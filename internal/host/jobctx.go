package host

import (
	"context"
	"time"

	"github.com/aplex-go/aplex/internal/lazyctx"
)

// jobCtx is the ctx a job's work runs with: a view of the job (same
// memory), so it costs no allocation; a lazy ctx (internal/lazyctx), as an
// in-process work's is, whose done channel, watch on the base ctx and
// deadline timer are made only once something watches it. Its values and
// its cancellation come from the host's base ctx; the host cancels it
// (job.cancel) when the executor cancels the job, the host drains or is
// killed, and once the job has finished.
type jobCtx job

// jobOwner is the job as its ctx's owner: a view of its own, so that the
// Owner methods are not methods of the ctx a work is handed.
type jobOwner job

func (o *jobOwner) Parent() context.Context { return o.h.base }
func (o *jobOwner) Lazy() *lazyctx.State    { return &o.lc }
func (o *jobOwner) Lock()                   { o.mu.Lock() }
func (o *jobOwner) Unlock()                 { o.mu.Unlock() }

// ParentEnded ends the job's ctx when the base ctx ends.
func (o *jobOwner) ParentEnded(err error) { lazyctx.Cancel(o, err) }

func (c *jobCtx) owner() *jobOwner { return (*jobOwner)(c) }

func (c *jobCtx) Deadline() (time.Time, bool) { return lazyctx.Deadline(c.owner()) }

func (c *jobCtx) Done() <-chan struct{} { return lazyctx.Done(c.owner()) }

func (c *jobCtx) Err() error { return lazyctx.Err(c.owner()) }

func (c *jobCtx) Value(key any) any { return c.h.base.Value(key) }

// AfterFunc is the method the context package looks for: contexts derived
// from a job's ctx register a callback here instead of a goroutine each.
func (c *jobCtx) AfterFunc(f func()) (stop func() bool) { return lazyctx.AfterFunc(c.owner(), f) }

func (c *jobCtx) String() string { return "aplex.jobCtx" }

// cancel ends the job's ctx (context.Canceled, unless it ended already)
// and stops its watches: the executor cancelled the job, the host drains
// or is killed, or the job has finished.
func (j *job) cancel() {
	o := (*jobOwner)(j)
	lazyctx.Cancel(o, context.Canceled)
	lazyctx.Release(o)
}
