package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// nilCtx is a nil context for the tests of the nil-context checks.
var nilCtx context.Context

var double = aplex.Fn(func(_ context.Context, x int) (int, error) { return 2 * x, nil })

func TestOptionsValidation(t *testing.T) {
	lbNil := aplex.LoadBalancer(nil)
	cases := []struct {
		name string
		opt  aplex.Option
		want string
	}{
		{"pool size 0", aplex.WithPoolSize(0), "WithPoolSize(0)"},
		{"pool size negative", aplex.WithPoolSize(-2), "WithPoolSize(-2)"},
		{"max works 0", aplex.WithMaxWorksPerWorker(0), "WithMaxWorksPerWorker(0)"},
		{"queue negative", aplex.WithQueueSize(-1), "WithQueueSize(-1)"},
		{"nil balancer", aplex.WithLoadBalancer(lbNil), "WithLoadBalancer(nil)"},
		{"nil init", aplex.WithWorkerInit(nil), "WithWorkerInit(nil)"},
		{"kill grace 0", aplex.WithKillGrace(0), "WithKillGrace(0s)"},
		{"nil option", nil, "option 0 is nil"},
		{"worker-process option", aplex.WithRecycleAfter(3), "WithRecycleAfter applies to process and cluster executors only"},
		{"remote-only option", aplex.WithStartTimeout(time.Second), "WithStartTimeout applies to process and cluster executors only"},
		{"nil logger", aplex.WithLogger(nil), "WithLogger(nil)"},
		// TestOptionsValidation/pool_size_huge: a typo's 2^40 workers were
		// made one by one until memory ran out.
		{"pool size huge", aplex.WithPoolSize(1 << 40), "WithPoolSize(1099511627776): at most 16384"},
		{"autoscale max huge", aplex.WithAutoscale(1, 1<<40, time.Second), "at most 16384"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, err := aplex.NewThreadExecutor(c.opt)
			if err == nil {
				ex.Close()
				t.Fatalf("NewThreadExecutor accepted %s", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestWorkerInitError(t *testing.T) {
	boom := errors.New("no db")
	_, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
		if w.ID == 1 {
			return nil, boom
		}
		return ctx, nil
	}))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "worker 1") {
		t.Fatalf("got %v, want the init error naming worker 1", err)
	}
}

// TestAWorkerInitThatPanicsIsAnError: a WithWorkerInit that panicked did
// so in NewThreadExecutor's caller, and in Resize's or the autoscaler's
// goroutine when a slot was added later (which ended the program), where
// a process worker's failed init is an error. It is an error naming the
// worker and the panic, and the executor that Resize failed to grow goes
// on serving.
func TestAWorkerInitThatPanicsIsAnError(t *testing.T) {
	panicky := func(from int) aplex.Option {
		return aplex.WithWorkerInit(func(ctx context.Context, w aplex.WorkerInfo) (context.Context, error) {
			if w.ID >= from {
				panic("no db")
			}
			return ctx, nil
		})
	}
	_, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), panicky(1))
	if err == nil || !strings.Contains(err.Error(), "worker 1") || !strings.Contains(err.Error(), "no db") {
		t.Fatalf("NewThreadExecutor: %v; want an error naming worker 1 and the panic", err)
	}

	ex := newThread(t, aplex.WithPoolSize(1), panicky(1))
	err = ex.Resize(ctxT(t), 2)
	if err == nil || !strings.Contains(err.Error(), "no db") {
		t.Fatalf("Resize(2): %v; want the init's panic as an error", err)
	}
	if v := mustGet(t, mustSubmit(t, ex, double, 4)); v != 8 {
		t.Errorf("after the failed Resize: %d", v)
	}
	if s := ex.Stats(); s.Size != 1 {
		t.Errorf("after the failed Resize: Size %d, want 1", s.Size)
	}
}

