package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// Membership: workers announce themselves (Hello), beat (Heartbeat), drain
// (Heartbeat with Draining) and leave (Bye). The executor joins, retires
// and drops them, and resynchronises with a worker that re-announces
// itself after a reconnect. See doc.go for the protocol as a whole.

// member returns the current member with id wid, or nil.
func (t *transport) member(wid string) *member {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.members[wid]
}

// everJoined reports whether worker wid joined at least once.
func (t *transport) everJoined(wid string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ever[wid]
}

// onHello joins a new worker, replaces a restarted one (same id, new
// process), and resynchronises with a known one announcing itself again
// (after its or this executor's reconnect).
func (t *transport) onHello(h *wire.Hello) {
	if h.Version != wire.Version {
		t.log.Warn("aplex cluster: ignoring a worker of another protocol version; rebuild it with the same aplex version",
			"worker", h.WorkerID, "version", h.Version, "want", wire.Version)
		return
	}
	if checkToken("worker id", h.WorkerID) != nil || t.closing.Load() {
		return
	}
	t.mu.Lock()
	tb, hasTomb := t.tombs[h.WorkerID]
	if hasTomb && tb.killed && tb.pid == h.PID {
		t.mu.Unlock()
		// Killed, and still there: its Shutdown has not arrived yet, or
		// was lost in an outage the Hello follows. Say it again: a worker
		// that lives on would never be taken back, and a local one's slot
		// never restarted.
		t.publishTo(h.WorkerID, &wire.Shutdown{Graceful: false})
		return
	}
	old := t.members[h.WorkerID]
	if old != nil && old.pid == h.PID {
		t.mu.Unlock()
		old.touch()
		t.resync(old)
		return
	}
	li := t.localIndex(h.WorkerID)
	if li >= 0 && !t.lslots.joining(li, h.PID) {
		t.mu.Unlock()
		return // Resize told it to leave before it joined
	}
	var orphans []uint64
	var owed []wire.Job
	if hasTomb {
		if tb.pid == h.PID {
			orphans, owed = tb.orphans, tb.owed
		}
		delete(t.tombs, h.WorkerID)
	}
	m := &member{
		t:        t,
		wid:      h.WorkerID,
		pid:      h.PID,
		capacity: max(h.MaxWorks, 0),
		labels:   h.Labels,
		subject:  t.subj.worker(h.WorkerID),
	}
	m.slot = t.slots.assign(h.WorkerID, li, t.now(), t.isMember)
	if li >= 0 {
		m.budget = t.xc.RecycleAfter // a local worker, which its slot replaces
	}
	m.touch()
	if old != nil {
		delete(t.members, old.wid)
		old.gone.Store(true)
	}
	t.members[m.wid] = m
	if li >= 0 {
		t.ever[m.wid] = true // a local worker: its supervisor asks
	}
	t.mu.Unlock()

	if old != nil {
		t.lost(old, fmt.Errorf("worker restarted as pid %d", h.PID))
	}
	if len(orphans) > 0 {
		// It was dropped for silence but lives: stop what it still runs
		// for this executor (those works were failed or re-queued).
		t.send.Cancel(m, orphans)
	}
	if len(owed) > 0 {
		t.probe(m, owed)
	}
	t.sink.Join(m)
	t.joinedMember(m)
	if li >= 0 {
		t.lslots.joined(li) // Resize's AddSlot waits for it
	}
	notify(t.joinWake)
}

// joinedMember opens m's join gate, now that Sink.Join returned, and
// reports what was held back meanwhile: a Lost (which makes a Retire
// moot), else a Retire.
func (t *transport) joinedMember(m *member) {
	m.gate.Lock()
	m.joined = true
	retire, lost, cause := m.heldRetire, m.heldLost, m.lostCause
	m.gate.Unlock()
	switch {
	case lost:
		t.lost(m, cause)
		if t.connDead.Load() && !t.done.Load() {
			// Join cleared the Broken that checkClosed reported first.
			t.sink.Broken(errConnClosed)
		}
	case retire && !t.closing.Load():
		t.sink.Retire(m)
	}
}

