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
// A member's task.watch is its shared watch's leave function, so every
// place that stops a work's watch stops a shared one the same way, under
// core.mu. A member is always queued or among the jobs sent (c.jobs): a
// work in this process stops its watch as it starts, a remote one as its
// answer is taken from c.jobs (Done), or as it leaves c.jobs otherwise
// (stopTimers). So when the ctx ends, the watch finds every member there,
// as every work whose ctx has that Done channel, and makes each forget it
// (noWatch) before the watch is claimed again: no member of an old claim
// can count against a new one. A work found there that watches the channel
// with a watch of its own (queued while none was free) is cancelled too,
// which its own watch would have done anyway. Everything here runs under
// core.mu, but the AfterFunc's function, which takes it.

// sharedWatches is how many ctxs the core watches for several works at
// once; a join looks at each.
const sharedWatches = 8

// sharedWatch is one of the core's shared watches. Its functions are made
// once, by its first claim: a claim then costs the AfterFunc alone, one
// allocation less than a watch of a work's own.
type sharedWatch struct {
	done  <-chan struct{} // the claiming ctx's Done; nil while unarmed
	stop  func() bool     // the AfterFunc's
	n     int             // members
	leave func() bool     // a member's task.watch
	fired func()          // the AfterFunc's function
}

// noWatch is the watch of a work whose shared watch has fired: there is
// nothing left to stop.
func noWatch() bool { return false }

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
		if sw.leave == nil {
			sw.leave = func() bool { c.leaveSharedLocked(sw); return true }
			sw.fired = func() { c.sharedFired(sw) }
		}
		sw.done = done
		sw.stop = context.AfterFunc(t.parent, sw.fired)
	}
	sw.n++
	t.watch = sw.leave
	return true
}

// leaveSharedLocked removes a member of sw, stopping the watch with its
// last member.
func (c *core) leaveSharedLocked(sw *sharedWatch) {
	if sw.n--; sw.n == 0 && sw.stop() {
		// Stopped before it fired; else its function is about to run,
		// and disarms the watch itself.
		sw.disarm()
	}
}

// sharedFired runs when the ctx sw watches ends: every work queued or sent
// under a ctx with its Done channel is cancelled with its own ctx's error,
// as its own watch would have done.
func (c *core) sharedFired(sw *sharedWatch) {
	c.mu.Lock()
	done := sw.done
	if done == nil {
		// Cannot happen: a watch is armed until its function runs or its
		// stop succeeds, and only an unarmed watch is claimed again.
		c.unlock()
		return
	}
	sw.disarm()
	ended := c.inFlightLocked(func(t *task) bool {
		if t.parent.Done() != done {
			return false
		}
		t.watch = noWatch
		return true
	})
	c.unlock()
	for _, t := range ended { // cancel takes core.mu
		t.cancel(t.parent.Err())
	}
}

// disarm frees the watch for the next claim.
func (sw *sharedWatch) disarm() { sw.done, sw.stop, sw.n = nil, nil, 0 }

// inFlightLocked returns the works queued or sent to remote workers (in
// c.jobs) that match: where a watch on many works finds them when their
// ctx ends (a shared watch here, a Map's in mapwatch.go), rather than
// keeping a set of its own that every work would have to join and leave.
// A work answered already, or running in this process, is not among them.
func (c *core) inFlightLocked(match func(*task) bool) []*task {
	var found []*task
	for _, t := range c.jobs {
		if match(t) {
			found = append(found, t)
		}
	}
	for t := c.queue.head; t != nil; t = t.next {
		if match(t) {
			found = append(found, t)
		}
	}
	return found
}
