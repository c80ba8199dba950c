package engine

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// The randomized model test of the scheduler's invariants. A single driver
// goroutine submits, try-submits, cancels futures and callers' contexts,
// finishes works and (for remote executors) plays the transport: it answers
// jobs, refuses them, answers late or twice, loses, retires and replaces
// workers, makes workers unreachable for a while (xport.Unreachable) and
// lets time pass, so that the kill timers of cancelled jobs left
// unanswered fire, killing their worker or waiting for it to be
// reachable (the remote model's kill grace is short for that). Then it shuts the executor down (Shutdown with a random deadline,
// or Close) while it keeps doing all of that. On every step it checks:
//
//   - capacity is never exceeded, per worker and in total;
//   - dispatch is FIFO: when a work is first dispatched, no work submitted
//     before it still waits in the queue without ever having been dispatched;
//   - every future ends exactly once (OnDone runs once), with the right
//     value, and all have ended once Shutdown or Close has returned;
//   - Cancel() returned true exactly when the future ended cancelled by it;
//   - the Stats counters stay consistent with the futures that ended;
//   - the core's count of works queued unwatched (core.unwatched) is the
//     number of such works in its queue.
//
// A caller's ctx is the work's own, or one that several works share (as a
// request's ctx is), some of them through a child that adds only a value:
// those share one watch of the core's (ctxwatch.go).
//
// The driver's choices come from a seed, logged, so a failure can be
// replayed with -seed (interleavings of the executor's own goroutines are
// not replayed; the sequence of operations is).

var modelSeed = flag.Uint64("seed", 0, "seed of the model tests (0: from the clock)")

// modelRuns and modelSteps bound the model tests' work.
const (
	modelRuns  = 100
	modelSteps = 200
)

func TestModelThreadExecutor(t *testing.T) { runModel(t, false) }

func TestModelRemoteExecutor(t *testing.T) { runModel(t, true) }

func runModel(t *testing.T, remote bool) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed=%d)", seed, seed)
	runs := modelRuns
	if *modelSeed != 0 {
		runs = 1
	}
	var kills, postponed int64
	for run := range runs {
		s := seed + uint64(run)
		m := newModel(t, s, remote)
		if !m.play() {
			t.Fatalf("run %d failed; replay it with -seed=%d\n%s", run, s, strings.Join(m.failures(), "\n"))
		}
		if remote {
			kills += m.tr.kills.Load()
			postponed += m.tr.postponed.Load()
		}
	}
	if remote {
		t.Logf("kill timers: %d workers killed, %d kills postponed", kills, postponed)
	}
}

// mFuture is the model's record of one submitted work.
type mFuture struct {
	id        int
	f         *Future[int] // nil until Submit returned
	rejected  bool         // Submit returned an error
	fail      bool         // the work returns an error
	stubborn  bool         // the work ignores its ctx (thread)
	release   chan struct{}
	released  bool
	caller    *mCaller // the caller's ctx, if it can be cancelled
	callerOff bool     // the caller's ctx was cancelled
	cancelled int      // Cancel() calls that returned true
	sent      bool     // dispatched at least once
	sends     int      // remote: times sent to a worker
	retries   int      // remote: Retry(n)
	refusals  int      // remote: times a worker refused it
	started   bool     // thread: the work is running
	returned  bool     // thread: the work has returned
	onDone    atomic.Int32
	endedAt   time.Time
}

// mCaller is a caller's ctx that the driver may cancel: a work's own, or
// one that several works share.
type mCaller struct {
	ctx    context.Context
	cancel context.CancelFunc
	futs   []*mFuture // the works submitted under it (guarded by model.mu)
	shared bool
}

type model struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	remote bool

	pool, capacity, queue int
	killGrace             time.Duration
	ex                    *Executor
	w                     *Work[int, int]
	tr                    *fakeTransport

	mu       sync.Mutex // guards the fields below; never held while calling the executor
	futs     []*mFuture // by id
	callers  []*mCaller // shared callers' ctxs not cancelled yet
	errs     []string
	inWork   map[int]int // thread: works running per worker slot
	inTotal  int
	ended    atomic.Int64 // OnDone calls
	closing  bool
	shutDone time.Time
}

type slotKey struct{}