// hasJoined reports whether m's Join has returned.
func (m *member) hasJoined() bool {
	m.gate.Lock()
	defer m.gate.Unlock()
	return m.joined
}

// beforeJoin reports whether m's Join has not returned yet, and then
// records the event with hold (under the gate), for joinedMember to
// report.
func (m *member) beforeJoin(hold func()) bool {
	m.gate.Lock()
	defer m.gate.Unlock()
	if m.joined {
		return false
	}
	hold()
	return true
}

// localIndex returns i if wid is this executor's local worker i
// ("<executor id>-<i>", slot i local), else -1.
func (t *transport) localIndex(wid string) int {
	rest, ok := strings.CutPrefix(wid, t.exid+"-")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest || !t.lslots.has(i) {
		return -1
	}
	return i
}

// isMember reports whether wid is a current member; t.mu is held.
func (t *transport) isMember(wid string) bool { return t.members[wid] != nil }

// onHeartbeat refreshes a member, retires a draining one, and asks an
// unknown worker to announce itself.
func (t *transport) onHeartbeat(hb *wire.Heartbeat) {
	m := t.member(hb.WorkerID)
	if m == nil {
		if !hb.Draining && !t.closing.Load() && checkToken("worker id", hb.WorkerID) == nil {
			t.askHello(hb.WorkerID)
		}
		return
	}
	m.touch()
	if m.unsyncedAt.Load() != 0 && !t.closing.Load() {
		// Heard again after a silence: its Hello makes it resend what
		// was lost, which its kill timers wait for (Unreachable).
		t.askHello(m.wid)
	}
	if hb.Draining {
		m.mu.Lock()
		first := !m.retired
		m.retired = true
		m.mu.Unlock()
		if first && !t.closing.Load() && !m.beforeJoin(func() { m.heldRetire = true }) {
			t.sink.Retire(m) // the core closes it once it holds no job
		}
	}
	if hb.Killed {
		// Another executor killed it (this one drops a worker as it
		// kills it): it answers nothing more, and its Bye waits for the
		// works that ignore their cancel, up to a second. Its jobs fail
		// now, once the results it sent before are handed over; those it
		// never received (above its Seen) run elsewhere, as at a Bye.
		seen, named := hb.Seen[t.inbox]
		t.afterDelivered(func() {
			if named {
				t.requeueUnreceived(m, seen)
			}
			t.left(m, true)
		})
	}
}

// askHello sends a discover request naming wid, at most once per
// heartbeat timeout: a worker this executor has not met (its Hello was
// missed, or it was dropped and came back) joins on its next beat.
func (t *transport) askHello(wid string) {
	now := t.now()
	t.mu.Lock()
	last, ok := t.asked[wid]
	if ok && now-last < t.xc.HeartbeatTimeout {
		t.mu.Unlock()
		return
	}
	t.asked[wid] = now
	t.mu.Unlock()
	t.discover(wid)
}

// onBye drops a member that left. Its last results travel on another
// subscription and may not be handed over yet, although NATS delivered
// them before the Bye; a barrier runs the drop once every subscription has
// processed what arrived before it. Jobs still unanswered then never will
// be (the worker was killed, or gave up on works that ignored their ctx):
// they fail with a *WorkerError, or run again with aplex.Retry.
//
// Jobs this executor sent after the last one the worker received (its
// Bye's Seen) never reached it, and were never run: they go back to the
// queue, without using up a retry, as those a leaving worker refuses do.
func (t *transport) onBye(b *wire.Bye) {
	m := t.member(b.WorkerID)
	if m == nil {
		return
	}
	seen, named := b.Seen[t.inbox]
	t.afterDelivered(func() {
		if named {
			t.requeueUnreceived(m, seen)
		}
		t.left(m, false)
	})
}

