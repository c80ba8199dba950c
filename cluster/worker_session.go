package cluster

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// Worker-side memory of each executor's jobs, which makes resending a Run
// safe. After a NATS reconnect an executor cannot know whether a Run
// reached the worker or whether a result reached it, so it sends every job
// it is still waiting for again, in Runs marked Resend (see doc.go,
// "Reconnects"). The worker then skips a job it is running, answers a job
// it finished recently from memory, runs a job it can tell it never saw,
// and answers any other resent job with wire.CodeResultLost: it may have
// run, and running it again could run it twice. Delivery stays
// at-most-once. A Started (of a job sent ahead of a free slot) may have
// been lost too: a resend names again every such job that started, so
// its executor hears the start before the result.
//
// An executor's job ids only grow, so a job above the highest id seen is
// new and costs one map insert; only resent jobs search the memory. What a
// session cannot place is bounded by its floor: every job it saw is either
// running, in the ring, or at or below the floor (pushed out of the ring,
// or seen before the session began, by a session since forgotten).

const (
	// recentMin is the least number of finished jobs remembered per
	// executor: resends cover at most the jobs in flight during an outage,
	// which the executor bounds by the worker's capacity.
	recentMin = 1024
	// recentBytes bounds the result bytes kept per executor; beyond it the
	// oldest results are forgotten (their ids are still known, so a resend
	// gets an error saying the result was lost rather than a second run).
	recentBytes = 4 << 20
	// sessionIdle is how long an executor's memory outlives its last Run
	// or result. An executor sends its jobs again within its heartbeat
	// timeout after an outage (or drops the worker); a resend after the
	// memory expired is answered with wire.CodeResultLost, never run, so
	// a longer heartbeat timeout costs results, not a second run.
	sessionIdle = 2 * time.Minute
)

// resultLost answers a resent job whose result was forgotten. Its code
// tells the executor the job ran (wire.CodeResultLost: the future fails
// with a *aplex.WorkerError and the job never runs again), unlike a job
// refused before it ran (wire.CodeShutdown), which may run elsewhere.
func resultLost(workerID string) *wire.Error {
	return &wire.Error{
		Code: wire.CodeResultLost,
		Message: "cluster worker " + workerID + " ran the work, but its result was lost in a NATS outage " +
			"and is no longer held (a worker keeps the last 4 MiB of results per executor); it is not run again",
	}
}

// resultUnknown answers a resent job the worker cannot place: not running
// and not among the finished jobs it remembers, yet perhaps run (before
// the ring dropped it, or before the executor's memory expired). The code
// is wire.CodeResultLost: the future fails with a *aplex.WorkerError and
// the job never runs again, which keeps delivery at-most-once.
func resultUnknown(workerID string, ringSize int) *wire.Error {
	return &wire.Error{
		Code: wire.CodeResultLost,
		Message: "cluster worker " + workerID + " cannot tell whether it ran the work: the executor sent it again after a NATS outage, " +
			"and the worker no longer remembers it (it keeps the last " + strconv.Itoa(ringSize) + " finished jobs per executor, " +
			"and forgets an executor idle for " + sessionIdle.String() + "); it may have run, and is not run again",
	}
}

// sessions is the memory of every executor this worker serves, by
// ReplyTo subject.
type sessions struct {
	ringSize int
	lost     *wire.Error // the answer for a forgotten result
	unknown  *wire.Error // the answer for a resent job that cannot be placed

	mu sync.Mutex
	m  map[string]*session
	// closed: the worker was killed or leaves (close); it starts no job
	// from then on, and closedSeen is what it had received by then.
	closed     bool
	closedSeen map[string]uint64
}

type session struct {
	// running: the jobs running here (held for a slot or started), each
	// true once it has been reported started (a job sent ahead of a free
	// slot: wire.Started; the others are never reported).
	running map[uint64]bool
	maxID   uint64
	// floor: a job at or below it that is neither running nor in the ring
	// may have run (it was pushed out of the ring, or the session began
	// after it: an earlier session may have run it and been forgotten).
	// A job above it was never seen, whatever Run it comes in.
	floor   uint64
	ring    []recent // finished jobs; entry seq lives at ring[seq%len]
	seq     uint64   // sequence number of the next finished job
	trimmed uint64   // entries below this seq are forgotten or overwritten
	bytes   int      // value bytes held by the ring
	used    time.Time
}

type recent struct {
	id      uint64
	items   []wire.Outcome
	count   int  // len(items), kept when the value is forgotten
	size    int  // wire.ResultBound, counted in session.bytes unless lost
	lost    bool // the value was forgotten to stay under recentBytes
	started bool // reported started before it finished (session.running)
}

func newSessions(maxWorks int, workerID string) *sessions {
	ring := max(recentMin, 2*maxWorks)
	return &sessions{ringSize: ring, lost: resultLost(workerID), unknown: resultUnknown(workerID, ring), m: map[string]*session{}}
}

// known reports whether the executor of inbox replyTo has a session: it
// sent this worker work recently, or still has work running here.
func (ss *sessions) known(replyTo string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.m[replyTo] != nil
}

// close makes the worker start no job from now on (admit), and returns,
// per executor with a session, the highest job id received from it
// (wire.Bye.Seen, and a killed worker's wire.Heartbeat.Seen): every job it
// started is at or below, since a session begins below its first Run's
// jobs, and one above it never ran here. It is idempotent: a second call
// returns what the first did.
func (ss *sessions) close() map[string]uint64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return ss.closedSeen
	}
	ss.closed = true
	if len(ss.m) == 0 {
		return nil
	}
	m := make(map[string]uint64, len(ss.m))
	for replyTo, s := range ss.m {
		m[replyTo] = s.maxID
	}
	ss.closedSeen = m
	return m
}