// childKey keys the value of a caller's ctx derived from a shared one.
type childKey struct{}

func newModel(t *testing.T, seed uint64, remote bool) *model {
	m := &model{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), remote: remote, inWork: map[int]int{}}
	m.pool = 1 + m.rng.IntN(3)
	m.capacity = 1 + m.rng.IntN(3)
	if m.rng.IntN(3) == 0 {
		m.queue = 1 + m.rng.IntN(4)
	}
	m.killGrace = time.Duration(20+m.rng.IntN(60)) * time.Millisecond
	if remote {
		// Short enough for kill timers to fire between the driver's
		// steps, and in its waits (tr.wait).
		m.killGrace = time.Duration(5+m.rng.IntN(15)) * time.Millisecond
	}
	opts := []Option{WithPoolSize(m.pool), WithMaxWorksPerWorker(m.capacity), WithQueueSize(m.queue), WithKillGrace(m.killGrace)}
	var err error
	if remote {
		cfg, e := buildConfig(kindProcess, opts)
		if e != nil {
			t.Fatal(e)
		}
		m.tr = &fakeTransport{m: m, live: map[int]*fakeWorker{}}
		m.ex, err = startRemote(cfg, m.tr)
		m.w = &Work[int, int]{name: "model.work"}
	} else {
		m.w = m.work()
		opts = append(opts, WithWorkerInit(func(ctx context.Context, w WorkerInfo) (context.Context, error) {
			return context.WithValue(ctx, slotKey{}, w.ID), nil
		}))
		m.ex, err = NewThreadExecutor(opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *model) failf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

func (m *model) failures() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.errs...)
}

func (m *model) failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.errs) > 0
}

// work is the thread executor's work: it checks capacity and FIFO when it
// starts and returns when the driver releases it (or its ctx ends, unless
// it is stubborn).
func (m *model) work() *Work[int, int] {
	return Fn(func(ctx context.Context, id int) (int, error) {
		slot := ctx.Value(slotKey{}).(int)
		m.mu.Lock()
		mf := m.futs[id]
		m.dispatchedLocked(mf)
		mf.started = true
		m.inWork[slot]++
		m.inTotal++
		if m.inWork[slot] > m.capacity {
			m.errs = append(m.errs, fmt.Sprintf("worker %d runs %d works; capacity %d", slot, m.inWork[slot], m.capacity))
		}
		if m.inTotal > m.pool*m.capacity {
			m.errs = append(m.errs, fmt.Sprintf("%d works run; total capacity %d", m.inTotal, m.pool*m.capacity))
		}
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			m.inWork[slot]--
			m.inTotal--
			mf.returned = true
			m.mu.Unlock()
		}()
		if mf.stubborn {
			<-mf.release
		} else {
			select {
			case <-mf.release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if mf.fail {
			return 0, fmt.Errorf("work %d failed", id)
		}
		return 2 * id, nil
	})
}

// dispatchedLocked checks FIFO order when mf is dispatched: every work
// submitted before it was dispatched already, or left the queue otherwise.
func (m *model) dispatchedLocked(mf *mFuture) {
	if mf.sent {
		return // a resend after a refusal or a retry
	}
	mf.sent = true
	for _, y := range m.futs[:mf.id] {
		if y.rejected || y.sent || y.f == nil {
			continue
		}
		if y.f.t.state.Load() == stQueued {
			m.errs = append(m.errs, fmt.Sprintf("FIFO: work %d dispatched while work %d, submitted before it, waits in the queue", mf.id, y.id))
		}
	}
}

// play runs one model: steps of random operations, then a shutdown during
// which the driver carries on, then the final checks. It returns false on
// a failure.
func (m *model) play() bool {
	for range modelSteps {
		m.step(false)
		m.checkStep()
		if m.failed() {
			m.abort()
			return false
		}
	}
	// Shut down while the driver keeps going.
	// 0: Close; 1: Shutdown with a short deadline; 2: with a long one;
	// 3: Shutdown(context.Background()), during which a remote pool loses
	// every worker and gets replacements (item 2).
	kind := m.rng.IntN(4)
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	grace := time.Duration(1+m.rng.IntN(200)) * time.Millisecond
	if kind == 2 {
		grace = 5 * time.Second
	}
	done := make(chan error, 1)
	go func() {
		switch kind {
		case 0:
			done <- m.ex.Close()
		case 3:
			done <- m.ex.Shutdown(context.Background())
		default:
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			done <- m.ex.Shutdown(ctx)
		}
	}()
	limit := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			if time.Now().After(limit) {
				m.failf("shutdown (kind %d) did not return within 15s (kind 3: Shutdown(context.Background()) after every worker was lost, item 2)", kind)
				m.abort()
				return false
			}
			if kind == 3 && m.remote && i == 3 {
				m.tr.loseAll()
			}
			// Keep going, then finish everything so that any graceful
			// drain can complete. A drain under Shutdown(Background) gets
			// no help from cancellations: only workers can end it.
			if kind == 3 {
				m.drainStep()
			} else {
				m.step(i > 40)
			}
			m.checkStep()
			continue
		}
		break
	}
	m.mu.Lock()
	m.shutDone = time.Now()
	m.mu.Unlock()
	m.final()
	return !m.failed()
}

