package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// TestStartTimeoutIsTheBound: NewExecutor waits for WithPoolSize workers
// at most the start timeout (plus a moment to clean up), not the start
// timeout plus the kill grace (the defect: WithStartTimeout(2s) failed
// after 7s). No worker ever joins, so the wait is the whole bound.
func TestStartTimeoutIsTheBound(t *testing.T) {
	const (
		timeout = 500 * time.Millisecond
		slack   = time.Second
	)
	srv := startServer(t, 0, nil)
	start := time.Now()
	ex, err := cluster.NewExecutor(cluster.WithURL(srv.ClientURL()), cluster.WithPool("nobody"),
		aplex.WithPoolSize(1), aplex.WithStartTimeout(timeout), aplex.WithKillGrace(3*time.Second))
	took := time.Since(start)
	if err == nil {
		ex.Close()
		t.Fatal("NewExecutor succeeded with no worker")
	}
	if !strings.Contains(err.Error(), "0 of 1 workers joined") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to say no worker joined before the start timeout", err)
	}
	t.Logf("WithStartTimeout(%v) failed after %v: %v", timeout, took.Round(time.Millisecond), err)
	if took < timeout || took > timeout+slack {
		t.Errorf("NewExecutor failed after %v, want between the start timeout %v and %v", took, timeout, timeout+slack)
	}
}

// retryLog is a slog handler that signals each connection retry a worker
// logs.
type retryLog struct {
	n    atomic.Int64
	wake chan struct{}
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *retryLog) WithGroup(string) slog.Handler            { return h }
func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		h.n.Add(1)
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// TestServeWaitsForNATS: a worker started before its NATS server (a
// docker-compose start-up) retries the connection, logging each retry,
// instead of exiting at once; once the server is up it joins and serves.
// Until then, cancelling its ctx ends it cleanly.
func TestServeWaitsForNATS(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + itoa(port)
	log := &retryLog{wake: make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(url), cluster.ServePool("early"), cluster.ServeWorkerID("early-1"),
			cluster.ServeHeartbeat(testHeartbeat), cluster.ServeLogger(slog.New(log)))
	}()
	// Two retries logged: it is waiting, not gone.
	for log.n.Load() < 2 {
		select {
		case <-log.wake:
		case err := <-served:
			t.Fatalf("Serve returned %v before NATS was up; want it to retry", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no connection retry logged")
		}
	}

	startServer(t, port, nil)
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("early"), aplex.WithPoolSize(1))
	f, err := aplex.Submit(context.Background(), ex, whoami, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := get(t, f); err != nil || worker(who) != "early-1" {
		t.Fatalf("whoami = %q, %v; want the worker that waited for NATS", who, err)
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a clean leave", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// TestServeGivesUpWhenCtxEnds: a worker still waiting for NATS returns
// ctx's error once its ctx ends, without a goroutine left behind.
func TestServeGivesUpWhenCtxEnds(t *testing.T) {
	log := &retryLog{wake: make(chan struct{}, 1)}
	url := "nats://127.0.0.1:" + itoa(freePort(t)) // nobody listens
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(url),
			cluster.ServeLogger(slog.New(log)))
	}()
	select {
	case <-log.wake:
	case err := <-served:
		t.Fatalf("Serve returned %v at once; want it to retry", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection retry logged")
	}
	stop()
	select {
	case err := <-served:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "connect to NATS") {
			t.Errorf("Serve = %v, want ctx's error naming the connection it waited for", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its ctx ended")
	}
}

// retryWatch forwards a worker process's output to the test log and
// signals each line that logs a connection retry.
type retryWatch struct {
	log   io.Writer
	retry chan struct{}
}

func (w *retryWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("retrying")) {
		select {
		case w.retry <- struct{}{}:
		default:
		}
	}
	return w.log.Write(p)
}

// TestEnvWorkerWaitsForNATS: a worker process of the environment role
// (APLEX_WORKER_ROLE=cluster), started before its NATS server, does not
// exit (a docker-compose start-up must not crash-loop): it logs its
// retries to stderr and joins once the server is up.
func TestEnvWorkerWaitsForNATS(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + itoa(port)
	out := &retryWatch{log: newTestLog(t), retry: make(chan struct{}, 1)}
	p := spawnWorkerTo(t, out, url, "early-env", "env-1")
	select {
	case <-out.retry:
	case <-p.done:
		t.Fatalf("the worker exited (%v) before NATS was up; want it to retry", p.cmd.ProcessState)
	case <-time.After(10 * time.Second):
		t.Fatal("the worker logged no connection retry")
	}
	startServer(t, port, nil)
	t.Cleanup(func() { // before the server stops: the worker says Bye through it
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.exited(5 * time.Second)
	})
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("early-env"), aplex.WithPoolSize(1))
	f, err := aplex.Submit(context.Background(), ex, whoami, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := get(t, f); err != nil || worker(who) != "env-1" {
		t.Fatalf("whoami = %q, %v; want the worker that waited for NATS", who, err)
	}
}

// infoKey carries WorkerInfo.ID from the worker init to the works.
type infoKey struct{}

// errInit is the registration of this binary's worker init, which every
// cluster worker it starts runs (and Serve in this process too).
var errInit = aplex.RegisterWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
	return context.WithValue(ctx, infoKey{}, w), nil
})

