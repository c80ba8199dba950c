//go:build unix

// These tests kill processes by pid and look for them with kill -0.

package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// TestKillWorker kills -9 a remote worker holding works: they fail with a
// *aplex.WorkerError once its heartbeats stop (or run again elsewhere with
// aplex.Retry), the others complete, and the pool serves on.
func TestKillWorker(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	procs := map[string]*proc{}
	for _, id := range []string{"k0", "k1", "k2"} {
		procs[id] = spawnWorker(t, url, "kill", id)
	}
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("kill"), aplex.WithPoolSize(3),
		aplex.WithHeartbeatTimeout(testTimeout))
	ctx := context.Background()
	var plain, retried []*aplex.Future[string]
	for i := range 24 {
		var opts []aplex.CallOption
		if i%4 == 0 {
			opts = append(opts, aplex.Retry(2))
		}
		f, err := aplex.Submit(ctx, ex, whoami, time.Second, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			retried = append(retried, f)
		} else {
			plain = append(plain, f)
		}
	}
	waitFor(t, 5*time.Second, "every work to be sent to a worker", dispatched(ex, 24))
	victim := procs["k1"]
	if err := syscall.Kill(victim.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, f := range plain {
		who, err := get(t, f)
		var we *aplex.WorkerError
		switch {
		case err == nil:
			if worker(who) == "k1" {
				t.Errorf("a work completed on the killed worker")
			}
		case errors.As(err, &we):
			lost++
			// The timeout is aplex.WithHeartbeatTimeout's, reaching the
			// cluster transport through the core.
			if we.Worker != "k1" || we.PID != victim.pid() || !strings.Contains(we.Reason, "lost heartbeat") ||
				!strings.Contains(we.Reason, "timeout "+testTimeout.String()) {
				t.Errorf("WorkerError = %+v, want worker k1, pid %d, lost heartbeat after %v", we, victim.pid(), testTimeout)
			}
		default:
			t.Errorf("err = %v, want nil or a WorkerError", err)
		}
	}
	if lost == 0 {
		t.Error("no work failed with the killed worker")
	}
	for _, f := range retried {
		if who, err := get(t, f); err != nil || worker(who) == "k1" {
			t.Errorf("retried work: %q, %v; want success on a survivor", who, err)
		}
	}
	// The survivors keep serving.
	for range 6 {
		f := submit(t, ex, whoami, time.Millisecond)
		if who, err := get(t, f); err != nil || worker(who) == "k1" {
			t.Errorf("after the kill: %q, %v", who, err)
		}
	}
}

// TestJoinMidRun starts a second worker during a Map: it starts taking
// works as soon as it announces itself.
func TestJoinMidRun(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	spawnWorker(t, url, "join", "first")
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("join"), aplex.WithPoolSize(1),
		aplex.WithMaxWorksPerWorker(4))
	inputs := func(yield func(time.Duration) bool) {
		for range 400 {
			if !yield(10 * time.Millisecond) {
				return
			}
		}
	}
	per := map[string]int{}
	n := 0
	for who, err := range aplex.Map(context.Background(), ex, whoami, inputs) {
		if err != nil {
			t.Fatal(err)
		}
		per[worker(who)]++
		if n++; n == 40 {
			spawnWorker(t, url, "join", "second")
		}
	}
	if per["second"] == 0 {
		t.Errorf("works per worker = %v: the new worker took none", per)
	}
	t.Logf("works per worker: %v", per)
}

