package aplex_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/obstest"
	"github.com/aplex-go/aplex/internal/testutil"
	"go.uber.org/goleak"
)

// Works that run in the worker processes. They are registered at package
// level, so the re-executed test binary registers them too.
var (
	ErrOutOfStock = aplex.RegisterError(errors.New("out of stock"))

	pDouble = aplex.Register("test.double", func(_ context.Context, x int) (int, error) { return 2 * x, nil })
	pPid    = aplex.Register("test.pid", func(context.Context, int) (int, error) { return os.Getpid(), nil })
	pFail   = aplex.Register("test.fail", func(_ context.Context, kind string) (int, error) {
		switch kind {
		case "sentinel":
			return 0, fmt.Errorf("order 7: %w", ErrOutOfStock)
		case "path":
			_, err := os.Open("/nonexistent/aplex")
			return 0, err
		case "panic":
			panic("kaboom")
		}
		return 0, errors.New("plain")
	})
	// pWait says it started by writing marker+".started", waits for its
	// ctx, then proves it saw the cancel by writing marker.
	pWait = aplex.Register("test.wait", func(ctx context.Context, marker string) (int, error) {
		os.WriteFile(marker+".started", nil, 0o600)
		<-ctx.Done()
		os.WriteFile(marker, []byte(ctx.Err().Error()), 0o600)
		return 0, ctx.Err()
	})
	pSleep = aplex.Register("test.sleep", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})
	// pStubborn says it started by writing marker, then ignores its ctx.
	pStubborn = aplex.Register("test.stubborn", func(_ context.Context, marker string) (int, error) {
		os.WriteFile(marker, nil, 0o600)
		select {}
	})
	// pHang says it started by writing marker, then runs until killed.
	pHang = aplex.Register("test.hang", func(_ context.Context, marker string) (int, error) {
		os.WriteFile(marker, nil, 0o600)
		time.Sleep(time.Minute)
		return 0, nil
	})
	// pOnce is killed in its first attempt and succeeds in the next: the
	// first attempt creates marker and hangs until the test kills its
	// process; a later one finds marker and returns its own pid.
	pOnce = aplex.Register("test.once", func(_ context.Context, marker string) (int, error) {
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return os.Getpid(), nil // a retry
		}
		fmt.Fprint(f, os.Getpid())
		f.Close()
		time.Sleep(time.Minute)
		return 0, errors.New("the first attempt was not killed")
	})
	pCrash = aplex.Register("test.crash", func(_ context.Context, how string) (int, error) {
		switch how {
		case "exit":
			os.Exit(3)
		case "kill":
			kill(os.Getpid(), syscall.SIGKILL)
		case "segv":
			kill(os.Getpid(), syscall.SIGSEGV)
		}
		time.Sleep(time.Minute)
		return 0, nil
	})
	pBloat = aplex.Register("test.bloat", func(_ context.Context, mib int) (int, error) {
		b := make([]byte, mib<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(10 * time.Second)
		return len(b), nil
	})
	pPrint = aplex.Register("test.print", func(_ context.Context, n int) (int, error) {
		for i := range n {
			fmt.Printf("line %d \x00\x00\x00\x10 not a frame\n", i)
		}
		fmt.Fprintln(os.Stderr, "to stderr")
		return n, nil
	})
	pBig = aplex.Register("test.big", func(_ context.Context, n int) (string, error) { return strings.Repeat("x", n), nil })
	pLen = aplex.Register("test.len", func(_ context.Context, s string) (int, error) { return len(s), nil })
)

// parentOnly is registered in the test process only, so workers do not know it.
var parentOnly = func() *aplex.Work[int, int] {
	if os.Getenv("APLEX_WORKER_ROLE") != "" {
		return nil
	}
	return aplex.Register("test.parent-only", func(context.Context, int) (int, error) { return 1, nil })
}()

