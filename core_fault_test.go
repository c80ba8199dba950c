package aplex_test

// Regression tests for the core's defects found by fault injection and bad
// input: each is named after the defect it pins.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/testutil"
)

// within runs fn and fails the test if it has not returned by the test's
// bound, instead of hanging the whole run.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-ctxT(t).Done():
		t.Fatalf("%s did not return", what)
	}
}

func TestGoexitInWorkFailsFutureAndFreesSlot(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	goexit := aplex.Fn(func(context.Context, int) (int, error) { runtime.Goexit(); return 0, nil })
	double := aplex.Fn(func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	f := mustSubmit(t, ex, goexit, 0)
	// Queued behind it: they must run once the slot is freed.
	var queued []*aplex.Future[int]
	for i := range 3 {
		queued = append(queued, mustSubmit(t, ex, double, i))
	}
	var err error
	within(t, "Get of a work that called Goexit", func() { _, err = f.Get(ctxT(t)) })
	if !errors.Is(err, aplex.ErrGoexit) || !strings.Contains(err.Error(), "Goexit") {
		t.Fatalf("Goexit work: err = %v, want ErrGoexit", err)
	}
	for i, q := range queued {
		if v := mustGet(t, q); v != 2*i {
			t.Fatalf("queued work %d = %d", i, v)
		}
	}
	// A slot is freed once its work has stopped, just after its future
	// ended: Running may still count the last work when Get returns.
	waitFor(t, "the last slot to be freed", func() bool { return ex.Stats().Running == 0 })
	if s := ex.Stats(); s.Failed != 1 || s.Completed != 3 {
		t.Fatalf("stats after Goexit: %+v", s)
	}
}

func TestGoexitInMapDoesNotHang(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2))
	w := aplex.Fn(func(_ context.Context, x int) (int, error) {
		if x == 3 {
			runtime.Goexit()
		}
		return x, nil
	})
	for _, size := range []int{1, 4} {
		var err error
		n := 0
		within(t, "Map over a work that calls Goexit", func() {
			for _, e := range aplex.Map(ctxT(t), ex, w, seq(10, nil), aplex.ChunkSize(size)) {
				if e != nil {
					err = e
					break
				}
				n++
			}
		})
		if !errors.Is(err, aplex.ErrGoexit) || n != 3 {
			t.Fatalf("ChunkSize(%d): %d results then %v; want 3 then ErrGoexit", size, n, err)
		}
	}
	waitFor(t, "slots to be freed", func() bool { return ex.Stats().Running == 0 })
}

func TestZeroValueExecutorReturnsErrors(t *testing.T) {
	var ex aplex.Executor
	w := aplex.Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	ctx := ctxT(t)
	if _, err := aplex.Submit(ctx, &ex, w, 1); err == nil {
		t.Error("Submit on a zero Executor: no error")
	}
	if _, err := aplex.TrySubmit(ctx, &ex, w, 1); err == nil {
		t.Error("TrySubmit on a zero Executor: no error")
	}
	for _, err := range aplex.Map(ctx, &ex, w, seq(3, nil)) {
		if err == nil {
			t.Error("Map on a zero Executor yielded a result")
		}
	}
	if err := ex.Close(); err == nil {
		t.Error("Close on a zero Executor: no error")
	}
	if err := ex.Shutdown(ctx); err == nil {
		t.Error("Shutdown on a zero Executor: no error")
	}
	if s := ex.Stats(); s.Running != 0 || len(s.Workers) != 0 {
		t.Errorf("Stats on a zero Executor: %+v", s)
	}
}

func TestShutdownBoundedBehindCancelledWorkThatIgnoresCtx(t *testing.T) {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithKillGrace(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	stubborn := aplex.Fn(func(ctx context.Context, _ int) (int, error) { close(started); <-release; return 0, nil })
	f := mustSubmit(t, ex, stubborn, 0)
	<-started
	if !f.Cancel() {
		t.Fatal("Cancel of a running work returned false")
	}
	within(t, "Shutdown behind a cancelled work that ignores its ctx", func() {
		err = ex.Shutdown(context.Background())
	})
	if err == nil || !strings.Contains(err.Error(), "ignore") || !strings.Contains(err.Error(), "TestShutdownBoundedBehindCancelledWorkThatIgnoresCtx") {
		t.Fatalf("Shutdown: %v; want an error naming the work that ignores its ctx", err)
	}
}

func TestDerivedContextInWorkCostsNoGoroutine(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	const n = 200
	w := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		before := runtime.NumGoroutine()
		var cancels []context.CancelFunc
		for range n {
			_, cancel := context.WithCancel(ctx)
			cancels = append(cancels, cancel)
		}
		after := runtime.NumGoroutine()
		for _, c := range cancels {
			c()
		}
		return after - before, nil
	})
	// With a caller ctx that can be cancelled, and with a Deadline.
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	for _, opts := range [][]aplex.CallOption{nil, {aplex.Deadline(time.Hour)}} {
		f, err := aplex.Submit(ctx, ex, w, 0, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if extra := mustGet(t, f); extra > n/4 {
			t.Fatalf("deriving %d contexts inside a work started %d goroutines", n, extra)
		}
	}
}