// TestServerRestart restarts the NATS server in the middle of a run: the
// executor and the workers reconnect, and every future ends, with its
// result or a clear error; no work runs twice. After a short outage the
// workers are kept and their works complete (the executor sends the
// works it still waits for again, and the workers answer from memory);
// after one longer than the heartbeat timeout they are dropped, their
// works fail with a WorkerError, and they join again.
func TestServerRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		outage  time.Duration
		opts    []aplex.Option
	}{
		{"short outage", 2 * time.Second, 300 * time.Millisecond, []aplex.Option{aplex.WithMaxWorksPerWorker(8)}},
		{"long outage", testTimeout, 2 * testTimeout, []aplex.Option{aplex.WithMaxWorksPerWorker(8)}},
		// Fewer slots than the works in flight: works are held by the
		// workers through the outage (resent, answered or lost with them).
		{"short outage, prefetch", 2 * time.Second, 300 * time.Millisecond, []aplex.Option{aplex.WithMaxWorksPerWorker(2), aplex.WithPrefetch(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) { testServerRestart(t, tc.timeout, tc.outage, tc.opts...) })
	}
}

func testServerRestart(t *testing.T, timeout, outage time.Duration, opts ...aplex.Option) {
	srv := newRestartableServer(t)
	url := srv.url
	spawnWorker(t, url, "restart", "r0")
	spawnWorker(t, url, "restart", "r1")
	ex := newExecutor(t, append([]aplex.Option{cluster.WithURL(url), cluster.WithPool("restart"), aplex.WithPoolSize(2),
		aplex.WithHeartbeatTimeout(timeout)}, opts...)...)
	ctx := context.Background()

	journal := filepath.Join(t.TempDir(), "journal")
	var (
		mu sync.Mutex
		fs []*aplex.Future[int]
	)
	stop := make(chan struct{})
	submitted := make(chan struct{})
	var lastID atomic.Int64 // the id of the last work submitted
	go func() {
		defer close(submitted)
		n := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n++
			f, err := aplex.Submit(ctx, ex, record, recordArg{Path: journal, ID: n, Sleep: 40 * time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			fs = append(fs, f)
			mu.Unlock()
			lastID.Store(int64(n))
		}
	}()
	// Works run before the outage, and works submitted after it run too.
	ranAfter := func(id int64) func() bool {
		return func() bool {
			b, _ := os.ReadFile(journal)
			n := 0
			for _, f := range strings.Fields(string(b)) {
				if v, _ := strconv.ParseInt(f, 10, 64); v > id {
					n++
				}
			}
			return n >= 5
		}
	}
	waitFor(t, 10*time.Second, "works to run before the outage", ranAfter(0))
	srv.stop()
	time.Sleep(outage) // the outage itself
	srv.start()
	waitFor(t, 10*time.Second, "works submitted after the restart to run", ranAfter(lastID.Load()))
	close(stop)
	<-submitted

	ok, failed := 0, 0
	for _, f := range fs {
		_, err := get(t, f) // fails the test if a future hangs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, aplex.ErrWorkerBroken):
			failed++
		default:
			t.Errorf("err = %v, want a result or a worker error", err)
		}
	}
	t.Logf("%d works: %d completed, %d failed with a worker error", len(fs), ok, failed)
	// At most once: the journal holds no id twice.
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]int{}
	for _, id := range strings.Fields(string(data)) {
		if runs[id]++; runs[id] == 2 {
			t.Errorf("work %s ran twice", id)
		}
	}
	if len(runs) < ok {
		t.Errorf("%d works completed but the journal holds %d", ok, len(runs))
	}
	// Reconnected: new works run.
	f := submit(t, ex, square, 2)
	if _, err := get(t, f); err != nil {
		t.Errorf("after the restart: %v", err)
	}
	// Every future ended: nothing stays counted (a slot is freed as its
	// result is handled, which may follow the future's end by a moment).
	waitFor(t, 5*time.Second, "Stats to count nothing running, queued or prefetched", func() bool {
		st := ex.Stats()
		return st.Running == 0 && st.Queued == 0 && st.Prefetched == 0
	})
}

// recordArg asks record to note ID in the file at Path.
type recordArg struct {
	Path  string
	ID    int
	Sleep time.Duration
}

