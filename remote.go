package aplex

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// This file is the core's side of remote workers (process and cluster): it
// implements xport.Sink and sends jobs, cancels and kills through xport.Worker.

var _ xport.Sink = (*core)(nil)

// sendLocked assigns t a job id and hands it to w's transport.
func (c *core) sendLocked(w *worker, t *task) {
	c.nextID++
	t.rj.job.ID = c.nextID
	c.jobs[t.rj.job.ID] = t
	t.rj.job.Timeout = 0
	if left, ok := t.timeLeft(); ok {
		// Enforced by the worker, which gets the time left (not an instant:
		// a cluster's clocks may differ); past the kill grace, by killing it.
		t.rj.job.Timeout = left
		if left <= 0 {
			t.rj.job.Timeout = -1 // passed already; 0 would mean none
		}
		t.rj.killTimer = c.armKill(t, max(left, 0)+c.cfg.killGrace, "ran past its deadline")
	}
	if t.parent.Done() != nil {
		t.watch = context.AfterFunc(t.parent, func() { t.cancel(t.parent.Err()) })
	}
	t.rj.send[0] = &t.rj.job
	w.conn.Send(t.rj.send[:])
	// A job budget (WithRecycleAfter) is a hard bound: the worker leaves the
	// balancer's view with its last job, here under the lock, rather than
	// when the transport notices, by which time a burst has overshot it.
	// It is closed once idle (releaseLocked); the transport replaces it.
	if w.budget > 0 {
		if w.budget--; w.budget == 0 {
			c.removeWorkerLocked(w)
			w.retired = true
		}
	}
}

// timeLeft returns the time left until t's effective deadline, the earlier
// of the caller's ctx deadline and the call's Deadline(d) counted from now;
// false if it has neither. A work in this process gets the same deadline
// from its ctx (workCtx.Deadline).
func (t *task) timeLeft() (time.Duration, bool) {
	pd, has := t.parent.Deadline()
	var left time.Duration
	if has {
		left = time.Until(pd)
	}
	if t.deadlineD > 0 && (!has || t.deadlineD < left) {
		return t.deadlineD, true
	}
	return left, has
}

// cancelRemote tells the worker to cancel t's ctx and arms the kill grace.
func (c *core) cancelRemote(t *task) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs[t.rj.job.ID] != t {
		return // already answered
	}
	t.w.conn.Cancel([]uint64{t.rj.job.ID})
	if t.rj.killTimer != nil {
		t.rj.killTimer.Stop()
	}
	t.rj.killTimer = c.armKill(t, c.cfg.killGrace, "ignored cancellation")
}

// armKill kills t's worker if t still runs after d: a work that ignores its
// ctx costs its worker process, never the pool (rule 8).
func (c *core) armKill(t *task, d time.Duration, why string) *time.Timer {
	id := t.rj.job.ID
	return time.AfterFunc(d, func() {
		c.mu.Lock()
		var conn xport.Worker
		if c.jobs[id] == t {
			conn = t.w.conn
		}
		c.mu.Unlock()
		if conn != nil {
			conn.Kill(fmt.Errorf("work %q %s for %v", t.rj.job.Name, why, d))
		}
	})
}

// Join adds a ready worker (xport.Sink).
func (c *core) Join(conn xport.Worker) {
	capacity := c.cfg.maxWorksPerWorker
	if n := conn.Capacity(); n > 0 && n < capacity {
		capacity = n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		// Too late to be useful; the transport's Close stops it. Until the
		// teardown, a graceful Shutdown still needs replacements: the
		// works it drains may have lost every worker.
		return
	}
	st := c.statsFor(conn.Slot())
	if c.slotSeen(conn.Slot()) {
		c.restarts.Add(1)
	}
	info := conn.Info()
	st.pid.Store(int64(info.PID))
	// The identity is read once here, so the balancer's view (Workers.Name,
	// Labels) costs Pick nothing; the copy keeps a balancer that writes to
	// the map from reaching the transport's.
	w := &worker{slot: conn.Slot(), name: info.ID, cap: capacity, conn: conn, stats: st}
	if len(info.Labels) > 0 {
		w.labels = maps.Clone(info.Labels)
	}
	st.name, st.labels = w.name, w.labels
	if b, ok := conn.(xport.Budgeted); ok {
		w.budget = b.Budget() // see sendLocked
	}
	c.byConn[conn] = w
	c.addWorkerLocked(w)
	c.broken = nil
	c.drainLocked(false)
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
		c.mu.Unlock()
		return
	}
	c.removeWorkerLocked(w)
	w.retired = true
	idle := w.load.Load() == 0
	c.mu.Unlock()
	if idle {
		conn.Close()
	}
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
		if neverStarted(r.Items) && !c.down && t.state.CompareAndSwap(stRunning, stQueued) {
			// The worker was shutting down and did not run it: it goes back
			// to the head of the queue, without using up a retry.
			c.stopTimers(t)
			if cc := c.releaseLocked(t.w, t); cc != nil {
				closeConn = cc
			}
			t.w = nil
			c.queue.pushFront(t)
			continue
		}
		finished = append(finished, done{t, r.Items})
	}
	c.mu.Unlock()
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
	c.mu.Unlock()
	if closeConn != nil {
		closeConn.Close()
	}
}

