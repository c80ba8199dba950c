package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/aplex-go/aplex/internal/xport"
)

// This file is the core's sending side for remote workers (process and
// cluster): jobs, cancels and kills go out through xport.Worker. Their
// events come back through sink.go.

// sendLocked assigns t a job id and hands it to w's transport.
func (c *core) sendLocked(w *worker, t *task) {
	rj := t.rjob()
	c.nextID++
	rj.job.ID = c.nextID
	c.jobs[rj.job.ID] = t
	if t.watch == watchNone && t.parent.Done() != nil { // else the one it had queued (dispatchLocked)
		c.watchLocked(t)
	}
	// The worker enforces the caller's ctx's deadline as the time left
	// (not an instant: a cluster's clocks may differ) and the call's
	// Deadline(d) from the work's start, which for a work held there
	// (ahead) is later than its arrival; past the kill grace, this side
	// enforces them by killing the worker.
	d := t.deadlineD()
	rj.job.Timeout, rj.job.Limit, rj.job.Ahead = 0, d, rj.ahead
	pd, has := t.parent.Deadline()
	var left time.Duration
	if has {
		left = time.Until(pd)
		rj.job.Timeout = left
		if left <= 0 {
			rj.job.Timeout = -1 // passed already; 0 would mean none
		}
	}
	// The caller's ctx's deadline needs no timer of the work's own when
	// that ctx is watched (its own watch, a shared one, its Map's): the
	// watch cancels the work as the deadline passes, and the cancel kills
	// it past the kill grace (cancelRemote), the same instant. A timer per
	// work cost works submitted under a request's timeout two allocations
	// and a third of their throughput. A Deadline(d) that comes first
	// needs one, from now, unless the work is sent ahead: then from its
	// start (startedLocked), and until then only the caller's deadline
	// holds it.
	switch {
	case d > 0 && (!has || d < left) && !rj.ahead:
		rj.killTimer = c.armKill(t, c.graceAfter(d), "ran past its deadline")
	case has && !t.parentWatched():
		rj.killTimer = c.armKill(t, c.graceAfter(max(left, 0)), "ran past its deadline")
	}
	rj.send[0] = &rj.job
	rj.on.Store(w)
	if c.holdSends && w.holder != nil && c.held == nil && w.holder.Hold() {
		// A Submit's own dispatch, and the worker agreed (xport.Holder):
		// the Submit writes the job itself once it has let the lock go,
		// sparing a round trip a thread wake-up.
		c.held = w.holder
	}
	w.conn.Send(rj.send[:])
	// A job budget (WithRecycleAfter) is a hard bound: the worker leaves the
	// balancer's view with its last job, here under the lock, rather than
	// when the transport notices, by which time a burst has overshot it.
	// It is closed once idle (releaseLocked); the transport replaces it.
	if w.budget > 0 {
		if w.budget--; w.budget == 0 {
			c.removeWorkerLocked(w)
			w.retired = true
			c.observeWorker(WorkerRecycled, w, "", nil)
		}
	}
}

// startedLocked handles a worker's word that t, sent ahead of a free
// slot, has started: WorkStarted fires now, and its Deadline(d), counted
// by the worker from now, gets its kill timer, unless the caller's
// deadline, enforced already (its watch, or the timer sendLocked armed),
// comes first. Under core.mu.
func (c *core) startedLocked(t *task) {
	rj := t.rjob()
	c.notAheadLocked(rj)
	if t.state.Load() != stRunning {
		// Cancelled meanwhile: its future ended (WorkFinished has been
		// reported), and the cancel's kill grace stands.
		return
	}
	if testHookStartHeard != nil {
		testHookStartHeard(t)
	}
	if t.ob() != nil {
		c.observeStarted(t, t.w)
	}
	d := t.deadlineD()
	if d <= 0 {
		return
	}
	if pd, has := t.parent.Deadline(); has && time.Until(pd) <= d {
		return
	}
	if rj.killTimer != nil {
		rj.killTimer.Stop()
	}
	rj.killTimer = c.armKill(t, c.graceAfter(d), "ran past its deadline")
}

// testHookStartHeard, set by tests before the executor starts, is called
// by startedLocked once it has found t still running, under core.mu: a
// Cancel may still end t before its WorkStarted is reported.
var testHookStartHeard func(t *task)

