package aplex_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aplex-go/aplex"
)

// capacityProbe is a work that counts how many of its runs overlap, per
// worker and in total, and blocks until released.
type capacityProbe struct {
	release chan struct{}
	mu      sync.Mutex
	now     int
	peak    int
	started atomic.Int32
	work    *aplex.Work[int, int]
}

func newCapacityProbe() *capacityProbe {
	p := &capacityProbe{release: make(chan struct{})}
	p.work = aplex.Fn(func(ctx context.Context, x int) (int, error) {
		p.mu.Lock()
		p.now++
		p.peak = max(p.peak, p.now)
		p.mu.Unlock()
		p.started.Add(1)
		defer func() {
			p.mu.Lock()
			p.now--
			p.mu.Unlock()
		}()
		select {
		case <-p.release:
			return x, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	return p
}

// TestResizeThreadGrowsAndShrinksUnderLoad: growing uses the new workers
// at once, shrinking lets the retired ones finish what they hold, no work
// fails, and the capacity in force is never exceeded.
func TestResizeThreadGrowsAndShrinksUnderLoad(t *testing.T) {
	ctx := ctxT(t)
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(1))
	p := newCapacityProbe()
	var fs []*aplex.Future[int]
	for i := range 10 {
		fs = append(fs, mustSubmit(t, ex, p.work, i))
	}
	waitFor(t, "2 works running", func() bool { return p.started.Load() == 2 })

	if err := ex.Resize(ctx, 4); err != nil {
		t.Fatalf("Resize(4): %v", err)
	}
	waitFor(t, "4 works running after growing", func() bool { return p.started.Load() == 4 })
	if s := ex.Stats(); s.Size != 4 || len(s.Workers) != 4 || s.Running != 4 {
		t.Fatalf("after Resize(4): Size %d, %d workers, %d running", s.Size, len(s.Workers), s.Running)
	}

	// Shrinking waits for the retired workers to finish their works.
	shrunk := make(chan error, 1)
	go func() { shrunk <- ex.Resize(ctx, 1) }()
	waitFor(t, "the shrink to take effect", func() bool { return ex.Stats().Size == 1 })
	select {
	case err := <-shrunk:
		t.Fatalf("Resize(1) returned (%v) while retired workers still held works", err)
	default:
	}
	close(p.release)
	if err := <-shrunk; err != nil {
		t.Fatalf("Resize(1): %v", err)
	}
	for i, f := range fs {
		if v := mustGet(t, f); v != i {
			t.Fatalf("work %d returned %d", i, v)
		}
	}
	p.mu.Lock()
	peak := p.peak
	p.mu.Unlock()
	if peak > 4 {
		t.Fatalf("%d works ran at once; the capacity was never above 4", peak)
	}
	s := ex.Stats()
	if s.Size != 1 || len(s.Workers) != 1 || s.Completed != 10 {
		t.Fatalf("after Resize(1): Size %d, workers %+v, completed %d", s.Size, s.Workers, s.Completed)
	}
}

// TestResizeValidation: bad sizes, a nil ctx and a closed executor are
// clear errors.
func TestResizeValidation(t *testing.T) {
	ctx := ctxT(t)
	ex := newThread(t, aplex.WithPoolSize(1))
	for _, n := range []int{0, -1} {
		if err := ex.Resize(ctx, n); err == nil {
			t.Errorf("Resize(%d): no error", n)
		}
	}
	//lint:ignore SA1012 a nil ctx is the bad input under test
	if err := ex.Resize(nil, 2); err == nil {
		t.Error("Resize(nil ctx): no error")
	}
	var nilEx *aplex.Executor
	if err := nilEx.Resize(ctx, 1); err == nil {
		t.Error("Resize on a nil executor: no error")
	}
	if err := ex.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ex.Resize(ctx, 2); !errors.Is(err, aplex.ErrClosed) {
		t.Errorf("Resize after Shutdown: %v, want ErrClosed", err)
	}
}

// TestResizeRacingShutdown: Resize calls racing each other and a graceful
// Shutdown all return, and every work ends.
func TestResizeRacingShutdown(t *testing.T) {
	ctx := ctxT(t)
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2))
	if err != nil {
		t.Fatal(err)
	}
	w := aplex.Fn(func(context.Context, int) (int, error) { return 1, nil })
	var fs []*aplex.Future[int]
	for i := range 50 {
		fs = append(fs, mustSubmit(t, ex, w, i))
	}
	var wg sync.WaitGroup
	for n := range 6 {
		wg.Go(func() {
			if err := ex.Resize(ctx, 1+n%4); err != nil && !errors.Is(err, aplex.ErrClosed) {
				t.Errorf("Resize(%d): %v", 1+n%4, err)
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
}

// TestResizeMovesFewAffinityKeys: with Affinity, growing the pool moves
// only the keys the new worker takes over, and shrinking back returns
// every key to its first worker (consistent hashing on slots).
func TestResizeMovesFewAffinityKeys(t *testing.T) {
	ctx := ctxT(t)
	ex := newThread(t, aplex.WithPoolSize(4), aplex.WithLoadBalancer(aplex.Affinity()), withWorkerID())
	where := aplex.Fn(func(ctx context.Context, _ int) (int, error) { return workerOf(ctx), nil })
	placement := func() map[int]int {
		m := map[int]int{}
		for key := range 400 {
			m[key] = mustGet(t, mustSubmit(t, ex, where, key, aplex.Meta(key)))
		}
		return m
	}
	before := placement()
	if err := ex.Resize(ctx, 5); err != nil {
		t.Fatal(err)
	}
	grown := placement()
	moved := 0
	for key, slot := range grown {
		if slot != before[key] {
			moved++
			if slot != 4 {
				t.Fatalf("key %d moved from worker %d to %d, not to the new worker 4", key, before[key], slot)
			}
		}
	}
	if moved == 0 || moved > 400/5*2 {
		t.Fatalf("%d of 400 keys moved to the new worker; consistent hashing moves about 80", moved)
	}
	if err := ex.Resize(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for key, slot := range placement() {
		if slot != before[key] {
			t.Fatalf("after shrinking back, key %d is on worker %d, was on %d", key, slot, before[key])
		}
	}
}
