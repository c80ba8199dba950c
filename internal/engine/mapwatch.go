package engine

import (
	"context"
	"sync"
	"time"
)

// A Map for remote workers watches its ctx once for all its chunks. Every
// work sent to a remote worker watches its caller's ctx while it runs
// (sendLocked), so that it ends at once when that ctx ends; works under
// one ctx share one watch of the core's (ctxwatch.go). A
// Map's chunks all share the Map's ctx, so the Map registers one watch of
// its own, whatever the core's are doing; its chunks get a parent that
// reports the Map's ctx's deadline, values and error but has no Done
// channel, so the core puts no watch on them. When the Map's ctx ends (its
// caller's ctx, its Timeout, or the Map ending itself: stopAll), every
// chunk of the Map queued or sent is cancelled, found as a shared watch
// finds its members (core.inFlightLocked), as each watch would have
// cancelled its own. Measured on a process Map of ChunkSize(1): 2.2
// allocations per work in the calling process instead of 5.2.
//
// A Map on goroutine workers keeps the Map's ctx as its chunks' parent:
// there a running work watches its ctx only once the work asks for Done
// (workCtx), and a queued one only while the queue is not empty, which a
// Map's window (at most the pool's capacity by default) rarely lets happen.

// chunkParent is the parent ctx of a Map's chunks: the Map's ctx without
// its Done channel. Only the core and the chunk's work ctx (workCtx) see
// it: the core reads its Done to decide whether to watch and its Err to
// tell whether the caller has given up; workCtx reads its deadline, values
// and Err. A work never gets it as its own ctx.
type chunkParent struct{ ctx context.Context }

func (p chunkParent) Deadline() (time.Time, bool) { return p.ctx.Deadline() }
func (p chunkParent) Done() <-chan struct{}       { return nil }
func (p chunkParent) Err() error                  { return p.ctx.Err() }
func (p chunkParent) Value(key any) any           { return p.ctx.Value(key) }

// chunkWatch is a Map's one watch on its ctx. Its lock is a leaf: the
// cancellations run after it is released.
type chunkWatch struct {
	c       *core
	ctx     context.Context // the Map's: its chunks' parent is chunkParent{ctx}
	stop    func() bool     // the AfterFunc's
	stopped chan struct{}   // closed once cancelAll has run

	mu    sync.Mutex
	ended bool // cancelAll ran: chunks submitted later are cancelled at once
}

// start watches ctx, the parent of chunks sent to c's workers as
// chunkParent{ctx}; cancelAll runs when it ends.
func (cw *chunkWatch) start(c *core, ctx context.Context) {
	cw.c, cw.ctx = c, ctx
	cw.stopped = make(chan struct{})
	cw.stop = context.AfterFunc(ctx, func() { cw.cancelAll(true) })
}

// submitted is told of a chunk just submitted: if the ctx has ended
// already, it may have been submitted after cancelAll looked, and is
// cancelled now. Without start, it does nothing.
func (cw *chunkWatch) submitted(t *task) {
	if cw.stop == nil {
		return
	}
	cw.mu.Lock()
	ended := cw.ended
	cw.mu.Unlock()
	if ended {
		t.cancel(cw.ctx.Err())
	}
}

// cancelAll cancels every chunk of the Map queued or sent, with ctx's
// error, if live says some may be. A chunk answered already is not among
// them: its result, once delivered, ends it with that error (deliver: its
// parent reports it).
func (cw *chunkWatch) cancelAll(live bool) {
	defer close(cw.stopped)
	cw.mu.Lock()
	cw.ended = true
	cw.mu.Unlock()
	if !live {
		return
	}
	c := cw.c
	c.mu.Lock()
	chunks := c.inFlightLocked(func(t *task) bool {
		p, ok := t.parent.(chunkParent)
		return ok && p.ctx == cw.ctx
	})
	c.unlock()
	err := cw.ctx.Err()
	for _, t := range chunks {
		t.cancel(err)
	}
}

// end cancels the chunks left now (ctx must have ended: the Map cancelled
// it) and returns once that is done, whether the watch fired or not, so
// nothing the Map started outlives it. live says whether the Map has
// chunks it has not yielded: if not, none is left, and the executor's
// works are not looked through. Without start, it does nothing.
func (cw *chunkWatch) end(live bool) {
	if cw.stop == nil {
		return
	}
	if cw.stop() {
		cw.cancelAll(live)
	}
	<-cw.stopped
}