// errUnreceived answers a job sent to a worker that left before it arrived.
var errUnreceived = &wire.Error{Code: wire.CodeShutdown, Message: "aplex: the worker left before the work reached it"}

// requeueUnreceived answers the jobs m still holds above seen, the last job
// it received from this executor, as refused before they ran: jobs are
// sent to a worker in increasing id order, so those never reached it.
func (t *transport) requeueUnreceived(m *member, seen uint64) {
	if t.done.Load() {
		return
	}
	jobs, _ := t.sink.Outstanding(m)
	var res []wire.Result
	for _, j := range jobs {
		if j.ID > seen {
			res = append(res, wire.Failed(j.ID, len(j.Args), errUnreceived))
		}
	}
	if len(res) > 0 {
		t.sink.Done(m, res)
	}
}

// afterDelivered runs fn once every subscription has handed over what
// arrived before the message being handled (a worker's results travel on
// another subscription than its heartbeats and Bye), or at once if the
// connection is closed: nothing more will arrive.
func (t *transport) afterDelivered(fn func()) {
	err := t.nc.Barrier(func() {
		if !t.enter() {
			return
		}
		defer t.leave()
		fn()
	})
	if err != nil {
		fn()
	}
}

// left drops a member that said Bye, or that another executor killed
// (killed): it answers none of the jobs it still holds. A local worker
// that Resize retired is dropped once its process has exited
// (localExited), so that the slot leaves Stats, and Resize returns, with
// the process gone.
func (t *transport) left(m *member, killed bool) {
	if n := len(t.outstanding(m)); n > 0 {
		cause := fmt.Errorf("worker left without answering %d works", n)
		if killed {
			cause = fmt.Errorf("killed by another executor of the pool: %d works of this executor left unanswered", n)
		}
		t.drop(m, cause, false)
		return
	}
	if t.retiredLocal(m) {
		return
	}
	t.drop(m, nil, false)
}

// resync sends a re-announced worker every job this executor still awaits
// from it, in Runs marked Resend, then the cancels among them: Runs or
// results may have been lost while one side was disconnected. The worker
// skips jobs it runs, answers finished ones from memory, runs only those
// it can tell it never saw, and answers the rest with
// wire.CodeResultLost, so nothing runs twice.
func (t *transport) resync(m *member) {
	if t.done.Load() {
		return
	}
	m.resynced()
	jobs, cancelled := t.sink.Outstanding(m)
	if len(jobs) > 0 {
		t.send.Jobs(m, jobs, true)
	}
	if len(cancelled) > 0 {
		t.send.Cancel(m, cancelled)
	}
}

// drop removes m and reports it lost: cause nil means it left cleanly (or
// this executor closed it) holding nothing. Jobs it still held are
// cancelled on the worker, in case it is alive, and remembered so they are
// cancelled again should it come back. They are read from the core's
// table under t.mu, after m is marked gone: the sender publishes nothing
// more to m, so every job that may reach the worker is among them (lock
// order t.mu, then core.mu; see xport's "Locks and re-entrancy").
func (t *transport) drop(m *member, cause error, killed bool) {
	now := t.now()
	t.mu.Lock()
	if t.members[m.wid] != m {
		t.mu.Unlock()
		return // dropped already
	}
	delete(t.members, m.wid)
	m.gone.Store(true)
	t.slots.left(m.wid, now)
	var orphans []uint64
	if cause != nil {
		orphans = t.outstanding(m)
		tb := tomb{pid: m.pid, orphans: orphans, killed: killed, at: now}
		if !killed {
			tb.owed = m.owedAmong(orphans)
		}
		t.tombs[m.wid] = tb
	}
	t.mu.Unlock()
	if len(orphans) > 0 && !killed {
		t.publishTo(m.wid, &wire.Cancel{ReplyTo: t.inbox, IDs: orphans})
	}
	t.lost(m, cause)
}