// workerIndex names the worker it ran on and the WorkerInfo.ID its
// worker init was given.
var workerIndex = aplex.Register("cluster.worker-index", func(ctx context.Context, _ int) (string, error) {
	w, ok := ctx.Value(infoKey{}).(aplex.WorkerInfo)
	if !ok {
		return "", errors.New("the worker init did not run")
	}
	return cluster.WorkerID(ctx) + "/" + itoa(w.ID), nil
})

// initSeen is what a work learns of its worker: the WorkerInfo its
// worker init was given, and the worker id works see.
type initSeen struct {
	ID       int
	WorkerID string
	Labels   map[string]string
	CtxID    string // cluster.WorkerID(ctx)
}

var workerInfo = aplex.Register("cluster.worker-info", func(ctx context.Context, _ int) (initSeen, error) {
	w, ok := ctx.Value(infoKey{}).(aplex.WorkerInfo)
	if !ok {
		return initSeen{}, errors.New("the worker init did not run")
	}
	return initSeen{ID: w.ID, WorkerID: w.WorkerID, Labels: w.Labels, CtxID: cluster.WorkerID(ctx)}, nil
})

// TestRegisteredWorkerInitOnEveryKind: RegisterWorkerInit ran for process
// and cluster workers only, so code switching to a thread executor lost
// its per-worker set-up. The one registered init now runs on every kind,
// with a WorkerInfo that means the same: ID the slot (a local cluster
// worker's index, -1 for a worker serving on its own), and for cluster
// workers their id and labels.
func TestRegisteredWorkerInitOnEveryKind(t *testing.T) {
	if errInit != nil {
		t.Fatal(errInit)
	}
	srv := startServer(t, 0, nil)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(srv.ClientURL()), cluster.ServePool("kinds"),
			cluster.ServeWorkerID("gpu-box"), cluster.ServeLabels(map[string]string{"gpu": "true"}),
			cluster.ServeHeartbeat(testHeartbeat))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		new  func() (*aplex.Executor, error)
		want func(initSeen) bool
	}{
		{"thread", func() (*aplex.Executor, error) { return aplex.NewThreadExecutor(aplex.WithPoolSize(1)) },
			func(s initSeen) bool { return s.ID == 0 && s.WorkerID == "" && s.Labels == nil }},
		{"process", func() (*aplex.Executor, error) {
			return aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithWorkerOutput(newTestLog(t)))
		}, func(s initSeen) bool { return s.ID == 0 && s.WorkerID == "" && s.Labels == nil }},
		{"cluster local", func() (*aplex.Executor, error) {
			return cluster.NewExecutor(cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
		}, func(s initSeen) bool {
			return s.ID == 0 && s.WorkerID == s.CtxID && strings.HasSuffix(s.WorkerID, "-0") && len(s.Labels) == 0
		}},
		{"cluster served", func() (*aplex.Executor, error) {
			return cluster.NewExecutor(cluster.WithURL(srv.ClientURL()), cluster.WithPool("kinds"), aplex.WithPoolSize(1))
		}, func(s initSeen) bool {
			return s.ID == -1 && s.WorkerID == "gpu-box" && s.CtxID == "gpu-box" && s.Labels["gpu"] == "true" && len(s.Labels) == 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := tc.new()
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ex.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			f, err := aplex.Submit(context.Background(), ex, workerInfo, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := get(t, f)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(got) {
				t.Errorf("the work's worker init saw %+v", got)
			}
		})
	}
}

// TestWorkerInfoID: WorkerInfo.ID was always 0 for cluster workers. Local
// workers (SpawnLocalWorkers) now get their index, 0 … n-1, and a worker
// started on its own (Serve) gets -1: it serves the whole pool.
func TestWorkerInfoID(t *testing.T) {
	if errInit != nil {
		t.Fatal(errInit)
	}
	ex := newExecutor(t, cluster.SpawnLocalWorkers(2), aplex.WithWorkerOutput(newTestLog(t)))
	seen := map[string]bool{}
	for i := 0; len(seen) < 2 && i < 200; i++ {
		// Two at once, so both workers take some.
		f1, err := aplex.Submit(context.Background(), ex, workerIndex, i)
		if err != nil {
			t.Fatal(err)
		}
		f2, err := aplex.Submit(context.Background(), ex, workerIndex, i)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*aplex.Future[string]{f1, f2} {
			got, err := get(t, f)
			if err != nil {
				t.Fatal(err)
			}
			// A local worker's id ends in its index: "<executor>-<i>".
			wid, id, _ := strings.Cut(got, "/")
			if !strings.HasSuffix(wid, "-"+id) || (id != "0" && id != "1") {
				t.Fatalf("local worker %s got WorkerInfo.ID %s, want its index", wid, id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 2 {
		t.Errorf("indexes seen: %v, want 0 and 1", seen)
	}

	srv := startServer(t, 0, nil)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(ctx, cluster.ServeURL(srv.ClientURL()), cluster.ServePool("info"),
			cluster.ServeWorkerID("alone"), cluster.ServeHeartbeat(testHeartbeat))
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ex2 := newExecutor(t, cluster.WithURL(srv.ClientURL()), cluster.WithPool("info"), aplex.WithPoolSize(1))
	f, err := aplex.Submit(context.Background(), ex2, workerIndex, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(t, f); got != "alone/-1" || err != nil {
		t.Errorf("Serve worker: %q, %v; want alone/-1", got, err)
	}
}
