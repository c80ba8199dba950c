// Package stresstest drives an executor with a bounded random mix of
// everything that can end a work at once (callers' deadlines and cancels,
// Deadline(d), Future.Cancel, works that ignore their ctx and cost their
// worker, Retry), Maps cut short every way, while the pool is resized and
// maybe shut down, then checks that every future and Map ended, that each
// work's observer events came in order, and that the executor counts
// nothing left. The fault suites of the root and cluster
// packages run it on each kind of executor.
package stresstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// The works: registered at package level, so worker processes (the test
// binary re-executed) register them too.
var (
	// Sleep sleeps ms milliseconds whatever its ctx says.
	Sleep = aplex.Register("stresstest.sleep", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})
	// CtxSleep sleeps ms milliseconds, or until its ctx ends.
	CtxSleep = aplex.Register("stresstest.ctx-sleep", func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
)

// Config is one stress run.
type Config struct {
	// Submitters is the number of goroutines submitting; For how long
	// they submit.
	Submitters int
	For        time.Duration
	// Sizes are the pool sizes a resizer goroutine picks from, every
	// 50–150ms; none: no resizing.
	Sizes []int
	// Retry: some works are submitted with Retry(2) (process and cluster).
	Retry bool
	// Stubborn: one work in Stubborn ignores its Deadline(5ms) for
	// StubbornFor, which costs its worker past the kill grace (process and
	// cluster); 0: none.
	Stubborn    int
	StubbornFor time.Duration
	// Mappers is the number of goroutines running Maps and MapUnordereds
	// meanwhile (chunked, windowed, some timed out, some abandoned early).
	Mappers int
	// Settle bounds the wait for every future once the submitters stop.
	Settle time.Duration
	// ShutdownWithin, if set, ends the run with a graceful Shutdown under
	// load instead: after For, with a ctx of this timeout, while the
	// submitters and the resizer go on until they see ErrClosed. It must
	// return nil or the ctx's error (works left were cancelled), and every
	// future still end.
	ShutdownWithin time.Duration
	// Seed makes the run's choices repeatable (not its timing).
	Seed uint64
}

