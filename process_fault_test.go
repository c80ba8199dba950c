package aplex_test

// Regression tests for the process-worker defects found by fault injection
// (issue 8): cyclic values, a worker that closes its request pipe, a hard
// RecycleAfter bound, frozen workers, sentinels carried by panics, and
// shutdown of -race children.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// TestShutdownUnderRaceReportsNoErrorWhenAllFinished: a -race worker binary
// sleeps 1s at exit by default; a graceful Shutdown whose works all
// finished must not report the kill grace running out. With the user's own
// GORACE asking for the sleep, the workers that said goodbye are killed
// at the grace, and that is no error either.
func TestShutdownUnderRaceReportsNoErrorWhenAllFinished(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"aplex's GORACE", nil},
		{"user's GORACE", []string{"GORACE=atexit_sleep_ms=1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []aplex.Option{aplex.WithPoolSize(2), aplex.WithKillGrace(200 * time.Millisecond)}
			if tc.env != nil {
				opts = append(opts, aplex.WithWorkerEnv(tc.env...))
			}
			ex, err := aplex.NewProcessExecutor(opts...)
			if err != nil {
				t.Fatal(err)
			}
			var fs []*aplex.Future[int]
			for i := range 6 {
				fs = append(fs, mustSubmit(t, ex, pDouble, i))
			}
			for i, f := range fs {
				if v := mustGet(t, f); v != 2*i {
					t.Fatalf("double(%d) = %d", i, v)
				}
			}
			start := time.Now()
			if err := ex.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown after every work finished: %v (after %v)", err, time.Since(start))
			}
		})
	}
}

// pPanicSentinel panics with an error wrapping a registered sentinel.
var pPanicSentinel = aplex.Register("test.panic-sentinel", func(_ context.Context, n int) (int, error) {
	panic(fmt.Errorf("order %d: %w", n, ErrOutOfStock))
})

// TestPanicWithSentinelKeepsErrorsIs: panic(fmt.Errorf("…%w", sentinel))
// matches the sentinel like the same error returned, on every kind.
func TestPanicWithSentinelKeepsErrorsIs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ex     func(t *testing.T) *aplex.Executor
		remote bool
	}{
		{"thread", func(t *testing.T) *aplex.Executor { return newThread(t) }, false},
		{"process", func(t *testing.T) *aplex.Executor { return newProcess(t, aplex.WithPoolSize(1)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := tc.ex(t)
			_, err := mustSubmit(t, ex, pPanicSentinel, 7).Get(ctxT(t))
			var pe *aplex.PanicError
			if !errors.As(err, &pe) || pe.Remote != tc.remote {
				t.Fatalf("want a *PanicError (remote %v), got %#v", tc.remote, err)
			}
			if !errors.Is(err, ErrOutOfStock) {
				t.Fatalf("errors.Is(%v, ErrOutOfStock) = false", err)
			}
			if errors.Is(err, aplex.ErrWorkerBroken) || errors.Is(err, context.Canceled) {
				t.Fatalf("%v matches an unrelated sentinel", err)
			}
			if !strings.Contains(err.Error(), "order 7: out of stock") {
				t.Fatalf("message: %v", err)
			}
			// A plain panic still matches nothing.
			_, err = mustSubmit(t, ex, pFail, "panic").Get(ctxT(t))
			if !errors.As(err, &pe) || errors.Is(err, ErrOutOfStock) {
				t.Fatalf("plain panic: %#v", err)
			}
		})
	}
}

// cyclic is a user type that can refer to itself.
type cyclic struct {
	Name string
	Next *cyclic
}

// pCyclic returns a value that refers to itself.
var pCyclic = aplex.Register("test.cyclic", func(_ context.Context, name string) (*cyclic, error) {
	c := &cyclic{Name: name}
	c.Next = c
	return c, nil
})

var (
	pCyclicEcho = aplex.Register("test.cyclic-echo", func(_ context.Context, c *cyclic) (string, error) { return c.Name, nil })
	pAnyMap     = aplex.Register("test.any-map", func(_ context.Context, m map[string]any) (int, error) { return len(m), nil })
)