func (c *core) stopTimers(t *task) {
	if t.rj.killTimer != nil {
		t.rj.killTimer.Stop()
		t.rj.killTimer = nil
	}
	if t.watch != nil {
		t.watch()
		t.watch = nil
	}
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
		c.mu.Unlock()
		return
	}
	delete(c.byConn, conn)
	c.removeWorkerLocked(w)
	var failed []*task
	held := w.runningTasks()
	for i := len(held) - 1; i >= 0; i-- { // backwards, so retried works keep their order at the head
		t := held[i]
		delete(c.jobs, t.rj.job.ID)
		c.stopTimers(t)
		c.releaseLocked(w, t)
		if t.retries > 0 && !c.down && t.state.CompareAndSwap(stRunning, stQueued) {
			t.retries--
			t.w = nil
			c.queue.pushFront(t)
			continue
		}
		failed = append(failed, t)
	}
	c.drainLocked(false)
	c.checkIdleLocked()
	c.mu.Unlock()
	if len(failed) == 0 {
		return
	}
	info := conn.Info()
	werr := &WorkerError{Worker: info.ID, PID: info.PID, Err: cause, Reason: "worker stopped"}
	var r xport.Reasoner
	switch {
	case errors.As(cause, &r):
		werr.Reason = r.WorkerReason()
	case cause != nil:
		werr.Reason = cause.Error()
	}
	for _, t := range slices.Backward(failed) {
		t.r.fail(t, werr)
	}
}

// Broken records that no worker can be started (xport.Sink). Queued works
// fail with the error rather than wait for a worker that may never come.
func (c *core) Broken(err error) {
	c.mu.Lock()
	if err == nil {
		c.broken = nil
		c.mu.Unlock()
		return
	}
	werr := &WorkerError{Worker: "pool", Reason: "no worker can be started: " + err.Error(), Err: err}
	c.broken = werr
	var queued []*task
	if len(c.workers) == 0 {
		queued = c.queue.all()
	}
	c.mu.Unlock()
	for _, t := range queued {
		if c.dequeue(t) {
			t.finish(werr, false)
		}
	}
}

// decodeError rebuilds a worker's error: a job the worker refused or whose
// result it lost to a *WorkerError, other host failures to aplex's
// sentinels, panics to *PanicError, everything else to *RemoteError
// matching the registered sentinels it matched in the worker and holding
// the values of registered error types its chain held (errors.As).
func decodeError(e *wire.Error) error {
	switch e.Code.Fate() {
	case wire.FateRequeue, wire.FateLost:
		// Not the work's error: the worker refused the job and it could not
		// run elsewhere (the executor is closing), or the job ran and its
		// result was lost. Either way the worker failed it, not the work.
		return &WorkerError{Reason: e.Message}
	}
	switch e.Code {
	case wire.CodeUnknownWork:
		return fmt.Errorf("%w: %s", ErrNotRegistered, e.Message)
	case wire.CodeBadArgument, wire.CodeBadResult:
		return fmt.Errorf("%w: %s", ErrEncoding, e.Message)
	case wire.CodeTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, e.Message)
	}
	if e.Panic {
		return &PanicError{Value: e.Message, Stack: e.Stack, Remote: true, sentinels: lookupSentinels(e.Sentinels), typed: errorTypes.decode(e.Types)}
	}
	re := &RemoteError{Type: e.Type, Message: e.Message, sentinels: lookupSentinels(e.Sentinels), typed: errorTypes.decode(e.Types)}
	switch e.Code {
	case wire.CodeCanceled:
		re.sentinels = append(re.sentinels, context.Canceled)
	case wire.CodeDeadline:
		re.sentinels = append(re.sentinels, context.DeadlineExceeded)
	}
	return re
}

// lookupSentinels maps sentinel keys from a worker to this binary's
// registered sentinels, skipping those it does not know.
func lookupSentinels(keys []string) []error {
	var errs []error
	for _, key := range keys {
		if s := sentinels.lookup(key); s != nil {
			errs = append(errs, s)
		}
	}
	return errs
}

// encodeError is the worker side of decodeError.
func encodeError(err error) *wire.Error {
	e := &wire.Error{Type: fmt.Sprintf("%T", err), Message: err.Error()}
	var ce *codecError
	if errors.As(err, &ce) {
		e.Code = wire.CodeBadResult
		if ce.what == "decode argument" {
			e.Code = wire.CodeBadArgument
		}
		return e
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		e.Panic, e.Stack, e.Message = true, pe.Stack, fmt.Sprint(pe.Value)
	}
	e.Sentinels = sentinels.matching(err)
	e.Types = errorTypes.encode(err)
	return e
}