// step performs one random operation; finish makes it end works rather
// than start new ones.
func (m *model) step(finish bool) {
	if m.remote {
		m.tr.handleRequests()
	}
	r := m.rng.IntN(100)
	if finish {
		// End works only; a remote pool gets its workers back.
		if m.remote {
			m.tr.join()
		}
		r = 30 + m.rng.IntN(40)
	}
	switch {
	case r < 30:
		m.submit()
	case r < 60:
		if m.remote {
			m.tr.answer()
		} else {
			m.releaseOne()
		}
	case r < 70:
		m.cancelOne()
	case r < 76:
		m.cancelCaller()
	case m.remote && r < 82:
		m.tr.lose()
	case m.remote && r < 86:
		m.tr.retire()
	case m.remote && r < 89:
		m.tr.unreach()
	case m.remote && r < 90:
		m.tr.wait()
	case m.remote:
		m.tr.join()
	default:
		m.releaseOne()
	}
	if finish && !m.remote {
		m.releaseOne()
	}
}

// drainStep ends works without cancelling any: it answers or releases
// one, and a remote pool acts on kills and gets its workers back.
func (m *model) drainStep() {
	if m.remote {
		m.tr.handleRequests()
		m.tr.join()
		m.tr.answer()
		return
	}
	m.releaseOne()
}

func (m *model) submit() {
	m.mu.Lock()
	id := len(m.futs)
	mf := &mFuture{id: id, release: make(chan struct{}), fail: m.rng.IntN(5) == 0, stubborn: !m.remote && m.rng.IntN(20) == 0}
	m.futs = append(m.futs, mf)
	m.mu.Unlock()

	ctx := context.Background()
	switch r := m.rng.IntN(6); {
	case r < 2: // a ctx of its own
		cc := &mCaller{}
		cc.ctx, cc.cancel = context.WithCancel(ctx)
		mf.caller, ctx = cc, cc.ctx
	case r < 4: // a ctx shared with other works
		mf.caller = m.sharedCaller()
		ctx = mf.caller.ctx
		if m.rng.IntN(2) == 0 {
			ctx = context.WithValue(ctx, childKey{}, true) // shares its Done
		}
	}
	if mf.caller != nil {
		m.mu.Lock()
		mf.caller.futs = append(mf.caller.futs, mf)
		m.mu.Unlock()
	}
	var opts []CallOption
	if m.remote && m.rng.IntN(3) == 0 {
		mf.retries = m.rng.IntN(3)
		opts = append(opts, Retry(mf.retries))
	}
	if m.rng.IntN(10) == 0 {
		opts = append(opts, Deadline(time.Duration(1+m.rng.IntN(30))*time.Millisecond))
	}
	try := m.rng.IntN(3) == 0
	if m.queue > 0 && m.ex.Stats().Queued >= m.queue {
		try = true // a Submit would wait for the driver itself
	}
	var f *Future[int]
	var err error
	w := m.w
	if try {
		f, err = TrySubmit(ctx, m.ex, w, id, opts...)
	} else {
		f, err = Submit(ctx, m.ex, w, id, opts...)
	}
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	switch {
	case err == nil:
	case errors.Is(err, ErrFull) && try && m.queue > 0:
	case errors.Is(err, ErrClosed) && closing:
	default:
		m.failf("Submit of work %d (try %v): %v", id, try, err)
	}
	if err != nil {
		m.mu.Lock()
		mf.rejected = true
		m.mu.Unlock()
		if mf.caller != nil && !mf.caller.shared {
			mf.caller.cancel()
		}
		return
	}
	m.mu.Lock()
	mf.f = f
	m.mu.Unlock()
	f.OnDone(func(v int, err error) {
		if n := mf.onDone.Add(1); n > 1 {
			m.failf("work %d ended %d times", id, n)
			return
		}
		m.ended.Add(1)
		m.mu.Lock()
		mf.endedAt = time.Now()
		m.mu.Unlock()
		if err == nil && v != 2*id {
			m.failf("work %d returned %d, want %d", id, v, 2*id)
		}
	})
}

