package cluster_test

import (
	"syscall"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestByeNamesTheLastJobReceivedFromEachExecutor: a leaving worker's Bye
// names, per executor, the highest job id it received, so that a job sent
// as it left runs elsewhere (TestJobsSentAsAWorkerLeftRunElsewhere). The
// test plays an executor on raw NATS against a real worker: jobs 5 and 7,
// answered, then SIGTERM: its Bye says 7 for this executor's inbox.
func TestByeNamesTheLastJobReceivedFromEachExecutor(t *testing.T) {
	x := newRawExecutor(t, "bye-seen", "w1")
	x.send(&wire.Run{ReplyTo: x.inbox, Jobs: []wire.Job{
		{ID: 5, Name: square.Name(), Args: arg(t, 3)},
		{ID: 7, Name: square.Name(), Args: arg(t, 3)},
	}})
	for answered := 0; answered < 2; {
		if rs, ok := x.next(x.replies).(*wire.Results); ok {
			answered += len(rs.Results)
		}
	}
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