// TestCyclicArgumentFailsSubmitWithErrEncoding: a cyclic argument killed
// the caller with a fatal stack overflow in the CBOR encoder, and a cyclic
// result the worker. Both are ErrEncoding naming the type, and the pool
// still serves.
func TestCyclicArgumentFailsSubmitWithErrEncoding(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	arg := &cyclic{Name: "loop"}
	arg.Next = arg
	if _, err := aplex.Submit(ctxT(t), ex, pCyclicEcho, arg); !errors.Is(err, aplex.ErrEncoding) || !strings.Contains(err.Error(), "aplex_test.cyclic") {
		t.Fatalf("Submit of a cyclic argument: %v", err)
	}
	self := map[string]any{}
	self["self"] = self
	if _, err := aplex.Submit(ctxT(t), ex, pAnyMap, self); !errors.Is(err, aplex.ErrEncoding) || !strings.Contains(err.Error(), "map[string]interface {}") {
		t.Fatalf("Submit of a map containing itself: %v", err)
	}
	pid := ex.Stats().Workers[0].PID
	if _, err := mustSubmit(t, ex, pCyclic, "r").Get(ctxT(t)); !errors.Is(err, aplex.ErrEncoding) || !strings.Contains(err.Error(), "aplex_test.cyclic") {
		t.Fatalf("cyclic result: %v", err)
	}
	if got := mustGet(t, mustSubmit(t, ex, pPid, 0)); got != pid {
		t.Fatalf("the worker was replaced (pid %d, now %d): the cyclic result crashed it", pid, got)
	}
	if got := mustGet(t, mustSubmit(t, ex, pCyclicEcho, &cyclic{Name: "fine"})); got != "fine" {
		t.Fatalf("echo: %q", got)
	}
}

// TestRecycleAfterIsAHardBound: under a burst, a process ran 50–55 works
// with WithRecycleAfter(10). No process may run more than n.
func TestRecycleAfterIsAHardBound(t *testing.T) {
	const n, works = 10, 200
	ex := newProcess(t, aplex.WithPoolSize(2), aplex.WithRecycleAfter(n))
	fs := make([]*aplex.Future[int], works)
	for i := range fs {
		fs[i] = mustSubmit(t, ex, pPid, i)
	}
	perPid := map[int]int{}
	for _, f := range fs {
		perPid[mustGet(t, f)]++
	}
	for pid, ran := range perPid {
		if ran > n {
			t.Errorf("process %d ran %d works with WithRecycleAfter(%d)", pid, ran, n)
		}
	}
	if len(perPid) < works/n {
		t.Errorf("%d works ran in %d processes, want at least %d", works, len(perPid), works/n)
	}
}

// pCloseRequests closes the worker's request pipe (fd 3) behind its back.
var pCloseRequests = aplex.Register("test.close-fd3", func(context.Context, int) (int, error) {
	if err := syscall.Close(3); err != nil {
		return 0, err
	}
	return os.Getpid(), nil
})

// TestWorkerThatClosedItsRequestPipeIsReplaced: a work that closed fd 3
// turned its worker into a black hole: the parent's writes failed, later
// jobs were dropped silently and the worker was never reported lost. It
// must be killed and replaced, its works failing with *WorkerError.
func TestWorkerThatClosedItsRequestPipeIsReplaced(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithWorkerOutput(io.Discard))
	holed := mustGet(t, mustSubmit(t, ex, pCloseRequests, 0))
	// The odd ones may be retried: they must run on the replacement.
	fs := make([]*aplex.Future[int], 10)
	for i := range fs {
		var opts []aplex.CallOption
		if i%2 == 1 {
			opts = append(opts, aplex.Retry(1))
		}
		fs[i] = mustSubmit(t, ex, pPid, i, opts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := 0
	for i, f := range fs {
		pid, err := f.Get(ctx)
		var we *aplex.WorkerError
		switch {
		case err == nil && pid != holed:
		case i%2 == 0 && errors.As(err, &we) && we.PID == holed:
			// Either side may notice first: the parent's write fails
			// ("request pipe"), or the child's own read of fd 3 does and it
			// exits (status 2). Both end the black hole.
			if !strings.Contains(we.Reason, "request pipe") && !strings.Contains(we.Reason, "exit status") {
				t.Errorf("reason %q says neither that the pipe broke nor that the worker exited", we.Reason)
			}
			failed++
		default:
			t.Fatalf("future %d: pid %d (black hole %d), err %v", i, pid, holed, err)
		}
	}
	if got := mustGet(t, mustSubmit(t, ex, pPid, 0)); got == holed {
		t.Fatalf("the black-holed worker %d still serves", holed)
	}
	t.Logf("%d of %d futures failed with *WorkerError, the rest ran on the replacement", failed, len(fs))
}

// pSpin keeps a CPU busy for ms milliseconds, ignoring its ctx.
var pSpin = aplex.Register("test.spin", func(_ context.Context, ms int) (int, error) {
	n := 0
	for end := time.Now().Add(time.Duration(ms) * time.Millisecond); time.Now().Before(end); {
		n++
	}
	return ms, nil
})

// pLockedPid returns its worker's pid once it holds the lock on a file.
var pLockedPid = aplex.Register("test.locked-pid", func(_ context.Context, path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := flock(int(f.Fd()), lockEX); err != nil {
		return 0, err
	}
	return os.Getpid(), nil
})

// lockFile returns a file the test holds an exclusive lock on.
func lockFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := flock(int(f.Fd()), lockEX); err != nil {
		t.Fatal(err)
	}
	return f
}

