package engine

import (
	"cmp"
	"log/slog"
	"maps"
	"slices"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// This file is the core's side of the transports' events: it implements
// xport.Sink (Join, Retire, Done, Lost, Broken). The lock order and
// re-entrancy rules are stated in internal/xport.

var _ xport.Sink = (*core)(nil)

// Join adds a ready worker (xport.Sink).
func (c *core) Join(conn xport.Worker) {
	if w := c.join(conn); w != nil {
		c.logWorker(slog.LevelInfo, "aplex: worker restarted", w.name, w.slot, int(w.stats.pid.Load()), "")
	}
}

// join adds a ready worker; it returns it when it replaces another.
func (c *core) join(conn xport.Worker) (restarted *worker) {
	capacity := c.cfg.maxWorksPerWorker
	if n := conn.Capacity(); n > 0 && n < capacity {
		capacity = n
	}
	// The worker runs capacity works at once and holds the prefetched
	// ones (WithPrefetch; the transport told it its slots).
	capacity += c.cfg.prefetch
	c.mu.Lock()
	if c.down {
		// Too late to be useful; the transport's Close stops it. Until the
		// teardown, a graceful Shutdown still needs replacements: the
		// works it drains may have lost every worker.
		c.unlock()
		return nil
	}
	if c.removedSlots[conn.Slot()] && c.be.ownsSlot(conn.Slot()) {
		// A worker started for a slot Resize removed meanwhile: it goes,
		// outside the lock (Close may report Lost at once). (A remote
		// cluster worker may be given a removed local slot later on.)
		c.unlock()
		conn.Close()
		return nil
	}
	defer c.unlock()
	st := c.statsFor(conn.Slot())
	event := WorkerJoined
	if c.slotSeen(conn.Slot()) {
		c.restarts.Add(1)
		event = WorkerRestarted
	}
	info := conn.Info()
	st.pid.Store(int64(info.PID))
	// The identity is read once here, so the balancer's view (Workers.Name,
	// Labels) costs Pick nothing; the copy keeps a balancer that writes to
	// the map from reaching the transport's.
	w := &worker{slot: conn.Slot(), name: info.ID, cap: capacity, conn: conn, stats: st}
	w.reader, _ = conn.(xport.Reader)
	w.holder, _ = conn.(xport.Holder)
	if len(info.Labels) > 0 {
		w.labels = maps.Clone(info.Labels)
	}
	st.name, st.labels = w.name, w.labels
	if b, ok := conn.(xport.Budgeted); ok {
		w.budget = b.Budget() // see sendLocked
	}
	c.byConn[conn] = w
	c.addWorkerLocked(w)
	c.observeWorker(event, w, "", nil)
	c.broken = nil
	c.drainLocked(false)
	if event == WorkerRestarted {
		return w
	}
	return nil
}

// slotSeen reports whether a worker held this slot before (a restart).
func (c *core) slotSeen(slot int) bool {
	for _, w := range c.byConn {
		if w.slot == slot {
			return true
		}
	}
	return c.slots[slot] != nil && c.slots[slot].pid.Load() != 0
}

// Retire stops dispatching to a worker; it is closed once idle (xport.Sink).
func (c *core) Retire(conn xport.Worker) {
	c.mu.Lock()
	w := c.byConn[conn]
	if w == nil || w.retired {
		c.unlock()
		return
	}
	c.removeWorkerLocked(w)
	w.retired = true
	c.observeWorker(WorkerRecycled, w, "", nil)
	idle := w.load.Load() == 0
	c.unlock()
	if idle {
		conn.Close()
	}
}

// Started hears that jobs sent ahead of a free slot have started on their
// worker (xport.Sink).
func (c *core) Started(conn xport.Worker, ids []uint64) {
	c.mu.Lock()
	for _, id := range ids {
		t := c.jobs[id]
		if t == nil || t.w == nil || t.w.conn != conn || !t.rjob().ahead {
			continue // answered already, sent elsewhere since, or not sent ahead
		}
		c.startedLocked(t)
	}
	c.unlock()
}

// Done delivers finished jobs (xport.Sink).
func (c *core) Done(conn xport.Worker, results []wire.Result) {
	type done struct {
		t     *task
		items []wire.Outcome
	}
	finished := make([]done, 0, len(results))
	var closeConn xport.Worker
	c.mu.Lock()
	for _, r := range results {
		t := c.jobs[r.ID]
		if t == nil || t.w == nil || t.w.conn != conn {
			continue // a late answer for a job already failed or retried
		}
		delete(c.jobs, r.ID)
		if t.rjob().ahead && t.ob() != nil && succeeded(r.Items) && t.state.Load() == stRunning {
			// Sent ahead, and its Started never came (a cluster outage
			// can lose it): a success says it ran. (A failure does not:
			// a held job whose caller's deadline passed fails unstarted.)
			c.observeStarted(t, t.w)
		}
		c.notAheadLocked(t.rjob())
		if neverStarted(r.Items) && !c.down && t.state.CompareAndSwap(stRunning, stQueued) {
			// The worker was shutting down and did not run it: it goes back
			// to the head of the queue, without using up a retry.
			c.stopTimers(t)
			if cc := c.releaseLocked(t.w, t); cc != nil {
				closeConn = cc
			}
			t.w = nil
			c.requeueLocked(t)
			continue
		}
		// Its watch on its caller's ctx goes as it leaves c.jobs, where a
		// shared watch looks for its members (ctxwatch.go); a ctx that
		// ends before the result is delivered still ends the future
		// with its error (deliver).
		c.unwatchLocked(t)
		finished = append(finished, done{t, r.Items})
	}
	c.unlock()
	for _, d := range finished {
		d.t.r.deliver(d.t, d.items)
	}
	c.mu.Lock()
	for _, d := range finished {
		c.stopTimers(d.t)
		if cc := c.releaseLocked(d.t.w, d.t); cc != nil {
			closeConn = cc
		}
	}
	c.drainLocked(false)
	c.checkIdleLocked()
	c.unlock()
	if closeConn != nil {
		closeConn.Close()
	}
}

// requeueLocked puts a remote work that must run again at the head of the
// queue, watched like any queued work: its caller's ctx ending ends it at
// once. (The count of works queued unwatched, core.unwatched, relies on
// every other queued work with a ctx that can end having a watch.)
func (c *core) requeueLocked(t *task) {
	c.queue.pushFront(t)
	if t.parent.Done() != nil {
		c.watchLocked(t)
	}
}

func (c *core) stopTimers(t *task) {
	if rj := t.rjob(); rj.killTimer != nil {
		rj.killTimer.Stop()
		rj.killTimer = nil
		rj.killArm++ // a timer that fired already and waits for c.mu kills nothing
	}
	c.unwatchLocked(t)
}

// succeeded reports a result with an item that succeeded: its job ran.
func succeeded(items []wire.Outcome) bool {
	return slices.ContainsFunc(items, func(o wire.Outcome) bool { return o.Err == nil })
}

// neverStarted reports a result by which a worker refused a job before it
// ran. Which codes mean that is wire's decision (ErrCode.Fate), not ours: a
// job that ran and lost its result must never run again.
func neverStarted(items []wire.Outcome) bool { return wire.NeverRan(items) }

// Lost removes a dead worker: its works fail with a *WorkerError, or go
// back to the head of the queue when they may be retried (rule 7).
func (c *core) Lost(conn xport.Worker, cause error) {
	c.mu.Lock()
	w := c.byConn[conn]
	if w == nil {
		c.unlock()
		return
	}
	delete(c.byConn, conn)
	c.removeWorkerLocked(w)
	if w.leaving.Load() {
		c.slotGoneLocked(w.slot) // its slot was removed (Resize)
	}
	// A retired worker's clean exit, or a worker stopped by the teardown,
	// is no loss.
	lost := !c.down && (cause != nil || !w.retired)
	reason := ""
	if lost {
		reason = lostReason(cause)
		c.observeWorker(WorkerLost, w, reason, cause)
	}
	var failed []*task
	held := w.runningTasks()
	for i := len(held) - 1; i >= 0; i-- { // backwards, so retried works keep their order at the head
		t := held[i]
		delete(c.jobs, t.rjob().job.ID)
		c.notAheadLocked(t.rjob())
		c.stopTimers(t)
		c.releaseLocked(w, t)
		if t.retries > 0 && !c.down && t.state.CompareAndSwap(stRunning, stQueued) {
			t.retries--
			t.w = nil
			c.requeueLocked(t)
			continue
		}
		failed = append(failed, t)
	}
	c.drainLocked(false)
	c.checkIdleLocked()
	c.unlock()
	if lost {
		c.logWorker(slog.LevelWarn, "aplex: worker lost", w.name, w.slot, int(w.stats.pid.Load()), reason)
	}
	if len(failed) == 0 {
		return
	}
	info := conn.Info()
	werr := &WorkerError{Worker: info.ID, PID: info.PID, Err: cause, Reason: lostReason(cause)}
	for _, t := range slices.Backward(failed) {
		t.r.fail(t, werr)
	}
}

// Outstanding lists what a worker holds in the job table (xport.Sink): the
// transport's only source for resends, departures and orphan cancels.
func (c *core) Outstanding(conn xport.Worker) (jobs []*wire.Job, cancelled []uint64) {
	c.mu.Lock()
	defer c.unlock()
	w := c.byConn[conn]
	if w == nil {
		return nil, nil
	}
	held := w.runningTasks()
	copies := make([]wire.Job, 0, len(held))
	for _, t := range held {
		if c.jobs[t.rjob().job.ID] != t {
			continue // answered: Done is delivering it
		}
		copies = append(copies, t.rjob().job)
		// A future ends while its job is in the table only by a cancel (a
		// result or a Lost takes the job out first), and cancelRemote
		// sends the worker a Cancel.
		if t.state.Load() != stRunning {
			cancelled = append(cancelled, t.rjob().job.ID)
		}
	}
	slices.SortFunc(copies, func(a, b wire.Job) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(cancelled)
	jobs = make([]*wire.Job, len(copies))
	for i := range copies {
		jobs[i] = &copies[i]
	}
	return jobs, cancelled
}

// Broken records that no worker can be started (xport.Sink). Queued works
// fail with the error rather than wait for a worker that may never come.
func (c *core) Broken(err error) {
	c.mu.Lock()
	if err == nil {
		c.broken = nil
		c.unlock()
		return
	}
	werr := &WorkerError{Worker: "pool", Reason: "no worker can be started: " + err.Error(), Err: err}
	c.broken = werr
	var queued []*task
	if len(c.workers) == 0 {
		queued = c.queue.all()
	}
	c.unlock()
	for _, t := range queued {
		if c.dequeue(t) {
			t.finish(werr, false)
		}
	}
}
