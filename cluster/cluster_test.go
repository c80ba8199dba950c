package cluster_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// TestRoundTrip covers results and every kind of error coming back from a
// local worker on the embedded server, and the size limits of NATS.
func TestRoundTrip(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	ctx := context.Background()
	if u := cluster.URL(ex); !strings.HasPrefix(u, "nats://") || !strings.Contains(u, "@127.0.0.1:") || !strings.Contains(u, "#aplex-key=") {
		t.Errorf("URL = %q, want the embedded server on 127.0.0.1 with its token and the pool key", u)
	}

	f, err := aplex.Submit(ctx, ex, square, 12)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, f); v != 144 || err != nil {
		t.Fatalf("square(12) = %v, %v", v, err)
	}

	f = submit(t, ex, fail, "x")
	_, err = get(t, f)
	var re *aplex.RemoteError
	if !errors.Is(err, errSentinel) || !errors.As(err, &re) || !strings.Contains(err.Error(), "failing on x") {
		t.Errorf("fail: err = %v (%T), want a RemoteError matching the sentinel", err, err)
	}

	f = submit(t, ex, boom, "kaboom")
	_, err = get(t, f)
	var pe *aplex.PanicError
	if !errors.As(err, &pe) || !pe.Remote || !strings.Contains(err.Error(), "kaboom") {
		t.Errorf("panic: err = %v, want a remote PanicError", err)
	}

	f = submit(t, ex, parentOnly, 1)
	if _, err = get(t, f); !errors.Is(err, aplex.ErrNotRegistered) {
		t.Errorf("unregistered work: err = %v, want ErrNotRegistered", err)
	}

	// NATS' max payload (1 MiB on the embedded server) bounds arguments
	// before sending, results on the worker, and Map chunks as a whole.
	if _, err := aplex.Submit(ctx, ex, huge, make([]byte, 2<<20)); !errors.Is(err, aplex.ErrTooLarge) {
		t.Errorf("2 MiB argument: err = %v, want ErrTooLarge at Submit", err)
	}
	fb := submit(t, ex, bigResult, 2<<20)
	if _, err := get(t, fb); !errors.Is(err, aplex.ErrTooLarge) {
		t.Errorf("2 MiB result: err = %v, want ErrTooLarge", err)
	}
	// The four inputs are ready at once, so the Map sends them as one
	// chunk; it sends a partial chunk only when its input stays silent for
	// 5 ms, which a test run on a loaded machine can still see (a smaller
	// chunk fits, and succeeds). So a success is tried again, a few times.
	big := make([][]byte, 4)
	for i := range big {
		big[i] = make([]byte, 400<<10)
	}
	var chunkErr error
	for range 3 {
		for _, err := range aplex.Map(ctx, ex, huge, slices.Values(big), aplex.ChunkSize(4)) {
			chunkErr = err
			break
		}
		if chunkErr != nil {
			break
		}
	}
	if !errors.Is(chunkErr, aplex.ErrTooLarge) {
		t.Errorf("chunk of 4 × 400 KiB: err = %v, want ErrTooLarge", chunkErr)
	}
	// The worker is still fine.
	f = submit(t, ex, square, 3)
	if v, err := get(t, f); v != 9 || err != nil {
		t.Fatalf("square(3) after errors = %v, %v", v, err)
	}
}

// TestMapAcrossThreeWorkers maps with chunks over three local worker
// processes: results come in order and every worker takes a share.
func TestMapAcrossThreeWorkers(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(3), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithMaxWorksPerWorker(4))
	ctx := context.Background()
	inputs := func(yield func(int) bool) {
		for i := range 300 {
			if !yield(i) {
				return
			}
		}
	}
	i := 0
	for v, err := range aplex.Map(ctx, ex, square, inputs, aplex.ChunkSize(7)) {
		if err != nil {
			t.Fatal(err)
		}
		if v != i*i {
			t.Fatalf("result %d = %d, want %d", i, v, i*i)
		}
		i++
	}
	if i != 300 {
		t.Fatalf("got %d results, want 300", i)
	}

	durations := func(yield func(time.Duration) bool) {
		for range 120 {
			if !yield(5 * time.Millisecond) {
				return
			}
		}
	}
	per := map[string]int{}
	for who, err := range aplex.Map(ctx, ex, whoami, durations, aplex.ChunkSize(10)) {
		if err != nil {
			t.Fatal(err)
		}
		per[worker(who)]++
	}
	if len(per) != 3 {
		t.Errorf("works per worker = %v, want all three workers used", per)
	}
}

