package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The quiescence stress tests: several goroutines submit, try-submit,
// cancel futures, map, and cancel and replace the ctxs they submit under
// (shared by their works, some through a child that adds only a value),
// on executors of a few shapes; once every future has ended, the core must
// hold nothing for them (waitCoreIdle). They look for bookkeeping that
// drifts under concurrency, which single-threaded tests and the model
// test's one driver rarely reach: TestWorksUnderSharedCtxsLeaveTheCoreClean
// found the unwatched count's drift in a few dozen rounds.

// waitCoreIdle waits until ex's core holds nothing: no work queued,
// running or sent, no shared watch armed, no work counted as queued
// unwatched; it fails the test naming what is left.
func waitCoreIdle(t *testing.T, ex *Executor, round int) {
	t.Helper()
	c := ex.c
	state := func() (unwatched, queued, watches, jobs int, running int64) {
		c.mu.Lock()
		defer c.unlock()
		return c.unwatched, c.queue.len(), len(c.shared.byDone), len(c.jobs), c.running.Load()
	}
	idle := func() bool { u, q, s, j, r := state(); return u == 0 && q == 0 && s == 0 && j == 0 && r == 0 }
	if !waitUntil(idle, 5*time.Second) {
		u, q, s, j, r := state()
		t.Fatalf("round %d: once every future ended the core still counts %d works queued unwatched, %d queued, %d shared watches armed, %d jobs sent, %d running; want none", round, u, q, s, j, r)
	}
}

// callerCtxs gives a submitting goroutine the ctx its works share, which
// it may end and replace (next); stop ends them all.
type callerCtxs struct{ cancels []context.CancelFunc }