// waitForFile waits until a work has created path: the handshake by which
// a work in another process says it has started.
func waitForFile(t *testing.T, path string) {
	t.Helper()
	waitFor(t, path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

func newProcess(t *testing.T, opts ...aplex.Option) *aplex.Executor {
	t.Helper()
	ex, err := aplex.NewProcessExecutor(opts...)
	if err != nil {
		t.Fatalf("NewProcessExecutor: %v", err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func TestProcessResultsAndErrors(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(2))
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 21)); v != 42 {
		t.Fatalf("double: %d", v)
	}
	ctx := ctxT(t)
	_, err := mustSubmit(t, ex, pFail, "sentinel").Get(ctx)
	var re *aplex.RemoteError
	if !errors.Is(err, ErrOutOfStock) || !errors.As(err, &re) || err.Error() != "order 7: out of stock" || re.Type != "*fmt.wrapError" {
		t.Fatalf("sentinel across processes: %v (%#v)", err, re)
	}
	_, err = mustSubmit(t, ex, pFail, "path").Get(ctx)
	if !errors.As(err, &re) || re.Type != "*fs.PathError" || !strings.Contains(err.Error(), "/nonexistent/aplex") {
		t.Fatalf("path error: %v (%#v)", err, re)
	}
	_, err = mustSubmit(t, ex, pFail, "panic").Get(ctx)
	var pe *aplex.PanicError
	if !errors.As(err, &pe) || !pe.Remote || pe.Value != "kaboom" || !strings.Contains(pe.Stack, "process_test.go") {
		t.Fatalf("panic: %#v", err)
	}
	// Workers survived all of it.
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 1)); v != 2 {
		t.Fatal("pool broken after errors")
	}
}

func TestProcessOnlyRegisteredWorks(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	if _, err := aplex.Submit(ctxT(t), ex, double, 1); !errors.Is(err, aplex.ErrNotRegistered) {
		t.Fatalf("Fn work on a process executor: %v", err)
	}
	_, err := mustSubmit(t, ex, parentOnly, 1).Get(ctxT(t))
	if !errors.Is(err, aplex.ErrNotRegistered) || !strings.Contains(err.Error(), "test.parent-only") {
		t.Fatalf("name unknown to the worker: %v", err)
	}
}

func TestProcessCancelReachesTheChild(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	marker := filepath.Join(t.TempDir(), "cancelled")
	f := mustSubmit(t, ex, pWait, marker)
	waitForFile(t, marker+".started")
	if !f.Cancel() {
		t.Fatal("Cancel returned false")
	}
	if _, err := f.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	waitFor(t, "the child to see its ctx cancelled", func() bool {
		b, _ := os.ReadFile(marker)
		return string(b) == "context canceled"
	})
	waitFor(t, "the slot freed", func() bool { return ex.Stats().Running == 0 })
}