// TestBalancers runs each built-in balancer over three worker processes
// shared by all the executors (started by hand, as on other machines).
func TestBalancers(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	for i := range 3 {
		spawnWorker(t, url, "balancers", "bal-"+itoa(i))
	}
	for _, tc := range []struct {
		name string
		lb   aplex.LoadBalancer
	}{
		{"RoundRobin", aplex.RoundRobin()},
		{"Average", aplex.Average()},
		{"Random", aplex.Random()},
		{"PowerOfTwo", aplex.PowerOfTwo()},
		{"Affinity", aplex.Affinity()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("balancers"),
				aplex.WithPoolSize(3), aplex.WithLoadBalancer(tc.lb), aplex.WithMaxWorksPerWorker(100))
			ctx := context.Background()
			var fs []*aplex.Future[string]
			for range 60 {
				f, err := aplex.Submit(ctx, ex, whoami, 30*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				fs = append(fs, f)
			}
			per := map[string]int{}
			for _, f := range fs {
				who, err := get(t, f)
				if err != nil {
					t.Fatal(err)
				}
				per[worker(who)]++
			}
			if len(per) != 3 {
				t.Fatalf("works per worker = %v, want all three used", per)
			}
			if tc.name == "RoundRobin" {
				for w, n := range per {
					if n != 20 {
						t.Errorf("RoundRobin gave %s %d works, want 20 each (%v)", w, n, per)
					}
				}
			}
		})
	}
}

// TestAffinity keeps every key on one remote worker, and spreads keys.
func TestAffinity(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(3), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithLoadBalancer(aplex.Affinity()))
	ctx := context.Background()
	keys := []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"}
	fs := map[string][]*aplex.Future[string]{}
	for round := range 5 {
		for _, k := range keys {
			f, err := aplex.Submit(ctx, ex, whoami, time.Duration(round)*time.Millisecond, aplex.Meta(k))
			if err != nil {
				t.Fatal(err)
			}
			fs[k] = append(fs[k], f)
		}
	}
	used := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(fs)) {
		seen := map[string]bool{}
		for _, f := range fs[k] {
			who, err := get(t, f)
			if err != nil {
				t.Fatal(err)
			}
			seen[worker(who)] = true
			used[worker(who)] = true
		}
		if len(seen) != 1 {
			t.Errorf("key %q ran on %v, want one worker", k, seen)
		}
	}
	if len(used) < 2 {
		t.Errorf("9 keys all went to %v: affinity does not spread keys", used)
	}
}

// TestCancelRunning cancels works running in a worker process: the work
// sees its ctx end, the future reports context.Canceled, and the slot is
// freed once the work has stopped.
func TestCancelRunning(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	ctx := context.Background()
	seenBy := func(key string) func() bool {
		return func() bool {
			f, err := aplex.Submit(ctx, ex, observed, key)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := get(t, f)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
	}

	// Future.Cancel of a running work.
	f, err := aplex.Submit(ctx, ex, block, "by-cancel")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the work to start in the worker", startedIn(t, ex, "by-cancel"))
	if !f.Cancel() {
		t.Fatal("Cancel of a running work returned false")
	}
	if _, err := get(t, f); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled future: err = %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "the work to observe its cancellation", seenBy("by-cancel"))
	waitFor(t, 5*time.Second, "the slot to be freed", func() bool { return ex.Stats().Running == 0 })

	// Cancelling the ctx given to Submit.
	cctx, cancel := context.WithCancel(ctx)
	f, err = aplex.Submit(cctx, ex, block, "by-ctx")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the work to start in the worker", startedIn(t, ex, "by-ctx"))
	cancel()
	if _, err := get(t, f); !errors.Is(err, context.Canceled) {
		t.Errorf("ctx-cancelled future: err = %v, want context.Canceled", err)
	}
	waitFor(t, 5*time.Second, "the work to observe its ctx", seenBy("by-ctx"))

	// A per-work deadline ends the work's ctx in the worker.
	f = submit(t, ex, block, "by-deadline", aplex.Deadline(100*time.Millisecond))
	if _, err := get(t, f); !errors.Is(err, errObserved) {
		t.Errorf("deadline: err = %v, want the work's own error", err)
	}
}

// TestPools shows that pools sharing a server do not see each other's
// workers.
func TestPools(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	spawnWorker(t, url, "blue", "blue-worker")
	spawnWorker(t, url, "green", "green-worker")
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("green"), aplex.WithPoolSize(1))
	var fs []*aplex.Future[string]
	for range 20 {
		f, err := aplex.Submit(context.Background(), ex, whoami, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		who, err := get(t, f)
		if err != nil {
			t.Fatal(err)
		}
		if worker(who) != "green-worker" {
			t.Fatalf("a green work ran on %q", who)
		}
	}
}