func (cs *callerCtxs) next() context.Context {
	if n := len(cs.cancels); n > 0 {
		cs.cancels[n-1]()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs.cancels = append(cs.cancels, cancel)
	return ctx
}

func (cs *callerCtxs) stop() {
	for _, cancel := range cs.cancels {
		cancel()
	}
}

// maybeChild returns ctx, or half the time a child of it that adds a value
// (same Done: the core watches both with one watch).
func maybeChild(rng *rand.Rand, ctx context.Context, i int) context.Context {
	if rng.IntN(2) == 0 {
		return context.WithValue(ctx, valueKey{}, i)
	}
	return ctx
}

// mapSome maps w over a few inputs and stops after a random number of
// results (or at the first error).
func mapSome(rng *rand.Rand, ctx context.Context, ex *Executor, w *Work[int, int], chunk int) {
	n, stop := 0, rng.IntN(8)
	for _, err := range Map(ctx, ex, w, slices.Values([]int{1, 2, 3, 4, 5, 6, 7}), ChunkSize(chunk)) {
		n++
		if err != nil || n == stop {
			break
		}
	}
}

// TestWorksUnderSharedCtxsLeaveTheCoreClean: bursts of Submits under
// shared ctxs that end now and then, on goroutine executors.
func TestWorksUnderSharedCtxsLeaveTheCoreClean(t *testing.T) {
	const rounds, submitters, each = 120, 3, 60
	for round := range rounds {
		ex, err := NewThreadExecutor(WithPoolSize(1+round%3), WithMaxWorksPerWorker(1+round%4))
		if err != nil {
			t.Fatal(err)
		}
		w := Fn(func(_ context.Context, x int) (int, error) {
			for range x % 5 { // works of a few lengths
				runtime.Gosched()
			}
			return x, nil
		})
		var wg sync.WaitGroup
		futures := make(chan *Future[int], submitters*each)
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				var cs callerCtxs
				defer cs.stop()
				ctx := cs.next()
				for i := range each {
					f, err := Submit(maybeChild(rng, ctx, i), ex, w, i)
					if err != nil {
						t.Error(err)
						return
					}
					futures <- f
					if rng.IntN(15) == 0 {
						ctx = cs.next()
					}
				}
			}()
		}
		wg.Wait()
		close(futures)
		for f := range futures {
			if v, err := f.Get(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: work %d: %v", round, v, err)
			}
		}
		waitCoreIdle(t, ex, round)
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMixedCallsLeaveTheCoreClean: Submits, TrySubmits (into a bounded
// queue on some executors), Deadlines, Cancels and Maps that stop early,
// under shared ctxs that end now and then, on goroutine executors.
func TestMixedCallsLeaveTheCoreClean(t *testing.T) {
	const rounds, submitters, steps = 80, 4, 50
	for round := range rounds {
		opts := []Option{WithPoolSize(1 + round%3), WithMaxWorksPerWorker(1 + round%4)}
		if round%5 == 0 {
			opts = append(opts, WithQueueSize(3))
		}
		ex, err := NewThreadExecutor(opts...)
		if err != nil {
			t.Fatal(err)
		}
		w := Fn(func(ctx context.Context, x int) (int, error) {
			for range x % 5 {
				runtime.Gosched()
			}
			if x%11 == 0 { // some watch their ctx
				select {
				case <-ctx.Done():
					return 0, ctx.Err()
				default:
				}
			}
			return x, nil
		})
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				var cs callerCtxs
				defer cs.stop()
				ctx := cs.next()
				var fs []*Future[int]
				for i := range steps {
					switch r := rng.IntN(20); {
					case r < 12:
						var co []CallOption
						if rng.IntN(6) == 0 {
							co = append(co, Deadline(time.Duration(1+rng.IntN(200))*time.Microsecond))
						}
						f, err := TrySubmit(maybeChild(rng, ctx, i), ex, w, i, co...)
						if errors.Is(err, ErrFull) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						fs = append(fs, f)
					case r < 14:
						if len(fs) > 0 {
							fs[rng.IntN(len(fs))].Cancel()
						}
					case r < 16:
						ctx = cs.next()
					default:
						mapSome(rng, ctx, ex, w, 1+rng.IntN(3))
					}
				}
				for _, f := range fs {
					<-f.Done()
				}
			}()
		}
		wg.Wait()
		waitCoreIdle(t, ex, round)
		if st := ex.Stats(); st.Running != 0 || st.Queued != 0 {
			t.Fatalf("round %d: Stats %+v once every work ended", round, st)
		}
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoteCallsLeaveTheCoreClean: the same on a remote executor (a
// transport of the test's, whose one worker answers every job, some as
// cancelled): Submits, Cancels and Maps of one-input chunks under shared
// ctxs that end now and then. Works sent stay in c.jobs, watched, until
// their answer; then nothing may be left.
func TestRemoteCallsLeaveTheCoreClean(t *testing.T) {
	const rounds, submitters, each = 60, 3, 40
	for round := range rounds {
		tr := &handTransport{}
		ex := startOver(t, tr)
		w := &Work[int, int]{name: "quiesce"}
		stopAnswering, answererDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(answererDone)
			rng := rand.New(rand.NewPCG(uint64(round), submitters))
			for {
				select {
				case id := <-tr.w.jobs:
					if rng.IntN(3) == 0 {
						answerCanceled(tr, id)
					} else {
						answerOK(t, tr, id)
					}
				case <-stopAnswering:
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				var cs callerCtxs
				defer cs.stop()
				ctx := cs.next()
				var fs []*Future[int]
				for i := range each {
					f, err := Submit(maybeChild(rng, ctx, i), ex, w, i)
					if err != nil {
						t.Error(err)
						return
					}
					fs = append(fs, f)
					switch rng.IntN(15) {
					case 0:
						ctx = cs.next()
					case 1:
						fs[rng.IntN(len(fs))].Cancel()
					case 2, 3:
						mapSome(rng, ctx, ex, w, 1)
					}
				}
				for _, f := range fs {
					<-f.Done()
				}
			}()
		}
		wg.Wait()
		waitCoreIdle(t, ex, round)
		close(stopAnswering)
		<-answererDone
		if err := ex.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResizesAmidCallsLeaveTheCoreClean: Resizes from the submitting
// goroutines themselves, between their Submits, Cancels and ctx ends;
// once every future has ended, the core holds nothing, a last Resize
// leaves exactly its workers (none retiring), and the totals in Stats
// still cover what every live worker counted.
func TestResizesAmidCallsLeaveTheCoreClean(t *testing.T) {
	const rounds, submitters, steps = 60, 3, 60
	for round := range rounds {
		ex, err := NewThreadExecutor(WithPoolSize(1+round%3), WithMaxWorksPerWorker(1+round%4))
		if err != nil {
			t.Fatal(err)
		}
		w := Fn(func(_ context.Context, x int) (int, error) {
			for range x % 7 {
				runtime.Gosched()
			}
			return x, nil
		})
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				var cs callerCtxs
				defer cs.stop()
				ctx := cs.next()
				var fs []*Future[int]
				for i := range steps {
					switch r := rng.IntN(20); {
					case r < 14:
						f, err := Submit(maybeChild(rng, ctx, i), ex, w, i)
						if err != nil {
							t.Error(err)
							return
						}
						fs = append(fs, f)
					case r < 16:
						ctx = cs.next()
					case r < 18:
						if len(fs) > 0 {
							fs[rng.IntN(len(fs))].Cancel()
						}
					default:
						if err := ex.Resize(context.Background(), 1+rng.IntN(4)); err != nil {
							t.Error(err)
							return
						}
					}
				}
				for _, f := range fs {
					if _, err := f.Get(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		waitCoreIdle(t, ex, round)
		if err := ex.Resize(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		st := ex.Stats()
		c := ex.c
		c.mu.Lock()
		retiring, live, workers := len(c.retiring), len(c.liveSlotsLocked()), len(c.workers)
		c.unlock()
		if st.Size != 2 || len(st.Workers) != 2 || retiring != 0 || live != 2 || workers != 2 {
			t.Fatalf("round %d: after Resize(2): Size %d, %d workers in Stats, %d retiring, %d live slots, %d workers in the balancer's view", round, st.Size, len(st.Workers), retiring, live, workers)
		}
		var counted uint64
		for _, ws := range st.Workers {
			counted += ws.Completed + ws.Failed + ws.Cancelled
		}
		if total := st.Completed + st.Failed + st.Cancelled; total < counted {
			t.Fatalf("round %d: Stats totals %d below the live workers' %d", round, total, counted)
		}
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// obsID keys a work's id in its caller's ctx, for seqObserver.
type obsID struct{}

// seqObserver records the events of each work whose ctx carries an obsID.
type seqObserver struct {
	mu   sync.Mutex
	seqs map[int][]WorkEvent
}

func (o *seqObserver) ObserveWork(ctx context.Context, e WorkEvent) context.Context {
	id, ok := ctx.Value(obsID{}).(int)
	if ok {
		o.mu.Lock()
		o.seqs[id] = append(o.seqs[id], e)
		o.mu.Unlock()
	}
	return ctx
}
func (o *seqObserver) ObserveWorker(WorkerEvent) {}

// TestObserverSeesEachWorkInOrderUnderConcurrency: TrySubmits (some
// refused by a bounded queue, some with a Deadline), Cancels and ctx ends
// from several goroutines, on an observed goroutine executor; every work
// gets WorkQueued, at most one WorkStarted, then one WorkFinished, whose
// Outcome says how its future ended (rejected, cancelled, OK, failed).
func TestObserverSeesEachWorkInOrderUnderConcurrency(t *testing.T) {
	for round := range 80 {
		ob := &seqObserver{seqs: map[int][]WorkEvent{}}
		opts := []Option{WithPoolSize(1 + round%3), WithMaxWorksPerWorker(1 + round%4), WithObserver(ob)}
		if round%5 == 0 {
			opts = append(opts, WithQueueSize(3))
		}
		ex, err := NewThreadExecutor(opts...)
		if err != nil {
			t.Fatal(err)
		}
		w := Fn(func(ctx context.Context, x int) (int, error) {
			for range x % 5 {
				runtime.Gosched()
			}
			if x%4 == 0 {
				return 0, errors.New("plain")
			}
			return x, nil
		})
		var wg sync.WaitGroup
		type rec struct {
			id int
			f  *Future[int]
		}
		var mu sync.Mutex
		var recs []rec
		for g := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				var cs callerCtxs
				defer cs.stop()
				ctx := cs.next()
				for i := range 50 {
					id := g*1000 + i
					switch r := rng.IntN(20); {
					case r < 14:
						var co []CallOption
						if rng.IntN(6) == 0 {
							co = append(co, Deadline(time.Duration(1+rng.IntN(200))*time.Microsecond))
						}
						f, err := TrySubmit(context.WithValue(ctx, obsID{}, id), ex, w, i, co...)
						if err != nil {
							if !errors.Is(err, ErrFull) {
								t.Error(err)
								return
							}
							mu.Lock()
							recs = append(recs, rec{id, nil})
							mu.Unlock()
							continue
						}
						mu.Lock()
						recs = append(recs, rec{id, f})
						mu.Unlock()
					case r < 16:
						ctx = cs.next()
					default:
						mu.Lock()
						if len(recs) > 0 {
							if f := recs[rng.IntN(len(recs))].f; f != nil {
								f.Cancel()
							}
						}
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		for _, r := range recs {
			if r.f != nil {
				<-r.f.Done()
			}
		}
		waitCoreIdle(t, ex, round)
		// WorkFinished comes before the future ends, but the last
		// callbacks may still run: wait until every work has its end.
		waitUntil(func() bool {
			ob.mu.Lock()
			defer ob.mu.Unlock()
			for _, r := range recs {
				s := ob.seqs[r.id]
				if len(s) == 0 || s[len(s)-1].Kind != WorkFinished {
					return false
				}
			}
			return true
		}, 2*time.Second)
		ob.mu.Lock()
		for _, r := range recs {
			s := ob.seqs[r.id]
			kinds := []WorkEventKind{}
			for _, e := range s {
				kinds = append(kinds, e.Kind)
			}
			ok := len(s) >= 2 && s[0].Kind == WorkQueued && s[len(s)-1].Kind == WorkFinished && (len(s) == 2 || len(s) == 3 && s[1].Kind == WorkStarted)
			if !ok {
				t.Errorf("round %d work %d (future %v): events %v", round, r.id, r.f != nil, kinds)
				continue
			}
			fin := s[len(s)-1]
			if r.f == nil {
				if fin.Outcome != OutcomeRejected {
					t.Errorf("round %d work %d rejected but outcome %v", round, r.id, fin.Outcome)
				}
				continue
			}
			_, err := r.f.Get(context.Background())
			switch {
			case r.f.Cancelled():
				if fin.Outcome != OutcomeCancelled {
					t.Errorf("round %d work %d cancelled (%v) but outcome %v (%v)", round, r.id, err, fin.Outcome, fin.Err)
				}
			case err == nil:
				if fin.Outcome != OutcomeOK {
					t.Errorf("round %d work %d ok but outcome %v", round, r.id, fin.Outcome)
				}
			default:
				if fin.Outcome != OutcomeFailed {
					t.Errorf("round %d work %d failed (%v) but outcome %v", round, r.id, err, fin.Outcome)
				}
			}
		}
		ob.mu.Unlock()
		if t.Failed() {
			return
		}
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