func TestBadInput(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	ctx := ctxT(t)
	var nilWork *aplex.Work[int, int]
	closed, err := aplex.NewThreadExecutor()
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	cases := []struct {
		name string
		do   func() error
		want error  // matched with errors.Is, when set
		text string // else contained in the message
	}{
		{"nil executor", func() error { _, err := aplex.Submit(ctx, nil, double, 1); return err }, nil, "nil executor"},
		{"nil work", func() error { _, err := aplex.Submit(ctx, ex, nilWork, 1); return err }, nil, "nil work"},
		{"nil context", func() error { _, err := aplex.Submit(nilCtx, ex, double, 1); return err }, nil, "nil context"},
		{"Fn(nil)", func() error { _, err := aplex.Submit(ctx, ex, aplex.Fn[int, int](nil), 1); return err }, nil, "Fn(nil)"},
		{"empty name", func() error {
			_, err := aplex.Submit(ctx, ex, aplex.Register("", func(context.Context, int) (int, error) { return 0, nil }), 1)
			return err
		}, nil, "empty work name"},
		{"duplicate name", func() error {
			aplex.Register("test.dup", func(context.Context, int) (int, error) { return 0, nil })
			_, err := aplex.Submit(ctx, ex, aplex.Register("test.dup", func(context.Context, int) (int, error) { return 0, nil }), 1)
			return err
		}, nil, "already registered"},
		{"ChunkSize on Submit", func() error { _, err := aplex.Submit(ctx, ex, double, 1, aplex.ChunkSize(2)); return err }, nil, "ChunkSize applies to Map"},
		{"ChunkSize 0", func() error { _, err := aplex.Submit(ctx, ex, double, 1, aplex.ChunkSize(0)); return err }, nil, "ChunkSize(0)"},
		{"negative deadline", func() error { _, err := aplex.Submit(ctx, ex, double, 1, aplex.Deadline(-1)); return err }, nil, "Deadline(-1ns)"},
		{"nil call option", func() error { _, err := aplex.Submit(ctx, ex, double, 1, nil); return err }, nil, "call option 0 is nil"},
		{"submit after close", func() error { _, err := aplex.Submit(ctx, closed, double, 1); return err }, aplex.ErrClosed, ""},
		{"try submit after close", func() error { _, err := aplex.TrySubmit(ctx, closed, double, 1); return err }, aplex.ErrClosed, ""},
		{"cancelled ctx", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := aplex.Submit(c, ex, double, 1)
			return err
		}, context.Canceled, ""},
		{"Map ChunkSize 0", func() error {
			for _, err := range aplex.Map(ctx, ex, double, seq(3, nil), aplex.ChunkSize(0)) {
				return err
			}
			return nil
		}, nil, "ChunkSize(0)"},
		{"Map nil inputs", func() error {
			for _, err := range aplex.Map(ctx, ex, double, nil) {
				return err
			}
			return nil
		}, nil, "nil inputs"},
		{"Map after close", func() error {
			for _, err := range aplex.Map(ctx, closed, double, seq(3, nil)) {
				return err
			}
			return nil
		}, aplex.ErrClosed, ""},
		{"Wait bad mode", func() error { _, _, err := aplex.Wait(ctx, 0); return err }, nil, "unknown mode"},
		{"Wait nil future", func() error {
			var f *aplex.Future[int]
			_, _, err := aplex.Wait(ctx, aplex.AllCompleted, f)
			return err
		}, nil, "future 0 is nil"},
		{"Shutdown nil ctx", func() error { return ex.Shutdown(nilCtx) }, nil, "nil context"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			switch {
			case err == nil:
				t.Fatal("no error")
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("got %v, want %v", err, c.want)
			case c.want == nil && !strings.Contains(err.Error(), c.text):
				t.Fatalf("got %q, want it to mention %q", err, c.text)
			}
		})
	}
}

func TestSubmitGet(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	fs := make([]*aplex.Future[int], 100)
	for i := range fs {
		fs[i] = mustSubmit(t, ex, double, i)
	}
	for i, f := range fs {
		if v := mustGet(t, f); v != 2*i {
			t.Fatalf("future %d = %d", i, v)
		}
	}
}

