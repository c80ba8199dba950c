package engine

import (
	"context"
	"errors"
	"maps"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/testutil"

	"go.uber.org/goleak"
)

func newOneSlotExecutor(t *testing.T) *Executor {
	t.Helper()
	return newOneWorkerExecutor(t, 1)
}

// newOneWorkerExecutor returns a thread executor of one worker with room
// for perWorker works, shut down (and its error checked) when the test
// ends, after the test's own cleanups registered later. Its parked
// goroutines are never retired: the tests count them (Parked), and a
// goroutine retired between its park and the count would leave them
// waiting for a park that never comes (TestReusedRunnerDoesNotLeakPprofLabels
// timed out so once in three rounds of the race suite on a loaded machine).
func newOneWorkerExecutor(t *testing.T, perWorker int) *Executor {
	t.Helper()
	defer func(d time.Duration) { runnerIdle = d }(runnerIdle)
	runnerIdle = time.Hour
	return newThreadExecutorT(t, WithPoolSize(1), WithMaxWorksPerWorker(perWorker))
}

// newThreadExecutorT returns a thread executor made with opts, shut down
// (and its error checked) when the test ends, after the test's own
// cleanups registered later.
func newThreadExecutorT(t *testing.T, opts ...Option) *Executor {
	t.Helper()
	ex, err := NewThreadExecutor(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return ex
}

// waitRunnerParked waits until goroutine id, ex's one runner, is parked:
// blocked in the pool's hand-off, where the next work dispatched finds it.
// The pool's Parked count is raised just before a goroutine blocks, so a
// work dispatched as soon as it reads 1 could miss the runner and get a
// goroutine of its own (TestGoReusesAParkedGoroutine failed so under
// -race -cpu 1).
func waitRunnerParked(t *testing.T, ex *Executor, id int) {
	t.Helper()
	testutil.WaitFor(t, "the runner parked", func() bool {
		return ex.c.runners.Parked() == 1 && testutil.IsBlockedIn(id, gopoolPark)
	})
}

// gopoolPark is the function a parked runner waits in.
const gopoolPark = "internal/gopool.(*Pool).park"

type ctxKey struct{}

// ctxSeen is what a work saw of its ctx.
type ctxSeen struct {
	goroutine int
	value     any
	err       error
	deadline  bool
}

// TestParkedRunnerRunsTheNextWork checks that a goroutine that has run a
// work parks and runs the next dispatched work, rather than a new
// goroutine being made for it.
func TestParkedRunnerRunsTheNextWork(t *testing.T) {
	ex := newOneSlotExecutor(t)
	w := Fn(func(context.Context, int) (int, error) { return testutil.GoroutineID(), nil })
	first := mustGet(t, ex, w)
	waitRunnerParked(t, ex, first)
	if second := mustGet(t, ex, w); second != first {
		t.Fatalf("the second work ran on goroutine %d, not on the parked runner %d", second, first)
	}
}

func mustGet(t *testing.T, ex *Executor, w *Work[int, int]) int {
	t.Helper()
	f, err := Submit(context.Background(), ex, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReusedRunnerGivesEachWorkItsOwnCtx checks that nothing of a work's
// ctx (its caller's values, its deadline, its cancellation) reaches the
// next work run by the same goroutine.
func TestReusedRunnerGivesEachWorkItsOwnCtx(t *testing.T) {
	ex := newOneSlotExecutor(t)
	started := make(chan struct{})
	var firstRunner int // written before started is closed
	w := Fn(func(ctx context.Context, block int) (ctxSeen, error) {
		if block == 1 {
			firstRunner = testutil.GoroutineID()
			close(started)
			<-ctx.Done()
		}
		_, dl := ctx.Deadline()
		return ctxSeen{testutil.GoroutineID(), ctx.Value(ctxKey{}), ctx.Err(), dl}, nil
	})

	// The first work: a value, a deadline, and a caller who gives up.
	ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "first"))
	f1, err := Submit(ctx1, ex, w, 1, Deadline(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cancel1()
	if _, err := f1.Get(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("first work: %v, want context.Canceled", err)
	}
	waitRunnerParked(t, ex, firstRunner)

	// The second, on the same goroutine: none of that.
	ctx2 := context.WithValue(context.Background(), ctxKey{}, "second")
	f2, err := Submit(ctx2, ex, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f2.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.goroutine != firstRunner {
		t.Fatalf("the second work ran on goroutine %d, not on the parked runner %d", got.goroutine, firstRunner)
	}
	if got.value != "second" || got.err != nil || got.deadline {
		t.Fatalf("the second work saw value %v, err %v, deadline %v; want its own ctx: second, nil, no deadline", got.value, got.err, got.deadline)
	}
}

// TestIdleRunnersAreRetired checks that the goroutines a burst of works
// left parked end once the executor has been idle for runnerIdle, and
// that the executor still serves afterwards.
func TestIdleRunnersAreRetired(t *testing.T) {
	defer func(d time.Duration) { runnerIdle = d }(runnerIdle)
	runnerIdle = 10 * time.Millisecond
	before := goleak.IgnoreCurrent()
	ex, err := NewThreadExecutor(WithPoolSize(2), WithMaxWorksPerWorker(10))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	const burst = 20
	release := make(chan struct{})
	w := Fn(func(_ context.Context, _ int) (int, error) { <-release; return 1, nil })
	fs := make([]*Future[int], burst)
	for i := range fs {
		if fs[i], err = Submit(context.Background(), ex, w, i); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "every work runs", func() bool { return ex.c.running.Load() == burst })
	close(release)
	for _, f := range fs {
		if _, err := f.Get(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "every runner retired", func() bool { return ex.c.runners.Parked() == 0 })
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left while idle: %v", err)
	}
	if got := mustGet(t, ex, Fn(func(context.Context, int) (int, error) { return 7, nil })); got != 7 {
		t.Fatalf("after the runners retired, a work returned %d", got)
	}
}

// TestShutdownRetiresParkedRunners checks that Shutdown leaves no parked
// goroutine behind.
func TestShutdownRetiresParkedRunners(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ex, err := NewThreadExecutor(WithPoolSize(2), WithMaxWorksPerWorker(4))
	if err != nil {
		t.Fatal(err)
	}
	w := Fn(func(context.Context, int) (int, error) { return 1, nil })
	for range 3 {
		mustGet(t, ex, w)
	}
	testutil.WaitFor(t, "a runner parked", func() bool { return ex.c.runners.Parked() > 0 })
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left after Shutdown: %v", err)
	}
}

// TestGoexitOnReusedRunner checks that a work calling runtime.Goexit on a
// goroutine that has run works before fails its own future only, and the
// next work runs.
func TestGoexitOnReusedRunner(t *testing.T) {
	ex := newOneSlotExecutor(t)
	runner := mustGet(t, ex, Fn(func(context.Context, int) (int, error) { return testutil.GoroutineID(), nil }))
	waitRunnerParked(t, ex, runner)
	f, err := Submit(context.Background(), ex, Fn(func(context.Context, int) (int, error) { runtime.Goexit(); return 0, nil }), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(context.Background()); !errors.Is(err, ErrGoexit) {
		t.Fatalf("Goexit: %v, want ErrGoexit", err)
	}
	if got := mustGet(t, ex, Fn(func(context.Context, int) (int, error) { return 2, nil })); got != 2 {
		t.Fatalf("after a Goexit, a work returned %d", got)
	}
}

// TestOnDoneCallbacksRunInRegistrationOrder checks the order of a task's
// callbacks, kept newest first in their list.
func TestOnDoneCallbacksRunInRegistrationOrder(t *testing.T) {
	ex := newOneSlotExecutor(t)
	release := make(chan struct{})
	f, err := Submit(context.Background(), ex, Fn(func(context.Context, int) (int, error) { <-release; return 1, nil }), 0)
	if err != nil {
		t.Fatal(err)
	}
	var order []int
	done := make(chan struct{})
	for i := range 5 {
		f.OnDone(func(int, error) {
			order = append(order, i)
			if i == 4 {
				close(done)
			}
		})
	}
	close(release)
	<-done
	if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("callbacks ran in the order %v", order)
	}
}

// countingBalancer picks the first worker with room and counts its calls.
type countingBalancer struct{ picks atomic.Int32 }

func (b *countingBalancer) Pick(ws Workers, _ any) int {
	b.picks.Add(1)
	for i := range ws.Len() {
		if ws.Available(i) {
			return i
		}
	}
	return 0
}

// TestQueuedWorksKeepOrderAndAskTheBalancer checks the path where a work
// that returns takes the next queued one on its own goroutine
// (freeLocal, drainLocked): queued works still start in submission order, on
// the goroutine that freed the slot, and the balancer is asked for each.
func TestQueuedWorksKeepOrderAndAskTheBalancer(t *testing.T) {
	lb := &countingBalancer{}
	ex, err := NewThreadExecutor(WithPoolSize(1), WithMaxWorksPerWorker(1), WithLoadBalancer(lb))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	release := make(chan struct{})
	var mu sync.Mutex
	var order []int
	var gids []int
	w := Fn(func(_ context.Context, i int) (int, error) {
		if i == 0 {
			<-release
		}
		mu.Lock()
		order = append(order, i)
		gids = append(gids, testutil.GoroutineID())
		mu.Unlock()
		return i, nil
	})
	const n = 5
	fs := make([]*Future[int], n)
	for i := range fs {
		if fs[i], err = Submit(context.Background(), ex, w, i); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "the other works queue", func() bool { return ex.c.queue.len() == n-1 })
	close(release)
	for i, f := range fs {
		if v, err := f.Get(context.Background()); v != i || err != nil {
			t.Fatalf("work %d: %v, %v", i, v, err)
		}
	}
	if !slices.Equal(order, []int{0, 1, 2, 3, 4}) {
		t.Errorf("ran in the order %v, want submission order", order)
	}
	for _, g := range gids[1:] {
		if g != gids[0] {
			t.Errorf("queued works ran on goroutines %v, want the one that freed the slot", gids)
			break
		}
	}
	if got := lb.picks.Load(); got != n {
		t.Errorf("the balancer was asked %d times, want %d (once per work)", got, n)
	}
}

// TestReusedRunnerDoesNotLeakPprofLabels: a work runs with the pprof
// labels of its ctx (pprof.Do, pprof.WithLabels), as a CPU profile shows
// them. A reused goroutine used to keep the labels it was created with
// (its first submitter's), or those a work set on it, for every later work.
func TestReusedRunnerDoesNotLeakPprofLabels(t *testing.T) {
	ex := newOneSlotExecutor(t)
	type seen struct {
		labels    map[string]string
		goroutine int
	}
	w := Fn(func(ctx context.Context, set int) (seen, error) {
		got := seen{testutil.GoroutineLabels(), testutil.GoroutineID()}
		if set == 1 { // sets labels on its goroutine and leaves them there
			pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("set", "by-work")))
		}
		return got, nil
	})
	runner := 0 // the goroutine every work runs on, once the first has
	run := func(ctx context.Context, set int) map[string]string {
		t.Helper()
		f, err := Submit(ctx, ex, w, set)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if runner == 0 {
			runner = got.goroutine
		} else if got.goroutine != runner {
			t.Fatalf("a work ran on goroutine %d, not on the parked runner %d", got.goroutine, runner)
		}
		waitRunnerParked(t, ex, runner)
		return got.labels
	}
	plain := context.Background()
	labelled := func(v string) context.Context { return pprof.WithLabels(plain, pprof.Labels("caller", v)) }

	// The runner is created by a labelled goroutine, which it inherits
	// labels from.
	var first map[string]string
	pprof.Do(plain, pprof.Labels("caller", "first"), func(ctx context.Context) { first = run(ctx, 0) })
	if want := map[string]string{"caller": "first"}; !maps.Equal(first, want) {
		t.Errorf("first work: labels %v, want %v", first, want)
	}
	for _, step := range []struct {
		name string
		ctx  context.Context
		set  int
		want map[string]string
	}{
		{"plain ctx after a labelled work", plain, 0, map[string]string{}},
		{"labelled ctx, unlabelled submitter", labelled("third"), 1, map[string]string{"caller": "third"}},
		{"plain ctx after a work that set labels", plain, 0, map[string]string{}},
	} {
		if got := run(step.ctx, step.set); !maps.Equal(got, step.want) {
			t.Errorf("%s: the work ran with labels %v, want %v", step.name, got, step.want)
		}
	}
}

// TestGetDoesNotQueueBehindRunnableGoroutines: a Get that waits, with no
// works queued, must be woken straight after its work ends, not go to the
// back of the scheduler's global run queue. (With works queued it yields
// first: TestAGetBehindQueuedWorksLetsAReadyWorkEndFirst.) Get used to
// yield (runtime.Gosched) before parking whatever the queue held, so that
// a runnable work could finish first: in a busy program that put the
// waiter behind every runnable goroutine, and a round trip of a no-op
// work took 86 µs beside 8 busy goroutines and 700 µs beside 64, against
// 1 µs (root BenchmarkThreadRoundTripUnderLoad). The timing cannot
// be a test, and the race detector shuffles the run queues, so this checks
// the mechanism: on one P, with the work's runner runnable but not run, a
// Get parks on the future (and the work's end readies it as the next
// goroutine to run); a Get that yielded would find the work finished and
// not park.
func TestGetDoesNotQueueBehindRunnableGoroutines(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ex := newOneSlotExecutor(t)
	w := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	waitRunnerParked(t, ex, mustGet(t, ex, Fn(func(context.Context, int) (int, error) { return testutil.GoroutineID(), nil })))
	const rounds = 100
	parked := 0
	testHookGetParks = func(*task) { parked++ } // Gets run in this goroutine
	defer func() { testHookGetParks = nil }()
	for i := range rounds {
		f, err := Submit(context.Background(), ex, w, i)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Get(context.Background()); err != nil || got != i {
			t.Fatalf("Get = %d, %v; want %d", got, err, i)
		}
	}
	if parked < rounds*9/10 {
		t.Fatalf("only %d of %d Gets parked on their future: the others let the work run first, behind whatever else was runnable", parked, rounds)
	}
}

// TestAGetBehindQueuedWorksLetsAReadyWorkEndFirst: with works queued, a
// Get that finds its future running yields once before it parks, so that
// works ready to end run first. A loop of Gets collecting a fan-out was
// otherwise woken by each future's end ahead of the works that would end
// the next ones, and parked again at once: 5 % of the fan-out's CPU per
// work (bench/cmd/alternate, 0.947×). Without a backlog a Get parks at
// once, to be woken straight after its work
// (TestGetDoesNotQueueBehindRunnableGoroutines). On one P: work a waits on
// a gate with b queued behind it; the gate opens, which makes a's runner
// runnable, not run; a Get on a yields, a ends (its runner hands the slot
// to b, which blocks), and the Get finds a ended without parking.
func TestAGetBehindQueuedWorksLetsAReadyWorkEndFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ex := newOneSlotExecutor(t)
	const rounds = 20
	var fa *Future[int]
	parkedOnA := 0
	testHookGetParks = func(tk *task) { // Gets run in this goroutine
		if tk == &fa.t {
			parkedOnA++
		}
	}
	defer func() { testHookGetParks = nil }()
	for i := range rounds {
		started, gateA, gateB := make(chan struct{}), make(chan struct{}), make(chan struct{})
		a := Fn(func(_ context.Context, x int) (int, error) { close(started); <-gateA; return x, nil })
		b := Fn(func(_ context.Context, x int) (int, error) { <-gateB; return x, nil })
		var err error
		if fa, err = Submit(context.Background(), ex, a, i); err != nil {
			t.Fatal(err)
		}
		<-started // a holds the only slot, blocked on its gate
		fb, err := Submit(context.Background(), ex, b, i)
		if err != nil {
			t.Fatal(err)
		}
		if q := ex.c.queue.len(); q != 1 {
			t.Fatalf("round %d: %d works queued behind a; want b", i, q)
		}
		close(gateA)
		if got, err := fa.Get(context.Background()); err != nil || got != i {
			t.Fatalf("round %d: a's Get = %d, %v", i, got, err)
		}
		close(gateB)
		if got, err := fb.Get(context.Background()); err != nil || got != i {
			t.Fatalf("round %d: b's Get = %d, %v", i, got, err)
		}
	}
	if parkedOnA > rounds/10 {
		t.Fatalf("%d of %d Gets parked on a work that was ready to end, with a work queued behind it", parkedOnA, rounds)
	}
}

