package engine

import (
	"context"
	"errors"
	"iter"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
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
// running, sent or sent ahead, no shared watch armed, no work counted as
// queued unwatched; it fails the test naming what is left.
func waitCoreIdle(t *testing.T, ex *Executor, round int) {
	t.Helper()
	c := ex.c
	state := func() (unwatched, queued, watches, jobs, ahead int, running int64) {
		c.mu.Lock()
		defer c.unlock()
		return c.unwatched, c.queue.len(), len(c.shared.byDone), len(c.jobs), c.prefetched, c.running.Load()
	}
	idle := func() bool {
		u, q, s, j, a, r := state()
		return u == 0 && q == 0 && s == 0 && j == 0 && a == 0 && r == 0
	}
	if !waitUntil(idle, 5*time.Second) {
		u, q, s, j, a, r := state()
		t.Fatalf("round %d: once every future ended the core still counts %d works queued unwatched, %d queued, %d shared watches armed, %d jobs sent, %d sent ahead, %d running; want none", round, u, q, s, j, a, r)
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

// submitter is one of a test's submitting goroutines: its number, its
// random source (seeded by the round and the number) and the ctxs its works
// share (callerCtxs, ended when it returns).
type submitter struct {
	g   int
	rng *rand.Rand
	cs  *callerCtxs
}

// submit submits w(i) under ctx, or half the time under a child of it
// that adds a value (maybeChild), and keeps the future in fs; false if
// Submit failed, which fails the test.
func (s submitter) submit(t *testing.T, ex *Executor, w *Work[int, int], ctx context.Context, i int, fs *[]*Future[int]) bool {
	f, err := Submit(maybeChild(s.rng, ctx, i), ex, w, i)
	if err != nil {
		t.Error(err)
		return false
	}
	*fs = append(*fs, f)
	return true
}

// runSubmitters runs n submitting goroutines of a round and waits for all.
func runSubmitters(round, n int, body func(s submitter)) {
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := &callerCtxs{}
			defer cs.stop()
			body(submitter{g: g, rng: rand.New(rand.NewPCG(uint64(round), uint64(g))), cs: cs})
		}()
	}
	wg.Wait()
}

// spinWork returns a work that yields x%n times (works of a few lengths)
// and, for every x%11 == 0, returns its ctx's error if the ctx has ended.
func spinWork(n int) *Work[int, int] {
	return Fn(func(ctx context.Context, x int) (int, error) {
		for range x % n {
			runtime.Gosched()
		}
		if x%11 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		return x, nil
	})
}

// endAll waits for every future to end, failing the test for an error
// other than a cancellation (of the future or of its caller's ctx).
func endAll(t *testing.T, fs []*Future[int]) {
	for _, f := range fs {
		if _, err := f.Get(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}
}

// newShapedExecutor returns a goroutine executor of a round's shape: 1–3
// workers of 1–4 works, and with bounded set every fifth round, a queue
// of 3.
func newShapedExecutor(t *testing.T, round int, bounded bool, opts ...Option) *Executor {
	opts = append(opts, WithPoolSize(1+round%3), WithMaxWorksPerWorker(1+round%4))
	if bounded && round%5 == 0 {
		opts = append(opts, WithQueueSize(3))
	}
	ex, err := NewThreadExecutor(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// threadRounds runs the rounds of a quiescence test on goroutine
// executors: each round makes one (newEx), runs n submitters on it (body),
// waits until its core holds nothing, runs check if not nil, and shuts it
// down.
func threadRounds(t *testing.T, rounds, n int, newEx func(round int) *Executor, body func(ex *Executor, s submitter), check func(ex *Executor, round int)) {
	t.Helper()
	for round := range rounds {
		ex := newEx(round)
		runSubmitters(round, n, func(s submitter) { body(ex, s) })
		waitCoreIdle(t, ex, round)
		if check != nil {
			check(ex, round)
		}
		if t.Failed() {
			return
		}
		if err := ex.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWorksUnderSharedCtxsLeaveTheCoreClean: bursts of Submits under
// shared ctxs that end now and then, on goroutine executors.
func TestWorksUnderSharedCtxsLeaveTheCoreClean(t *testing.T) {
	const each = 60
	w := spinWork(5)
	shaped := func(round int) *Executor { return newShapedExecutor(t, round, false) }
	threadRounds(t, 120, 3, shaped, func(ex *Executor, s submitter) {
		ctx := s.cs.next()
		var fs []*Future[int]
		for i := range each {
			if !s.submit(t, ex, w, ctx, i, &fs) {
				return
			}
			if s.rng.IntN(15) == 0 {
				ctx = s.cs.next()
			}
		}
		endAll(t, fs)
	}, nil)
}

// TestMixedCallsLeaveTheCoreClean: Submits, TrySubmits (into a bounded
// queue on some executors), Deadlines, Cancels and Maps that stop early,
// under shared ctxs that end now and then, on goroutine executors.
func TestMixedCallsLeaveTheCoreClean(t *testing.T) {
	const steps = 50
	w := spinWork(5)
	shaped := func(round int) *Executor { return newShapedExecutor(t, round, true) }
	threadRounds(t, 80, 4, shaped, func(ex *Executor, s submitter) {
		ctx := s.cs.next()
		var fs []*Future[int]
		for i := range steps {
			switch r := s.rng.IntN(20); {
			case r < 12:
				var co []CallOption
				if s.rng.IntN(6) == 0 {
					co = append(co, Deadline(time.Duration(1+s.rng.IntN(200))*time.Microsecond))
				}
				f, err := TrySubmit(maybeChild(s.rng, ctx, i), ex, w, i, co...)
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
					fs[s.rng.IntN(len(fs))].Cancel()
				}
			case r < 16:
				ctx = s.cs.next()
			default:
				mapSome(s.rng, ctx, ex, w, 1+s.rng.IntN(3))
			}
		}
		for _, f := range fs {
			<-f.Done() // a Deadline's end is an outcome too
		}
	}, func(ex *Executor, round int) {
		if st := ex.Stats(); st.Running != 0 || st.Queued != 0 {
			t.Errorf("round %d: Stats %+v once every work ended", round, st)
		}
	})
}

// TestRemoteCallsLeaveTheCoreClean: the same on a remote executor (a
// transport of the test's, whose one worker answers every job, some as
// cancelled): Submits, Cancels and Maps of one-input chunks under shared
// ctxs that end now and then. Works sent stay in c.jobs, watched, until
// their answer; then nothing may be left.
func TestRemoteCallsLeaveTheCoreClean(t *testing.T) {
	const rounds, submitters, each = 60, 3, 40
	var sawAhead atomic.Bool
	defer func() {
		if !t.Failed() && !sawAhead.Load() {
			t.Error("no work was ever sent ahead: the prefetch rounds test nothing")
		}
	}()
	for round := range rounds {
		tr := &handTransport{}
		var opts []Option
		if round%2 == 1 {
			// Half the works are sent ahead of a free slot, and the
			// worker says most of them started before it answers.
			opts = []Option{WithMaxWorksPerWorker(4), WithPrefetch(4)}
		}
		ex := startOver(t, tr, opts...)
		w := &Work[int, int]{name: "quiesce"}
		stopAnswering, answererDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(answererDone)
			rng := rand.New(rand.NewPCG(uint64(round), submitters))
			for {
				select {
				case id := <-tr.w.jobs:
					st := ex.Stats()
					if st.Prefetched > st.Running || st.Prefetched < 0 {
						t.Errorf("round %d: Stats.Prefetched %d with %d running", round, st.Prefetched, st.Running)
					}
					if st.Prefetched > 0 {
						sawAhead.Store(true)
					}
					if rng.IntN(4) != 0 {
						tr.sink.Started(tr.w, []uint64{id})
					}
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
		runSubmitters(round, submitters, func(s submitter) {
			ctx := s.cs.next()
			var fs []*Future[int]
			for i := range each {
				if !s.submit(t, ex, w, ctx, i, &fs) {
					return
				}
				switch s.rng.IntN(15) {
				case 0:
					ctx = s.cs.next()
				case 1:
					fs[s.rng.IntN(len(fs))].Cancel()
				case 2, 3:
					mapSome(s.rng, ctx, ex, w, 1)
				}
			}
			for _, f := range fs {
				<-f.Done() // answered as cancelled: an outcome too
			}
		})
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
	const steps = 60
	w := spinWork(7)
	shaped := func(round int) *Executor { return newShapedExecutor(t, round, false) }
	threadRounds(t, 60, 3, shaped, func(ex *Executor, s submitter) {
		ctx := s.cs.next()
		var fs []*Future[int]
		for i := range steps {
			switch r := s.rng.IntN(20); {
			case r < 14:
				if !s.submit(t, ex, w, ctx, i, &fs) {
					return
				}
			case r < 16:
				ctx = s.cs.next()
			case r < 18:
				if len(fs) > 0 {
					fs[s.rng.IntN(len(fs))].Cancel()
				}
			default:
				if err := ex.Resize(context.Background(), 1+s.rng.IntN(4)); err != nil {
					t.Error(err)
					return
				}
			}
		}
		endAll(t, fs)
	}, func(ex *Executor, round int) {
		if err := ex.Resize(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		st := ex.Stats()
		c := ex.c
		c.mu.Lock()
		retiring, live, workers := len(c.retiring), len(c.liveSlotsLocked()), len(c.workers)
		c.unlock()
		if st.Size != 2 || len(st.Workers) != 2 || retiring != 0 || live != 2 || workers != 2 {
			t.Errorf("round %d: after Resize(2): Size %d, %d workers in Stats, %d retiring, %d live slots, %d workers in the balancer's view", round, st.Size, len(st.Workers), retiring, live, workers)
		}
		var counted uint64
		for _, ws := range st.Workers {
			counted += ws.Completed + ws.Failed + ws.Cancelled
		}
		if total := st.Completed + st.Failed + st.Cancelled; total < counted {
			t.Errorf("round %d: Stats totals %d below the live workers' %d", round, total, counted)
		}
	})
}

// obsID keys a work's id in its caller's ctx, for seqObserver.
type obsID struct{}

// seqObserver records the events of each work whose ctx carries an obsID.
type seqObserver struct {
	mu   sync.Mutex
	seqs map[int][]WorkEvent
}

func (o *seqObserver) ObserveWork(ctx context.Context, e WorkEvent) context.Context {
	if id, ok := ctx.Value(obsID{}).(int); ok {
		o.mu.Lock()
		o.seqs[id] = append(o.seqs[id], e)
		o.mu.Unlock()
	}
	return ctx
}

func (o *seqObserver) ObserveWorker(WorkerEvent) {}

// ended reports whether every work of ids has had its WorkFinished.
func (o *seqObserver) ended(ids []int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range ids {
		s := o.seqs[id]
		if len(s) == 0 || s[len(s)-1].Kind != WorkFinished {
			return false
		}
	}
	return true
}

// observedCalls is the body of a submitting goroutine of the observer
// tests: it submits works (submit: Submit or TrySubmit, ErrFull allowed)
// tagged with their id (obsID) under its caller's ctx, ends that ctx now
// and then, cancels some, and waits for its futures; record keeps each
// work's future by id (nil: refused).
func (s submitter) observedCalls(t *testing.T, steps int, submit func(ctx context.Context, i int) (*Future[int], error), record func(id int, f *Future[int])) {
	ctx := s.cs.next()
	var fs []*Future[int]
	for i := range steps {
		switch r := s.rng.IntN(20); {
		case r < 14:
			id := s.g*1000 + i
			f, err := submit(context.WithValue(ctx, obsID{}, id), i)
			if err != nil && !errors.Is(err, ErrFull) {
				t.Error(err)
				return
			}
			record(id, f)
			if f != nil {
				fs = append(fs, f)
			}
		case r < 16:
			ctx = s.cs.next()
		default:
			if len(fs) > 0 {
				fs[s.rng.IntN(len(fs))].Cancel()
			}
		}
	}
	for _, f := range fs {
		<-f.Done()
	}
}

// TestObserverSeesEachWorkInOrderUnderConcurrency: TrySubmits (some
// refused by a bounded queue, some with a Deadline), Cancels and ctx ends
// from several goroutines, on an observed goroutine executor; every work
// gets WorkQueued, at most one WorkStarted, then one WorkFinished, whose
// Outcome says how its future ended (rejected, cancelled, OK, failed).
func TestObserverSeesEachWorkInOrderUnderConcurrency(t *testing.T) {
	const steps = 50
	w := Fn(func(_ context.Context, x int) (int, error) {
		for range x % 5 {
			runtime.Gosched()
		}
		if x%4 == 0 {
			return 0, errors.New("plain")
		}
		return x, nil
	})
	var ob *seqObserver
	var mu sync.Mutex
	var futures map[int]*Future[int] // by id; nil: refused (ErrFull)
	observed := func(round int) *Executor {
		ob, futures = &seqObserver{seqs: map[int][]WorkEvent{}}, map[int]*Future[int]{}
		return newShapedExecutor(t, round, true, WithObserver(ob))
	}
	threadRounds(t, 80, 3, observed, func(ex *Executor, s submitter) {
		s.observedCalls(t, steps, func(ctx context.Context, i int) (*Future[int], error) {
			var co []CallOption
			if s.rng.IntN(6) == 0 {
				co = append(co, Deadline(time.Duration(1+s.rng.IntN(200))*time.Microsecond))
			}
			return TrySubmit(ctx, ex, w, i, co...)
		}, func(id int, f *Future[int]) {
			mu.Lock()
			futures[id] = f
			mu.Unlock()
		})
	}, func(_ *Executor, round int) {
		// WorkFinished comes before its future ends, but the last events
		// may still be on their way: wait until every work has its end.
		ids := slices.Collect(maps.Keys(futures))
		waitUntil(func() bool { return ob.ended(ids) }, 2*time.Second)
		ob.mu.Lock()
		defer ob.mu.Unlock()
		for id, f := range futures {
			checkWorkEvents(t, round, id, f, ob.seqs[id])
		}
	})
}

// checkWorkEvents checks one work's events against its future (nil: the
// work was refused).
func checkWorkEvents(t *testing.T, round, id int, f *Future[int], s []WorkEvent) {
	t.Helper()
	var kinds []WorkEventKind
	for _, e := range s {
		kinds = append(kinds, e.Kind)
	}
	inOrder := len(s) >= 2 && s[0].Kind == WorkQueued && s[len(s)-1].Kind == WorkFinished &&
		(len(s) == 2 || len(s) == 3 && s[1].Kind == WorkStarted)
	if !inOrder {
		t.Errorf("round %d, work %d: events %v; want Queued, at most one Started, Finished", round, id, kinds)
		return
	}
	want := OutcomeRejected
	if f != nil {
		_, err := f.Get(context.Background())
		switch {
		case f.Cancelled():
			want = OutcomeCancelled
		case err == nil:
			want = OutcomeOK
		default:
			want = OutcomeFailed
		}
	}
	if got := s[len(s)-1].Outcome; got != want {
		t.Errorf("round %d, work %d: finished with outcome %v (%v); its future says %v", round, id, got, s[len(s)-1].Err, want)
	}
}

// TestMapsLeaveTheCoreClean: ordered and unordered Maps of up to 600
// inputs (the reader's ring grows past its first 64), of chunks of 1–5,
// some with a window of 1–4 chunks, run from several goroutines at once;
// some stop early, some have their ctx ended midway. Each yields its
// inputs' results in order (ordered) or each once (unordered), all of
// them unless stopped, and the core holds nothing once they are done.
func TestMapsLeaveTheCoreClean(t *testing.T) {
	w := spinWork(5)
	shaped := func(round int) *Executor { return newShapedExecutor(t, round, false) }
	threadRounds(t, 30, 3, shaped, func(ex *Executor, s submitter) {
		for range 6 {
			ctx := s.cs.next()
			n := s.rng.IntN(600)
			in := func(yield func(int) bool) {
				for i := range n {
					if i%97 == 0 {
						runtime.Gosched()
					}
					if !yield(i) {
						return
					}
				}
			}
			opts := []CallOption{ChunkSize(1 + s.rng.IntN(5))}
			if s.rng.IntN(2) == 0 {
				opts = append(opts, Window(1+s.rng.IntN(4)))
			}
			stop := -1
			if s.rng.IntN(3) == 0 {
				stop = s.rng.IntN(n + 1)
			}
			cancelAt := -1
			if s.rng.IntN(4) == 0 {
				cancelAt = s.rng.IntN(n + 1)
			}
			var seq iter.Seq2[int, error]
			ordered := s.rng.IntN(2) == 0
			if ordered {
				seq = Map(ctx, ex, w, iter.Seq[int](in), opts...)
			} else {
				seq = MapUnordered(ctx, ex, w, iter.Seq[int](in), opts...)
			}
			got := 0
			seen := make([]bool, n)
			for v, err := range seq {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("map error: %v", err)
					}
					break
				}
				if ordered && v != got {
					t.Errorf("ordered map yielded %d at %d", v, got)
					return
				}
				if v < 0 || v >= n || seen[v] {
					t.Errorf("map yielded %d (n %d) twice or out of range", v, n)
					return
				}
				seen[v] = true
				got++
				if got == stop {
					break
				}
				if got == cancelAt {
					s.cs.next() // ends the Map's ctx
				}
			}
			if stop < 0 && cancelAt < 0 && got != n {
				t.Errorf("map yielded %d of %d", got, n)
			}
		}
	}, nil)
}

// TestGetsThatTimeOutLeaveTheCoreClean: Gets whose ctx ends in
// microseconds, again and again while their works run (a parked Get gives
// its node up, or leaves it to the work's end), some Cancels between them,
// then AsCompleted and Wait(FirstCompleted) over the same futures, stopped
// early, from several goroutines; every Get returns its work's result or
// a cancellation, and the core holds nothing afterwards.
func TestGetsThatTimeOutLeaveTheCoreClean(t *testing.T) {
	w := spinWork(9)
	shaped := func(round int) *Executor { return newShapedExecutor(t, round, false) }
	threadRounds(t, 40, 4, shaped, func(ex *Executor, s submitter) {
		ctx := s.cs.next()
		var fs []*Future[int]
		for i := range 40 {
			if !s.submit(t, ex, w, ctx, i, &fs) {
				return
			}
		}
		for i, f := range fs {
			for {
				gctx, cancel := context.WithTimeout(context.Background(), time.Duration(s.rng.IntN(30))*time.Microsecond)
				v, err := f.Get(gctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && !f.t.finished() {
					if s.rng.IntN(20) == 0 {
						f.Cancel()
					}
					continue
				}
				if err == nil && v != i {
					t.Errorf("work %d returned %d", i, v)
				}
				if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("work %d: %v", i, err)
				}
				break
			}
		}
		// AsCompleted and Wait over the same futures, stopped early.
		aw := make([]Awaitable, len(fs))
		for i, f := range fs {
			aw[i] = f
		}
		n := 0
		for _, err := range AsCompleted(context.Background(), aw...) {
			if err != nil {
				t.Error(err)
			}
			if n++; n == 5 {
				break
			}
		}
		if _, _, err := Wait(context.Background(), FirstCompleted, aw...); err != nil {
			t.Error(err)
		}
	}, nil)
}

// TestObserverSeesEachPrefetchedWorkInOrder: on a remote executor with a
// prefetch, whose worker reports most starts (Started) before it answers,
// some after a Cancel or the end of the caller's ctx, every work gets
// WorkQueued, at most one WorkStarted, then one WorkFinished whose Outcome
// says how its future ended: a start heard after the future ended is not
// reported.
func TestObserverSeesEachPrefetchedWorkInOrder(t *testing.T) {
	const rounds, submitters, steps = 40, 3, 40
	for round := range rounds {
		ob := &seqObserver{seqs: map[int][]WorkEvent{}}
		tr := &handTransport{}
		ex := startOver(t, tr, WithMaxWorksPerWorker(3), WithPrefetch(3), WithObserver(ob))
		w := &Work[int, int]{name: "observed"}
		stopAnswering, answererDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(answererDone)
			rng := rand.New(rand.NewPCG(uint64(round), 7))
			var started []uint64 // received, not answered yet
			lateStart := map[uint64]bool{}
			answer := func(id uint64) {
				if lateStart[id] {
					// Its start heard only now: its future may have
					// ended meanwhile (a Cancel, its caller's ctx).
					delete(lateStart, id)
					tr.sink.Started(tr.w, []uint64{id})
				}
				if rng.IntN(3) == 0 {
					answerCanceled(tr, id)
				} else {
					answerOK(t, tr, id)
				}
			}
			for {
				select {
				case id := <-tr.w.jobs:
					switch rng.IntN(4) {
					case 0, 1:
						tr.sink.Started(tr.w, []uint64{id})
					case 2:
						lateStart[id] = true
					}
					// Answer some later, so that Cancels and ctx ends
					// come between a start and its answer.
					if started = append(started, id); len(started) > 2 || rng.IntN(2) == 0 {
						answer(started[0])
						started = started[1:]
					}
				case <-time.After(time.Millisecond):
					for _, id := range started {
						answer(id)
					}
					started = started[:0]
				case <-stopAnswering:
					for _, id := range started {
						answer(id)
					}
					return
				}
			}
		}()
		var mu sync.Mutex
		futures := map[int]*Future[int]{}
		runSubmitters(round, submitters, func(s submitter) {
			s.observedCalls(t, steps, func(ctx context.Context, i int) (*Future[int], error) {
				return Submit(ctx, ex, w, i)
			}, func(id int, f *Future[int]) {
				mu.Lock()
				futures[id] = f
				mu.Unlock()
			})
		})
		waitCoreIdle(t, ex, round)
		close(stopAnswering)
		<-answererDone
		ids := slices.Collect(maps.Keys(futures))
		waitUntil(func() bool { return ob.ended(ids) }, 2*time.Second)
		ob.mu.Lock()
		for id, f := range futures {
			checkWorkEvents(t, round, id, f, ob.seqs[id])
		}
		ob.mu.Unlock()
		if err := ex.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
}

// TestSuccessOfAWorkWhoseStartWasLostReportsItsStart: a work sent ahead
// of a free slot whose Started was lost (in a cluster, a NATS outage can
// lose it and deliver the result, sent after the executor's connection
// came back, before any resend) finished with WorkFinished OK and no
// WorkStarted, as if it never ran. A success says it ran: its WorkStarted
// now comes as its result arrives. A failure that a held work can get
// without running (its caller's deadline passed while held) says nothing:
// no WorkStarted.
func TestSuccessOfAWorkWhoseStartWasLostReportsItsStart(t *testing.T) {
	ob := &seqObserver{seqs: map[int][]WorkEvent{}}
	tr := &handTransport{}
	ex := startOver(t, tr, WithMaxWorksPerWorker(1), WithPrefetch(2), WithObserver(ob))
	defer ex.Close()
	w := &Work[int, int]{name: "observed"}
	var fs []*Future[int]
	var ids []uint64
	for i := range 3 { // the first runs; the other two are sent ahead
		f, err := Submit(context.WithValue(context.Background(), obsID{}, i), ex, w, i)
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
		ids = append(ids, <-tr.w.jobs)
	}
	answerOK(t, tr, ids[0])
	answerOK(t, tr, ids[1]) // its Started lost
	tr.sink.Done(tr.w, []wire.Result{{ID: ids[2], Items: []wire.Outcome{{Err: &wire.Error{Code: wire.CodeDeadline, Message: "context deadline exceeded"}}}}})
	for _, f := range fs {
		<-f.Done()
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for i, want := range [][]WorkEventKind{
		{WorkQueued, WorkStarted, WorkFinished},
		{WorkQueued, WorkStarted, WorkFinished},
		{WorkQueued, WorkFinished},
	} {
		var got []WorkEventKind
		for _, e := range ob.seqs[i] {
			got = append(got, e.Kind)
		}
		if !slices.Equal(got, want) {
			t.Errorf("work %d: events %v, want %v", i, got, want)
		}
	}
}
