package aplex_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"context"

	"github.com/aplex-go/aplex"
)

// pHold holds its worker until the file dir/release exists, then returns
// its pid; it says it started by creating dir/started-<n>.
var pHold = aplex.Register("test.hold", func(_ context.Context, a holdArg) (int, error) {
	if err := os.WriteFile(filepath.Join(a.Dir, "started-"+a.N), nil, 0o600); err != nil {
		return 0, err
	}
	for {
		if _, err := os.Stat(filepath.Join(a.Dir, "release")); err == nil {
			return os.Getpid(), nil
		}
		time.Sleep(time.Millisecond)
	}
})

type holdArg struct {
	Dir string
	N   string
}

// startedHolds counts the pHold works that started in dir.
func startedHolds(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "started-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func submitHolds(t *testing.T, ex *aplex.Executor, dir string, n int) []*aplex.Future[int] {
	t.Helper()
	var fs []*aplex.Future[int]
	for i := range n {
		fs = append(fs, mustSubmit(t, ex, pHold, holdArg{Dir: dir, N: string(rune('a' + i))}))
	}
	return fs
}

func release(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// exited reports whether process pid is gone.
func exited(pid int) bool {
	return errors.Is(kill(pid, 0), syscall.ESRCH)
}

// TestResizeProcessGrowsAndShrinksUnderLoad: new worker processes take
// queued works at once; retired ones finish theirs, exit, and leave
// Stats; no work fails and the capacity in force is never exceeded.
func TestResizeProcessGrowsAndShrinksUnderLoad(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	fs := submitHolds(t, ex, dir, 6)
	waitFor(t, "1 work running", func() bool { return startedHolds(t, dir) == 1 })

	if err := ex.Resize(ctx, 3); err != nil {
		t.Fatalf("Resize(3): %v", err)
	}
	waitFor(t, "3 works running after growing", func() bool { return startedHolds(t, dir) == 3 })
	s := ex.Stats()
	if s.Size != 3 || len(s.Workers) != 3 || s.Running != 3 {
		t.Fatalf("after Resize(3): Size %d, %d workers, %d running", s.Size, len(s.Workers), s.Running)
	}
	var retiredPIDs []int
	for _, w := range s.Workers[1:] {
		retiredPIDs = append(retiredPIDs, w.PID)
	}

	shrunk := make(chan error, 1)
	go func() { shrunk <- ex.Resize(ctx, 1) }()
	waitFor(t, "the shrink to take effect", func() bool { return ex.Stats().Size == 1 })
	if s := ex.Stats(); s.Running > 3 {
		t.Fatalf("%d works running with 3 workers of capacity 1", s.Running)
	}
	select {
	case err := <-shrunk:
		t.Fatalf("Resize(1) returned (%v) while retired workers held works", err)
	default:
	}
	release(t, dir)
	if err := <-shrunk; err != nil {
		t.Fatalf("Resize(1): %v", err)
	}
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatalf("a work failed: %v", err)
		}
	}
	s = ex.Stats()
	if s.Size != 1 || len(s.Workers) != 1 || s.Workers[0].ID != 0 || s.Completed != 6 {
		t.Fatalf("after Resize(1): Size %d, workers %+v, completed %d", s.Size, s.Workers, s.Completed)
	}
	for _, pid := range retiredPIDs {
		if !exited(pid) {
			t.Errorf("retired worker process %d still runs after Resize returned", pid)
		}
	}
}

// TestAutoscaleFollowsTheBacklog: a process pool with WithAutoscale grows
// to max under a backlog, and shrinks back to min once idle.
func TestAutoscaleFollowsTheBacklog(t *testing.T) {
	dir := t.TempDir()
	ex := newProcess(t, aplex.WithAutoscale(1, 3, 100*time.Millisecond), aplex.WithMaxWorksPerWorker(1))
	if s := ex.Stats(); s.Size != 1 || len(s.Workers) != 1 {
		t.Fatalf("autoscaled pool starts with Size %d, %d workers; want min 1", s.Size, len(s.Workers))
	}
	fs := submitHolds(t, ex, dir, 5)
	waitFor(t, "the pool to grow to max", func() bool { return startedHolds(t, dir) == 3 })
	// The autoscaler counts a scale-up once its Resize returned, a moment
	// after the new worker took a work.
	waitFor(t, "the scale-ups to be counted", func() bool { return ex.Stats().ScaleUps == 2 })
	if s := ex.Stats(); s.Size != 3 || s.ScaleUps != 2 {
		t.Fatalf("under a backlog: Size %d, ScaleUps %d; want 3 and 2", s.Size, s.ScaleUps)
	}
	release(t, dir)
	for _, f := range fs {
		if _, err := f.Get(ctxT(t)); err != nil {
			t.Fatalf("a work failed: %v", err)
		}
	}
	waitFor(t, "the idle pool to shrink to min", func() bool {
		s := ex.Stats()
		return s.Size == 1 && len(s.Workers) == 1
	})
	// As for the scale-ups: a scale-down is counted once its Resize
	// returned, a moment after the pool shows the smaller size.
	waitFor(t, "the scale-downs to be counted", func() bool { return ex.Stats().ScaleDowns == 2 })
	if s := ex.Stats(); s.ScaleDowns != 2 || s.Completed != 5 {
		t.Fatalf("idle: ScaleDowns %d, Completed %d; want 2 and 5", s.ScaleDowns, s.Completed)
	}
	if err := ex.Resize(ctxT(t), 2); err == nil {
		t.Fatal("Resize on an autoscaled pool: no error")
	}
}

// TestAutoscaleOptionValidation: bad bounds are clear errors, and the
// option does not combine with WithPoolSize or apply to thread executors.
func TestAutoscaleOptionValidation(t *testing.T) {
	for _, opts := range [][]aplex.Option{
		{aplex.WithAutoscale(0, 2, time.Second)},
		{aplex.WithAutoscale(3, 2, time.Second)},
		{aplex.WithAutoscale(1, 2, 0)},
		{aplex.WithAutoscale(1, 2, time.Second), aplex.WithPoolSize(2)},
	} {
		if ex, err := aplex.NewProcessExecutor(opts...); err == nil {
			ex.Close()
			t.Errorf("NewProcessExecutor accepted %d bad options", len(opts))
		}
	}
	if ex, err := aplex.NewThreadExecutor(aplex.WithAutoscale(1, 2, time.Second)); err == nil {
		ex.Close()
		t.Error("a thread executor accepted WithAutoscale")
	}
}

// TestResizeProcessRacingShutdown: Resize calls racing a graceful Shutdown
// on a process pool all return (nil or ErrClosed), every work ends, and no
// worker process is left.
func TestResizeProcessRacingShutdown(t *testing.T) {
	ctx := ctxT(t)
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(4))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*aplex.Future[int]
	for i := range 40 {
		fs = append(fs, mustSubmit(t, ex, pSleep, 1+i%5))
	}
	var pids []int
	for _, w := range ex.Stats().Workers {
		pids = append(pids, w.PID)
	}
	var wg sync.WaitGroup
	for n := range 4 {
		wg.Go(func() {
			if err := ex.Resize(ctx, 1+n%3); err != nil && !errors.Is(err, aplex.ErrClosed) {
				t.Errorf("Resize(%d): %v", 1+n%3, err)
			}
		})
	}
	if err := ex.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	for _, f := range fs {
		if _, err := f.Get(ctx); err != nil {
			t.Fatalf("a work failed: %v", err)
		}
	}
	for _, pid := range pids {
		if !exited(pid) {
			t.Errorf("worker process %d outlived Shutdown", pid)
		}
	}
}
