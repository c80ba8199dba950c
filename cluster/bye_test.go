package cluster_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestByeNamesTheLastJobReceivedFromEachExecutor: a leaving worker's Bye
// names, per executor, the highest job id it received, so that a job sent
// as it left runs elsewhere (TestJobsSentAsAWorkerLeftRunElsewhere). The
// test plays an executor on raw NATS against a real worker: jobs 5 and 7,
// answered, then SIGTERM: its Bye says 7 for this executor's inbox.
func TestByeNamesTheLastJobReceivedFromEachExecutor(t *testing.T) {
	const pool, wid = "bye-seen", "w1"
	srv := startServer(t, 0, nil)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	prefix := "aplex." + pool
	hellos, err := nc.SubscribeSync(prefix + ".hello")
	if err != nil {
		t.Fatal(err)
	}
	beats, err := nc.SubscribeSync(prefix + ".hb." + wid)
	if err != nil {
		t.Fatal(err)
	}
	inbox := prefix + ".x.fake"
	replies, err := nc.SubscribeSync(inbox + "." + wid)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	w := spawnWorker(t, srv.ClientURL(), pool, wid)
	if _, err := hellos.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no Hello from the worker: %v", err)
	}
	arg, err := wire.MarshalValue(3)
	if err != nil {
		t.Fatal(err)
	}
	run, err := wire.Marshal(&wire.Run{ReplyTo: inbox, Jobs: []wire.Job{
		{ID: 5, Name: "cluster.square", Args: [][]byte{arg}},
		{ID: 7, Name: "cluster.square", Args: [][]byte{arg}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(prefix+".w."+wid, run); err != nil {
		t.Fatal(err)
	}
	for answered := 0; answered < 2; {
		msg, err := replies.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%d of the 2 results: %v", answered, err)
		}
		m, err := wire.Unmarshal(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rs, ok := m.(*wire.Results); ok {
			answered += len(rs.Results)
		}
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := beats.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no Bye: %v", err)
		}
		m, err := wire.Unmarshal(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if bye, ok := m.(*wire.Bye); ok {
			if len(bye.Seen) != 1 || bye.Seen[inbox] != 7 {
				t.Fatalf("Bye.Seen = %v, want %s: 7", bye.Seen, inbox)
			}
			return
		}
	}
}
