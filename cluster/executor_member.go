package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// member is one remote worker as this executor uses it: the xport.Worker
// the core schedules on. A worker process that re-joins after being
// dropped, or restarts under the same id, becomes a new member (the core
// tells members apart by identity) in the same slot.
type member struct {
	t        *transport
	wid      string
	pid      int
	slot     int
	capacity int
	labels   map[string]string
	subject  string // the worker's own subject

	seen atomic.Int64 // last message from the worker, t.clock nanoseconds
	gone atomic.Bool  // dropped: sends are pointless

	// budget is how many jobs the member may be sent (WithRecycleAfter,
	// for a local worker; 0: no limit), sent how many it was: the core
	// stops dispatching to it as it reaches its budget, and closes it once
	// idle; it then leaves, and its slot gets a fresh process (Close).
	budget int
	sent   atomic.Int64

	// Resynchronisation. After a silence of the worker's (half the
	// heartbeat timeout), or this executor's reconnect, messages may have
	// been lost either way; they come back with the resend that follows
	// the worker's Hello (resync). Until then, and for a settling time
	// after, the member is unreachable to the kill timers (Unreachable).
	unsyncedAt atomic.Int64 // when a silence or a reconnect was noticed, t.now() nanoseconds; 0: synced since
	syncedAt   atomic.Int64 // the last resync, t.now() nanoseconds; 0: none

	mu      sync.Mutex // taken under t.mu (drop), never the other way
	retired bool       // draining: the core was told to stop using it
	// Kills that came due while the worker could not be reached
	// (Unreachable), by job id: should the heartbeat timeout drop the
	// worker, each is asked about again when it comes back (probe), since
	// its work may ignore its cancel still. probes are those asked, not
	// answered yet, by job id (the work's name). settling counts both,
	// so that a delivery takes no lock while there are none.
	owed       map[uint64]wire.Job
	probes     map[uint64]string
	probeTimer *time.Timer
	settling   atomic.Int32

	// The join gate: the core must hear of the member (Sink.Join) before
	// anything else about it, yet the member is among t.members, where a
	// drop or a draining Heartbeat on another goroutine can find it, a
	// moment before Join returns. Retire and Lost arriving in that window
	// are held here and reported by the goroutine that joined it, once
	// Join has returned. Its own lock: no Sink call is made under it.
	gate       sync.Mutex
	joined     bool
	heldRetire bool
	heldLost   bool
	lostCause  error
}

var _ xport.Worker = (*member)(nil)

// Slot is the worker's place in the balancer's view, stable per worker id.
func (m *member) Slot() int { return m.slot }

// Info describes the worker for errors and stats.
func (m *member) Info() xport.Info { return xport.Info{ID: m.wid, PID: m.pid, Labels: m.labels} }

// Capacity is the number of works the worker announced it runs at once.
func (m *member) Capacity() int { return m.capacity }

// Send queues the jobs for the sender, which batches them into Run
// messages. The member keeps no record of them: the core's job table is
// the only one (Sink.Outstanding).
func (m *member) Send(jobs []*wire.Job) {
	if m.budget > 0 { // counted for recycling only
		m.sent.Add(int64(len(jobs)))
	}
	m.t.send.Jobs(m, jobs, false)
}

// Budget is WithRecycleAfter for a local worker, 0 otherwise
// (xport.Budgeted): the core retires the worker from dispatch as it sends
// it its last job.
func (m *member) Budget() int { return m.budget }

// recycled reports whether the member has been sent its whole budget.
func (m *member) recycled() bool { return m.budget > 0 && m.sent.Load() >= int64(m.budget) }

// Cancel queues a Cancel behind the jobs' Runs (one sender, one subject:
// NATS keeps the order).
func (m *member) Cancel(ids []uint64) { m.t.send.Cancel(m, ids) }

// Kill stops the worker process: it gets a Shutdown{Graceful: false},
// which cancels every work it runs (for every executor) and makes it exit
// a second later even if a work ignores its ctx; this executor drops it at
// once. Killing is how the core enforces its kill grace on a work that
// ignores cancellation; a worker run under a supervisor (or a local
// worker) comes back as a fresh process.
func (m *member) Kill(reason error) {
	m.t.kill(m, reason)
}

