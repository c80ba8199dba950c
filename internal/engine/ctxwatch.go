package engine

import "context"

// Works submitted under one ctx share one watch on it. A work queued, or
// sent to a remote worker, watches its caller's ctx so that it ends the
// moment that ctx ends (watchLocked). One context.AfterFunc per work costs
// three allocations and an entry in the ctx's set of children, taken under
// the ctx's lock: a third of the throughput of process works submitted,
// then collected, under a request's ctx. So the core keeps one watch per
// ctx's Done channel that works are watched for: the first work that needs
// a watch for that channel makes it, and the works that need one for the
// same channel (that ctx, and any ctx derived from it that adds only
// values: they share its Done) join it, however many ctxs are watched at
// once. A shared watch is stopped when its last member leaves, so it holds
// nothing once its works have left: it never keeps the executor reachable
// from a long-lived ctx. Stopped, it goes to a short free list with its
// functions, for the next ctx: a watch then costs the AfterFunc alone, one
// allocation less than the watch of a work's own it replaces.
//
// A member's task.watch is watchShared: its watch is the one armed for its
// ctx's Done (byDone), which stays armed while it has members, and every
// place that stops a work's watch stops it the same way, under core.mu
// (unwatchLocked). A member is always queued or among the jobs sent (c.jobs): a
// work in this process stops its watch as it starts, a remote one as its
// answer is taken from c.jobs (Done), or as it leaves c.jobs otherwise
// (stopTimers). So when the ctx ends, the watch finds every member there,
// as every work whose ctx has that Done channel, and makes each forget it
// (watchFired) before the watch is reused: no member of an old claim can
// count against a new one. It finds the works of that ctx queued without a
// watch too (behind a runner being woken: core.unwatched counts them),
// and takes them off that count as it claims them. Everything here runs under core.mu, but the
// AfterFunc's function, which takes it.

// maxIdleWatches bounds the free list of stopped shared watches.
const maxIdleWatches = 16

// sharedWatches are the core's shared watches.
type sharedWatches struct {
	byDone map[<-chan struct{}]*sharedWatch // the armed ones, by their ctx's Done
	idle   []*sharedWatch                   // stopped, for the next ctxs
}

// sharedWatch is one shared watch. Its functions are made once, with it.
type sharedWatch struct {
	done  <-chan struct{} // the claiming ctx's Done; nil while unarmed
	stop  func() bool     // the AfterFunc's
	n     int             // members
	fired func()          // the AfterFunc's function
}

// joinSharedLocked makes t, a work whose caller's ctx can end, a member
// of the shared watch on that ctx, arming one for it if there is none.
func (c *core) joinSharedLocked(t *task) {
	done := t.parent.Done()
	if done == nil { // never ends: nothing to watch (the callers check first)
		return
	}
	ws := &c.shared
	sw := ws.byDone[done]
	if sw == nil {
		if n := len(ws.idle); n > 0 {
			sw, ws.idle = ws.idle[n-1], ws.idle[:n-1]
		} else {
			sw = &sharedWatch{}
			sw.fired = func() { c.sharedFired(sw) }
		}
		if ws.byDone == nil {
			ws.byDone = make(map[<-chan struct{}]*sharedWatch)
		}
		sw.done = done
		sw.stop = context.AfterFunc(t.parent, sw.fired)
		ws.byDone[done] = sw
	}
	sw.n++
	t.watch = watchShared
}

// leaveSharedLocked removes a member of sw, stopping the watch with its
// last member.
func (c *core) leaveSharedLocked(sw *sharedWatch) {
	if sw.n--; sw.n == 0 && sw.stop() {
		// Stopped before it fired; else its function is about to run,
		// and retires the watch itself.
		c.retireSharedLocked(sw)
	}
}

// sharedFired runs when the ctx sw watches ends: every work queued or sent
// under a ctx with its Done channel is cancelled with its own ctx's error,
// as its own watch would have done, the works queued unwatched behind a
// runner being woken with them.
func (c *core) sharedFired(sw *sharedWatch) {
	c.mu.Lock()
	done := sw.done
	if done == nil {
		// Cannot happen: a watch is armed until its function runs or its
		// stop succeeds, and only an unarmed watch is armed again.
		c.unlock()
		return
	}
	ended := c.inFlightLocked(func(t *task) bool {
		if t.parent.Done() != done {
			return false
		}
		if t.unwatched() {
			// Queued behind a runner being woken, with no watch of its
			// own (submit), and counted so: it leaves the count as it
			// becomes this watch's, or the count would stay up for good
			// (TestSharedWatchFiringKeepsTheUnwatchedCount).
			c.unwatched--
		}
		t.watch = watchFired
		return true
	})
	c.retireSharedLocked(sw)
	c.unlock()
	for _, t := range ended { // cancel takes core.mu
		t.cancel(t.parent.Err())
	}
}

// retireSharedLocked unarms sw, whose AfterFunc is stopped or has run and
// which has no member left, and keeps it for the next ctx.
func (c *core) retireSharedLocked(sw *sharedWatch) {
	ws := &c.shared
	delete(ws.byDone, sw.done)
	sw.done, sw.stop, sw.n = nil, nil, 0
	if len(ws.idle) < maxIdleWatches {
		ws.idle = append(ws.idle, sw)
	}
}

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