func TestDerivedContextInWorkIsCancelledWithTheWork(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	derived := make(chan context.Context, 1)
	w := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		child, cancel := context.WithCancel(context.WithValue(ctx, workerKey{}, 1))
		defer cancel()
		derived <- child
		<-child.Done()
		return 0, context.Cause(child)
	})
	f := mustSubmit(t, ex, w, 0)
	child := <-derived
	if child.Err() != nil {
		t.Fatalf("derived ctx ended early: %v", child.Err())
	}
	f.Cancel()
	<-child.Done()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("derived ctx: %v", child.Err())
	}
}

func TestNilContextIsAnErrorEverywhere(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	f := mustSubmit(t, ex, aplex.Fn(func(_ context.Context, x int) (int, error) { return x, nil }), 1)
	mustGet(t, f)
	//lint:ignore SA1012 nil ctx is the bad input under test
	if _, err := f.Get(nil); err == nil || !strings.Contains(err.Error(), "nil context") {
		t.Errorf("Get(nil): %v", err)
	}
	n := 0
	//lint:ignore SA1012 nil ctx is the bad input under test
	for g, err := range aplex.AsCompleted(nil, f) {
		n++
		if g != nil || err == nil || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("AsCompleted(nil): %v, %v", g, err)
		}
	}
	if n != 1 {
		t.Errorf("AsCompleted(nil) yielded %d times, want one error", n)
	}
}

func TestKilledWorkersDuringShutdownAreReplaced(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2))
	ctx := ctxT(t)
	var fs []*aplex.Future[int]
	for range 40 {
		fs = append(fs, mustSubmit(t, ex, pSleep, 20))
	}
	pids := map[int]bool{}
	for _, w := range ex.Stats().Workers {
		pids[w.PID] = true
	}
	shut := make(chan error, 1)
	go func() { shut <- ex.Shutdown(context.Background()) }()
	// Shutdown has begun once Submit is refused.
	for {
		f, err := aplex.Submit(ctx, ex, pDouble, 1)
		if errors.Is(err, aplex.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	for pid := range pids {
		if err := kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("graceful Shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not return after every worker was killed")
	}
	ok, broken := 0, 0
	for _, f := range fs {
		select {
		case <-f.Done():
		default:
			t.Fatal("a future is still pending after Shutdown returned")
		}
		switch _, err := f.Get(ctx); {
		case err == nil:
			ok++
		case errors.Is(err, aplex.ErrWorkerBroken):
			broken++
		default:
			t.Errorf("future: %v", err)
		}
	}
	// At most the 4 works running at the kill fail; the queued ones ran on
	// the replacements.
	if broken > 4 || ok+broken != len(fs) {
		t.Fatalf("%d ok, %d broken of %d", ok, broken, len(fs))
	}
	t.Logf("%d works: %d ran on replacements or before the kill, %d failed with their killed workers", len(fs), ok, broken)
}

var pStdSentinel = aplex.Register("test.fault.std-sentinel", func(_ context.Context, which string) (int, error) {
	switch which {
	case "eof":
		return 0, fmt.Errorf("reading: %w", io.EOF)
	case "notexist":
		_, err := os.Open("/nonexistent/aplex/file")
		return 0, err
	case "deadline":
		return 0, fmt.Errorf("slow: %w", context.DeadlineExceeded)
	}
	return 0, nil
})

func TestStandardSentinelsCrossProcesses(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	for _, tc := range []struct {
		which string
		want  error
	}{
		{"eof", io.EOF},
		{"notexist", os.ErrNotExist},
		{"deadline", context.DeadlineExceeded},
	} {
		_, err := mustSubmit(t, ex, pStdSentinel, tc.which).Get(ctxT(t))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v does not match %v across processes", tc.which, err, tc.want)
		}
	}
}

var pGoexit = aplex.Register("test.fault.goexit", func(context.Context, int) (int, error) {
	runtime.Goexit()
	return 0, nil
})