// Unreachable tells the core's kill timers (xport.Unreachable) to wait
// while an answer may be held up or lost rather than missing: the
// executor's connection is down, or the worker has been silent for half
// the heartbeat timeout (it beats three times as often), or it has been
// heard again after such a silence, or after this executor's reconnect,
// but has not resynchronised yet (its Hello, then the resend of what the
// executor awaits), or did so less than the retry wait ago (the resend's
// answers are on their way). A kill then would cost a healthy worker
// and, once the outage ends, the works it runs for other executors. The
// core asks again a quarter of the timeout later. The heartbeat timeout
// drops a worker that does not come back, and bounds the wait for a
// resync too: a member heard again is asked for its Hello, and one heard
// for a whole timeout without resynchronising (a draining worker answers
// no discover) is reachable again. Called on the kill timer's goroutine,
// without the core's lock: the connection's status waits for the NATS
// client's lock, which it holds while it dials in a reconnect.
func (m *member) Unreachable(job *wire.Job) time.Duration {
	retry := m.unreachable()
	if retry > 0 && job != nil {
		m.owe(job)
	}
	return retry
}

// unreachable is Unreachable's verdict.
func (m *member) unreachable() time.Duration {
	t := m.t
	timeout := t.xc.HeartbeatTimeout
	if t.closing.Load() || timeout <= 0 {
		return 0
	}
	retry := max(timeout/4, 10*time.Millisecond)
	now := t.now()
	if !t.nc.IsConnected() || now-time.Duration(m.seen.Load()) > timeout/2 {
		return retry
	}
	if t.reconnects() != t.reconnectsSeen.Load() {
		return retry // the monitor will mark every member unsynced
	}
	// Read after reconnectsSeen, which the monitor stores once it has
	// marked the members: a reconnect it has handled is seen here.
	unsynced, synced := time.Duration(m.unsyncedAt.Load()), time.Duration(m.syncedAt.Load())
	switch {
	case unsynced != 0 && now-unsynced < timeout:
		t.askHello(m.wid) // at most once per heartbeat timeout
		return retry
	case synced != 0 && now-synced < retry:
		return retry
	}
	return 0
}

// Close means this executor stops using the worker: the core calls it
// once a retired (draining) worker holds no job of this executor. The
// worker process itself is not told anything: it serves other executors
// and leaves on its own terms. The member is reported lost with a nil
// cause at once, since it holds nothing of this executor. A local worker
// whose slot Resize removed is the exception: it is told to leave now
// (SIGTERM), and reported lost once its process has exited (localExited);
// and so is one recycled (WithRecycleAfter), whose slot its supervisor
// then restarts.
func (m *member) Close() {
	if m.t.retiredLocal(m) || m.recycled() {
		m.t.leaveLocal(m)
		return
	}
	m.t.drop(m, nil, false)
}

// touch records a sign of life, and a silence of half the heartbeat
// timeout before it: messages may have been lost, so the member is
// unsynced until its next resync.
func (m *member) touch() {
	now := int64(m.t.now())
	if prev := m.seen.Swap(now); prev != 0 && time.Duration(now-prev) > m.t.xc.HeartbeatTimeout/2 {
		m.unsyncedAt.Store(now)
	}
}

// unsynced marks the member as having maybe lost messages, until its next
// resync.
func (m *member) unsynced() { m.unsyncedAt.Store(int64(m.t.now())) }

// resynced records a resync: what was lost before is being sent again.
func (m *member) resynced() {
	m.syncedAt.Store(int64(m.t.now()))
	m.unsyncedAt.Store(0)
}

// owe records that job's kill is due while the worker cannot be reached.
func (m *member) owe(job *wire.Job) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owed == nil {
		m.owed = map[uint64]wire.Job{}
	}
	m.owed[job.ID] = *job
	m.settlingLocked()
}

// settled forgets the kills owed and the probes for the jobs answered.
func (m *member) settled(rs []wire.Result) {
	if m.settling.Load() == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		delete(m.owed, r.ID)
		delete(m.probes, r.ID)
	}
	m.settlingLocked()
}

// owedAmong returns the kills owed for the jobs ids (the member's last
// outstanding ones, as it is dropped); it stops the member's probe.
func (m *member) owedAmong(ids []uint64) []wire.Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []wire.Job
	for _, id := range ids {
		if j, ok := m.owed[id]; ok {
			out = append(out, j)
		}
	}
	m.owed, m.probes = nil, nil
	if m.probeTimer != nil {
		m.probeTimer.Stop()
		m.probeTimer = nil
	}
	m.settlingLocked()
	return out
}

func (m *member) settlingLocked() { m.settling.Store(int32(len(m.owed) + len(m.probes))) }