// Run stresses ex, whose observer must be tr, as cfg says, and checks it.
// It returns how the futures ended, by kind, for the test's log.
func Run(t testing.TB, ex *aplex.Executor, tr *Tracker, cfg Config) map[string]int {
	t.Helper()
	var (
		mu sync.Mutex
		fs []*aplex.Future[int]
		wg sync.WaitGroup
	)
	stop := make(chan struct{})
	for g := range cfg.Submitters {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(g)))
		untilStopped(&wg, stop, func() bool {
			f, ok := submitOne(t, ex, r, cfg)
			if f != nil {
				mu.Lock()
				fs = append(fs, f)
				mu.Unlock()
			}
			time.Sleep(time.Duration(r.IntN(3)) * time.Millisecond)
			return ok
		})
	}
	mapped := map[string]int{} // how the Maps ended; under mu
	for g := range cfg.Mappers {
		r := rand.New(rand.NewPCG(cfg.Seed, 1<<33+uint64(g)))
		untilStopped(&wg, stop, func() bool {
			outcome, ok := mapOne(t, ex, r, cfg)
			mu.Lock()
			mapped[outcome]++
			mu.Unlock()
			return ok
		})
	}
	if len(cfg.Sizes) > 0 {
		r := rand.New(rand.NewPCG(cfg.Seed, 1<<32))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(50+r.IntN(100)) * time.Millisecond):
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.Settle)
				err := ex.Resize(ctx, cfg.Sizes[r.IntN(len(cfg.Sizes))])
				cancel()
				if errors.Is(err, aplex.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Resize: %v", err)
				}
			}
		})
	}
	time.Sleep(cfg.For)
	if cfg.ShutdownWithin > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWithin)
		err := ex.Shutdown(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown under load: %v", err)
		}
	}
	close(stop)
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Settle)
	defer cancel()
	counts := map[string]int{}
	for _, f := range fs {
		_, err := f.Get(ctx)
		if ctx.Err() != nil {
			t.Fatalf("a future did not end within %v of the last Submit; %+v", cfg.Settle, ex.Stats())
		}
		var we *aplex.WorkerError
		switch {
		case err == nil:
			counts["ok"]++
		case errors.Is(err, aplex.ErrClosed):
			counts["closed"]++ // cancelled by a Shutdown under load
		case errors.Is(err, context.Canceled):
			counts["cancelled"]++
		case errors.Is(err, context.DeadlineExceeded):
			counts["deadline"]++
		case errors.As(err, &we):
			counts["worker error"]++
			if counts["worker error"] <= 3 { // what cost a worker, for the log
				t.Logf("worker error: %v", err)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	counts["futures"] = len(fs)
	for outcome, n := range mapped {
		counts["Map "+outcome] = n
	}
	// A future ends before its worker hears of its cancel; the executor
	// counts the work until then.
	for s := ex.Stats(); s.Running != 0 || s.Queued != 0 || s.Prefetched != 0; s = ex.Stats() {
		if ctx.Err() != nil {
			t.Fatalf("the executor still counts works after every future ended: %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	if err := tr.Check(); err != nil {
		t.Error(err)
	}
	return counts
}

// untilStopped calls step over and over on a goroutine of wg, until stop
// is closed or step returns false.
func untilStopped(wg *sync.WaitGroup, stop <-chan struct{}, step func() bool) {
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !step() {
				return
			}
		}
	})
}

// submitOne submits one work as the run's mix says; ok false stops its
// submitter (a failure already reported).
func submitOne(t testing.TB, ex *aplex.Executor, r *rand.Rand, cfg Config) (f *aplex.Future[int], ok bool) {
	ctx := context.Background()
	var cancel context.CancelFunc
	var opts []aplex.CallOption
	switch r.IntN(6) {
	case 0:
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(30))*time.Millisecond)
	case 1:
		opts = append(opts, aplex.Deadline(time.Duration(1+r.IntN(20))*time.Millisecond))
	case 2:
		ctx, cancel = context.WithCancel(ctx)
	case 3:
		if cfg.Retry {
			opts = append(opts, aplex.Retry(2))
		}
	}
	var err error
	switch {
	case cfg.Stubborn > 0 && r.IntN(cfg.Stubborn) == 0:
		f, err = aplex.Submit(ctx, ex, Sleep, int(cfg.StubbornFor/time.Millisecond), aplex.Deadline(5*time.Millisecond))
	case r.IntN(4) == 0:
		f, err = aplex.Submit(ctx, ex, Sleep, r.IntN(15), opts...) // short: ignoring its ctx costs nothing
	default:
		f, err = aplex.Submit(ctx, ex, CtxSleep, r.IntN(25), opts...)
	}
	if err != nil {
		if cancel != nil {
			cancel()
		}
		switch {
		case ctx.Err() != nil:
			return nil, true // Submit refuses an ended ctx
		case errors.Is(err, aplex.ErrClosed) && cfg.ShutdownWithin > 0:
			return nil, false
		}
		t.Errorf("Submit: %v", err)
		return nil, false
	}
	if cancel != nil {
		d := time.Duration(r.IntN(20)) * time.Millisecond
		time.AfterFunc(d, cancel)
	}
	if r.IntN(10) == 0 {
		f.Cancel()
	}
	return f, true
}

// errMapHung is the cause of the bound Run puts on every Map.
var errMapHung = errors.New("stresstest: a Map did not end")

