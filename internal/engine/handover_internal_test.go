package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aplex-go/aplex/internal/testutil"
)

// ranOn is where one of the handover tests' works ran.
type ranOn struct{ slot, goroutine int }

// gatedWorks is a work that records where each argument ran, then waits
// for that argument's gate.
type gatedWorks struct {
	mu    sync.Mutex
	ran   map[int]ranOn
	order []int
	gates map[int]chan struct{}
	work  *Work[int, int]
}

func newGatedWorks(n int) *gatedWorks {
	g := &gatedWorks{ran: map[int]ranOn{}, gates: map[int]chan struct{}{}}
	for i := range n {
		g.gates[i] = make(chan struct{})
	}
	g.work = Fn(func(ctx context.Context, i int) (int, error) {
		slot, _ := ctx.Value(slotKey{}).(int)
		g.mu.Lock()
		g.ran[i] = ranOn{slot, testutil.GoroutineID()}
		g.order = append(g.order, i)
		g.mu.Unlock()
		<-g.gates[i]
		return i, nil
	})
	return g
}

func (g *gatedWorks) started(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.ran[i]
	return ok
}

func (g *gatedWorks) where(i int) ranOn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ran[i]
}

// newSlotTaggedExecutor returns a thread executor of workers × 1 slot
// whose works see their worker's slot in their ctx (the model test's
// slotKey), shut down
// when the test ends.
func newSlotTaggedExecutor(t *testing.T, workers int, opts ...Option) *Executor {
	t.Helper()
	tag := WithWorkerInit(func(ctx context.Context, info WorkerInfo) (context.Context, error) {
		return context.WithValue(ctx, slotKey{}, info.ID), nil
	})
	return newThreadExecutorT(t, append([]Option{WithPoolSize(workers), WithMaxWorksPerWorker(1), tag}, opts...)...)
}

// TestAFreedSlotPassesToTheOldestQueuedWork: with every other worker full,
// a work that ends hands its slot to the oldest queued work without
// freeing it (handOverLocked): the queued work runs on the same worker and
// goroutine, in submission order, and the counters (each worker's load,
// Running, Queued, the per-worker outcomes) stay what freeing the slot and
// dispatching again would make them.
func TestAFreedSlotPassesToTheOldestQueuedWork(t *testing.T) {
	ex := newSlotTaggedExecutor(t, 2)
	const n = 5
	g := newGatedWorks(n)
	fs := make([]*Future[int], n)
	for i := range fs {
		var err error
		if fs[i], err = Submit(context.Background(), ex, g.work, i); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "works 0 and 1 start", func() bool { return g.started(0) && g.started(1) })
	if s := ex.Stats(); s.Running != 2 || s.Queued != n-2 {
		t.Fatalf("Stats: %d running, %d queued; want 2 and %d", s.Running, s.Queued, n-2)
	}
	// Work 0 ends while work 1 holds the other worker: work 2 gets its slot.
	close(g.gates[0])
	testutil.WaitFor(t, "work 2 starts", func() bool { return g.started(2) })
	if got, want := g.where(2), g.where(0); got != want {
		t.Errorf("work 2 ran on slot %d, goroutine %d; want work 0's: slot %d, goroutine %d", got.slot, got.goroutine, want.slot, want.goroutine)
	}
	s := ex.Stats()
	if s.Running != 2 || s.Queued != n-3 {
		t.Errorf("Stats after the hand-over: %d running, %d queued; want 2 and %d", s.Running, s.Queued, n-3)
	}
	for _, ws := range s.Workers {
		if ws.Workload != 1 {
			t.Errorf("worker %d holds %d works, want 1", ws.ID, ws.Workload)
		}
	}
	if v, err := fs[0].Get(context.Background()); v != 0 || err != nil {
		t.Fatalf("work 0: %v, %v", v, err)
	}
	for i := 1; i < n; i++ {
		close(g.gates[i])
	}
	for i, f := range fs {
		if v, err := f.Get(context.Background()); v != i || err != nil {
			t.Fatalf("work %d: %v, %v", i, v, err)
		}
	}
	g.mu.Lock()
	order := g.order
	g.mu.Unlock()
	for i, v := range order {
		if v != i {
			t.Errorf("works started in the order %v, want submission order", order)
			break
		}
	}
	testutil.WaitFor(t, "the slots are free", func() bool { return ex.Stats().Running == 0 })
	s = ex.Stats()
	var completed uint64
	for _, ws := range s.Workers {
		completed += ws.Completed
		if ws.Workload != 0 {
			t.Errorf("worker %d holds %d works at the end", ws.ID, ws.Workload)
		}
	}
	if completed != n || s.Completed != n || s.Queued != 0 {
		t.Errorf("Stats at the end: %d completed by the workers, %d in all, %d queued; want %d, %d, 0", completed, s.Completed, s.Queued, n, n)
	}
}

// endingCtx is a ctx whose Err reports it ended once end is called, while
// its Done channel never closes: a caller's ctx that has ended, whose
// watch has not run yet.
type endingCtx struct {
	context.Context
	ended atomic.Bool
	done  chan struct{}
}

func newEndingCtx() *endingCtx {
	return &endingCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *endingCtx) end()                  { c.ended.Store(true) }
func (c *endingCtx) Done() <-chan struct{} { return c.done }
func (c *endingCtx) Err() error {
	if c.ended.Load() {
		return context.Canceled
	}
	return nil
}

// TestAQueuedWorkWhoseCallerGaveUpIsNotHandedASlot: the oldest queued work
// whose caller's ctx ended before its watch ran does not take the slot a
// work hands over: it ends cancelled without running, and the next queued
// work gets the slot.
func TestAQueuedWorkWhoseCallerGaveUpIsNotHandedASlot(t *testing.T) {
	ex := newSlotTaggedExecutor(t, 1)
	g := newGatedWorks(3)
	f0, err := Submit(context.Background(), ex, g.work, 0)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "work 0 starts", func() bool { return g.started(0) })
	ctx := newEndingCtx()
	f1, err := Submit(ctx, ex, g.work, 1)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := Submit(context.Background(), ex, g.work, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx.end()
	close(g.gates[0])
	close(g.gates[2])
	if _, err := f1.Get(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("work 1, whose caller gave up while it was queued: %v, want context.Canceled", err)
	}
	for i, f := range []*Future[int]{f0, f2} {
		if v, err := f.Get(context.Background()); err != nil || v != 2*i {
			t.Errorf("work %d: %v, %v", 2*i, v, err)
		}
	}
	if g.started(1) {
		t.Error("work 1 ran after its caller gave up")
	}
	if got, want := g.where(2), g.where(0); got.goroutine != want.goroutine {
		t.Errorf("work 2 ran on goroutine %d, want work 0's (%d), which freed the slot", got.goroutine, want.goroutine)
	}
	close(ctx.done) // ends the watch's goroutine, if one is left
	testutil.WaitFor(t, "the slot is free", func() bool { return ex.Stats().Running == 0 })
}