// record appends its id to a journal (one small O_APPEND write: atomic
// between processes), so a test can see whether a work ran twice.
var record = aplex.Register("cluster.record", func(ctx context.Context, a recordArg) (int, error) {
	f, err := os.OpenFile(a.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	_, err = f.WriteString(strconv.Itoa(a.ID) + "\n")
	f.Close()
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(a.Sleep):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return a.ID, nil
})

// TestAuth: with a server that requires a password, an executor without
// it is refused, and one with it works, its local workers included.
func TestAuth(t *testing.T) {
	srv := startServer(t, 0, func(o *server.Options) { o.Username, o.Password = "aplex", "s3cret" })
	url := srv.ClientURL()
	if ex, err := cluster.NewExecutor(cluster.WithURL(url)); err == nil {
		ex.Close()
		t.Fatal("an unauthenticated executor was accepted")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("err = %v, want an authorization error", err)
	}
	p := spawnWorker(t, url, "auth", "intruder")
	if !p.exited(10 * time.Second) {
		t.Error("an unauthenticated worker is still running")
	}

	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("auth"),
		cluster.WithNATSOptions(nats.UserInfo("aplex", "s3cret")),
		cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	f := submit(t, ex, square, 5)
	if v, err := get(t, f); v != 25 || err != nil {
		t.Fatalf("square(5) = %v, %v", v, err)
	}
}

// TestShutdownClean: after Shutdown the executor leaves no subscription
// and no connection on the server, and no worker process behind; on a
// connection it was given, it removes its subscriptions and leaves the
// connection open.
func TestShutdownClean(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	baseSubs := srv.NumSubscriptions() // the server's own (system account)
	ex, err := cluster.NewExecutor(cluster.WithURL(url), cluster.SpawnLocalWorkers(2),
		aplex.WithWorkerOutput(newTestLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, w := range ex.Stats().Workers {
		pids = append(pids, w.PID)
	}
	if len(pids) != 2 {
		t.Fatalf("stats show %d workers, want 2", len(pids))
	}
	for v, err := range aplex.Map(context.Background(), ex, square, func(yield func(int) bool) {
		for i := range 50 {
			if !yield(i) {
				return
			}
		}
	}) {
		if err != nil {
			t.Fatal(err, v)
		}
	}
	if n := srv.NumSubscriptions(); n < baseSubs+3+2*2 {
		t.Fatalf("%d subscriptions while running, want the executor's 3 and 2 per worker over %d", n, baseSubs)
	}
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the server to drop every subscription and client", func() bool {
		return srv.NumSubscriptions() == baseSubs && srv.NumClients() == 0
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("local worker pid %d still exists after Shutdown (kill 0: %v)", pid, err)
		}
	}
	if cluster.URL(ex) != "" {
		t.Error("URL of a shut down executor is not empty")
	}

	// With the caller's connection.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	spawnWorker(t, url, "conn", "")
	ex, err = cluster.NewExecutor(cluster.WithConn(nc), cluster.WithPool("conn"), aplex.WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	f := submit(t, ex, square, 4)
	if v, err := get(t, f); v != 16 || err != nil {
		t.Fatalf("square(4) = %v, %v", v, err)
	}
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := nc.NumSubscriptions(); n != 0 || nc.IsClosed() {
		t.Errorf("given connection after Shutdown: %d subscriptions, closed %v; want 0, open", n, nc.IsClosed())
	}
}

// TestDrain: a worker told to leave (SIGTERM) finishes the works it holds,
// stops getting new ones, and goes; nothing fails.
func TestDrain(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	leaving := spawnWorker(t, url, "drain", "leaving")
	spawnWorker(t, url, "drain", "staying")
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("drain"), aplex.WithPoolSize(2),
		aplex.WithHeartbeatTimeout(testTimeout))
	ctx := context.Background()
	var fs []*aplex.Future[string]
	for range 10 {
		f, err := aplex.Submit(ctx, ex, whoami, 600*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	waitFor(t, 5*time.Second, "every work to be sent to a worker", dispatched(ex, 10))
	leaving.cmd.Process.Signal(syscall.SIGTERM)
	for _, f := range fs {
		if _, err := get(t, f); err != nil {
			t.Errorf("a work on the draining worker failed: %v", err)
		}
	}
	if !leaving.exited(5 * time.Second) {
		t.Fatal("the drained worker did not exit")
	}
	if code := leaving.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("drained worker exit code %d, want 0", code)
	}
	for range 10 {
		f := submit(t, ex, whoami, time.Millisecond)
		if who, err := get(t, f); err != nil || worker(who) != "staying" {
			t.Errorf("after the drain: %q, %v; want the staying worker", who, err)
		}
	}
}

// ignore is a work that ignores its ctx: only killing its worker stops it.
var ignore = aplex.Register("cluster.ignore", func(context.Context, int) (int, error) {
	time.Sleep(time.Minute)
	return 0, nil
})

// TestLocalWorkerRestart: a local worker that dies fails its works at once
// with the exit status, and comes back in the same slot; a work that
// ignores cancellation gets its worker killed after the kill grace, and
// that worker comes back too.
func TestLocalWorkerRestart(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithKillGrace(300*time.Millisecond))
	first := ex.Stats().Workers[0].PID

	f := submit(t, ex, whoami, 10*time.Second)
	waitFor(t, 5*time.Second, "the work to be sent to the worker", dispatched(ex, 1))
	syscall.Kill(first, syscall.SIGKILL)
	_, err := get(t, f)
	var we *aplex.WorkerError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, "killed") || we.PID != first {
		t.Fatalf("err = %v, want a WorkerError for pid %d saying it was killed", err, first)
	}
	var second int
	waitFor(t, 10*time.Second, "the local worker to come back", func() bool {
		s := ex.Stats().Workers
		second = s[0].PID
		return len(s) == 1 && second != first && second != 0 && s[0].Workload == 0
	})
	f2 := submit(t, ex, square, 6)
	if v, err := get(t, f2); v != 36 || err != nil {
		t.Fatalf("after the restart: %v, %v", v, err)
	}

	// A work that ignores its cancelled ctx costs its worker.
	g := submit(t, ex, ignore, 0)
	waitFor(t, 5*time.Second, "the work to be sent to the worker", dispatched(ex, 1))
	if !g.Cancel() {
		t.Fatal("Cancel returned false")
	}
	waitFor(t, 10*time.Second, "the stuck worker to be killed and replaced", func() bool {
		s := ex.Stats().Workers
		return len(s) == 1 && s[0].PID != second && s[0].PID != 0
	})
	f3 := submit(t, ex, square, 7)
	if v, err := get(t, f3); v != 49 || err != nil {
		t.Fatalf("after the kill: %v, %v", v, err)
	}
}