// mapOne runs one Map or MapUnordered of CtxSleep over up to 60 inputs,
// with a random ChunkSize, Window, Timeout, Retry, caller's deadline and
// early break, checks what it yields, and reports how it ended; ok false
// stops its mapper (a Shutdown under load, or a failure reported).
func mapOne(t testing.TB, ex *aplex.Executor, r *rand.Rand, cfg Config) (outcome string, ok bool) {
	inputs := make([]int, 1+r.IntN(60))
	for i := range inputs {
		inputs[i] = r.IntN(10)
	}
	opts := []aplex.CallOption{aplex.ChunkSize(1 + r.IntN(8)), aplex.Window(1 + r.IntN(6))}
	if r.IntN(4) == 0 {
		opts = append(opts, aplex.Timeout(time.Duration(1+r.IntN(50))*time.Millisecond))
	}
	if cfg.Retry && r.IntN(3) == 0 {
		opts = append(opts, aplex.Retry(2))
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), cfg.Settle, errMapHung)
	defer cancel()
	if r.IntN(4) == 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, time.Duration(r.IntN(50))*time.Millisecond)
		defer stop()
	}
	ordered := r.IntN(2) == 0
	mapper := aplex.MapUnordered[int, int]
	if ordered {
		mapper = aplex.Map[int, int]
	}
	breakAt := -1
	if r.IntN(4) == 0 {
		breakAt = r.IntN(len(inputs))
	}
	got := 0
	for v, err := range mapper(ctx, ex, CtxSleep, func(yield func(int) bool) {
		for _, in := range inputs {
			if !yield(in) {
				return
			}
		}
	}, opts...) {
		var we *aplex.WorkerError
		switch {
		case err == nil:
		case errors.Is(context.Cause(ctx), errMapHung):
			t.Errorf("a Map did not end within %v", cfg.Settle)
			return "hung", false
		case errors.Is(err, aplex.ErrClosed):
			if cfg.ShutdownWithin == 0 {
				t.Errorf("Map: %v", err)
			}
			return "closed", false
		case errors.Is(err, context.DeadlineExceeded):
			return "deadline", true
		case errors.Is(err, context.Canceled):
			return "cancelled", true
		case errors.As(err, &we):
			return "worker error", true
		default:
			t.Errorf("Map: %v", err)
			return "failed", false
		}
		if ordered && v != inputs[got] {
			t.Errorf("Map yielded %d as result %d, want %d", v, got, inputs[got])
			return "wrong", false
		}
		if got++; got == breakAt {
			return "abandoned", true
		}
	}
	if got != len(inputs) {
		t.Errorf("a Map ended after %d of %d results, with no error", got, len(inputs))
		return "short", false
	}
	return "ok", true
}

// Tracker is an aplex.Observer that gives each work an id (through the
// ctx its WorkQueued returns) and keeps its events, so that Check can
// tell each work's sequence apart.
type Tracker struct {
	mu   sync.Mutex
	next int
	ev   map[int][]aplex.WorkEvent
}

type trackKey struct{}

// ObserveWork records e (aplex.Observer).
func (tr *Tracker) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.ev == nil {
		tr.ev = map[int][]aplex.WorkEvent{}
	}
	if e.Kind == aplex.WorkQueued {
		tr.next++
		tr.ev[tr.next] = append(tr.ev[tr.next], e)
		return context.WithValue(ctx, trackKey{}, tr.next)
	}
	id, _ := ctx.Value(trackKey{}).(int) // 0: Check reports it
	tr.ev[id] = append(tr.ev[id], e)
	return ctx
}

// ObserveWorker ignores worker events (aplex.Observer).
func (tr *Tracker) ObserveWorker(aplex.WorkerEvent) {}

// Check reports works whose events are not WorkQueued, any number of
// WorkStarted (one per attempt), then one WorkFinished, with a work that
// succeeded having started; and events that named no queued work.
func (tr *Tracker) Check() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var errs []error
	if evs := tr.ev[0]; len(evs) > 0 {
		errs = append(errs, fmt.Errorf("%d events with no WorkQueued before them, the first %+v", len(evs), evs[0]))
	}
	for id, evs := range tr.ev {
		if id == 0 || len(errs) > 5 {
			continue
		}
		if !inOrder(evs) {
			errs = append(errs, fmt.Errorf("work %d: events %+v", id, evs))
		}
	}
	return errors.Join(errs...)
}

// inOrder reports whether one work's events came as Check requires.
func inOrder(evs []aplex.WorkEvent) bool {
	n := len(evs)
	if n < 2 || evs[0].Kind != aplex.WorkQueued || evs[n-1].Kind != aplex.WorkFinished {
		return false
	}
	for _, e := range evs[1 : n-1] {
		if e.Kind != aplex.WorkStarted {
			return false
		}
	}
	return evs[n-1].Outcome != aplex.OutcomeOK || evs[n-2].Kind == aplex.WorkStarted
}