func TestErrorAndPanic(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	boom := errors.New("boom")
	failing := aplex.Fn(func(_ context.Context, x int) (int, error) { return 0, fmt.Errorf("work %d: %w", x, boom) })
	panicking := aplex.Fn(func(_ context.Context, x int) (int, error) { panic(fmt.Sprintf("bad %d", x)) })

	if _, err := mustSubmit(t, ex, failing, 1).Get(ctxT(t)); !errors.Is(err, boom) {
		t.Fatalf("error: got %v", err)
	}
	_, err := mustSubmit(t, ex, panicking, 2).Get(ctxT(t))
	var pe *aplex.PanicError
	if !errors.As(err, &pe) || pe.Value != "bad 2" || !strings.Contains(pe.Stack, "executor_test.go") {
		t.Fatalf("panic: got %#v", err)
	}
	// The worker survives.
	if v := mustGet(t, mustSubmit(t, ex, double, 21)); v != 42 {
		t.Fatalf("after panic: %d", v)
	}
	waitFor(t, "workloads back to zero", func() bool { return ex.Stats().Running == 0 })
	st := ex.Stats()
	if st.Completed != 1 || st.Failed != 2 || st.Workers[0].Workload != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCapacityNeverExceeded hammers the executor from many goroutines and
// checks, per worker and in total, that no more works run than allowed.
func TestCapacityNeverExceeded(t *testing.T) {
	const pool, perWorker, submitters, each = 3, 4, 16, 40
	ex := newThread(t, aplex.WithPoolSize(pool), aplex.WithMaxWorksPerWorker(perWorker), withWorkerID())
	var running [pool]atomic.Int32
	var peak [pool]atomic.Int32
	var total, peakTotal atomic.Int32
	w := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		id := workerOf(ctx)
		n := running[id].Add(1)
		tot := total.Add(1)
		for p := peak[id].Load(); n > p && !peak[id].CompareAndSwap(p, n); p = peak[id].Load() {
		}
		for p := peakTotal.Load(); tot > p && !peakTotal.CompareAndSwap(p, tot); p = peakTotal.Load() {
		}
		time.Sleep(200 * time.Microsecond)
		total.Add(-1)
		running[id].Add(-1)
		return id, nil
	})
	var wg sync.WaitGroup
	futures := make(chan *aplex.Future[int], submitters*each)
	for range submitters {
		wg.Go(func() {
			for i := range each {
				f, err := aplex.Submit(context.Background(), ex, w, i)
				if err != nil {
					t.Error(err)
					return
				}
				futures <- f
			}
		})
	}
	wg.Wait()
	close(futures)
	for f := range futures {
		mustGet(t, f)
	}
	for id := range pool {
		if p := peak[id].Load(); p > perWorker {
			t.Errorf("worker %d ran %d works at once; cap %d", id, p, perWorker)
		}
	}
	if p := peakTotal.Load(); p > pool*perWorker {
		t.Errorf("%d works at once; capacity %d", p, pool*perWorker)
	}
	waitFor(t, "idle", func() bool { return ex.Stats().Running == 0 })
	for _, ws := range ex.Stats().Workers {
		if ws.Workload != 0 {
			t.Errorf("worker %d workload %d after all ended", ws.ID, ws.Workload)
		}
	}
}

// gate is a work that blocks until released, recording start order.
type gate struct {
	mu      sync.Mutex
	started []int
	release chan struct{}
	work    *aplex.Work[int, int]
}