// pick returns a random record matching ok, or nil.
func (m *model) pick(ok func(*mFuture) bool) *mFuture {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c []*mFuture
	for _, mf := range m.futs {
		if mf.f != nil && ok(mf) {
			c = append(c, mf)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[m.rng.IntN(len(c))]
}

// releaseOne lets a running (thread) work return; a queued one is released
// ahead, so it returns at once when it starts.
func (m *model) releaseOne() {
	mf := m.pick(func(mf *mFuture) bool { return !mf.released })
	if mf == nil {
		return
	}
	m.mu.Lock()
	mf.released = true
	m.mu.Unlock()
	close(mf.release)
}

func (m *model) cancelOne() {
	mf := m.pick(func(*mFuture) bool { return true })
	if mf == nil {
		return
	}
	if mf.f.Cancel() {
		m.mu.Lock()
		mf.cancelled++
		n := mf.cancelled
		m.mu.Unlock()
		// Cancel returned true: the future has ended, cancelled by it.
		err := mf.f.Err()
		if n > 1 || !mf.f.Cancelled() || !errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
			m.failf("work %d: Cancel returned true (%d times), but Cancelled %v, err %v", mf.id, n, mf.f.Cancelled(), err)
		}
	}
}

func (m *model) cancelCaller() {
	mf := m.pick(func(mf *mFuture) bool { return mf.caller != nil && !mf.callerOff })
	if mf == nil {
		return
	}
	cc := mf.caller
	m.mu.Lock()
	for _, f := range cc.futs {
		f.callerOff = true
	}
	if i := slices.Index(m.callers, cc); i >= 0 {
		m.callers = slices.Delete(m.callers, i, i+1)
	}
	m.mu.Unlock()
	cc.cancel()
}

// sharedCaller returns one of the shared callers' ctxs, or a new one.
func (m *model) sharedCaller() *mCaller {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.callers); n > 0 && m.rng.IntN(4) != 0 {
		return m.callers[m.rng.IntN(n)]
	}
	cc := &mCaller{shared: true}
	cc.ctx, cc.cancel = context.WithCancel(context.Background())
	m.callers = append(m.callers, cc)
	return cc
}

// checkStep checks what must hold at any instant.
func (m *model) checkStep() {
	ended := m.ended.Load()
	var holding map[*fakeWorker]int
	if m.remote {
		holding = m.tr.holding()
	}
	st := m.ex.Stats()
	m.mu.Lock()
	submitted := 0
	for _, mf := range m.futs {
		if mf.f != nil {
			submitted++
		}
	}
	m.mu.Unlock()
	sum := st.Completed + st.Failed + st.Cancelled
	if int64(sum) < ended || int(sum) > submitted {
		m.failf("stats: %d outcomes counted, but %d futures ended (of %d submitted): %+v", sum, ended, submitted, st)
	}
	if st.Running < 0 || st.Queued < 0 {
		m.failf("stats: running %d, queued %d: %+v", st.Running, st.Queued, st)
	}
	c := m.ex.c
	c.mu.Lock()
	unwatched := 0
	for t := c.queue.head; t != nil; t = t.next {
		if t.unwatched() {
			unwatched++
		}
	}
	counted := c.unwatched
	c.unlock()
	if counted != unwatched {
		m.failf("core: %d works counted as queued unwatched, %d in the queue", counted, unwatched)
	}
	if m.remote {
		// A retired worker keeps its jobs while its replacement takes new
		// ones: the bound is the capacity of every worker not gone. Gone
		// means lost, and told so (its Lost returned), before and after
		// the Stats: a shutdown loses workers on another goroutine, and a
		// worker marked gone whose Lost has not run yet still holds its
		// slots (the check failed so about once in 2,500 runs).
		maps.Copy(holding, m.tr.holding())
		c := 0
		for _, eff := range holding {
			c += eff
		}
		if st.Running > c {
			m.failf("stats: %d running; the workers not gone hold %d", st.Running, c)
		}
	}
	if !m.remote {
		if st.Running > m.pool*m.capacity {
			m.failf("stats: %d running; total capacity %d", st.Running, m.pool*m.capacity)
		}
		for _, w := range st.Workers {
			if w.Workload > m.capacity || w.Workload < 0 {
				m.failf("stats: worker %d holds %d works; capacity %d", w.ID, w.Workload, m.capacity)
			}
		}
		if m.queue > 0 && st.Queued > m.queue {
			m.failf("stats: %d queued; the queue holds %d", st.Queued, m.queue)
		}
	}
}

