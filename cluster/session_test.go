package cluster

import (
	"slices"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestSessionOutlivesLongWork: the memory of an executor was forgotten
// sessionIdle after its last Run even when a job had just finished, so a
// work running longer than that whose result was lost in a NATS outage
// ran again when its executor sent it again.
func TestSessionOutlivesLongWork(t *testing.T) {
	ss := newSessions(4, "w")
	t0 := time.Unix(1000, 0)
	run := &wire.Run{ReplyTo: "ex", Jobs: []wire.Job{{ID: 1, Name: "long", Args: [][]byte{{0xf6}}}}}
	if start, _, _ := ss.admit(run, t0); len(start) != 1 {
		t.Fatalf("first Run: started %d jobs, want 1", len(start))
	}
	done := t0.Add(3 * sessionIdle) // a long work
	ss.finished("ex", wire.Result{ID: 1, Items: []wire.Outcome{{Value: []byte{1}}}}, 10, done)
	ss.expire(done.Add(time.Second)) // the worker's next tick
	// The result was lost; the executor reconnects and sends the job again.
	start, again, _ := ss.admit(&wire.Run{ReplyTo: "ex", Jobs: run.Jobs}, done.Add(2*time.Second))
	if len(start) != 0 || len(again) != 1 || again[0].ID != 1 {
		t.Fatalf("resent job: started %d, answered %d; want it answered from memory, not run again", len(start), len(again))
	}
}

// resendRun is a Run the executor sends again after a reconnect.
func resendRun(replyTo string, ids ...uint64) *wire.Run {
	run := &wire.Run{ReplyTo: replyTo, Resend: true}
	for _, id := range ids {
		run.Jobs = append(run.Jobs, wire.Job{ID: id, Name: "w", Args: [][]byte{{0xf6}, {0xf6}}})
	}
	return run
}

// wantLost checks that a resent job was neither started nor answered with
// anything but CodeResultLost on every item: never run twice.
func wantLost(t *testing.T, start []wire.Job, again []wire.Result, id uint64) {
	t.Helper()
	if len(start) != 0 {
		t.Fatalf("resent job %d started again", id)
	}
	if len(again) != 1 || again[0].ID != id || len(again[0].Items) != 2 {
		t.Fatalf("resent job %d: answered %+v, want one result of two items", id, again)
	}
	for _, o := range again[0].Items {
		if o.Err == nil || o.Err.Code != wire.CodeResultLost || o.Err.Code.Fate() != wire.FateLost {
			t.Fatalf("resent job %d answered %+v, want CodeResultLost", id, o)
		}
	}
}

// TestResendAfterRingOverwriteNeverRunsTwice: a resent job whose entry in
// the memory of finished jobs was overwritten by later ones ran again.
func TestResendAfterRingOverwriteNeverRunsTwice(t *testing.T) {
	ss := newSessions(4, "w")
	now := time.Unix(1000, 0)
	for id := uint64(1); id <= uint64(ss.ringSize)+1; id++ {
		run := &wire.Run{ReplyTo: "ex", Jobs: []wire.Job{{ID: id, Name: "w", Args: [][]byte{{0xf6}, {0xf6}}}}}
		if start, _, _ := ss.admit(run, now); len(start) != 1 {
			t.Fatalf("job %d: started %d, want 1", id, len(start))
		}
		ss.finished("ex", wire.Result{ID: id, Items: make([]wire.Outcome, 2)}, 10, now)
	}
	// Job 1's result was lost, and ringSize jobs finished since.
	start, again, _ := ss.admit(resendRun("ex", 1), now)
	wantLost(t, start, again, 1)
}

// TestResendAfterSessionExpiryNeverRunsTwice: a resent job whose
// executor's memory had expired (sessionIdle with nothing running) ran
// again, the worker taking it for a new one.
func TestResendAfterSessionExpiryNeverRunsTwice(t *testing.T) {
	ss := newSessions(4, "w")
	t0 := time.Unix(1000, 0)
	run := &wire.Run{ReplyTo: "ex", Jobs: []wire.Job{{ID: 5, Name: "w", Args: [][]byte{{0xf6}, {0xf6}}}}}
	if start, _, _ := ss.admit(run, t0); len(start) != 1 {
		t.Fatalf("first Run: started %d jobs, want 1", len(start))
	}
	ss.finished("ex", wire.Result{ID: 5, Items: make([]wire.Outcome, 2)}, 10, t0)
	ss.expire(t0.Add(sessionIdle + time.Second))
	start, again, _ := ss.admit(resendRun("ex", 5), t0.Add(sessionIdle+2*time.Second))
	wantLost(t, start, again, 5)
	// The same resend again (its answer was lost too): still not run.
	start, again, _ = ss.admit(resendRun("ex", 5), t0.Add(sessionIdle+3*time.Second))
	wantLost(t, start, again, 5)
}

// TestResendNamesTheStartOfAnAheadJobAgain: a Started lost in a NATS
// outage was never sent again (results are, from memory), so a resent job
// sent ahead of a free slot that had started got no WorkStarted, and no
// kill timer for its Deadline(d), on its executor. A resend now names
// again every such job that started: running (1) or finished with its
// result (2); not one still held (3), nor one answered without starting
// (4: cancelled while held).
func TestResendNamesTheStartOfAnAheadJobAgain(t *testing.T) {
	ss := newSessions(4, "w")
	now := time.Unix(1000, 0)
	first := &wire.Run{ReplyTo: "ex", Slots: 1}
	for id := uint64(1); id <= 4; id++ {
		first.Jobs = append(first.Jobs, wire.Job{ID: id, Name: "w", Args: [][]byte{{0xf6}}, Ahead: true})
	}
	if start, again, named := ss.admit(first, now); len(start) != 4 || len(again) != 0 || len(named) != 0 {
		t.Fatalf("first Run: started %d, answered %d, named %v; want 4 started", len(start), len(again), named)
	}
	ss.started("ex", 1)
	ss.started("ex", 2)
	ss.finished("ex", wire.Result{ID: 2, Items: []wire.Outcome{{Value: []byte{2}}}}, 10, now)
	ss.finished("ex", wire.Failed(4, 1, &wire.Error{Code: wire.CodeCanceled, Message: "context canceled"}), 10, now)
	ss.started("ex", 4) // late: it has finished; nothing to mark
	ss.started("ex", 9) // never sent: ignored
	ss.started("other", 1)

	resend := &wire.Run{ReplyTo: "ex", Slots: 1, Resend: true, Jobs: first.Jobs}
	start, again, named := ss.admit(resend, now)
	if len(start) != 0 {
		t.Fatalf("resend started %d jobs, want none", len(start))
	}
	if len(again) != 2 || again[0].ID != 2 || again[1].ID != 4 {
		t.Fatalf("resend answered %+v, want jobs 2 and 4 from memory", again)
	}
	if !slices.Equal(named, []uint64{1, 2}) {
		t.Fatalf("resend named %v as started, want [1 2]", named)
	}
	// A normal Run repeating a running job (a first delivery racing its
	// resend) names nothing: only a resend follows a loss.
	if _, _, named := ss.admit(&wire.Run{ReplyTo: "ex", Jobs: first.Jobs[:1]}, now); len(named) != 0 {
		t.Fatalf("normal Run named %v, want nothing", named)
	}
}

// TestClosedSessionsStartNothingAndKeepWhatTheySaid: once a worker is
// killed or leaves, its sessions are closed: close names the highest job
// id received from each executor, the worker starts no job it receives
// after (its executor runs it elsewhere, as it is above that id), and a
// second close says the same as the first.
func TestClosedSessionsStartNothingAndKeepWhatTheySaid(t *testing.T) {
	ss := newSessions(4, "w")
	now := time.Unix(1000, 0)
	run := &wire.Run{ReplyTo: "ex", Jobs: []wire.Job{{ID: 3, Name: "w", Args: [][]byte{{0xf6}}}}}
	if start, _, _ := ss.admit(run, now); len(start) != 1 {
		t.Fatalf("before close: started %d jobs, want 1", len(start))
	}
	seen := ss.close()
	if len(seen) != 1 || seen["ex"] != 3 {
		t.Fatalf("close = %v, want ex: 3", seen)
	}
	for _, replyTo := range []string{"ex", "other"} {
		late := &wire.Run{ReplyTo: replyTo, Jobs: []wire.Job{{ID: 4, Name: "w", Args: [][]byte{{0xf6}}}}}
		if start, again, named := ss.admit(late, now); len(start)+len(again)+len(named) != 0 {
			t.Fatalf("a Run from %s after close: started %v, answered %v, named %v; want nothing", replyTo, start, again, named)
		}
	}
	if again := ss.close(); len(again) != 1 || again["ex"] != 3 {
		t.Fatalf("a second close = %v, want what the first said", again)
	}
}
