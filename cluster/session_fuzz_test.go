package cluster

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// FuzzSessionAdmission drives a worker's session memory (what decides
// whether a Run from the wire is started, skipped as already running, or
// answered again from the result memory) with arbitrary sequences of
// Runs, Runs lost on the way, results delivered or lost, cancels, resends
// (Runs marked Resend) after an outage and time passing, against a model
// of two executors that keep the protocol's contract: at most capacity
// jobs in flight, and after losing anything a resend within their
// heartbeat timeout, or the worker is dropped and its jobs failed. One
// executor's heartbeat timeout is shorter than sessionIdle, the other's
// longer, so resends also reach a worker that forgot the executor; and the
// ring of finished jobs is small when the first byte's high nibble is set,
// so resends also reach jobs pushed out of it. On every step it checks:
//
//   - no job id of an executor ever starts twice;
//   - a new job in a normal Run starts; a running one is neither started
//     nor answered; a finished one is answered, with its result or, once
//     forgotten (its value, its ring entry or the whole session), with
//     wire.CodeResultLost for every item (whose fate is FateLost: never run
//     again);
//   - a Resend Run names as started again exactly the jobs it holds that
//     were reported started and run still or are answered with their
//     result (a job answered lost may be named if it was reported
//     started); a normal Run names none;
//   - a resent job the worker never saw starts, or, only when the worker
//     cannot tell it from one it forgot (its session began after the job
//     was sent, was forgotten, or the ring was overwritten), is answered
//     with wire.CodeResultLost;
//   - memory stays bounded: the result bytes held per executor are at
//     most 4 MiB (or the one newest result), the byte count matches the
//     results held, and only running jobs are tracked as running;
//   - after the last step, closing the sessions (a killed or leaving
//     worker) names for each executor an id at or above its running
//     jobs', and nothing is started or answered after (checkClose).
//
// Nothing may panic.
func FuzzSessionAdmission(f *testing.F) {
	f.Add([]byte{3, 0, 0x21, 0, 1, 5, 0x80, 3, 0, 0})
	f.Add([]byte{15, 0, 0x31, 1, 0, 0xf3, 0, 1, 200, 0, 1, 201, 0, 4, 10, 0, 3, 0, 3})
	// Many large results lost, then a resend: beyond the 4 MiB memory.
	big := []byte{15}
	for range 4 {
		big = append(big, 0, 0x30, 3) // four Runs of four jobs
	}
	for range 16 {
		big = append(big, 1, 0, 0x5f) // 1 MiB results, lost on the way
	}
	big = append(big, 3, 0, 2, 3, 1, 2)
	f.Add(big)
	// A ring of two entries: five jobs finish, their results lost, then a
	// resend of all of them.
	f.Add([]byte{0x1f, 0, 0x10, 0x0f, 0, 0x10, 0x01, 1, 0, 0x40, 1, 0, 0x40, 1, 0, 0x40, 1, 0, 0x40, 1, 0, 0x40, 3, 0, 0})
	// Executor 1 (heartbeat timeout above sessionIdle): a job finishes,
	// its result is lost, the worker forgets the executor, then the resend.
	f.Add([]byte{3, 0, 0x01, 0, 1, 0, 0x40, 4, 0xff, 0, 3, 1, 0})
	// A Run lost on the way, the next one delivered, then the resend; and
	// the same behind a delivered Run (the lost job must run then).
	f.Add([]byte{3, 0, 0x00, 0x80, 0, 0x00, 0x00, 3, 0, 0})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 3, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		m := newAdmissionModel(1+int(data[0])%16, int(data[0]>>4))
		data = data[1:]
		for len(data) >= 3 {
			m.step(t, data[0], data[1], data[2])
			data = data[3:]
			m.check(t)
		}
		m.checkClose(t)
	})
}

// checkClose closes the sessions as a killed or leaving worker does and
// checks what close says and does: every job still running is at or below
// the id it names for its executor (whose session its running job keeps),
// the worker starts or answers nothing of a Run after, a resend included,
// and a second close says the same.
func (m *admissionModel) checkClose(t *testing.T) {
	seen := m.ss.close()
	for _, j := range m.running {
		x := m.execs[j.k.e]
		if id, ok := seen[x.replyTo]; !ok || j.k.id > id {
			t.Fatalf("close = %v: job %d of %s runs, above what it names", seen, j.k.id, x.replyTo)
		}
	}
	for _, x := range m.execs {
		for _, resend := range []bool{false, true} {
			run := &wire.Run{ReplyTo: x.replyTo, Resend: resend, Jobs: []wire.Job{modelRunJob(x.nextID+1, 1)}}
			if start, again, named := m.ss.admit(run, m.now); len(start)+len(again)+len(named) != 0 {
				t.Fatalf("a Run (resend %v) after close: started %v, answered %v, named %v", resend, start, again, named)
			}
		}
	}
	if again := m.ss.close(); !maps.Equal(again, seen) {
		t.Fatalf("a second close = %v, want %v", again, seen)
	}
}