// TestSharedWorkerKill: when one executor kills a worker (a work ignored
// its cancellation), another executor using the same worker sees its
// works there fail with a *aplex.WorkerError (retryable), not with a
// cancellation it never asked for, saying that another executor killed
// the worker (TestSharedWorkerKilledElsewhereSaysSo: it said the worker
// "left without answering", or, for a work cancelled meanwhile, that this
// executor had killed it), and at once: not after the worker's grace for
// the works that ignore their cancel, whose end its Bye waits for.
func TestSharedWorkerKill(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	w := spawnWorker(t, url, "shared", "shared-worker")
	a := newExecutor(t, cluster.WithURL(url), cluster.WithPool("shared"), aplex.WithPoolSize(1),
		aplex.WithKillGrace(200*time.Millisecond))
	b := newExecutor(t, cluster.WithURL(url), cluster.WithPool("shared"), aplex.WithPoolSize(1))
	fb := submit(t, b, whoami, 5*time.Second)
	fa := submit(t, a, ignore, 0)
	waitFor(t, 5*time.Second, "the works to be sent to the worker", func() bool {
		return dispatched(a, 1)() && dispatched(b, 1)()
	})
	fa.Cancel()
	_, err := get(t, fb)
	var we *aplex.WorkerError
	if !errors.As(err, &we) || we.Worker != "shared-worker" {
		t.Fatalf("b's work: err = %v, want a WorkerError for the killed worker", err)
	}
	if !strings.Contains(we.Reason, "killed by another executor") {
		t.Errorf("b's work: reason %q, want it to say another executor killed the worker", we.Reason)
	}
	select {
	case <-w.done:
		// The worker waits a second for a's work, which ignores its
		// cancel, before its Bye and its exit: b hears of the kill first.
		t.Errorf("b's work ended only once the killed worker had exited")
	default:
	}
	if !w.exited(5 * time.Second) {
		t.Fatal("the killed worker did not exit")
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("killed worker exit code %d, want 1", code)
	}
}