func TestGoexitMatchesErrGoexitOnProcessWorkers(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	_, err := mustSubmit(t, ex, pGoexit, 0).Get(ctxT(t))
	if !errors.Is(err, aplex.ErrGoexit) {
		t.Fatalf("Goexit in a process work: %v, want ErrGoexit", err)
	}
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 4)); v != 8 {
		t.Fatalf("after Goexit: %d", v)
	}
}

// TestWithLoggerLogsThreadWorksThatIgnoreCtx: WithLogger was silently
// ignored by thread executors. They now log the works that still run a
// kill grace after Shutdown cancelled them, which matters where the error
// is not seen: a deferred Close, or the cleanup that closes an executor
// dropped without Shutdown.
func TestWithLoggerLogsThreadWorksThatIgnoreCtx(t *testing.T) {
	var log testutil.Buffer
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithKillGrace(50*time.Millisecond),
		aplex.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	stubborn := aplex.Fn(func(ctx context.Context, _ int) (int, error) { close(started); <-release; return 0, nil })
	f := mustSubmit(t, ex, stubborn, 0)
	<-started
	if err := ex.Close(); err == nil {
		t.Error("Close behind a work that ignores its ctx: no error")
	}
	close(release)
	<-f.Done() // the work's goroutine ends before goleak looks
	if got := log.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "they ignore their ctx") ||
		!strings.Contains(got, "TestWithLoggerLogsThreadWorksThatIgnoreCtx") {
		t.Fatalf("log %q does not name the work that ignores its ctx", got)
	}
}

// TestFinishedTimedWorksDoNotKeepTheirExecutorReachable: a work with a
// deadline arms a timer (a remote work's kill timer; an in-process work's
// deadline timer, once it watches its ctx), and the timer's function held
// the work's task, which points to its executor. Stopping a timer leaves it
// in the runtime's timer heap until it would have fired, unless it
// happens to be first or last there, so an executor dropped after such a
// work stayed reachable for as long as the deadline (an hour here) and its
// cleanup never closed it: its worker processes lived on (the flaky
// TestProcessUnreachableExecutorIsReaped, whose ctx had a deadline).
func TestFinishedTimedWorksDoNotKeepTheirExecutorReachable(t *testing.T) {
	watching := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		select {
		case <-ctx.Done(): // arms the deadline's timer
			return 0, ctx.Err()
		default:
			return x, nil
		}
	})
	cases := []struct {
		name string
		run  func(ctx context.Context) (*aplex.Executor, error)
	}{
		{"process, ctx deadline", func(ctx context.Context) (*aplex.Executor, error) {
			ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
			if err == nil {
				err = submitAndGet(ctx, ex, pDouble)
			}
			return ex, err
		}},
		{"process, Deadline option", func(ctx context.Context) (*aplex.Executor, error) {
			ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
			if err == nil {
				err = submitAndGet(context.Background(), ex, pDouble, aplex.Deadline(time.Hour))
			}
			return ex, err
		}},
		{"thread, Deadline option", func(ctx context.Context) (*aplex.Executor, error) {
			ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1))
			if err == nil {
				err = submitAndGet(context.Background(), ex, watching, aplex.Deadline(time.Hour))
			}
			return ex, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			// Timers due before and after theirs, so that a stopped one is
			// neither first nor last in its heap, where the runtime would
			// drop it at once.
			for range 64 {
				defer time.AfterFunc(time.Minute, func() {}).Stop()
			}
			const rounds = 16
			collected := make(chan struct{}, rounds)
			var pids []int
			for range rounds {
				ex, err := tc.run(ctx)
				if err != nil {
					if ex != nil {
						ex.Close()
					}
					t.Fatal(err)
				}
				for _, w := range ex.Stats().Workers {
					if w.PID != 0 {
						pids = append(pids, w.PID)
					}
				}
				runtime.AddCleanup(ex, func(ch chan struct{}) { ch <- struct{}{} }, collected)
			}
			n := 0
			waitFor(t, "the dropped executors to be collected", func() bool {
				runtime.GC()
				for ; len(collected) > 0; n++ {
					<-collected
				}
				return n == rounds
			})
			// Their own cleanups close them: the processes exit.
			waitFor(t, "the dropped executors' workers to exit", func() bool { return !slices.ContainsFunc(pids, isChild) })
		})
	}
}

// submitAndGet runs w(1) on ex and checks its result.
func submitAndGet(ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], opts ...aplex.CallOption) error {
	f, err := aplex.Submit(ctx, ex, w, 1, opts...)
	if err != nil {
		return err
	}
	v, err := f.Get(ctx)
	if err == nil && v != 1 && v != 2 {
		err = fmt.Errorf("result %d", v)
	}
	return err
}