const (
	modelExecs = 2
	// modelJobs bounds the jobs per executor, and so the work per input.
	modelJobs = recentMin - 100
)

// modelHeartbeat is each executor's heartbeat timeout: an outage longer
// than it drops the worker. The first is below sessionIdle, as the
// documentation advises; the second above, so the worker may forget the
// executor before its resend arrives.
var modelHeartbeat = [modelExecs]time.Duration{30 * time.Second, 3 * time.Minute}

type modelKey struct {
	e  int
	id uint64
}

type modelExec struct {
	replyTo  string
	nextID   uint64
	created  int
	awaiting map[uint64]int // sent and not answered: id → items
	lostAt   time.Time      // earliest loss not yet resent; zero: none
	finished int            // jobs finished on the worker
	forgot   bool           // the worker forgot this executor's session once
	firstID  uint64         // lowest id of the Run that began the session
}

type modelJob struct {
	k     modelKey
	items int
}

// modelBegins reports whether the model reports job id started as it
// is admitted (as a worker does for a job sent ahead of a free slot that
// finds one, or takes one later); the others stay unreported, as held
// jobs and jobs not sent ahead do.
func modelBegins(id uint64) bool { return id%3 != 0 }

type admissionModel struct {
	ss       *sessions
	capacity int
	now      time.Time
	execs    [modelExecs]*modelExec
	running  []modelJob // started on the worker, not finished
	runs     map[modelKey]int
	results  map[modelKey]wire.Result // as the worker recorded them
	newest   map[int]int              // size of each executor's newest result
	began    map[modelKey]bool        // reported started (modelBegins)
}

// newAdmissionModel models a worker of capacity whose ring of finished
// jobs holds ring+1 entries, or its real size when ring is 0.
func newAdmissionModel(capacity, ring int) *admissionModel {
	m := &admissionModel{
		ss:       newSessions(capacity, "fuzz"),
		capacity: capacity,
		now:      time.Unix(1_000_000, 0),
		runs:     map[modelKey]int{},
		results:  map[modelKey]wire.Result{},
		newest:   map[int]int{},
		began:    map[modelKey]bool{},
	}
	if ring > 0 {
		m.ss.ringSize = ring + 1 // before any session allocates its ring
	}
	for e := range m.execs {
		m.execs[e] = &modelExec{replyTo: fmt.Sprintf("_INBOX.ex%d", e), awaiting: map[uint64]int{}}
	}
	return m
}