// TestConnClosed: when the connection the executor was given is closed for
// good, the works running fail with a *aplex.WorkerError and Submit fails
// at once, instead of queueing for workers that cannot come back.
func TestConnClosed(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	// The worker keeps running the orphaned work; when the test stops it,
	// its drain timeout cancels that work.
	spawnWorker(t, url, "closed", "c0", "APLEX_CLUSTER_DRAIN_TIMEOUT=100ms")
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	ex := newExecutor(t, cluster.WithConn(nc), cluster.WithPool("closed"), aplex.WithPoolSize(1))
	ctx := context.Background()
	f := submit(t, ex, whoami, 10*time.Second)
	waitFor(t, 5*time.Second, "the work to be sent to the worker", dispatched(ex, 1))
	nc.Close()
	var we *aplex.WorkerError
	if _, err := get(t, f); !errors.As(err, &we) {
		t.Fatalf("running work: err = %v, want a WorkerError", err)
	}
	if _, err := aplex.Submit(ctx, ex, square, 1); !errors.Is(err, aplex.ErrWorkerBroken) {
		t.Errorf("Submit after the connection closed: err = %v, want ErrWorkerBroken", err)
	}
}

// TestShutdownInOnDoneOfALostWorkDoesNotHang: a work fails when the
// executor's monitor finds its worker silent, and its callback, run by the
// monitor, shuts the executor down. The transport's release waited for the
// monitor to return: for ever.
func TestShutdownInOnDoneOfALostWorkDoesNotHang(t *testing.T) {
	srv := startServer(t, 0, nil)
	victim := spawnWorker(t, srv.ClientURL(), "lost-ondone", "v0")
	ex, err := cluster.NewExecutor(cluster.WithURL(srv.ClientURL()), cluster.WithPool("lost-ondone"), aplex.WithPoolSize(1),
		aplex.WithHeartbeatTimeout(testTimeout), aplex.WithKillGrace(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	f, err := aplex.Submit(context.Background(), ex, whoami, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the work to be sent to the worker", dispatched(ex, 1))
	wait := shutDownOnDone(t, ex, f)
	if err := syscall.Kill(victim.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait()
}

// TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce: a local worker that
// joined and was then killed (here by its executor, for a work past its
// Deadline(d)) was restarted with the back-off of a worker that failed to
// start whenever it had run less than 10 s: killed every few hundred
// milliseconds, the pool's only worker came back every 2 s, and its queue
// stalled in between. A process worker is replaced at once; so is a
// local cluster worker now.
func TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce(t *testing.T) {
	logs := newRecordLog(slog.LevelDebug, "aplex: restarting ")
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithKillGrace(50*time.Millisecond), aplex.WithLogger(slog.New(logs)))
	pid := ex.Stats().Workers[0].PID
	const kills = 3
	for i := range kills {
		f := submit(t, ex, paritySleep, 60_000, aplex.Deadline(time.Millisecond))
		_, err := get(t, f)
		var we *aplex.WorkerError
		if !errors.As(err, &we) || !strings.Contains(we.Reason, "killed") {
			t.Fatalf("kill %d: err = %v, want a WorkerError saying the worker was killed", i, err)
		}
		waitFor(t, 10*time.Second, "the local worker to come back", func() bool {
			s := ex.Stats().Workers
			if len(s) == 1 && s[0].PID != pid && s[0].PID != 0 {
				pid = s[0].PID
				return true
			}
			return false
		})
	}
	var waits []time.Duration
	for _, r := range logs.records() {
		if in := attrOf(r, "in"); in.Kind() == slog.KindDuration {
			waits = append(waits, in.Duration())
		}
	}
	if len(waits) != kills {
		t.Fatalf("%d restarts logged, want %d", len(waits), kills)
	}
	for i, d := range waits {
		if d != 0 {
			t.Errorf("restart %d after a kill waited %v, want 0: %v", i+1, d, waits)
		}
	}
}

// TestShutdownAsALocalWorkerIsReplacedReturnsNil: a graceful Shutdown
// that began as a killed local worker was being replaced (here killed for
// a cancelled work that ignored its ctx) returned "local workers killed:
// context deadline exceeded", a deadline not the caller's: the teardown
// gives the workers' exit one kill grace, and the replacement, still
// starting, was asked to leave cleanly, which took longer. Nothing was
// lost, and a process executor returns nil there. A local worker that has
// not joined holds nothing and is now stopped at once.
func TestShutdownAsALocalWorkerIsReplacedReturnsNil(t *testing.T) {
	for round := range 3 {
		ex := newExecutor(t, cluster.SpawnLocalWorkers(2), aplex.WithWorkerOutput(newTestLog(t)),
			aplex.WithKillGrace(300*time.Millisecond))
		fs := []*aplex.Future[int]{submit(t, ex, paritySleep, 60_000), submit(t, ex, paritySleep, 60_000)}
		waitFor(t, 5*time.Second, "the works to be sent", dispatched(ex, 2))
		for _, f := range fs {
			f.Cancel()
		}
		// The drain waits for the cancelled works' answers; the kill grace
		// kills both workers, and their replacements start as the
		// teardown begins.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := ex.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Shutdown: %v, want nil", round, err)
		}
	}
}

// TestShortOutageKillsNoWorker: a kill timer that fired during a NATS
// outage killed the worker, though the work had honoured its deadline and
// only its answer was held up by the outage: the future failed with a
// *aplex.WorkerError, and a remote worker not run under a supervisor left
// the pool for good (the stress mix with two executors sharing workers
// through a NATS restart stalled so). An outage shorter than the
// heartbeat timeout must cost only delay. The kill now waits while the
// executor's connection is down or the worker is silent; the heartbeat
// timeout drops a worker that does not come back.
func TestShortOutageKillsNoWorker(t *testing.T) {
	srv := newRestartableServer(t)
	ex := newExecutor(t, cluster.WithURL(srv.url), cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)),
		aplex.WithKillGrace(200*time.Millisecond), aplex.WithHeartbeatTimeout(3*time.Second))
	pid := ex.Stats().Workers[0].PID
	f := submit(t, ex, block, "outage-1", aplex.Deadline(300*time.Millisecond))
	waitFor(t, 5*time.Second, "the work to start", startedIn(t, ex, "outage-1"))
	srv.stop()
	// The outage itself: it must outlast the work's deadline and the kill
	// grace, 500ms from its start, which are timers, not events to await.
	time.Sleep(800 * time.Millisecond)
	srv.start()
	if _, err := get(t, f); !errors.Is(err, errObserved) {
		t.Fatalf("err = %v, want the work's own answer to its deadline (errObserved), not a killed worker's", err)
	}
	if got := ex.Stats().Workers[0].PID; got != pid {
		t.Errorf("worker pid %d, was %d: killed by an outage", got, pid)
	}
}