// get returns replyTo's session, creating it with floor when it is new.
func (ss *sessions) get(replyTo string, floor uint64) *session {
	s := ss.m[replyTo]
	if s == nil {
		s = &session{running: map[uint64]bool{}, ring: make([]recent, ss.ringSize), maxID: floor, floor: floor}
		ss.m[replyTo] = s
	}
	return s
}

// admit returns the jobs of run that must start (run.Jobs itself when all
// are new), the results to send again for jobs already finished and, for
// a Resend Run, the jobs it names that have been reported started (still
// running, or finished and answered from memory): their Started may have
// been lost with the results, and goes out again before those.
//
// A job of a normal Run starts unless it is running or finished: an id at
// or below the highest seen that is neither can only be a first delivery
// out of order. A job of a Resend Run starts only if the session can tell
// it never saw it (above the floor); one it cannot place is answered with
// ss.unknown.
func (ss *sessions) admit(run *wire.Run, now time.Time) (start []wire.Job, again []wire.Result, named []uint64) {
	if len(run.Jobs) == 0 {
		return nil, nil, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		// Killed or leaving: it never runs the job, which its executor
		// runs elsewhere, as it is above what close said was received.
		return nil, nil, nil
	}
	s := ss.get(run.ReplyTo, newFloor(run))
	s.used = now
	start = run.Jobs
	copied := false
	for i := range run.Jobs {
		j := &run.Jobs[i]
		keep := true
		if j.ID > s.maxID {
			s.maxID = j.ID
		} else if began, ok := s.running[j.ID]; ok {
			keep = false
			if began && run.Resend {
				named = append(named, j.ID)
			}
		} else if r, began, ok := s.find(j.ID, ss.lost); ok {
			keep = false
			if began && run.Resend {
				named = append(named, j.ID)
			}
			again = append(again, r)
		} else if run.Resend && j.ID <= s.floor {
			keep = false
			again = append(again, s.unplaced(j, ss.unknown))
		}
		if keep {
			s.running[j.ID] = false
			if copied {
				start = append(start, *j)
			}
			continue
		}
		if !copied {
			start = append(make([]wire.Job, 0, len(run.Jobs)), run.Jobs[:i]...)
			copied = true
		}
	}
	return start, again, named
}

// started records that job id of the executor of inbox replyTo, sent
// ahead of a free slot, has been reported started; a job no longer
// running (or never sent) is ignored.
func (ss *sessions) started(replyTo string, id uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.m[replyTo]; s != nil {
		if _, ok := s.running[id]; ok {
			s.running[id] = true
		}
	}
}

// newFloor is the floor of a session that run begins. Anything the
// executor sent before a normal Run has a lower id, so may have reached a
// forgotten session; a Resend Run may hold any job sent before, so none of
// its jobs can be placed.
func newFloor(run *wire.Run) uint64 {
	if run.Resend {
		return slices.MaxFunc(run.Jobs, func(a, b wire.Job) int { return cmp.Compare(a.ID, b.ID) }).ID
	}
	low := slices.MinFunc(run.Jobs, func(a, b wire.Job) int { return cmp.Compare(a.ID, b.ID) }).ID
	return max(low, 1) - 1
}

// unplaced answers job j, which the session cannot place, with e for each
// item.
func (s *session) unplaced(j *wire.Job, e *wire.Error) wire.Result {
	return wire.Failed(j.ID, len(j.Args), e)
}

// find looks a finished job up in the ring, newest first; a forgotten
// result is answered with lost for each item. began reports whether the
// job was reported started.
func (s *session) find(id uint64, lost *wire.Error) (r wire.Result, began, ok bool) {
	n := uint64(len(s.ring))
	for k := uint64(1); k <= n && k <= s.seq; k++ {
		e := &s.ring[(s.seq-k)%n]
		if e.id != id {
			continue
		}
		if e.lost {
			return wire.Failed(id, e.count, lost), e.started, true
		}
		return wire.Result{ID: id, Items: e.items}, e.started, true
	}
	return wire.Result{}, false, false
}

// finished records a job's result, given its size bound, at now: the
// memory must outlive the job's end (not only the Run that started it,
// which may be long ago), so the result can be answered after an outage.
func (ss *sessions) finished(replyTo string, r wire.Result, size int, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.get(replyTo, r.ID) // a running job keeps its session: never new here
	s.used = now
	began := s.running[r.ID]
	delete(s.running, r.ID)
	n := uint64(len(s.ring))
	e := &s.ring[s.seq%n]
	if s.seq >= n {
		s.floor = max(s.floor, e.id) // pushed out: a resend of it cannot be placed
	}
	if !e.lost {
		s.bytes -= e.size
	}
	*e = recent{id: r.ID, items: r.Items, count: len(r.Items), size: size, started: began}
	s.bytes += size
	s.seq++
	if s.seq > n {
		s.trimmed = max(s.trimmed, s.seq-n) // older entries were overwritten
	}
	for s.bytes > recentBytes && s.trimmed < s.seq-1 {
		t := &s.ring[s.trimmed%n]
		if !t.lost {
			s.bytes -= t.size
			t.items, t.lost = nil, true // still "finished", value forgotten
		}
		s.trimmed++
	}
}

// expire forgets executors idle for sessionIdle with nothing running.
func (ss *sessions) expire(now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, s := range ss.m {
		if len(s.running) == 0 && now.Sub(s.used) > sessionIdle {
			delete(ss.m, k)
		}
	}
}
