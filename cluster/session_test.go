package cluster

import (
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
	if start, _ := ss.admit(run, t0); len(start) != 1 {
		t.Fatalf("first Run: started %d jobs, want 1", len(start))
	}
	done := t0.Add(3 * sessionIdle) // a long work
	ss.finished("ex", wire.Result{ID: 1, Items: []wire.Outcome{{Value: []byte{1}}}}, 10, done)
	ss.expire(done.Add(time.Second)) // the worker's next tick
	// The result was lost; the executor reconnects and sends the job again.
	start, again := ss.admit(&wire.Run{ReplyTo: "ex", Jobs: run.Jobs}, done.Add(2*time.Second))
	if len(start) != 0 || len(again) != 1 || again[0].ID != 1 {
		t.Fatalf("resent job: started %d, answered %d; want it answered from memory, not run again", len(start), len(again))
	}
}
