package engine

import "context"

// Remote works submitted under one ctx share one watch on it. A work sent
// to a remote worker, or queued for one, watches its caller's ctx so that
// it ends the moment that ctx ends (watchLocked). One context.AfterFunc
// per work costs three allocations and an entry in the ctx's set of
// children, taken under the ctx's lock: a third of the throughput of
// process works submitted, then collected, under a request's ctx. So the
// core keeps one shared watch: the first remote work that needs a watch
// while none is armed claims it for its ctx's Done channel, and the works
// that need one for the same channel (that ctx, and any ctx derived from
// it that adds only values: they share its Done) join it. A work under
// another ctx meanwhile gets a watch of its own, as before, so no caller
// pays more than it did. The watch is stopped when its last member leaves,
// so it holds nothing once its works have ended: it never keeps the
// executor reachable from a long-lived ctx.
//
// Membership is a generation number in the remoteJob (memberOf), not a
// list: the watch fires once per ctx at most, and then finds its members
// among the jobs sent (c.jobs) and the queue, the only places a watched
// remote work can be. Everything here runs under core.mu, but the
// AfterFunc's function, which takes it.
type sharedWatch struct {
	gen    uint64          // the claim's number; a member's remoteJob holds it
	done   <-chan struct{} // the claiming ctx's Done
	parent context.Context // the claiming ctx
	stop   func() bool     // the AfterFunc's; nil while unarmed
	n      int             // members
}

// joinSharedLocked makes t, a remote work whose caller's ctx can end, a
// member of the shared watch, claiming it for that ctx if it is free.
// False if it is armed for another ctx: t needs a watch of its own.
func (c *core) joinSharedLocked(t *task, rj *remoteJob) bool {
	sw := &c.shared
	done := t.parent.Done()
	switch {
	case sw.stop != nil && sw.done == done:
	case sw.stop == nil:
		sw.gen++
		sw.done, sw.parent = done, t.parent
		gen := sw.gen
		sw.stop = context.AfterFunc(t.parent, func() { c.sharedFired(gen) })
	default:
		return false
	}
	sw.n++
	rj.memberOf = sw.gen
	return true
}

// leaveSharedLocked removes t from the shared watch, stopping it if t was
// its last member. A member of a claim that has fired just forgets it.
func (c *core) leaveSharedLocked(rj *remoteJob) {
	sw := &c.shared
	gen := rj.memberOf
	rj.memberOf = 0
	if gen != sw.gen || sw.stop == nil {
		return
	}
	if sw.n--; sw.n == 0 && sw.stop() {
		// Stopped before it fired; else its function is about to run,
		// and it disarms the watch itself.
		sw.disarm()
	}
}

// sharedFired runs when the ctx of claim gen ends: every member is
// cancelled with its own ctx's error, as its own watch would have done.
func (c *core) sharedFired(gen uint64) {
	c.mu.Lock()
	sw := &c.shared
	if sw.gen != gen || sw.stop == nil {
		// Cannot happen: a claim is armed until its function runs or its
		// stop succeeds, and only an unarmed watch is claimed again.
		c.unlock()
		return
	}
	sw.disarm()
	// The members keep their claim's number, as a work whose own watch
	// fired keeps it: they count as watched (task.watched) until they
	// leave, which then only clears it.
	var members []*task
	for _, t := range c.jobs {
		if t.rjob().memberOf == gen {
			members = append(members, t)
		}
	}
	for t := c.queue.head; t != nil; t = t.next {
		if rj := t.rjob(); rj != nil && rj.memberOf == gen {
			members = append(members, t)
		}
	}
	c.unlock()
	for _, t := range members { // cancel takes core.mu for a running work
		t.cancel(t.parent.Err())
	}
}

// disarm forgets the claim: the watch is free for the next.
func (sw *sharedWatch) disarm() {
	sw.stop, sw.done, sw.parent, sw.n = nil, nil, nil, 0
}