// TestOptions checks that bad options are refused with a clear error.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []aplex.Option
		want string
	}{
		{"pool with dot", []aplex.Option{cluster.WithPool("a.b")}, "WithPool"},
		{"empty pool", []aplex.Option{cluster.WithPool("")}, "WithPool"},
		{"negative local", []aplex.Option{cluster.SpawnLocalWorkers(-1)}, "SpawnLocalWorkers"},
		{"huge local", []aplex.Option{cluster.SpawnLocalWorkers(1 << 40)}, "at most 16384"},
		{"huge pool", []aplex.Option{aplex.WithPoolSize(1 << 40)}, "at most 16384"},
		{"nil conn", []aplex.Option{cluster.WithConn(nil)}, "WithConn"},
		{"tiny timeout", []aplex.Option{aplex.WithHeartbeatTimeout(time.Millisecond)}, "WithHeartbeatTimeout"},
		{"no url", []aplex.Option{cluster.WithURL()}, "WithURL"},
		{"bad env", []aplex.Option{aplex.WithWorkerEnv("NOEQUALS")}, "WithWorkerEnv"},
		{"nil output", []aplex.Option{aplex.WithWorkerOutput(nil)}, "WithWorkerOutput"},
		{"output without local workers", []aplex.Option{aplex.WithWorkerOutput(io.Discard)}, "WithWorkerOutput applies to a cluster executor's local workers only"},
		{"env without local workers", []aplex.Option{aplex.WithWorkerEnv("A=b")}, "WithWorkerEnv applies to a cluster executor's local workers only"},
		{"recycling without local workers", []aplex.Option{aplex.WithRecycleAfter(10)}, "WithRecycleAfter applies to a cluster executor's local workers only"},
		{"command without local workers", []aplex.Option{aplex.WithWorkerCommand("/bin/true")}, "WithWorkerCommand applies to a cluster executor's local workers only"},
		{"memory limit without local workers", []aplex.Option{aplex.WithWorkerMemoryLimit(1 << 30)}, "WithWorkerMemoryLimit applies to a cluster executor's local workers only"},
		{"worker init", []aplex.Option{aplex.WithWorkerInit(func(ctx context.Context, _ aplex.WorkerInfo) (context.Context, error) { return ctx, nil })}, "WithWorkerInit"},
		{"unreachable", []aplex.Option{cluster.WithURL("nats://127.0.0.1:1")}, "connect to NATS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := cluster.NewExecutor(tc.opts...)
			if err == nil {
				ex.Close()
				t.Fatal("NewExecutor accepted bad options")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if ex, err := aplex.NewThreadExecutor(cluster.WithPool("x")); err == nil {
		ex.Close()
		t.Error("a thread executor accepted a cluster option")
	}
	if err := cluster.Serve(context.Background(), cluster.ServePool("")); err == nil {
		t.Error("Serve accepted an empty pool name")
	}
	// Nothing listens: Serve waits for the server until its ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := cluster.Serve(ctx, cluster.ServeURL("nats://127.0.0.1:1")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve against nothing = %v, want it to wait until its ctx ends", err)
	}
}

// TestServeInProcess runs Serve in this process with its options: the
// executor uses the worker's id and respects its capacity; cancelling Serve's
// ctx drains it (a work still running after ServeDrainTimeout is
// cancelled), and Serve returns leaving no goroutine behind (TestMain
// checks).
func TestServeInProcess(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(url), cluster.ServePool("inproc"),
			cluster.ServeWorkerID("inproc-1"), cluster.ServeMaxWorks(2),
			cluster.ServeLabels(map[string]string{"zone": "test"}),
			cluster.ServeHeartbeat(testHeartbeat), cluster.ServeDrainTimeout(300*time.Millisecond))
	}()
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("inproc"), aplex.WithPoolSize(1))
	bg := context.Background()
	var fs []*aplex.Future[string]
	for range 4 {
		f, err := aplex.Submit(bg, ex, whoami, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	if s := ex.Stats(); s.Running != 2 || s.Queued != 2 {
		t.Errorf("running %d, queued %d: want the worker's capacity of 2 respected", s.Running, s.Queued)
	}
	for _, f := range fs {
		if who, err := get(t, f); err != nil || worker(who) != "inproc-1" {
			t.Fatalf("whoami = %q, %v", who, err)
		}
	}

	fb := submit(t, ex, block, "drain-timeout")
	waitFor(t, 5*time.Second, "the work to start in the worker", startedIn(t, ex, "drain-timeout"))
	stop()
	if _, err := get(t, fb); !errors.Is(err, errObserved) {
		t.Errorf("work cancelled by the drain timeout: err = %v, want its own error", err)
	}
	select {
	case err := <-served:
		if err == nil || !strings.Contains(err.Error(), "drain timeout") {
			t.Errorf("Serve = %v, want the drain timeout reported", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	waitFor(t, 5*time.Second, "the executor to let the worker go", func() bool {
		return ex.Stats().Workers[0].Workload == 0
	})
}