// step applies one operation, chosen and parametrised by op, a and b.
func (m *admissionModel) step(t *testing.T, op, a, b byte) {
	e := int(a) % modelExecs
	x := m.execs[e]
	switch op % 5 {
	case 0: // new jobs, in a Run that arrives or is lost on the way
		n := min(1+int(b)%4, m.capacity-len(x.awaiting), modelJobs-x.created)
		if n <= 0 {
			return
		}
		run := &wire.Run{ReplyTo: x.replyTo}
		for range n {
			x.nextID += 1 + uint64(a>>4) // ids sent to other workers leave gaps
			items := 1 + int(b>>2)%3
			run.Jobs = append(run.Jobs, modelRunJob(x.nextID, items))
			x.awaiting[x.nextID] = items
			x.created++
		}
		if b&0x80 != 0 {
			m.lost(x)
			return
		}
		m.admit(t, e, run)
	case 1, 2: // a running job finishes (2: cancelled by a Cancel message)
		if len(m.running) == 0 {
			return
		}
		i := int(a) % len(m.running)
		j := m.running[i]
		m.running = slices.Delete(m.running, i, i+1)
		r := wire.Result{ID: j.k.id, Items: make([]wire.Outcome, j.items)}
		size := 64
		for k := range r.Items {
			if op%5 == 2 {
				r.Items[k].Err = &wire.Error{Code: wire.CodeCanceled, Message: "context canceled"}
			} else {
				r.Items[k].Value = binary.AppendUvarint(nil, j.k.id)
				size = (1 + int(b)%32) * (32 << 10) // up to 1 MiB, NATS' default max payload
			}
		}
		m.results[j.k] = r
		m.newest[j.k.e] = size
		m.execs[j.k.e].finished++
		m.ss.finished(m.execs[j.k.e].replyTo, r, size, m.now)
		m.deliver(m.execs[j.k.e], r, b&0x40 == 0)
	case 3: // after a reconnect: every job still awaited, sent again
		ids := make([]uint64, 0, len(x.awaiting))
		for id := range x.awaiting {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if b&1 != 0 {
			slices.Reverse(ids)
		}
		run := &wire.Run{ReplyTo: x.replyTo, Resend: true}
		for _, id := range ids {
			run.Jobs = append(run.Jobs, modelRunJob(id, x.awaiting[id]))
		}
		if len(run.Jobs) == 0 {
			return
		}
		x.lostAt = time.Time{}
		again := m.admit(t, e, run)
		for _, r := range again {
			m.deliver(x, r, b&2 == 0)
		}
	case 4: // time passes; the worker expires idle memories
		m.now = m.now.Add(time.Duration(a) * time.Second / 2)
		for e, x := range m.execs {
			if !x.lostAt.IsZero() && m.now.Sub(x.lostAt) > modelHeartbeat[e] {
				// Silent past the heartbeat timeout: the executor drops
				// the worker and fails what it awaited; it never sends
				// those jobs again.
				clear(x.awaiting)
				x.lostAt = time.Time{}
			}
		}
		had := [modelExecs]bool{}
		for e, x := range m.execs {
			had[e] = m.hasSession(x)
		}
		m.ss.expire(m.now)
		for e, x := range m.execs {
			if had[e] && !m.hasSession(x) {
				x.forgot = true
			}
		}
	}
}

// hasSession reports whether the worker holds a session for x.
func (m *admissionModel) hasSession(x *modelExec) bool {
	m.ss.mu.Lock()
	defer m.ss.mu.Unlock()
	return m.ss.m[x.replyTo] != nil
}

func modelRunJob(id uint64, items int) wire.Job {
	j := wire.Job{ID: id, Name: "w", Args: make([][]byte, items)}
	for i := range j.Args {
		j.Args[i] = []byte{0xf6}
	}
	return j
}

// lost records that something for x went missing: x will send its jobs
// again within its heartbeat timeout.
func (m *admissionModel) lost(x *modelExec) {
	if x.lostAt.IsZero() {
		x.lostAt = m.now
	}
}

// deliver hands a result to its executor, or loses it on the way.
func (m *admissionModel) deliver(x *modelExec, r wire.Result, arrives bool) {
	if _, ok := x.awaiting[r.ID]; !ok {
		return // a late answer: the executor gave up on it
	}
	if !arrives {
		m.lost(x)
		return
	}
	delete(x.awaiting, r.ID)
}

// admit passes run through the session and checks its verdict on every
// job against the model.
func (m *admissionModel) admit(t *testing.T, e int, run *wire.Run) []wire.Result {
	t.Helper()
	jobs := slices.Clone(run.Jobs) // admit may return run.Jobs itself
	x := m.execs[e]
	fresh := !m.hasSession(x)
	switch {
	case fresh && run.Resend && len(jobs) > 0:
		// A session begun by a resend cannot place any of its jobs.
		x.firstID = 1 + slices.MaxFunc(jobs, func(a, b wire.Job) int { return cmp.Compare(a.ID, b.ID) }).ID
	case fresh && len(jobs) > 0:
		x.firstID = slices.MinFunc(jobs, func(a, b wire.Job) int { return cmp.Compare(a.ID, b.ID) }).ID
	}
	start, again, named := m.ss.admit(run, m.now)
	isNamed := map[uint64]bool{}
	for _, id := range named {
		if isNamed[id] {
			t.Fatalf("executor %d: job %d named started twice in one admission", e, id)
		}
		isNamed[id] = true
		if !run.Resend {
			t.Fatalf("executor %d: a normal Run named job %d started", e, id)
		}
		if !m.began[modelKey{e, id}] {
			t.Fatalf("executor %d: job %d named started, never reported so", e, id)
		}
		if !slices.ContainsFunc(jobs, func(j wire.Job) bool { return j.ID == id }) {
			t.Fatalf("executor %d: job %d named started, not in the Run", e, id)
		}
	}
	started := map[uint64]int{}
	for _, j := range start {
		started[j.ID]++
	}
	answered := map[uint64]wire.Result{}
	for _, r := range again {
		if _, dup := answered[r.ID]; dup {
			t.Fatalf("executor %d: job %d answered twice in one admission", e, r.ID)
		}
		answered[r.ID] = r
	}
	for _, j := range jobs {
		k := modelKey{e, j.ID}
		isRunning := slices.ContainsFunc(m.running, func(r modelJob) bool { return r.k == k })
		_, isFinished := m.results[k]
		switch {
		case isRunning || isFinished:
			if started[j.ID] > 0 {
				t.Fatalf("executor %d: job %d started again (running %v, finished %v)", e, j.ID, isRunning, isFinished)
			}
			if isRunning {
				if _, ok := answered[j.ID]; ok {
					t.Fatalf("executor %d: running job %d answered", e, j.ID)
				}
				if run.Resend && m.began[k] && !isNamed[j.ID] {
					t.Fatalf("executor %d: resent running job %d, reported started, not named again", e, j.ID)
				}
				continue
			}
			r, ok := answered[j.ID]
			if !ok {
				t.Fatalf("executor %d: finished job %d neither run nor answered", e, j.ID)
			}
			if m.checkAnswer(t, e, r, m.results[k]) && run.Resend && m.began[k] && !isNamed[j.ID] {
				t.Fatalf("executor %d: resent finished job %d, reported started, answered without being named again", e, j.ID)
			}
		case run.Resend && started[j.ID] == 0:
			// Never seen, but the worker may not be able to tell.
			r, ok := answered[j.ID]
			if !ok {
				t.Fatalf("executor %d: resent job %d, never seen, neither run nor answered", e, j.ID)
			}
			if !fresh && !x.forgot && j.ID >= x.firstID && x.finished <= m.ss.ringSize {
				t.Fatalf("executor %d: resent job %d, never seen, answered instead of run, though the worker knows all it saw", e, j.ID)
			}
			for _, o := range r.Items {
				if o.Err == nil || o.Err.Code != wire.CodeResultLost {
					t.Fatalf("executor %d: resent job %d, never seen, answered %+v", e, j.ID, r.Items)
				}
			}
			if len(r.Items) != len(j.Args) {
				t.Fatalf("executor %d: job %d answered with %d items, want %d", e, j.ID, len(r.Items), len(j.Args))
			}
		default:
			if started[j.ID] != 1 {
				t.Fatalf("executor %d: new job %d started %d times, want once", e, j.ID, started[j.ID])
			}
			if _, ok := answered[j.ID]; ok {
				t.Fatalf("executor %d: new job %d answered before it ran", e, j.ID)
			}
			m.runs[k]++
			if m.runs[k] > 1 {
				t.Fatalf("executor %d: job %d ran %d times", e, j.ID, m.runs[k])
			}
			m.running = append(m.running, modelJob{k, len(j.Args)})
			if modelBegins(j.ID) {
				m.began[k] = true
				m.ss.started(x.replyTo, j.ID)
			}
		}
	}
	if len(start)+len(again) > len(jobs) {
		t.Fatalf("executor %d: %d jobs started and %d answered for a Run of %d", e, len(start), len(again), len(jobs))
	}
	return again
}

// checkAnswer: a resent finished job gets its result (true), or every item
// says the result was lost, which never runs it again (false).
func (m *admissionModel) checkAnswer(t *testing.T, e int, got, want wire.Result) (kept bool) {
	t.Helper()
	if len(got.Items) != len(want.Items) {
		t.Fatalf("executor %d: job %d answered with %d items, want %d", e, got.ID, len(got.Items), len(want.Items))
	}
	if got.Items[0].Err != nil && got.Items[0].Err.Code == wire.CodeResultLost {
		for _, o := range got.Items {
			if o.Err == nil || o.Err.Code.Fate() != wire.FateLost || wire.NeverRan(got.Items) {
				t.Fatalf("executor %d: job %d: a lost result mixed with others: %+v", e, got.ID, got.Items)
			}
		}
		return false
	}
	for i := range got.Items {
		g, w := got.Items[i], want.Items[i]
		if string(g.Value) != string(w.Value) || (g.Err == nil) != (w.Err == nil) {
			t.Fatalf("executor %d: job %d item %d answered %+v, want %+v", e, got.ID, i, g, w)
		}
	}
	return true
}

// check verifies the memory bounds after every step.
func (m *admissionModel) check(t *testing.T) {
	t.Helper()
	m.ss.mu.Lock()
	defer m.ss.mu.Unlock()
	if len(m.ss.m) > modelExecs {
		t.Fatalf("%d sessions for %d executors", len(m.ss.m), modelExecs)
	}
	for e, x := range m.execs {
		s := m.ss.m[x.replyTo]
		running := 0
		for _, r := range m.running {
			if r.k.e == e {
				running++
			}
		}
		if s == nil {
			if running > 0 {
				t.Fatalf("executor %d: memory expired with %d jobs running", e, running)
			}
			continue
		}
		if len(s.running) != running {
			t.Fatalf("executor %d: session tracks %d running jobs, the host runs %d", e, len(s.running), running)
		}
		held := 0
		for _, r := range s.ring {
			if !r.lost {
				held += r.size
			}
		}
		if held != s.bytes {
			t.Fatalf("executor %d: session counts %d result bytes, holds %d", e, s.bytes, held)
		}
		if s.bytes > max(recentBytes, m.newest[e]) {
			t.Fatalf("executor %d: %d result bytes held, bound %d", e, s.bytes, recentBytes)
		}
		if len(s.ring) != m.ss.ringSize {
			t.Fatalf("executor %d: ring of %d entries, want %d", e, len(s.ring), m.ss.ringSize)
		}
	}
}