// TestABurstWakesOneRunnerAtATime: while a runner is being woken, Submit
// queues rather than wake another, and the woken runner hands the next
// queued work out as it starts. On one P, five Submits in a row wake one
// runner and queue four; every work then runs.
func TestABurstWakesOneRunnerAtATime(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ex := newOneWorkerExecutor(t, 10)
	w := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	fs := make([]*Future[int], 5)
	for i := range fs {
		var err error
		if fs[i], err = Submit(context.Background(), ex, w, i); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing ran yet: this goroutine kept the only P.
	if waking, queued := ex.c.runners.Waking(), ex.c.queue.len(); waking != 1 || queued != 4 {
		t.Errorf("after 5 Submits: %d runners being woken and %d works queued; want 1 and 4", waking, queued)
	}
	for i, f := range fs {
		if got, err := f.Get(context.Background()); err != nil || got != i {
			t.Fatalf("work %d: %d, %v", i, got, err)
		}
	}
}

// TestAQueuedWorkStartsWhileTheWokenRunnersWorkBlocks: the runner woken
// for a work that blocks hands the work queued behind it out before it
// runs its own, so that work does not wait for the blocking one.
func TestAQueuedWorkStartsWhileTheWokenRunnersWorkBlocks(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ex := newOneWorkerExecutor(t, 2)
	release := make(chan struct{})
	blocking := Fn(func(context.Context, int) (int, error) { <-release; return 0, nil })
	quick := Fn(func(_ context.Context, x int) (int, error) { return x, nil })
	a, err := Submit(context.Background(), ex, blocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Submit(context.Background(), ex, quick, 7)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := b.Get(ctx); err != nil || got != 7 {
		t.Fatalf("the work queued behind a blocking one: %d, %v", got, err)
	}
	close(release)
	if _, err := a.Get(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAWorkQueuedBehindAWokenRunnerIsWatchedOnceNoRoomIsLeft: a work that
// Submit queued behind a runner being woken, with room for it then, has no
// watch on its caller's ctx (it is about to be handed out). When the
// runners find no room left for it after all, it is watched: its caller's
// ctx ending ends its future at once, although no slot frees.
func TestAWorkQueuedBehindAWokenRunnerIsWatchedOnceNoRoomIsLeft(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ex := newOneWorkerExecutor(t, 2)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the executor's Shutdown
	blocking := Fn(func(context.Context, int) (int, error) { <-release; return 0, nil })
	for range 2 {
		if _, err := Submit(context.Background(), ex, blocking, 0); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Submit(ctx, ex, blocking, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.t.watch != watchNone {
		t.Fatal("a work queued with room for it behind a runner being woken was watched at once")
	}
	cancel()
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if _, err := c.Get(wait); !errors.Is(err, context.Canceled) || wait.Err() != nil {
		t.Fatalf("Get of the queued work whose caller's ctx ended: %v (wait: %v)", err, wait.Err())
	}
}

// TestPanicAfterTheWorkReturnedIsNotSwallowed: call.Run's recovery turns a
// work's panic into its outcome, and only that: a panic raised once the
// work has returned (a completion callback's, run as the future ends)
// goes on up, and ends the program as OnDone says, rather than vanish
// into a future that has already ended.
func TestPanicAfterTheWorkReturnedIsNotSwallowed(t *testing.T) {
	var tk task
	got := func() (v any) {
		defer func() { v = recover() }()
		returned := true
		var next gopool.Task
		defer recoverWork(&tk, nil, &returned, &next)
		panic("callback")
	}()
	if got != "callback" {
		t.Fatalf("the panic after the work returned was %v at the caller, want it to go on up", got)
	}
	if tk.state.Load() != stQueued {
		t.Fatalf("the task's state moved to %d; a panic after the work returned must not settle it", tk.state.Load())
	}
}