// freeze stops a worker process (SIGSTOP); the executor's kill (or its
// Close) ends it.
func freeze(t *testing.T, pid int) {
	t.Helper()
	if err := kill(pid, sigSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
}

// TestFrozenProcessWorkerIsReplaced: a stopped worker kept its works
// forever, and Shutdown overran. A worker silent past the heartbeat timeout
// is killed and replaced, its works fail with a *WorkerError naming the
// heartbeat, and Shutdown returns promptly.
func TestFrozenProcessWorkerIsReplaced(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithHeartbeatTimeout(timeout), aplex.WithWorkerOutput(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	frozen := mustGet(t, mustSubmit(t, ex, pPid, 0))
	held := []*aplex.Future[int]{mustSubmit(t, ex, pSleep, 60_000), mustSubmit(t, ex, pSleep, 60_000)}
	// The retried work cannot end before the frozen worker is gone: it
	// waits for a lock the test holds until then.
	lock := lockFile(t)
	retried := mustSubmit(t, ex, pLockedPid, lock.Name(), aplex.Retry(1))
	freeze(t, frozen)
	for i, f := range held {
		_, err := f.Get(ctx)
		var we *aplex.WorkerError
		if !errors.As(err, &we) || we.PID != frozen || !strings.Contains(we.Reason, "no heartbeat for 300ms") {
			t.Fatalf("held work %d of the frozen worker: %v", i, err)
		}
	}
	if err := flock(int(lock.Fd()), lockUN); err != nil {
		t.Fatal(err)
	}
	if pid, err := retried.Get(ctx); err != nil || pid == frozen {
		t.Fatalf("retried work: pid %d (frozen %d), %v", pid, frozen, err)
	}
	// The replacement serves; freeze it too while it holds a work, and
	// Shutdown(Background) must still return, within the heartbeat timeout
	// and the kill grace, not never.
	second := mustGet(t, mustSubmit(t, ex, pPid, 2))
	if second == frozen {
		t.Fatal("the frozen worker still serves")
	}
	last := mustSubmit(t, ex, pSleep, 60_000)
	freeze(t, second)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- ex.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		took := time.Since(start)
		if took > 5*time.Second {
			t.Fatalf("Shutdown took %v with a frozen worker (%v)", took, err)
		}
		t.Logf("Shutdown with a frozen worker returned %v after %v", err, took)
	case <-ctx.Done():
		t.Fatal("Shutdown did not return with a frozen worker")
	}
	if _, err := last.Get(ctx); !errors.Is(err, aplex.ErrWorkerBroken) {
		t.Fatalf("the frozen worker's work during Shutdown: %v", err)
	}
}

// TestBusyProcessWorkerStillBeats: a worker whose works keep every CPU busy
// is alive and must not be taken for frozen.
func TestBusyProcessWorkerStillBeats(t *testing.T) {
	// Every CPU spins for four heartbeat timeouts.
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithHeartbeatTimeout(250*time.Millisecond))
	fs := make([]*aplex.Future[int], 2*runtime.NumCPU())
	for i := range fs {
		fs[i] = mustSubmit(t, ex, pSpin, 1000)
	}
	for _, f := range fs {
		if v := mustGet(t, f); v != 1000 {
			t.Fatalf("spin: %d", v)
		}
	}
}