func TestProcessDeadline(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	marker := filepath.Join(t.TempDir(), "deadline")
	_, err := mustSubmit(t, ex, pWait, marker, aplex.Deadline(50*time.Millisecond)).Get(ctxT(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v", err)
	}
}

func TestProcessKillAfterGrace(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithKillGrace(100*time.Millisecond))
	pid := ex.Stats().Workers[0].PID
	started := filepath.Join(t.TempDir(), "started")
	f := mustSubmit(t, ex, pStubborn, started)
	waitForFile(t, started)
	if !f.Cancel() {
		t.Fatal("Cancel returned false")
	}
	if _, err := f.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	waitFor(t, "the stubborn worker to be replaced", func() bool {
		w := ex.Stats().Workers[0]
		return w.PID != pid && w.PID != 0 && w.Workload == 0
	})
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 4)); v != 8 {
		t.Fatal("pool did not recover")
	}
	if st := ex.Stats(); st.Restarts < 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestProcessCrashCostsOneWorker(t *testing.T) {
	for _, how := range []string{"exit", "kill", "segv", "external-kill"} {
		t.Run(how, func(t *testing.T) {
			ex := newProcess(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(4), aplex.WithWorkerOutput(&bytes.Buffer{}))
			pids := map[int]int{}
			for _, w := range ex.Stats().Workers {
				pids[w.ID] = w.PID
			}
			// Meta + Affinity would do too; RoundRobin alternates: 0, 1, 0, 1.
			survivor := mustSubmit(t, ex, pSleep, 300) // worker 0
			var victim *aplex.Future[int]
			if how == "external-kill" {
				started := filepath.Join(t.TempDir(), "started")
				victim = mustSubmit(t, ex, pHang, started) // worker 1
				waitForFile(t, started)
				if err := kill(pids[1], syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			} else {
				victim = mustSubmit(t, ex, pCrash, how) // worker 1
			}
			_, err := victim.Get(ctxT(t))
			var we *aplex.WorkerError
			if !errors.As(err, &we) || !errors.Is(err, aplex.ErrWorkerBroken) || we.PID != pids[1] {
				t.Fatalf("crashed work: %v", err)
			}
			want := map[string]string{"exit": "exit status 3", "kill": "signal: killed", "segv": "exit status 2", "external-kill": "signal: killed"}[how]
			if !strings.Contains(we.Reason, want) {
				t.Fatalf("reason %q, want it to say %q", we.Reason, want)
			}
			if v, err := survivor.Get(ctxT(t)); v != 300 || err != nil {
				t.Fatalf("work on the other worker: %v, %v", v, err)
			}
			waitFor(t, "the pool back to full size", func() bool {
				ws := ex.Stats().Workers
				return len(ws) == 2 && ws[1].PID != 0 && ws[1].PID != pids[1]
			})
			var fs []*aplex.Future[int]
			for i := range 8 {
				fs = append(fs, mustSubmit(t, ex, pDouble, i))
			}
			for i, f := range fs {
				if v := mustGet(t, f); v != 2*i {
					t.Fatalf("after recovery: %d", v)
				}
			}
		})
	}
}

// TestProcessRetryAfterCrash kills a worker while a Retry work runs in it:
// the work runs again in the replacement and succeeds there, while a work
// without Retry that was in the same worker fails.
func TestProcessRetryAfterCrash(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithWorkerOutput(&bytes.Buffer{}))
	dir := t.TempDir()
	marker, hung := filepath.Join(dir, "first-attempt"), filepath.Join(dir, "hung")
	f := mustSubmit(t, ex, pOnce, marker, aplex.Retry(2))
	crash := mustSubmit(t, ex, pHang, hung)
	// Both run in the one worker; its pid is in the marker, once written:
	// the work creates the file first, so on a loaded machine the test can
	// see it empty.
	var pid int
	waitFor(t, "the first attempt's pid in "+marker, func() bool {
		b, err := os.ReadFile(marker)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	waitForFile(t, hung)
	if pid != ex.Stats().Workers[0].PID {
		t.Fatalf("first attempt in pid %d; the worker is %d", pid, ex.Stats().Workers[0].PID)
	}
	if err := kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The retried work runs again in the replacement; the other fails.
	if got := mustGet(t, f); got == pid || got == 0 {
		t.Fatalf("the retry ran in pid %d; the killed worker was %d", got, pid)
	}
	if _, err := crash.Get(ctxT(t)); !errors.Is(err, aplex.ErrWorkerBroken) {
		t.Fatalf("unretried work: %v", err)
	}
}

func TestProcessRecycle(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithRecycleAfter(3))
	seen := map[int]int{}
	for i := range 9 {
		seen[mustGet(t, mustSubmit(t, ex, pPid, i))]++
	}
	if len(seen) < 3 {
		t.Fatalf("9 works with RecycleAfter(3) ran in %d processes: %v", len(seen), seen)
	}
	for pid, n := range seen {
		if n > 3 {
			t.Fatalf("process %d ran %d works", pid, n)
		}
	}
}

func TestProcessMemoryLimit(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithWorkerMemoryLimit(64<<20))
	_, err := mustSubmit(t, ex, pBloat, 256).Get(ctxT(t))
	var we *aplex.WorkerError
	if !errors.As(err, &we) || !strings.Contains(we.Reason, "memory") {
		t.Fatalf("bloated work: %v", err)
	}
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 5)); v != 10 {
		t.Fatal("pool did not recover")
	}
}