// notAheadLocked clears rj's ahead mark as its job starts or leaves the
// job table, counting it out of c.prefetched. Under core.mu.
func (c *core) notAheadLocked(rj *remoteJob) {
	if rj.ahead {
		rj.ahead = false
		c.prefetched--
	}
}

// isAhead reports whether rj, nil for an in-process task, waits to start
// on its worker. Under core.mu.
func (rj *remoteJob) isAhead() bool { return rj != nil && rj.ahead }

// parentWatched reports whether a watch cancels t as its caller's ctx
// ends: its own or a shared one (t.watch), or, for a Map's chunk, the
// Map's (mapwatch.go). Under core.mu.
func (t *task) parentWatched() bool {
	if t.watch != watchNone {
		return true
	}
	_, chunk := t.parent.(chunkParent)
	return chunk
}

// cancelRemote tells the worker to cancel t's ctx, which ended with err,
// and arms the kill grace.
func (c *core) cancelRemote(t *task, err error) {
	rj := t.rjob()
	c.mu.Lock()
	defer c.unlock()
	if c.jobs[rj.job.ID] != t {
		return // already answered
	}
	t.w.conn.Cancel([]uint64{rj.job.ID})
	if rj.killTimer != nil {
		rj.killTimer.Stop()
	}
	why := "ignored cancellation"
	if errors.Is(err, context.DeadlineExceeded) {
		why = "ran past its deadline" // its caller's ctx's, which a watch saw pass
	}
	rj.killTimer = c.armKill(t, c.cfg.killGrace, why)
}

// graceAfter returns d ≥ 0 plus the kill grace, saturating: a deadline
// centuries away (Deadline(math.MaxInt64), a caller's deadline in the year
// 2500) wrapped the sum around to a negative wait, and the timer killed
// the worker at once (TestHugeDeadlinesDoNotOverflow).
func (c *core) graceAfter(d time.Duration) time.Duration {
	if d > math.MaxInt64-c.cfg.killGrace {
		return math.MaxInt64
	}
	return d + c.cfg.killGrace
}

// armKill kills t's worker if t still runs after d: a work that ignores its
// ctx costs its worker process, never the pool (rule 8).
//
// The timer's function finds t by its job id, never holding t itself: a
// stopped timer can stay in the runtime's timer heap, its function
// reachable, until it would have fired, and t points to its executor,
// which would then stay reachable that long after it was dropped, its
// cleanup never closing it (TestFinishedTimedWorksDoNotKeepTheirExecutorReachable).
// Job ids are never reused, so the id names t alone.
//
// A worker that cannot be reached when the timer fires (xport.Unreachable:
// a cluster outage, where the answer may only be held up) is asked again
// later rather than killed; its heartbeat timeout drops it meanwhile if it
// does not come back (TestShortOutageKillsNoWorker). The question is asked
// without c.mu: the transport may wait for its connection's lock to
// answer, and a Submit must not wait with it.
func (c *core) armKill(t *task, d time.Duration, why string) *time.Timer {
	return c.armKillIn(t, d, d, why)
}

// armKillIn is armKill firing after wait, its reason naming d. c.mu is
// held. A timer that a later one replaced, or that stopTimers stopped too
// late, does nothing: only the last one armed for the job may kill.
func (c *core) armKillIn(t *task, wait, d time.Duration, why string) *time.Timer {
	rj := t.rjob()
	id := rj.job.ID
	rj.killArm++
	arm := rj.killArm
	// armed returns the job's task if it still awaits an answer from conn
	// (any, if nil) and this timer is its last one; c.mu is held.
	armed := func(conn xport.Worker) *task {
		t := c.jobs[id]
		if t == nil || t.rjob().killArm != arm || (conn != nil && t.w.conn != conn) {
			return nil
		}
		return t
	}
	return time.AfterFunc(wait, func() {
		c.mu.Lock()
		t := armed(nil)
		if t == nil {
			c.unlock()
			return
		}
		conn, job := t.w.conn, t.rjob().job // a copy: the task is not held past the lock
		c.unlock()
		if u, ok := conn.(xport.Unreachable); ok {
			if retry := u.Unreachable(&job); retry > 0 {
				c.mu.Lock()
				if t := armed(conn); t != nil {
					t.rjob().killTimer = c.armKillIn(t, retry, d, why)
				}
				c.unlock()
				return
			}
		}
		conn.Kill(fmt.Errorf("work %q %s for %v", job.Name, why, d))
	})
}