func newGate() *gate {
	g := &gate{release: make(chan struct{})}
	g.work = aplex.Fn(func(ctx context.Context, x int) (int, error) {
		g.mu.Lock()
		g.started = append(g.started, x)
		g.mu.Unlock()
		select {
		case <-g.release:
			return x, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	return g
}

func (g *gate) startedN() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.started)
}

func TestQueueIsFIFO(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	g := newGate()
	first := mustSubmit(t, ex, g.work, 0)
	waitFor(t, "first work to start", func() bool { return g.startedN() == 1 })
	var rest []*aplex.Future[int]
	for i := 1; i <= 20; i++ {
		rest = append(rest, mustSubmit(t, ex, g.work, i))
	}
	if q := ex.Stats().Queued; q != 20 {
		t.Fatalf("queued %d, want 20", q)
	}
	close(g.release)
	mustGet(t, first)
	for _, f := range rest {
		mustGet(t, f)
	}
	for i, x := range g.started {
		if x != i {
			t.Fatalf("start order %v is not submission order", g.started)
		}
	}
}

func TestBoundedQueue(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithQueueSize(2))
	g := newGate()
	ctx := ctxT(t)
	fs := []*aplex.Future[int]{mustSubmit(t, ex, g.work, 0)}
	waitFor(t, "first work to start", func() bool { return g.startedN() == 1 })
	fs = append(fs, mustSubmit(t, ex, g.work, 1), mustSubmit(t, ex, g.work, 2))

	if _, err := aplex.TrySubmit(ctx, ex, g.work, 3); !errors.Is(err, aplex.ErrFull) {
		t.Fatalf("TrySubmit on a full queue: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := aplex.Submit(short, ex, g.work, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue with a short ctx: %v", err)
	}
	// A waiting Submit gets in once room frees.
	got := make(chan error, 1)
	go func() {
		f, err := aplex.Submit(ctx, ex, g.work, 4)
		if err == nil {
			_, err = f.Get(ctx)
		}
		got <- err
	}()
	waitFor(t, "Submit to wait for room", func() bool { return goroutineIn("engine.(*core).submit") })
	select {
	case err := <-got:
		t.Fatalf("Submit returned (%v) while the queue was full", err)
	default:
	}
	close(g.release)
	if err := <-got; err != nil {
		t.Fatalf("waiting Submit: %v", err)
	}
	for _, f := range fs {
		mustGet(t, f)
	}
}

// goroutineIn reports whether some goroutine is in the function named fn:
// how a test knows another goroutine is blocked inside a call.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

func TestCancel(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	ctxSeen := make(chan error, 1)
	started := make(chan struct{})
	blocking := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		close(started)
		<-ctx.Done()
		ctxSeen <- ctx.Err()
		return 7, nil // returns a value anyway: the future must stay cancelled
	})
	g := newGate()
	running := mustSubmit(t, ex, blocking, 0)
	queued := mustSubmit(t, ex, g.work, 1)
	waitFor(t, "queued", func() bool { return ex.Stats().Queued == 1 })
	<-started

	if !queued.Cancel() {
		t.Fatal("Cancel of a queued work returned false")
	}
	if _, err := queued.Get(ctxT(t)); !errors.Is(err, context.Canceled) || !queued.Cancelled() {
		t.Fatalf("queued future: %v, cancelled=%v", err, queued.Cancelled())
	}
	if !running.Cancel() {
		t.Fatal("Cancel of a running work returned false")
	}
	if err := <-ctxSeen; !errors.Is(err, context.Canceled) {
		t.Fatalf("running work's ctx ended with %v", err)
	}
	if v, err := running.Get(ctxT(t)); !errors.Is(err, context.Canceled) || v != 0 {
		t.Fatalf("running future: %v, %v", v, err)
	}
	if running.Cancel() || queued.Cancel() {
		t.Fatal("second Cancel returned true")
	}
	done := mustSubmit(t, ex, double, 4)
	mustGet(t, done)
	if done.Cancel() || done.Cancelled() {
		t.Fatal("Cancel of a finished future changed it")
	}
	if g.startedN() != 0 {
		t.Fatal("a cancelled queued work started")
	}
	waitFor(t, "slots freed", func() bool { return ex.Stats().Running == 0 })
	if st := ex.Stats(); st.Cancelled != 2 {
		t.Fatalf("stats after cancels: %+v", st)
	}
}

func TestSubmitCtxCancelsQueuedAndRunning(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	g := newGate()
	ctx, cancel := context.WithCancel(ctxT(t))
	running := mustSubmitCtx(t, ctx, ex, g.work, 0)
	queued := mustSubmitCtx(t, ctx, ex, g.work, 1)
	waitFor(t, "start", func() bool { return g.startedN() == 1 })
	cancel()
	if _, err := queued.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued: %v", err)
	}
	if _, err := running.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("running: %v", err)
	}
	if g.startedN() != 1 {
		t.Fatal("queued work started after its ctx ended")
	}
}