func TestProcessStdoutDoesNotCorruptTheProtocol(t *testing.T) {
	var out testutil.Buffer
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithWorkerOutput(&out))
	if v := mustGet(t, mustSubmit(t, ex, pPrint, 500)); v != 500 {
		t.Fatalf("print work returned %d", v)
	}
	if v := mustGet(t, mustSubmit(t, ex, pDouble, 3)); v != 6 {
		t.Fatal("protocol corrupted")
	}
	if err := ex.Shutdown(ctxT(t)); err != nil { // flushes the output
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "] line 499 ") || !strings.Contains(text, "] to stderr") || !strings.Contains(text, "[aplex worker 0 pid ") {
		t.Fatalf("worker output not forwarded with labels:\n%.300s", text)
	}
}

func TestProcessMapChunks(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(2))
	i := 0
	for v, err := range aplex.Map(ctxT(t), ex, pDouble, seq(1000, nil), aplex.ChunkSize(25)) {
		if err != nil || v != 2*i {
			t.Fatalf("item %d: %d, %v", i, v, err)
		}
		i++
	}
	if i != 1000 {
		t.Fatalf("%d results", i)
	}
	for _, w := range ex.Stats().Workers {
		if w.Completed == 0 {
			t.Fatalf("worker %d got no chunk: %+v", w.ID, ex.Stats())
		}
	}
}

func TestProcessOversize(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(1))
	huge := strings.Repeat("y", 17<<20)
	if _, err := aplex.Submit(ctxT(t), ex, pLen, huge); !errors.Is(err, aplex.ErrTooLarge) {
		t.Fatalf("oversize argument: %v", err)
	}
	if _, err := mustSubmit(t, ex, pBig, 17<<20).Get(ctxT(t)); !errors.Is(err, aplex.ErrTooLarge) {
		t.Fatalf("oversize result: %v", err)
	}
	if v := mustGet(t, mustSubmit(t, ex, pLen, "abc")); v != 3 {
		t.Fatal("pool not intact")
	}
}

func TestProcessShutdownLeavesNothing(t *testing.T) {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	f := mustSubmit(t, ex, pSleep, 20)
	var pids []int
	for _, w := range ex.Stats().Workers {
		pids = append(pids, w.PID)
	}
	if err := ex.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if v := mustGet(t, f); v != 20 {
		t.Fatal("drain lost a work")
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Fatalf("worker process %d still exists after Shutdown", pid)
		}
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestProcessBinaryWithoutMain(t *testing.T) {
	cases := []struct {
		name string
		opts []aplex.Option
	}{
		{"exits at once", []aplex.Option{aplex.WithWorkerCommand("/bin/true")}},
		{"never answers", []aplex.Option{aplex.WithWorkerCommand("/bin/sh", "-c", "sleep 30"), aplex.WithStartTimeout(300 * time.Millisecond)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			ex, err := aplex.NewProcessExecutor(append(c.opts, aplex.WithPoolSize(1))...)
			if err == nil {
				ex.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "aplex.Main") {
				t.Fatalf("error does not point at aplex.Main: %v", err)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

// A worker that can no longer start makes Submit fail clearly.
func TestProcessRestartFailuresMakeSubmitFail(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "may-start")
	os.WriteFile(flag, nil, 0o600)
	self, _ := os.Executable()
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithWorkerOutput(&bytes.Buffer{}),
		aplex.WithWorkerCommand("/bin/sh", "-c", `[ -f "$0" ] && exec "$1"`, flag, self))
	pid := ex.Stats().Workers[0].PID
	os.Remove(flag)
	kill(pid, syscall.SIGKILL)
	waitFor(t, "Submit to fail", func() bool {
		_, err := aplex.Submit(ctxT(t), ex, pDouble, 1)
		return errors.Is(err, aplex.ErrWorkerBroken)
	})
	// And it recovers once workers can start again.
	os.WriteFile(flag, nil, 0o600)
	waitFor(t, "recovery", func() bool {
		f, err := aplex.Submit(ctxT(t), ex, pDouble, 1)
		return err == nil && mustGet(t, f) == 2
	})
}

// An executor dropped without Shutdown is reaped by a runtime cleanup: its
// worker processes do not outlive it.
func TestProcessUnreachableExecutorIsReaped(t *testing.T) {
	pids := func() []int {
		ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2))
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, mustSubmit(t, ex, pDouble, 1))
		var out []int
		for _, w := range ex.Stats().Workers {
			out = append(out, w.PID)
		}
		return out
	}()
	waitFor(t, "the dropped executor's workers to exit", func() bool {
		runtime.GC()
		for _, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				return false
			}
		}
		return true
	})
}

