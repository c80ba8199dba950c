package cluster_test

import (
	"syscall"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// workerWithJobs5And7 plays an executor on raw NATS against a real worker
// of pool: it sends jobs 5 and 7 and waits for both answers.
func workerWithJobs5And7(t *testing.T, pool string) *rawExecutor {
	t.Helper()
	x := newRawExecutor(t, pool, "w1")
	x.send(&wire.Run{ReplyTo: x.inbox, Jobs: []wire.Job{
		{ID: 5, Name: square.Name(), Args: arg(t, 3)},
		{ID: 7, Name: square.Name(), Args: arg(t, 3)},
	}})
	for answered := 0; answered < 2; {
		if rs, ok := x.next(x.replies).(*wire.Results); ok {
			answered += len(rs.Results)
		}
	}
	return x
}

// TestByeNamesTheLastJobReceivedFromEachExecutor: a leaving worker's Bye
// names, per executor, the highest job id it received, so that a job sent
// as it left runs elsewhere (TestJobsSentAsAWorkerLeftRunElsewhere). Jobs
// 5 and 7, answered, then SIGTERM: its Bye says 7 for this executor's
// inbox.
func TestByeNamesTheLastJobReceivedFromEachExecutor(t *testing.T) {
	x := workerWithJobs5And7(t, "bye-seen")
	if err := x.worker.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		if bye, ok := x.next(x.beats).(*wire.Bye); ok {
			if len(bye.Seen) != 1 || bye.Seen[x.inbox] != 7 {
				t.Fatalf("Bye.Seen = %v, want %s: 7", bye.Seen, x.inbox)
			}
			return
		}
	}
}

// TestKilledHeartbeatNamesTheLastJobReceived: the heartbeat that says a
// worker was killed names, per executor, the highest job id it received,
// as a Bye does, so that the other executors of the pool run elsewhere the
// jobs they sent it as it was killed (TestJobsSentAsAWorkerLeftRunElsewhere,
// its "killed" cases). Jobs 5 and 7, answered, then a kill
// (Shutdown{Graceful: false}): the Killed heartbeat says 7 for this
// executor's inbox.
func TestKilledHeartbeatNamesTheLastJobReceived(t *testing.T) {
	x := workerWithJobs5And7(t, "killed-seen")
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