// final checks, once Shutdown or Close has returned, that every future has
// ended exactly once and that the counters add up.
func (m *model) final() {
	m.mu.Lock()
	futs := append([]*mFuture(nil), m.futs...)
	m.mu.Unlock()
	// Release every thread work, so stubborn ones return and nothing leaks.
	for _, mf := range futs {
		m.mu.Lock()
		r := !mf.released
		mf.released = true
		m.mu.Unlock()
		if r {
			close(mf.release)
		}
	}
	var completed, failed, cancelled uint64
	deadline := time.After(5 * time.Second)
	for _, mf := range futs {
		if mf.f == nil {
			continue
		}
		select {
		case <-mf.f.Done():
		case <-deadline:
			m.failf("work %d has not ended after the shutdown returned (state %d)", mf.id, mf.f.t.state.Load())
			continue
		}
		err := mf.f.Err()
		switch {
		case mf.f.Cancelled():
			cancelled++
			if mf.cancelled == 0 && !mf.callerOff && !errors.Is(err, ErrClosed) {
				m.failf("work %d ended cancelled (%v) though no Cancel returned true, its caller went on, and no shutdown cancelled it", mf.id, err)
			}
		case err != nil:
			failed++
		default:
			completed++
		}
		if mf.cancelled > 0 && !mf.f.Cancelled() {
			m.failf("work %d: Cancel returned true but the future did not end cancelled: %v", mf.id, err)
		}
	}
	// OnDone runs just after Done is closed; give the callbacks a moment.
	waitUntil(func() bool { return m.ended.Load() == int64(completed+failed+cancelled) }, 5*time.Second)
	for _, mf := range futs {
		if mf.f != nil && mf.onDone.Load() != 1 {
			m.failf("work %d: OnDone ran %d times", mf.id, mf.onDone.Load())
		}
	}
	if !m.remote {
		// Released works return; then every slot is free. A slot is
		// freed in the total first, then in its worker's load (release):
		// wait for both, or a snapshot taken between the two sees a
		// worker holding a work that the total no longer counts (1 run
		// in several thousand, under -race at -cpu 1,4).
		free := func() bool {
			st := m.ex.Stats()
			for _, w := range st.Workers {
				if w.Workload != 0 {
					return false
				}
			}
			return st.Running == 0
		}
		if !waitUntil(free, 5*time.Second) {
			m.failf("stats: %d still running after every work was released", m.ex.Stats().Running)
		}
		waitUntil(func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.inTotal == 0
		}, 5*time.Second)
	}
	st := m.ex.Stats()
	if st.Queued != 0 || st.Running != 0 {
		m.failf("stats after shutdown: queued %d running %d", st.Queued, st.Running)
	}
	if st.Completed != completed || st.Failed != failed || st.Cancelled != cancelled {
		m.failf("stats %d completed / %d failed / %d cancelled; futures %d / %d / %d", st.Completed, st.Failed, st.Cancelled, completed, failed, cancelled)
	}
	var sum WorkerStats
	for _, w := range st.Workers {
		sum.Completed += w.Completed
		sum.Failed += w.Failed
		sum.Cancelled += w.Cancelled
		if w.Workload != 0 {
			m.failf("stats after shutdown: worker %d holds %d works", w.ID, w.Workload)
		}
	}
	if sum.Completed != st.Completed || sum.Failed != st.Failed || sum.Cancelled > st.Cancelled {
		m.failf("stats: per-worker sums %+v do not add up to the totals %+v", sum, st)
	}
	m.t.Logf("seed %d: pool %d×%d queue %d remote %v: %d offered, %d completed, %d failed, %d cancelled",
		m.seed, m.pool, m.capacity, m.queue, m.remote, len(futs), completed, failed, cancelled)
}