// The binary's worker init (errInitRegistered, initKey) is in
// example_process_test.go, where ExampleRegisterWorkerInit shows it.

var pInitValue = aplex.Register("test.init-value", func(ctx context.Context, _ int) (string, error) {
	v, _ := ctx.Value(initKey{}).(string)
	return v, nil
})

func TestProcessWorkerInit(t *testing.T) {
	if errInitRegistered != nil {
		t.Fatal(errInitRegistered)
	}
	ex := newProcess(t, aplex.WithPoolSize(2))
	want := map[string]bool{}
	for _, w := range ex.Stats().Workers {
		want[fmt.Sprintf("slot %d pid %d", w.ID, w.PID)] = true
	}
	seen := map[string]bool{}
	for i := range 4 {
		v := mustGet(t, mustSubmit(t, ex, pInitValue, i))
		if !want[v] {
			t.Fatalf("a work saw %q from its worker init; the workers are %v", v, want)
		}
		seen[v] = true
	}
	if len(seen) != 2 {
		t.Fatalf("works saw %v: want both workers' init values", seen)
	}
	if err := aplex.RegisterWorkerInit(nil); err == nil {
		t.Fatal("RegisterWorkerInit(nil) accepted")
	}
	if err := aplex.RegisterWorkerInit(func(ctx context.Context, _ aplex.WorkerInfo) (context.Context, error) { return ctx, nil }); err == nil {
		t.Fatal("a second RegisterWorkerInit accepted")
	}
}

func TestProcessWorkerInitFailure(t *testing.T) {
	var out testutil.Buffer
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithWorkerOutput(&out),
		aplex.WithWorkerEnv("APLEX_TEST_INIT_FAIL=1"))
	if err == nil {
		ex.Close()
		t.Fatal("NewProcessExecutor started workers whose init fails")
	}
	if !strings.Contains(out.String(), "worker init failed for worker 0: no database") {
		t.Fatalf("error %v; worker output %q does not say why", err, out.String())
	}
}

type composedKey struct{}

