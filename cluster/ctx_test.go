package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
)

// The ctx parity tests on cluster workers: the caller's deadline and a
// per-work Deadline reach the work as the time left, and registered
// propagators carry ctx values (the root package has the same tests for
// goroutine and process workers).

var (
	ctxSeenWork = aplex.Register("cluster.ctx-seen", testutil.SeeCtx)
	// pastDeadline ignores its ctx: it returns a value once marker exists,
	// which the test creates after the caller's ctx has ended.
	pastDeadline = aplex.Register("cluster.past-deadline", func(_ context.Context, marker string) (int, error) {
		if _, err := testutil.AwaitMarker(marker); err != nil {
			return 0, err
		}
		return 1, nil
	})
)

// Workers register the propagator at package level, as a program would;
// the test process only in the tests that use it, so that the benchmarks
// measure Submit without one.
var errPropagatorInWorker = func() error {
	if os.Getenv("APLEX_WORKER_ROLE") == "" {
		return nil
	}
	return aplex.RegisterPropagator(testutil.RequestIDs{})
}()

var requestIDsOnce sync.Once

func useRequestIDs(t *testing.T) {
	t.Helper()
	var err error
	requestIDsOnce.Do(func() { err = aplex.RegisterPropagator(testutil.RequestIDs{}) })
	if err != nil || errPropagatorInWorker != nil {
		t.Fatalf("RegisterPropagator: %v, %v", err, errPropagatorInWorker)
	}
}

// seenBy submits ctxSeenWork with ctx and opts, and returns what the work
// saw and the times just before Submit and just after the result.
func seenBy(t *testing.T, ctx context.Context, ex *aplex.Executor, opts ...aplex.CallOption) (s testutil.CtxSeen, before, after time.Time) {
	t.Helper()
	before = time.Now()
	f, err := aplex.Submit(ctx, ex, ctxSeenWork, 0, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	s, err = get(t, f)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return s, before, time.Now()
}

// checkDeadline checks that the work's deadline lies in [lo, hi].
func checkDeadline(t *testing.T, s testutil.CtxSeen, lo, hi time.Time) {
	t.Helper()
	if !s.HasDeadline {
		t.Fatalf("the work's ctx has no deadline; want one in [%v, %v]", lo, hi)
	}
	got := time.Unix(0, s.Deadline)
	if got.Before(lo.Round(0)) || got.After(hi.Round(0)) {
		t.Fatalf("the work's deadline is %v: %v after the earliest it may be, %v after the latest",
			got, got.Sub(lo), got.Sub(hi))
	}
}

// TestCallerDeadlineReachesClusterWork also covers a per-work Deadline:
// both arrive as the time left, the earlier one winning.
func TestCallerDeadlineReachesClusterWork(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	s, before, after := seenBy(t, ctx, ex)
	checkDeadline(t, s, want, want.Add(after.Sub(before)))

	if s, _, _ := seenBy(t, context.Background(), ex); s.HasDeadline {
		t.Fatalf("a work submitted without a deadline has one: %v", time.Unix(0, s.Deadline))
	}

	const d = 3 * time.Second
	s, before, after = seenBy(t, ctx, ex, aplex.Deadline(d))
	checkDeadline(t, s, before.Add(d), after.Add(d))
	s, before, after = seenBy(t, ctx, ex, aplex.Deadline(time.Hour))
	checkDeadline(t, s, want, want.Add(after.Sub(before)))
}

func TestWorkPastCallerDeadlineFailsOnCluster(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	marker := filepath.Join(t.TempDir(), "past")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	f, err := aplex.Submit(ctx, ex, pastDeadline, marker)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	<-ctx.Done()
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := get(t, f)
	if !errors.Is(err, context.DeadlineExceeded) || !f.Cancelled() {
		t.Fatalf("Get = %v, %v (cancelled: %v); want context.DeadlineExceeded, cancelled", v, err, f.Cancelled())
	}
	if v, err := get(t, submit(t, ex, square, 3)); v != 9 || err != nil {
		t.Fatalf("square(3) = %v, %v", v, err)
	}
}

func TestPropagatorCarriesValuesToClusterWork(t *testing.T) {
	useRequestIDs(t)
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	ctx := context.WithValue(context.Background(), testutil.RequestIDKey{}, "req-7")
	if s, _, _ := seenBy(t, ctx, ex); s.RequestID != "req-7" {
		t.Fatalf("the work saw the request id %q, want req-7", s.RequestID)
	}
	if s, _, _ := seenBy(t, context.Background(), ex); s.RequestID != "" {
		t.Fatalf("a work submitted without a request id saw %q", s.RequestID)
	}
	n := 0
	for s, err := range aplex.Map(ctx, ex, ctxSeenWork, func(yield func(int) bool) {
		for i := range 5 {
			if !yield(i) {
				return
			}
		}
	}, aplex.ChunkSize(2)) {
		if err != nil || s.RequestID != "req-7" {
			t.Fatalf("a Map work saw %+v, %v", s, err)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("Map yielded %d results", n)
	}

	// NATS' max payload (1 MiB here) bounds the argument and the header
	// together.
	big := context.WithValue(context.Background(), testutil.RequestIDKey{}, strings.Repeat("r", 60<<10))
	if _, err := aplex.Submit(big, ex, huge, make([]byte, 1<<20-40<<10)); !errors.Is(err, aplex.ErrTooLarge) || !strings.Contains(err.Error(), "and the header") {
		t.Fatalf("an argument that fits only without the header: %v, want ErrTooLarge", err)
	}
}

// TestOtherProtocolVersionIsRefusedClearly: a worker built with another
// protocol version (its Hello's first byte) never joins, and the executor
// says why in a warning instead of a debug line about a bad message.
func TestOtherProtocolVersionIsRefusedClearly(t *testing.T) {
	srv := startServer(t, 0, nil)
	log := newRecordLog(slog.LevelWarn, "another protocol version")
	ex := newExecutor(t, cluster.WithURL(srv.ClientURL()), cluster.WithPool("versions"), aplex.WithLogger(slog.New(log)))
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hello, err := wire.Marshal(&wire.Hello{Version: wire.Version - 1, WorkerID: "old-1", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	hello[0] = wire.Version - 1 // as an older build frames it
	if err := nc.Publish("aplex.versions.hello", hello); err != nil {
		t.Fatal(err)
	}
	select {
	case <-log.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no warning about a worker of another protocol version")
	}
	if n := len(ex.Stats().Workers); n != 0 {
		t.Fatalf("%d workers joined", n)
	}
}