// outstanding returns the ids of the jobs m holds in the core's table
// (none once Close has returned: no Sink call then).
func (t *transport) outstanding(m *member) []uint64 {
	if t.done.Load() {
		return nil
	}
	jobs, _ := t.sink.Outstanding(m)
	ids := make([]uint64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// lost tells the core, unless Close has returned; before m's Join has
// returned, the Lost is held and reported right after it (the core
// ignores a Lost for a worker it does not know, and would then add a
// worker already gone).
func (t *transport) lost(m *member, cause error) {
	if m.beforeJoin(func() { m.heldLost, m.lostCause = true, cause }) {
		return
	}
	if !t.done.Load() {
		t.sink.Lost(m, cause)
	}
}

// probe asks a worker that came back after its heartbeat timeout about
// the jobs whose kill had come due while it could not be reached (owed):
// their cancels went first (onHello), then a resend of them, which the
// worker answers from memory for a job that has ended and leaves
// unanswered for one that still runs. A job still unanswered once the
// kill grace has passed (and a quarter of the heartbeat timeout, for the
// round trip) is a work that ignores its cancel: it costs its worker, as
// it would have had the outage not held its kill up.
func (t *transport) probe(m *member, owed []wire.Job) {
	wait := t.xc.KillGrace + max(t.xc.HeartbeatTimeout/4, 10*time.Millisecond)
	jobs := make([]*wire.Job, len(owed))
	m.mu.Lock()
	m.probes = make(map[uint64]string, len(owed))
	for i := range owed {
		jobs[i] = &owed[i]
		m.probes[owed[i].ID] = owed[i].Name
	}
	m.settlingLocked()
	m.probeTimer = time.AfterFunc(wait, func() { t.probeEnded(m, wait) })
	m.mu.Unlock()
	t.send.Jobs(m, jobs, true)
}

// probeEnded kills m if a job its probe asked about is still unanswered.
func (t *transport) probeEnded(m *member, wait time.Duration) {
	m.mu.Lock()
	var name string
	for _, n := range m.probes {
		name = n
		break
	}
	left := len(m.probes)
	m.probes, m.probeTimer = nil, nil
	m.settlingLocked()
	m.mu.Unlock()
	t.log.Debug("aplex cluster: asked a returning worker about works whose kill waited", "worker", m.wid, "still running", left)
	if left > 0 && !t.closing.Load() {
		m.Kill(fmt.Errorf("work %q ignored its cancel through an outage: still running %v after its worker came back", name, wait))
	}
}

// kill shuts the worker process down at once and drops it. A member
// already dropped is left alone: its worker may have joined again since,
// as another member. Its tomb remembers the kill: should the process
// announce itself again, the kill is sent again (onHello).
func (t *transport) kill(m *member, reason error) {
	if m.gone.Load() {
		return
	}
	t.publishTo(m.wid, &wire.Shutdown{Graceful: false})
	t.drop(m, fmt.Errorf("killed by the executor: %w", reason), true)
}

// localExited drops local worker wid when its process pid has ended: no
// need to wait for a heartbeat timeout, and the exit status says why, or
// killed, what killed it where it runs (its memory limit). One
// whose slot Resize removed left as asked: without a cause if it holds
// nothing.
func (t *transport) localExited(wid string, pid int, status string, killed error, removed bool) {
	m := t.member(wid)
	if m == nil || m.pid != pid || (t.closing.Load() && !removed) {
		return // while closing, only a Resize waits for one
	}
	cause := fmt.Errorf("local worker process exited: %s", status)
	if killed != nil {
		cause = fmt.Errorf("local worker process killed: %w (%s)", killed, status)
	}
	if (removed || m.recycled()) && len(t.outstanding(m)) == 0 {
		cause = nil // it left as asked
	}
	t.drop(m, cause, false)
}