// TestRegisteredWorkerInitRunsOnThreadWorkers: the registered worker init
// ran in worker processes only, so a thread executor's works lacked what
// it set up. It now runs once per goroutine worker too, with the slot as
// WorkerInfo.ID, and WithWorkerInit runs after it, on its ctx.
func TestRegisteredWorkerInitRunsOnThreadWorkers(t *testing.T) {
	if errInitRegistered != nil {
		t.Fatal(errInitRegistered)
	}
	composed := map[int]string{}
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
		v, _ := ctx.Value(initKey{}).(string)
		composed[w.ID] = v // NewThreadExecutor runs the inits one by one
		return context.WithValue(ctx, composedKey{}, w.ID), nil
	}))
	for slot := range 2 {
		if want := fmt.Sprintf("slot %d pid %d", slot, os.Getpid()); composed[slot] != want {
			t.Errorf("WithWorkerInit of worker %d saw %q from the registered init, want %q", slot, composed[slot], want)
		}
	}
	seen := map[string]bool{}
	for i := range 4 {
		v := mustGet(t, mustSubmit(t, ex, pInitValue, i))
		if !strings.HasPrefix(v, "slot ") || !strings.HasSuffix(v, fmt.Sprintf(" pid %d", os.Getpid())) {
			t.Fatalf("a thread work saw %q from the registered worker init", v)
		}
		seen[v] = true
	}
	if len(seen) != 2 {
		t.Fatalf("works saw %v: want both workers' init values", seen)
	}
}

// TestRegisteredWorkerInitErrorFailsThreadExecutor: as a worker process
// whose init fails never starts, a failing registered init makes
// NewThreadExecutor fail, naming the worker.
func TestRegisteredWorkerInitErrorFailsThreadExecutor(t *testing.T) {
	t.Setenv("APLEX_TEST_INIT_FAIL", "1") // read by the registered init
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1))
	if err == nil {
		ex.Close()
		t.Fatal("NewThreadExecutor started workers whose init fails")
	}
	if !strings.Contains(err.Error(), "worker init failed for worker 0: no database") {
		t.Fatalf("error %q does not say which init failed and why", err)
	}
}

// TestProcessWorkPastItsDeadlineCostsItsWorker: a work that ignores its
// deadline costs its worker once the kill grace has passed too, killed
// for running past its deadline, whether that deadline is the caller's
// ctx's (the watch on that ctx cancels the work as it passes: its future
// ends then, with context.DeadlineExceeded) or the call's Deadline(d) (a
// timer of the work's own: the work's ctx ends then, and its future with
// the kill, with the *WorkerError saying why).
func TestProcessWorkPastItsDeadlineCostsItsWorker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		submit func(t *testing.T, ex *aplex.Executor, marker string) *aplex.Future[int]
		want   func(error) bool
	}{
		{"caller's ctx", func(t *testing.T, ex *aplex.Executor, marker string) *aplex.Future[int] {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			t.Cleanup(cancel)
			f, err := aplex.Submit(ctx, ex, pStubborn, marker)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"Deadline(d)", func(t *testing.T, ex *aplex.Executor, marker string) *aplex.Future[int] {
			return mustSubmit(t, ex, pStubborn, marker, aplex.Deadline(300*time.Millisecond))
		}, func(err error) bool {
			var we *aplex.WorkerError
			return errors.As(err, &we) && strings.Contains(err.Error(), "ran past its deadline")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &obstest.Recorder{}
			ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithKillGrace(100*time.Millisecond), aplex.WithObserver(rec))
			pid := ex.Stats().Workers[0].PID
			started := filepath.Join(t.TempDir(), "started")
			f := tc.submit(t, ex, started)
			waitForFile(t, started)
			if _, err := f.Get(ctxT(t)); !tc.want(err) {
				t.Fatalf("Get: %v", err)
			}
			if !rec.Await(ctxT(t), func(r *obstest.Recorder) bool { return len(r.Workers(aplex.WorkerLost)) > 0 }) {
				t.Fatal("the worker running past its deadline was never lost")
			}
			lost := rec.Workers(aplex.WorkerLost)
			if lost[0].PID != pid || !strings.Contains(lost[0].Reason, "ran past its deadline") {
				t.Fatalf("lost: %+v, want worker %d killed for running past its deadline", lost, pid)
			}
			if v := mustGet(t, mustSubmit(t, ex, pDouble, 4)); v != 8 {
				t.Fatal("the pool did not recover")
			}
		})
	}
}
