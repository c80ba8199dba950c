package cluster_test

import (
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestKilledHeartbeatNamesTheLastJobReceived: the heartbeat that says a
// worker was killed names, per executor, the highest job id it received
// (as a Bye does: TestByeNamesTheLastJobReceivedFromEachExecutor), so
// that the other executors of the pool run elsewhere the jobs they sent
// it as it was killed (TestJobsSentAsAWorkerLeftRunElsewhere). The test
// plays an executor on raw NATS against a real worker: jobs 5 and 7,
// answered, then a kill (Shutdown{Graceful: false}): the Killed heartbeat
// says 7 for this executor's inbox.
func TestKilledHeartbeatNamesTheLastJobReceived(t *testing.T) {
	x := newRawExecutor(t, "killed-seen", "w1")
	x.send(&wire.Run{ReplyTo: x.inbox, Jobs: []wire.Job{
		{ID: 5, Name: square.Name(), Args: arg(t, 3)},
		{ID: 7, Name: square.Name(), Args: arg(t, 3)},
	}})
	for answered := 0; answered < 2; {
		if rs, ok := x.next(x.replies).(*wire.Results); ok {
			answered += len(rs.Results)
		}
	}
	x.send(&wire.Shutdown{Graceful: false})
	for {
		if hb, ok := x.next(x.beats).(*wire.Heartbeat); ok && hb.Killed {
			if len(hb.Seen) != 1 || hb.Seen[x.inbox] != 7 {
				t.Fatalf("the Killed heartbeat's Seen = %v, want %s: 7", hb.Seen, x.inbox)
			}
			return
		}
	}
}