// abort stops a failed model without leaking: release everything, close.
func (m *model) abort() {
	m.mu.Lock()
	for _, mf := range m.futs {
		if !mf.released {
			mf.released = true
			close(mf.release)
		}
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.ex.Close(); close(done) }()
	for {
		select {
		case <-done:
			return
		case <-time.After(time.Millisecond):
			if m.remote {
				m.tr.handleRequests()
				m.tr.answer()
			}
		}
	}
}

// waitUntil polls cond for at most d: for conditions reached by other
// goroutines after a handshake the test already waited for.
func waitUntil(cond func() bool, d time.Duration) bool {
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// fakeTransport is a test double of a remote transport, driven by the
// model's driver goroutine: it holds the jobs the core sends and answers,
// refuses, duplicates or drops them when the driver says so.
type fakeTransport struct {
	m *model

	sinkMu sync.Mutex // held around every Sink call; Close sets closed under it
	sink   xport.Sink
	closed bool

	mu   sync.Mutex // guards live and every worker's fields
	live map[int]*fakeWorker
	all  []*fakeWorker
	gen  int

	kills, postponed atomic.Int64 // Kills asked, kills postponed (Unreachable)
}

type fakeJob struct {
	id     uint64 // the core's job id
	mid    int    // the model's id
	cancel bool
}

type fakeWorker struct {
	tr       *fakeTransport
	slot     int
	gen      int
	cap      int // what Capacity returns
	eff      int // what the core uses
	jobs     []*fakeJob
	kill     error // Kill asked
	closeReq bool  // Close asked
	gone     bool
	lostDone bool // the core's Lost for it has returned: it holds no slot
	retired  bool
	unreach  bool // Unreachable says to ask again later (an outage)
}

func (tr *fakeTransport) Start(_ context.Context, sink xport.Sink) error {
	tr.sink = sink
	for slot := range tr.m.pool {
		tr.sinkMu.Lock()
		sink.Join(tr.newWorker(slot))
		tr.sinkMu.Unlock()
	}
	return nil
}

func (tr *fakeTransport) MaxMessage() int { return 1 << 20 }

func (tr *fakeTransport) Close(context.Context) error {
	tr.mu.Lock()
	ws := append([]*fakeWorker(nil), tr.all...)
	tr.mu.Unlock()
	for _, w := range ws {
		tr.loseOne(w, errors.New("transport closed"))
	}
	tr.sinkMu.Lock()
	tr.closed = true
	tr.sinkMu.Unlock()
	return nil
}

// loseOne marks w gone and reports it lost, unless it is gone already.
// Workers are lost one at a time: the Lost of one may dispatch its works
// to another, which must not be gone yet.
func (tr *fakeTransport) loseOne(w *fakeWorker, cause error) {
	tr.mu.Lock()
	if w.gone {
		tr.mu.Unlock()
		return
	}
	w.gone = true
	w.jobs = nil
	if tr.live[w.slot] == w {
		delete(tr.live, w.slot)
	}
	tr.mu.Unlock()
	tr.call(func(s xport.Sink) { s.Lost(w, cause) })
	tr.mu.Lock()
	w.lostDone = true
	tr.mu.Unlock()
}

// holding returns the workers that may hold slots: those whose Lost has
// not returned (a worker is marked gone before the core is told, and the
// core frees its slots as it is told).
func (tr *fakeTransport) holding() map[*fakeWorker]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ws := map[*fakeWorker]int{}
	for _, w := range tr.all {
		if !w.lostDone {
			ws[w] = w.eff
		}
	}
	return ws
}

