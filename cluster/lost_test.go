package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// heldArg asks held for a result of Size bytes; ID names the work.
type heldArg struct {
	ID   int
	Size int
}

// heldGate is the state of the held works of one test. They run in this
// process (the test serves with cluster.Serve), so the test counts the
// runs of each id directly.
type heldGate struct {
	mu      sync.Mutex
	runs    map[int]int
	started chan struct{} // a token per run
	release chan struct{} // closed: held works return
}

var heldState atomic.Pointer[heldGate]

// held counts its run, waits for the test's release and returns Size bytes.
var held = aplex.Register("cluster.held", func(ctx context.Context, a heldArg) ([]byte, error) {
	g := heldState.Load()
	if g == nil {
		return nil, errors.New("cluster.held runs only in TestResultLostNeverRunsTwice")
	}
	g.mu.Lock()
	g.runs[a.ID]++
	g.mu.Unlock()
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return make([]byte, a.Size), nil
})

// failedPublishes counts the results a worker failed to publish, from
// its link's Debug lines "publish" of a Results, with an error.
func failedPublishes(log *recordLog) (n int64) {
	for _, r := range log.records() {
		if items := attrOf(r, "items"); attrOf(r, "kind").String() == "Results" && items.Kind() == slog.KindInt64 {
			n += items.Int64()
		}
	}
	return n
}

// TestResultLostNeverRunsTwice is the chaos test "NATS restart with more
// results than the worker's result memory": works finish while NATS is
// down, so every result is lost on the way; after the restart the
// executor sends the jobs again, and the worker, which remembers only the
// last 4 MiB of results, must answer the forgotten ones with an error
// (a *aplex.WorkerError saying the result was lost) instead of letting
// the executor run them a second time.
func TestResultLostNeverRunsTwice(t *testing.T) {
	const (
		works = 96
		size  = 64 << 10 // 6 MiB of results in all: more than the 4 MiB memory
	)
	g := &heldGate{runs: map[int]int{}, started: make(chan struct{}, works), release: make(chan struct{})}
	heldState.Store(g)
	t.Cleanup(func() { heldState.Store(nil) })

	srv := newRestartableServer(t)
	url := srv.url

	// The worker, in this process. It keeps no reconnect buffer, so a
	// result finished during the outage is lost for sure, and it logs
	// every failed publish: the test's handshake.
	failures := newRecordLog(slog.LevelDebug, "publish")
	disconnected := make(chan struct{}, 1)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(url), cluster.ServePool("lost"), cluster.ServeWorkerID("lost0"),
			cluster.ServeMaxWorks(works), cluster.ServeHeartbeat(testHeartbeat), cluster.ServeLogger(slog.New(failures)),
			cluster.ServeNATSOptions(nats.ReconnectBufSize(-1), nats.ReconnectWait(20*time.Millisecond),
				nats.DisconnectErrHandler(func(*nats.Conn, error) {
					select {
					case disconnected <- struct{}{}:
					default:
					}
				})))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("lost"), aplex.WithPoolSize(1),
		aplex.WithMaxWorksPerWorker(works), aplex.WithHeartbeatTimeout(20*time.Second))

	fs := make([]*aplex.Future[[]byte], works)
	for i := range fs {
		f, err := aplex.Submit(context.Background(), ex, held, heldArg{ID: i, Size: size})
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
	}
	wait := func(c <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-c:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	for range works {
		wait(g.started, "every work to start")
	}

	// The outage: the works finish, and their results cannot be sent.
	srv.stop()
	wait(disconnected, "the worker to see the outage")
	close(g.release)
	for failedPublishes(failures) < works {
		wait(failures.arrived, "the worker to fail to publish every result")
	}
	srv.start()

	// Every future ends: with its result, answered from the worker's
	// memory, or with a WorkerError saying the result was lost.
	var ok, lost, other, hung int
	var lostErr error
	for i, f := range fs {
		select {
		case <-f.Done():
		case <-time.After(20 * time.Second):
			hung++
			continue
		}
		v, err := f.Get(context.Background())
		var we *aplex.WorkerError
		switch {
		case err == nil && len(v) == size:
			ok++
		case errors.As(err, &we) && strings.Contains(we.Reason, "result was lost"):
			lost++
			lostErr = err
		default:
			other++
			t.Errorf("work %d: %d bytes, err = %v; want its result or a WorkerError saying the result was lost", i, len(v), err)
		}
	}
	g.mu.Lock()
	twice := 0
	for id := range works {
		if n := g.runs[id]; n != 1 {
			twice++
			t.Errorf("work %d ran %d times, want once", id, n)
		}
	}
	g.mu.Unlock()
	t.Logf("NATS restart with %d MiB of results against a 4 MiB memory: %d works submitted, %d succeeded, %d failed with a WorkerError (result lost), %d other errors, %d ran twice, %d hung",
		works*size>>20, works, ok, lost, other, twice, hung)
	if lostErr != nil {
		t.Logf("a lost result: %v", lostErr)
	}
	if hung > 0 {
		t.Fatalf("%d futures hung", hung)
	}
	if lost == 0 || ok == 0 {
		t.Errorf("%d results answered from memory and %d lost: the test no longer overflows the worker's memory", ok, lost)
	}

	// The pool serves on.
	f, err := aplex.Submit(context.Background(), ex, square, 3)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, f); v != 9 || err != nil {
		t.Errorf("after the outage: square(3) = %v, %v", v, err)
	}
}
