package engine

import "context"

// Works submitted under one ctx share one watch on it. A work queued, or
// sent to a remote worker, watches its caller's ctx so that it ends the
// moment that ctx ends (watchLocked). One context.AfterFunc per work costs
// three allocations and an entry in the ctx's set of children, taken under
// the ctx's lock: a third of the throughput of process works submitted,
// then collected, under a request's ctx. So the core keeps a few shared
// watches (sharedWatches of them, for as many callers submitting at once):
// the first work that needs a watch for a ctx's Done channel claims a free
// one for it, and the works that need one for the same channel (that ctx,
// and any ctx derived from it that adds only values: they share its Done)
// join it. A work whose ctx finds none free gets a watch of its own, as
// before, so no caller pays more than it did. A shared watch is stopped
// when its last member leaves, so it holds nothing once its works have
// left: it never keeps the executor reachable from a long-lived ctx.
//
// A member's task.watch is its claim's leave function, so every place
// that stops a work's watch stops a shared one the same way, under
// core.mu. When the ctx ends, the watch finds its members among the works
// queued and the jobs sent (c.jobs), the only places a watched work can be
// (a work in this process stops its watch as it starts): every one whose
// ctx has that Done channel. A work there that watches that channel with a
// watch of its own (queued while none was free) is cancelled too, which
// its own watch would have done anyway. Everything here runs under
// core.mu, but the AfterFunc's function, which takes it.

// sharedWatches is how many ctxs the core watches for several works at
// once; a join looks at each.
const sharedWatches = 8

// sharedWatch is one of the core's shared watches.
type sharedWatch struct {
	gen   uint64          // the claim's number, captured by its functions
	done  <-chan struct{} // the claiming ctx's Done; nil while unarmed
	stop  func() bool     // the AfterFunc's
	leave func() bool     // a member's task.watch
	n     int             // members
}

// joinSharedLocked makes t, a work whose caller's ctx can end, a member
// of the shared watch on that ctx, claiming a free one for it if none is.
// False if none is free: t needs a watch of its own.
func (c *core) joinSharedLocked(t *task) bool {
	done := t.parent.Done()
	if done == nil { // never ends: nothing to watch (the callers check first)
		return true
	}
	var sw, free *sharedWatch
	for i := range c.shared {
		w := &c.shared[i]
		if w.done == done {
			sw = w
			break
		}
		if w.done == nil && free == nil {
			free = w
		}
	}
	if sw == nil {
		if sw = free; sw == nil {
			return false
		}
		sw.gen++
		gen := sw.gen
		sw.done = done
		sw.leave = func() bool { c.leaveSharedLocked(sw, gen); return true }
		sw.stop = context.AfterFunc(t.parent, func() { c.sharedFired(sw, gen) })
	}
	sw.n++
	t.watch = sw.leave
	return true
}

// leaveSharedLocked removes a member of sw's claim gen, stopping the watch
// with its last member. A member of a claim that has fired leaves nothing.
func (c *core) leaveSharedLocked(sw *sharedWatch, gen uint64) {
	if gen != sw.gen || sw.done == nil {
		return
	}
	if sw.n--; sw.n == 0 && sw.stop() {
		// Stopped before it fired; else its function is about to run,
		// and disarms the watch itself.
		sw.disarm()
	}
}

// sharedFired runs when the ctx of sw's claim gen ends: every work queued or
// sent under a ctx with its Done channel is cancelled with its own ctx's
// error, as its own watch would have done.
func (c *core) sharedFired(sw *sharedWatch, gen uint64) {
	c.mu.Lock()
	if sw.gen != gen || sw.done == nil {
		// Cannot happen: a claim is armed until its function runs or its
		// stop succeeds, and only an unarmed watch is claimed again.
		c.unlock()
		return
	}
	done := sw.done
	sw.disarm()
	var ended []*task
	for _, t := range c.jobs {
		if t.parent.Done() == done {
			ended = append(ended, t)
		}
	}
	for t := c.queue.head; t != nil; t = t.next {
		if t.parent.Done() == done {
			ended = append(ended, t)
		}
	}
	c.unlock()
	for _, t := range ended { // cancel takes core.mu
		t.cancel(t.parent.Err())
	}
}

// disarm forgets the claim: the watch is free for the next. Its members
// keep its leave function, which then does nothing.
func (sw *sharedWatch) disarm() {
	sw.done, sw.stop, sw.leave, sw.n = nil, nil, nil, 0
}