func (tr *fakeTransport) newWorker(slot int) *fakeWorker {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.gen++
	w := &fakeWorker{tr: tr, slot: slot, gen: tr.gen, cap: tr.m.rng.IntN(tr.m.capacity + 1)}
	w.eff = tr.m.capacity
	if w.cap > 0 && w.cap < w.eff {
		w.eff = w.cap
	}
	tr.live[slot] = w
	tr.all = append(tr.all, w)
	return w
}

// call makes one Sink call unless the transport was closed.
func (tr *fakeTransport) call(f func(xport.Sink)) {
	tr.sinkMu.Lock()
	defer tr.sinkMu.Unlock()
	if !tr.closed {
		f(tr.sink)
	}
}

func (w *fakeWorker) Slot() int { return w.slot }
func (w *fakeWorker) Info() xport.Info {
	return xport.Info{ID: fmt.Sprintf("fake-%d", w.gen), PID: 100000 + w.gen}
}
func (w *fakeWorker) Capacity() int { return w.cap }

// Send is called under the core's lock: it only records, and checks
// capacity and FIFO.
func (w *fakeWorker) Send(jobs []*wire.Job) {
	m := w.tr.m
	w.tr.mu.Lock()
	defer w.tr.mu.Unlock()
	for _, j := range jobs {
		var mid int
		if err := wire.UnmarshalValue(j.Args[0], &mid); err != nil {
			m.failf("job %d: argument: %v", j.ID, err)
			continue
		}
		if w.gone || w.retired {
			m.failf("job %d (work %d) sent to worker %s, which is gone %v / retired %v", j.ID, mid, w.Info().ID, w.gone, w.retired)
		}
		w.jobs = append(w.jobs, &fakeJob{id: j.ID, mid: mid})
		if len(w.jobs) > w.eff {
			m.failf("worker %s holds %d jobs; capacity %d", w.Info().ID, len(w.jobs), w.eff)
		}
		m.mu.Lock()
		if mid < len(m.futs) {
			mf := m.futs[mid]
			m.dispatchedLocked(mf)
			mf.sends++
			if mf.sends > 1+mf.retries+mf.refusals {
				m.errs = append(m.errs, fmt.Sprintf("work %d sent %d times with Retry(%d) and %d refusals", mid, mf.sends, mf.retries, mf.refusals))
			}
		}
		m.mu.Unlock()
	}
}

func (w *fakeWorker) Cancel(ids []uint64) {
	w.tr.mu.Lock()
	defer w.tr.mu.Unlock()
	for _, j := range w.jobs {
		for _, id := range ids {
			if j.id == id {
				j.cancel = true
			}
		}
	}
}

// Unreachable postpones a kill while the driver says the worker cannot
// be reached; it is called without the core's lock.
func (w *fakeWorker) Unreachable(*wire.Job) time.Duration {
	w.tr.mu.Lock()
	defer w.tr.mu.Unlock()
	if !w.unreach || w.gone {
		return 0
	}
	w.tr.postponed.Add(1)
	return time.Millisecond
}

func (w *fakeWorker) Kill(reason error) {
	w.tr.mu.Lock()
	defer w.tr.mu.Unlock()
	if w.kill == nil {
		w.kill = fmt.Errorf("killed: %w", reason)
		w.tr.kills.Add(1)
	}
}

func (w *fakeWorker) Close() {
	w.tr.mu.Lock()
	defer w.tr.mu.Unlock()
	w.closeReq = true
}

// handleRequests acts on the core's Kill and Close requests: a killed
// worker is lost with its jobs, a closed one leaves once it holds none.
func (tr *fakeTransport) handleRequests() {
	tr.mu.Lock()
	ws := append([]*fakeWorker(nil), tr.all...)
	tr.mu.Unlock()
	for _, w := range ws {
		tr.mu.Lock()
		cause, lost := w.kill, false
		switch {
		case w.gone:
		case w.kill != nil:
			lost = true
		case w.closeReq && len(w.jobs) == 0:
			lost = true // a clean exit: cause nil
		}
		tr.mu.Unlock()
		if lost {
			tr.loseOne(w, cause)
		}
	}
}