func mustSubmitCtx[A, R any](t *testing.T, ctx context.Context, ex *aplex.Executor, w *aplex.Work[A, R], arg A) *aplex.Future[R] {
	t.Helper()
	f, err := aplex.Submit(ctx, ex, w, arg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDeadlineOption(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	slow := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Second):
			return 1, nil
		}
	})
	start := time.Now()
	_, err := mustSubmit(t, ex, slow, 0, aplex.Deadline(30*time.Millisecond)).Get(ctxT(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("deadline not enforced")
	}
}

func TestWorkerInitValues(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(3), withWorkerID(), aplex.WithLoadBalancer(aplex.RoundRobin()))
	who := aplex.Fn(func(ctx context.Context, _ int) (int, error) { return workerOf(ctx), nil })
	for i := range 6 {
		if got := mustGet(t, mustSubmit(t, ex, who, i)); got != i%3 {
			t.Fatalf("work %d ran on worker %d", i, got)
		}
	}
}

func TestOnDone(t *testing.T) {
	ex := newThread(t)
	got := make(chan int, 2)
	f := mustSubmit(t, ex, double, 5)
	f.OnDone(func(v int, err error) { got <- v })
	if v := <-got; v != 10 {
		t.Fatalf("OnDone got %d", v)
	}
	f.OnDone(func(v int, err error) { got <- v + 1 }) // after the end: at once
	if v := <-got; v != 11 {
		t.Fatalf("late OnDone got %d", v)
	}
}

// TestAWorkWaitingOnItsOwnExecutorEndsWithItsCtx: a work that submits to
// its own executor and waits can hold the slot its inner work needs (the
// bounded pool's deadlock, as in any pool of workers). Submitted and
// awaited with the work's own ctx, the inner work ends with the outer:
// cancelling the outer future frees both, and Shutdown finds nothing left.
func TestAWorkWaitingOnItsOwnExecutorEndsWithItsCtx(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	inner := aplex.Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	queued := make(chan struct{})
	outer := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		f, err := aplex.Submit(ctx, ex, inner, x)
		if err != nil {
			return 0, err
		}
		close(queued) // the only slot is this work's: f waits in the queue
		return f.Get(ctx)
	})
	f := mustSubmit(t, ex, outer, 1)
	<-queued
	if s := ex.Stats(); s.Running != 1 || s.Queued != 1 {
		t.Fatalf("before Cancel: %d running, %d queued; want 1 and 1", s.Running, s.Queued)
	}
	if !f.Cancel() {
		t.Fatal("Cancel = false")
	}
	if _, err := f.Get(ctxT(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("outer Get: %v; want context.Canceled", err)
	}
	waitFor(t, "the inner work to leave the queue and the outer its slot", func() bool {
		s := ex.Stats()
		return s.Running == 0 && s.Queued == 0
	})
	if err := ex.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestResizeAboveTheLimitIsRefused: Resize to 2^40 workers made them one
// by one until memory ran out; it is refused, and the pool keeps its size.
func TestResizeAboveTheLimitIsRefused(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	if err := ex.Resize(ctxT(t), 1<<40); err == nil || !strings.Contains(err.Error(), "at most 16384") {
		t.Fatalf("Resize(1<<40): %v; want the limit named", err)
	}
	if s := ex.Stats(); s.Size != 1 {
		t.Errorf("Size %d after the refused Resize, want 1", s.Size)
	}
}

// TestMapWindowWithUnboundedWorkersPerWorker: WithMaxWorksPerWorker(
// math.MaxInt), a pool without a per-worker bound, made the default Map
// window's product overflow to a window of one input, so Map ran its
// works one at a time. The window is the cap, 4096: 64 works that each
// wait for all the others can only end if they all run at once.
func TestMapWindowWithUnboundedWorkersPerWorker(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(math.MaxInt))
	const n = 64
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	barrier := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		arrived.Done()
		select {
		case <-all:
			return x, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	got := 0
	for _, err := range aplex.Map(ctx, ex, barrier, seq(n, nil)) {
		if err != nil {
			t.Fatalf("Map: %v (the window let fewer than %d works run at once)", err, n)
		}
		got++
	}
	if got != n {
		t.Fatalf("%d results, want %d", got, n)
	}
}