// answer finishes one job of a random worker: a result (late if the job
// was cancelled), a refusal, or a result delivered twice.
func (tr *fakeTransport) answer() {
	m := tr.m
	tr.mu.Lock()
	var busy []*fakeWorker
	for _, w := range tr.all {
		if !w.gone && len(w.jobs) > 0 {
			busy = append(busy, w)
		}
	}
	if len(busy) == 0 {
		tr.mu.Unlock()
		return
	}
	w := busy[m.rng.IntN(len(busy))]
	i := m.rng.IntN(len(w.jobs))
	j := w.jobs[i]
	w.jobs = append(w.jobs[:i], w.jobs[i+1:]...)
	tr.mu.Unlock()

	m.mu.Lock()
	fail := m.futs[j.mid].fail
	m.mu.Unlock()
	var o wire.Outcome
	r := m.rng.IntN(10)
	switch {
	case r == 0: // refused before it ran: goes back to the queue
		m.mu.Lock()
		m.futs[j.mid].refusals++
		m.mu.Unlock()
		o.Err = &wire.Error{Code: wire.CodeShutdown, Message: "worker is shutting down"}
	case j.cancel && r < 5:
		o.Err = &wire.Error{Code: wire.CodeCanceled, Message: context.Canceled.Error()}
	case fail:
		o.Err = &wire.Error{Message: fmt.Sprintf("work %d failed", j.mid)}
	default: // also the late answer of a cancelled job
		b, err := wire.MarshalValue(2 * j.mid)
		if err != nil {
			panic(err)
		}
		o.Value = b
	}
	res := []wire.Result{{ID: j.id, Items: []wire.Outcome{o}}}
	if m.rng.IntN(8) == 0 {
		res = append(res, res[0]) // the same result twice in one batch
	}
	tr.call(func(s xport.Sink) { s.Done(w, res) })
	if m.rng.IntN(8) == 0 {
		tr.call(func(s xport.Sink) { s.Done(w, res[:1]) }) // and again, late
	}
}

// lose reports a random worker lost with the jobs it holds.
func (tr *fakeTransport) lose() {
	m := tr.m
	tr.mu.Lock()
	var ws []*fakeWorker
	for _, w := range tr.all {
		if !w.gone {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		tr.mu.Unlock()
		return
	}
	w := ws[m.rng.IntN(len(ws))]
	tr.mu.Unlock()
	tr.loseOne(w, errors.New("lost in the model"))
}

// loseAll reports every worker lost at once.
func (tr *fakeTransport) loseAll() {
	tr.mu.Lock()
	ws := append([]*fakeWorker(nil), tr.all...)
	tr.mu.Unlock()
	for _, w := range ws {
		tr.loseOne(w, errors.New("every worker lost in the model"))
	}
}

// retire recycles a random live worker: no new jobs, closed once idle.
func (tr *fakeTransport) retire() {
	m := tr.m
	tr.mu.Lock()
	var ws []*fakeWorker
	for _, w := range tr.live {
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		tr.mu.Unlock()
		return
	}
	w := ws[m.rng.IntN(len(ws))]
	w.retired = true
	delete(tr.live, w.slot)
	tr.mu.Unlock()
	tr.call(func(s xport.Sink) { s.Retire(w) })
}

// unreach makes a random worker that can be reached unreachable, or one
// that cannot be reached reachable again: its kills wait meanwhile.
func (tr *fakeTransport) unreach() {
	m := tr.m
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var ws []*fakeWorker
	for _, w := range tr.all {
		if !w.gone {
			ws = append(ws, w)
		}
	}
	if len(ws) > 0 {
		w := ws[m.rng.IntN(len(ws))]
		w.unreach = !w.unreach
	}
}

// wait lets the kill grace pass, so that the kill timers of the jobs
// cancelled and not answered yet fire: the core kills or postpones.
func (tr *fakeTransport) wait() {
	time.Sleep(tr.m.killGrace + time.Millisecond)
}

// join starts a replacement in a random empty slot.
func (tr *fakeTransport) join() {
	m := tr.m
	tr.mu.Lock()
	var empty []int
	for slot := range m.pool {
		if tr.live[slot] == nil {
			empty = append(empty, slot)
		}
	}
	tr.mu.Unlock()
	if len(empty) == 0 {
		return
	}
	w := tr.newWorker(empty[m.rng.IntN(len(empty))])
	tr.call(func(s xport.Sink) { s.Join(w) })
}
