package engine

import (
	"context"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/lazyctx"
	"github.com/aplex-go/aplex/internal/xport"
)

// Executor runs works on a pool of workers and hands back futures. The same
// type serves goroutine (NewThreadExecutor), process (NewProcessExecutor)
// and cluster (cluster.NewExecutor) workers; Submit, Map, futures and
// shutdown behave the same on all three.
//
// An Executor must be shut down with Shutdown or Close. One that becomes
// unreachable without it is closed by a runtime cleanup, so its worker
// processes do not outlive it.
type Executor struct {
	c *core
	// extra is the taskExtra of the tasks submitted with neither Meta nor
	// Deadline, in process: what they need beyond their own fields is
	// their executor, so they share one.
	extra taskExtra
}

// WorkerInfo describes a worker to WithWorkerInit and RegisterWorkerInit.
type WorkerInfo struct {
	// ID numbers the worker within its executor: the slot, 0 … pool
	// size-1, of a thread or process worker (a replacement gets the slot
	// of the worker it replaces), and the index, 0 … n-1, of a cluster
	// worker started by cluster.SpawnLocalWorkers(n) (kept across its
	// restarts). A cluster worker started on its own (cluster.Serve or
	// APLEX_WORKER_ROLE=cluster) serves every executor of its pool and has
	// no such number: its ID is -1; WorkerID names it.
	ID int
	// WorkerID is a cluster worker's id, as cluster.WorkerID(ctx) reports
	// it to works; "" for thread and process workers, which ID names.
	WorkerID string
	// Labels are a cluster worker's labels (cluster.ServeLabels,
	// APLEX_CLUSTER_LABELS); nil for thread and process workers. The map
	// is the init's own copy.
	Labels map[string]string
}

// worker is one member of the pool as the scheduler sees it.
type worker struct {
	// Written at every work, by the dispatching goroutine and by the one
	// that ran it: on cache lines apart from the fields below, which both
	// only read, so that those reads do not miss.
	load    atomic.Int32 // works it holds; raised under core.mu, lowered anywhere
	mu      sync.Mutex   // guards running
	running taskList
	_       [128]byte

	slot    int
	name    string            // WorkerStats.Name: "thread-N", "proc-N", a cluster worker id
	labels  map[string]string // a cluster worker's labels, copied at Join; never modified
	cap     int
	budget  int // jobs it may still be sent; 0: no limit (xport.Budgeted)
	retired bool
	inView  bool            // in core.workers, the balancer's view
	leaving atomic.Bool     // its slot was removed (Resize): it leaves once idle
	conn    xport.Worker    // nil for goroutine workers
	reader  xport.Reader    // conn, if its replies may be read by a waiter
	holder  xport.Holder    // conn, if a Submit may write its job itself
	ctx     context.Context // values for in-process works
	stats   *slotStats
}

// hasRoom reports whether w can take one more work.
func (w *worker) hasRoom() bool { return int(w.load.Load()) < w.cap }

// slotStats are a slot's counters; they outlive a replaced worker.
type slotStats struct {
	completed, failed, cancelled atomic.Uint64
	pid                          atomic.Int64
	// The identity of the slot's latest worker, set when it joins; guarded
	// by core.mu.
	name   string
	labels map[string]string
	// removed: Resize took the slot away; gone is closed once its last
	// worker has left. Guarded by core.mu.
	removed bool
	gone    chan struct{}
}

// core is the executor's scheduler: capacity, FIFO queue, balancer,
// dispatch, the job table, cancellation and shutdown. It is shared by every
// kind of worker; transports (xport) reach it through the Sink methods.
//
// core.mu is released with unlock, never with c.mu.Unlock: unlock drains
// the queue for runners that found it taken (freeLocal), so no code may hold
// a worker.mu or a task.mu when it releases core.mu (none does).
//
// Lock order: core.mu, then worker.mu (the worker's running list: dispatch,
// runningTasks under the lock), then the transport's own locks, taken
// inside Worker.Send, Worker.Cancel and Holder.Hold, which run under
// core.mu (sendLocked, cancelRemote). Holder.Release and the Reader
// methods run without it, but for Reader.Need, which takes no lock
// (needSlotsLocked); a Reader's ReadUntil calls Sink.Done, which
// takes core.mu, from a Get holding no lock. core.mu may also be held while a task.mu is
// taken: when the caller's ctx is itself a work's ctx (a workCtx, which is
// its task), calling its Done or Err and registering or stopping a watch on
// it (t.parent.Done() and context.AfterFunc in submit and sendLocked,
// t.parent.Err() in drainLocked, stopping a watch in stopTimers,
// drainLocked and dequeue: unwatchLocked)
// take that task's mu. A task.mu is otherwise a leaf: it is never
// held while core.mu or a worker.mu is taken; a work ctx's Done and Err
// may take the task.mu of its parent work's ctx under their own, which
// follows the (acyclic) ctx tree. worker.mu is a leaf too.
//
// Nothing outside the core runs under core.mu except Worker.Send,
// Worker.Cancel, Worker.Slot, Worker.Info, Budgeted.Budget, Holder.Hold, the load
// balancer's Pick and the runners' Go (a send that never blocks, and a go
// statement; gopool's own lock is taken only by its Close and its reaper,
// never under core.mu). Futures end (runner.deliver, fail, task.finish, and so
// Future.OnDone callbacks), Worker.Close and Worker.Kill run after it is
// released, because they may call back into the core: a cluster member's
// Close and Kill report Sink.Lost synchronously, and a callback may
// Submit. The re-entrancy rules for transports are stated in
// internal/xport's package doc.
type core struct {
	cfg config
	obs Observer // cfg.observer, read on the hot paths: nil costs a check
	lb  LoadBalancer
	// lbBuiltin: lb is one of the package's balancers, which need not be
	// asked when only one worker has room (handOverLocked).
	lbBuiltin bool
	be        backend // goroutines, or a transport's remote workers
	maxMsg    int

	baseCtx    context.Context // parent of worker-init contexts; ends at teardown
	baseCancel context.CancelFunc

	mu      sync.Mutex
	workers []*worker // live, not retired, in slot order: the balancer's view
	byConn  map[xport.Worker]*worker
	gen     uint64
	queue   taskList
	space   chan struct{} // closed when the bounded queue frees room; nil: no waiter
	// running counts the tasks holding a worker slot; lowered without the
	// lock, by the goroutine that ran the work. It sits on a cache line of
	// its own, so that those writes do not take the line of mu and the
	// queue from the goroutine submitting.
	_       [128]byte
	running atomic.Int64
	_       [128]byte
	// prefetched counts the remote tasks sent ahead of a free slot and
	// not yet heard to start (remoteJob.ahead; Stats.Prefetched).
	prefetched int
	closing    bool
	// unwatched counts the queued works whose caller's ctx can end but
	// that have no watch on it: queued with room for them, behind a runner
	// being woken (submit); watched if a drain finds no room left
	// (watchUnwatchedLocked).
	unwatched    int
	down         bool          // teardown began: workers are being stopped; nothing is requeued
	stopping     atomic.Bool   // mirrors closing for the lock-free release path
	closed       chan struct{} // closed when closing starts
	idle         chan struct{} // closed once closing and nothing runs or waits
	idleSet      bool
	abandoned    chan struct{} // closed once closing and every work left was cancelled
	abandonedSet bool
	broken       error
	nextID       uint64
	jobs         map[uint64]*task
	// holdSends is set while a Submit dispatches its own work: sendLocked
	// then holds the worker's link (xport.Holder) and leaves it in held,
	// which the Submit releases after unlocking, writing the job itself.
	holdSends      bool
	held           xport.Holder
	slots          map[int]*slotStats
	queueCancelled atomic.Uint64
	restarts       atomic.Uint64

	// Resizing (resize.go). size is the number of slots the executor keeps
	// (a cluster executor's local workers), read without the lock by the
	// autoscaler.
	resizing chan struct{} // capacity 1: one Resize at a time
	size     atomic.Int64
	retiring []*worker // goroutine workers of removed slots still holding works
	// removedSlots are slots Resize took away, until it adds them again: a
	// worker that joins one late (its start raced the removal) is closed.
	removedSlots map[int]bool
	// The counters of removed slots, kept in Stats' totals.
	goneCompleted, goneFailed, goneCancelled uint64
	scaleUps, scaleDowns                     atomic.Uint64

	// runners are a thread executor's goroutines: each runs a work, then
	// the next queued one, then parks for the next dispatched (Go is called
	// under mu, Close at teardown).
	runners *gopool.Pool

	// needDrain is set by a runner that freed its slot while works were
	// queued but found mu taken (freeLocal): the goroutine holding mu drains
	// for it as it unlocks (unlock). On a cache line of its own: every
	// unlock reads it.
	_         [128]byte
	needDrain atomic.Bool
	_         [128]byte

	stopOnce sync.Once
	stopErr  error

	// shared are the watches on callers' ctxs that the works submitted
	// under each share (ctxwatch.go), under mu; last, out of the way of
	// the fields every work reads.
	shared sharedWatches
}

func newCore(cfg config) *core {
	c := &core{
		cfg:       cfg,
		obs:       cfg.observer,
		lb:        cfg.balancer,
		byConn:    map[xport.Worker]*worker{},
		closed:    make(chan struct{}),
		idle:      make(chan struct{}),
		abandoned: make(chan struct{}),
		jobs:      map[uint64]*task{},
		slots:     map[int]*slotStats{},
		resizing:  make(chan struct{}, 1),
	}
	c.size.Store(int64(cfg.poolSize))
	if c.lb == nil {
		c.lb = RoundRobin()
	}
	_, c.lbBuiltin = c.lb.(builtinBalancer)
	c.be = goroutines{c}
	c.runners = gopool.New(runnerIdle)
	c.runners.OnStart(c.runnerStarted)
	c.baseCtx, c.baseCancel = context.WithCancel(context.Background())
	return c
}

// newExecutor wraps c and arranges for an unreachable executor to be closed.
//
// The cleanup must never fire while the executor has work: every queued or
// running task points back to its *Executor (task.x: its ex, or the
// executor's own extra), and the core, which transports and worker
// goroutines keep reachable, holds those tasks. So an executor is
// collected only once it is idle and forgotten; and methods that may block
// (Shutdown, Close) keep it alive until they return.
func newExecutor(c *core) *Executor {
	ex := &Executor{c: c}
	ex.extra.ex = ex
	runtime.AddCleanup(ex, func(c *core) { go c.Close() }, c)
	return ex
}

func (c *core) statsFor(slot int) *slotStats {
	s := c.slots[slot]
	if s == nil {
		s = &slotStats{}
		c.slots[slot] = s
	}
	return s
}

// runningTasks returns the tasks w holds (a copy).
func (w *worker) runningTasks() []*task {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running.all()
}

// addWorkerLocked puts w in the balancer's view, keeping slot order.
func (c *core) addWorkerLocked(w *worker) {
	i, _ := slices.BinarySearchFunc(c.workers, w.slot, func(x *worker, slot int) int { return x.slot - slot })
	c.workers = slices.Insert(c.workers, i, w)
	w.inView = true
	c.gen++
}

// removeWorkerLocked takes w out of the balancer's view.
func (c *core) removeWorkerLocked(w *worker) {
	if i := slices.Index(c.workers, w); i >= 0 {
		c.workers = slices.Delete(c.workers, i, i+1)
		w.inView = false
		c.gen++
	}
}

// roomLocked reports whether some worker in the balancer's view has room.
func (c *core) roomLocked() bool {
	for _, w := range c.workers {
		if w.hasRoom() {
			return true
		}
	}
	return false
}

// submit dispatches t now if a worker has room and nothing waits, else
// queues it (rule 2). wait says whether a full bounded queue makes it wait.
func (c *core) submit(ctx context.Context, t *task, wait bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	for {
		if c.closing {
			c.unlock()
			return ErrClosed
		}
		if c.broken != nil && len(c.workers) == 0 {
			err := c.broken
			c.unlock()
			return err
		}
		// Behind queued works a work queues whatever room there is (rule
		// 2), and the slots freed meanwhile are drained by whoever freed
		// them (freeLocal, unlock, runnerStarted): room is looked for only
		// when the queue is empty, or to choose how a work whose ctx can
		// end waits. Every worker's load is a cache line the runners
		// write; a backlog of works submitted together read them all
		// twice per Submit otherwise.
		empty := c.queue.len() == 0
		room := (empty || t.parent.Done() != nil) && c.roomLocked()
		if room && empty && c.runners.Waking() == 0 {
			c.holdSends = true
			c.dispatchLocked(t, false)
			held := c.held
			c.holdSends, c.held = false, nil
			c.unlock()
			if held != nil {
				held.Release()
			}
			return nil
		}
		if c.cfg.queueSize == 0 || c.queue.len() < c.cfg.queueSize {
			c.queue.pushBack(t)
			if c.queue.len() == 1 {
				c.needSlotsLocked()
			}
			switch {
			case t.parent.Done() == nil:
			case room:
				// It waits for the runner being woken, which hands it out
				// before running its own work (runnerStarted): a watch
				// would cost more than the wait. A drain that finds no
				// room for it after all watches it (watchUnwatchedLocked).
				c.unwatched++
			default:
				// A queued work whose caller gives up never starts.
				c.watchLocked(t)
			}
			// A work may have ended since roomLocked looked, without
			// seeing this one queued (its release takes no lock when the
			// queue is empty), or the runner being woken may have started
			// before it was queued: look again now that the queue is not.
			if empty || c.unwatched > 0 {
				c.drainLocked(false)
			}
			c.unlock()
			return nil
		}
		if !wait {
			c.unlock()
			return ErrFull
		}
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space, closed := c.space, c.closed
		c.unlock()
		select {
		case <-space:
		case <-closed:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
}

// needSlotsLocked asks every worker to read its replies now: a work waits
// in the queue for a slot, which a reply frees. After a round trip a
// process worker's pipe is left unread for a while, for the next Get to
// read it itself (xport.Reader), and a reply that nobody awaits, and the
// slot it holds, with it.
func (c *core) needSlotsLocked() {
	for _, w := range c.workers {
		if w.reader != nil {
			w.reader.Need()
		}
	}
}

// dequeue removes a queued task; false if it already left the queue.
func (c *core) dequeue(t *task) bool {
	c.mu.Lock()
	defer c.unlock()
	if t.state.Load() != stQueued {
		return false
	}
	c.queue.remove(t)
	c.leftQueueLocked(t)
	// Registered on the caller's ctx, the watch holds the task (and its
	// executor) until it is stopped or that ctx ends, which a long-lived
	// ctx never does.
	c.unwatchLocked(t)
	t.state.Store(stSettled)
	c.queueCancelled.Add(1)
	c.queueLeftLocked()
	c.checkIdleLocked()
	return true
}

// queueLeftLocked wakes Submits waiting for room in a bounded queue.
func (c *core) queueLeftLocked() {
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
}

// pickLocked asks the balancer for a worker with room. A balancer that
// panics or names a full worker is overruled: the first worker with room
// gets the work, so capacity is never exceeded (rule 1).
func (c *core) pickLocked(meta any) (w *worker) {
	view := Workers{ws: c.workers, gen: c.gen}
	var i int
	switch lb := c.lb.(type) {
	case *roundRobin: // the default: no need to guard against a panic
		i = lb.Pick(view, meta)
	default:
		i = pickGuarded(lb, view, meta)
	}
	if i < 0 || i >= len(c.workers) || !view.Available(i) {
		i = slices.IndexFunc(c.workers, (*worker).hasRoom)
	}
	return c.workers[i]
}

// pickGuarded calls a balancer that may panic; a panic counts as no choice.
func pickGuarded(lb LoadBalancer, view Workers, meta any) (i int) {
	defer func() {
		if recover() != nil {
			i = -1
		}
	}()
	return lb.Pick(view, meta)
}

// dispatchLocked gives t to a worker; the caller made sure one has room.
// An in-process work goes to a parked runner or a new goroutine, unless
// keep is set: then dispatchLocked returns true and the caller runs t in
// its own goroutine.
func (c *core) dispatchLocked(t *task, keep bool) (kept bool) {
	w := c.pickLocked(t.meta())
	t.w = w
	w.load.Add(1)
	c.running.Add(1)
	w.mu.Lock()
	w.running.pushBack(t)
	w.mu.Unlock()
	return c.startOnLocked(w, t, keep)
}

// startOnLocked starts t, which holds a slot on w now (t.w is w, and t is
// in w's running list), as dispatchLocked says.
func (c *core) startOnLocked(w *worker, t *task, keep bool) (kept bool) {
	if t.watch != watchNone && t.rjob() == nil {
		// An in-process work's ctx watches its caller's only if the work
		// asks (workCtx). A remote work keeps the watch it had while
		// queued: it does what sendLocked's would (cancel the task), and
		// a second context.AfterFunc per work halved the throughput of
		// remote works submitted with a ctx that can end.
		c.unwatchLocked(t)
	}
	if rj := t.rjob(); rj != nil {
		// Sent while the worker's running works fill its slots, a work is
		// held there until one ends (WithPrefetch): it starts when the
		// worker says so (Started).
		rj.ahead = c.cfg.prefetch > 0 && int(w.load.Load()) > w.cap-c.cfg.prefetch
		if rj.ahead {
			c.prefetched++
		}
	}
	if t.ob() != nil && !t.rjob().isAhead() { // before the state: a Cancel may end it once running
		c.observeStarted(t, w)
	}
	t.state.Store(stRunning)
	return c.be.startLocked(w, t, keep)
}

// drainLocked dispatches queued works, oldest first, while workers have
// room. With keep set, the first in-process work is not given a goroutine
// but returned, for the caller's goroutine to run: a goroutine that has
// just finished a work runs the next one queued, so a pool working
// through a backlog does not pay for a new goroutine per work.
func (c *core) drainLocked(keep bool) (next *task) {
	for c.queue.len() > 0 && c.roomLocked() {
		// No runner is woken while another is being woken: the works
		// left queued are handed out by that runner as it starts
		// (runnerStarted), one more each, so a burst goes from runner to
		// runner on the core they run on, rather than each Submit waking
		// a runner that another core then steals.
		if c.runners.Waking() > 0 && !(keep && next == nil) {
			return next
		}
		t := c.queue.popFront()
		c.leftQueueLocked(t)
		c.queueLeftLocked()
		if err := t.parent.Err(); err != nil {
			// Its caller gave up while it waited; the watch that would
			// cancel it may not have run yet. It never starts.
			c.unwatchLocked(t)
			t.state.Store(stSettled)
			c.queueCancelled.Add(1)
			go t.finish(err, true) // callbacks must not run under the lock
			continue
		}
		if c.dispatchLocked(t, keep && next == nil) {
			next = t
		}
	}
	if c.unwatched > 0 && c.queue.len() > 0 {
		c.watchUnwatchedLocked()
	}
	return next
}

// runnerStarted runs on a runner that has just taken a work handed over by
// Go, before that work. While it was being woken, Submit and the drains
// queued works rather than wake more runners; once no other runner is
// being woken, it wakes one for the oldest queued work, which does the
// same as it starts, and so on while works are queued and slots free. It
// does so before its own work runs, so a work that blocks holds up
// nothing; but a work that keeps its CPU holds the runner it woke until
// the scheduler preempts it, or another P steals that runner.
func (c *core) runnerStarted() {
	// Submit queues, then reads Waking; this goroutine lowered Waking
	// before it reads the queue: one of them sees the other.
	if c.runners.Waking() > 0 || c.queue.len() == 0 {
		return
	}
	c.mu.Lock()
	c.drainLocked(false)
	c.unlock()
}

// watchLocked makes a work end once its caller's ctx ends: a queued one,
// never started; a remote one, cancelled in its worker (sendLocked). The
// works under one ctx share one watch on it (ctxwatch.go).
func (c *core) watchLocked(t *task) { c.joinSharedLocked(t) }

// unwatchLocked stops the watch on t's caller's ctx, if it has one: its
// share of the core's watch on that ctx (ctxwatch.go), which needs core.mu.
func (c *core) unwatchLocked(t *task) {
	if t.watch == watchShared {
		// A member's shared watch stays armed, under its ctx's Done,
		// until it fires (which marks its members watchFired) or its
		// last member leaves.
		if sw := c.shared.byDone[t.parent.Done()]; sw != nil {
			c.leaveSharedLocked(sw)
		}
	}
	t.watch = watchNone
}

// unwatched reports whether a queued t is one that core.unwatched counts:
// its caller's ctx can end and nothing watches it.
func (t *task) unwatched() bool { return t.watch == watchNone && t.parent.Done() != nil }

// leftQueueLocked accounts for t leaving the queue unwatched.
func (c *core) leftQueueLocked(t *task) {
	if c.unwatched > 0 && t.unwatched() {
		c.unwatched--
	}
}

// watchUnwatchedLocked watches the queued works that were left unwatched
// behind a runner being woken and still wait: no room was left for them
// after all. They are the newest, so the walk starts at the tail.
func (c *core) watchUnwatchedLocked() {
	for t := c.queue.tail; t != nil && c.unwatched > 0; t = t.prev {
		if t.unwatched() {
			c.watchLocked(t)
			c.unwatched--
		}
	}
}

// Running a work on a goroutine of the core's runners (gopool) is split in
// three so that the pool's loop calls the typed task's Run (call.Run,
// chunk.Run) and the work's code runs right under it: beginLocal before
// the work, the work in Run's own frame, endLocal after it. Nothing of the
// engine's stays on the stack under a work but Run's frame: a work that
// blocks (the fan-out's 10 ms sleep) wakes to its goroutine's stack gone
// cold, and each frame under it is a cache line or two more to fetch, and
// stack for the GC to unwind at every cycle (the three frames that went,
// a method value's wrapper, runOne and runProtected, were 5-7 % of the
// fan-out's CPU per work: bench/cmd/alternate). One frame of the
// compiler's remains between the pool and a typed Run: the interface's
// entry into a generic method, a wrapper that passes its type dictionary
// (1.9 % of the fan-out's samples); only closures in place of the runner
// interface would remove it.

// beginLocal readies a dispatched t to run in the calling goroutine: its
// Deadline, its ctx's pprof labels. False: t is no longer running
// (cancelled as it was handed over); the caller goes straight to
// endLocal(t, nil).
func beginLocal(t *task) (wc *workCtx, run bool) {
	if t.state.Load() != stRunning {
		return nil, false
	}
	if d := t.deadlineD(); d > 0 {
		t.lc.SetDeadline(lazyctx.DeadlineIn(d))
	}
	wc = t.workContext()
	// The work runs with its ctx's pprof labels (the caller's, set by
	// pprof.Do), as a goroutine started for it would: this one may have
	// been created by another caller, or had labels set by its last work.
	// Cleared by endLocal, so the bookkeeping and a parked goroutine are
	// nobody's.
	pprof.SetGoroutineLabels(wc)
	return wc, true
}

// exitedLocal is deferred by a Run around its work: it cleans up after a
// work that called runtime.Goexit (returned unset and no panic to
// recover), which ends the goroutine (goexited).
func exitedLocal(t *task, returned *bool) {
	if !*returned {
		t.core().goexited(t)
	}
}

// endLocal frees the slot of t, which ran (wc set) or was cancelled before
// it could start (wc nil), and returns the next work for the same
// goroutine to run, nil if none.
func endLocal(t *task, wc *workCtx) gopool.Task {
	if wc != nil {
		pprof.SetGoroutineLabels(context.Background())
		wc.release()
	}
	if next := t.core().freeLocal(t); next != nil {
		return next.r
	}
	return nil
}

// freeLocal frees the slot of t, whose work has stopped, and returns the
// next queued work for the same goroutine to run, if any.
func (c *core) freeLocal(t *task) (next *task) {
	w := t.w
	// The common case takes no executor lock: nothing queued, no shutdown,
	// no Resize retiring this worker. With works queued, the slot is freed
	// under the lock, so that this goroutine takes the next work itself:
	// freed first, a wave of works ending together would let the first
	// goroutine to take the lock dispatch the others' slots to new
	// goroutines, and leave the others nothing to run.
	//
	// With works queued and mu taken, the goroutine does not wait for mu:
	// it frees its slot and parks, and the holder of mu drains the queue
	// for that slot as it unlocks (needDrain, unlock). Waiting would make a
	// convoy: with short works, every runner that finishes queues on mu,
	// each unlock wakes the next one, and the waits and wake-ups cost
	// more than the works (half the CPU of the bench module's Overhead
	// workload); parked instead, the runners that find mu free run the
	// backlog, and the others are woken one at a time, as runners are
	// (runnerStarted), only while works still wait.
	switch {
	case c.queue.len() == 0:
		c.release(w, t)
		if c.queue.len() == 0 && !c.stopping.Load() && !w.leaving.Load() {
			return nil
		}
		c.mu.Lock()
	case c.mu.TryLock():
		if next, ok := c.handOverLocked(w, t); ok {
			c.unlock()
			return next
		}
		c.release(w, t)
	default:
		c.release(w, t)
		if c.stopping.Load() || w.leaving.Load() {
			c.mu.Lock() // the rare paths keep their bookkeeping here
			break
		}
		// Raised, then mu tried again: a holder that made this TryLock
		// fail unlocks after it, so it sees the flag (unlock).
		c.needDrain.Store(true)
		if !c.mu.TryLock() {
			return nil
		}
		c.needDrain.Store(false) // the drain below is the one asked for
	}
	c.leftIfIdleLocked(w)
	next = c.drainLocked(true)
	c.checkIdleLocked()
	c.unlock()
	return next
}

// handOverLocked passes the slot of t, whose work has stopped on w, to the
// oldest queued work, for the calling goroutine to run, when a dispatch
// would give that work this very slot: no other worker in the balancer's
// view has room, so whatever the balancer picks, w gets it (pickLocked).
// The slot changes hands without being freed: w's load, the total
// running count and w's running list (the work takes its place) are not
// written, and the balancer is not asked, which only the package's own
// balancers allow (a caller's is asked once per work, as LoadBalancer
// says). In a pool working through a backlog that is every work's end
// but the last few, and each of those writes is a locked instruction on
// a cache line other cores write too: 2.5 % of the fan-out's CPU per
// work (bench/cmd/alternate). False: the caller frees the slot and
// drains as usual (closing, w leaving, another worker with room, a
// caller's balancer, a head of the queue whose caller's ctx has ended).
func (c *core) handOverLocked(w *worker, t *task) (next *task, ok bool) {
	next = c.queue.head
	if next == nil || !c.lbBuiltin || c.closing || w.leaving.Load() || !w.inView || next.parent.Err() != nil {
		return nil, false
	}
	for _, x := range c.workers {
		if x != w && x.hasRoom() {
			return nil, false
		}
	}
	w.mu.Lock()
	if !w.running.holds(t) {
		w.mu.Unlock()
		return nil, false
	}
	c.queue.remove(next)
	next.w = w
	w.running.replace(t, next)
	w.mu.Unlock()
	c.leftQueueLocked(next)
	c.queueLeftLocked()
	c.startOnLocked(w, next, true)
	return next, true
}

// unlock releases c.mu, then drains the queue for the slots freed by
// runners that found mu taken (needDrain): every holder of c.mu releases
// it with unlock, never with c.mu.Unlock, so none of those slots is left
// idle while works wait. The drain is what any goroutine taking mu after
// this one could do at once; it runs only when a runner raised the flag,
// and if mu is taken again meanwhile, its new holder drains instead.
func (c *core) unlock() {
	c.mu.Unlock()
	for c.needDrain.Load() {
		if !c.mu.TryLock() {
			return // its holder drains as it unlocks
		}
		c.needDrain.Store(false)
		c.drainLocked(false)
		c.checkIdleLocked()
		c.mu.Unlock()
	}
}

// goexited cleans up after a work that called runtime.Goexit (t.FailNow,
// require.*): it runs in the deferred calls of the dying goroutine, so it
// fails the future with ErrGoexit, frees the slot and hands the queued
// works to new goroutines, since this one will not come back for them.
func (c *core) goexited(t *task) {
	// As for a work that returns (settleReturned): a caller's ctx that
	// ended meanwhile decides the outcome.
	if err := t.parent.Err(); err == nil || !t.cancel(err) {
		t.r.fail(t, ErrGoexit)
	}
	t.workContext().release()
	c.release(t.w, t)
	c.mu.Lock()
	c.leftIfIdleLocked(t.w)
	c.drainLocked(false)
	c.checkIdleLocked()
	c.unlock()
}

// release frees t's slot on w once the work has really stopped. The
// counters are lowered before the queue and the closing flag are read, and
// submit and shutdown change those before they read the counters, so one
// side always sees the other (Go's atomics are sequentially consistent).
func (c *core) release(w *worker, t *task) {
	w.mu.Lock()
	held := w.running.remove(t)
	w.mu.Unlock()
	if !held {
		// Released already: the teardown freed the slots of a worker
		// whose reader Transport.Close left running a callback (one that
		// shut the executor down), and that reader's Done comes after.
		return
	}
	// The total first: dispatch raises a worker's load before the total,
	// so Stats.Running never counts more works than the loads allow, even
	// while a slot is being handed over.
	c.running.Add(-1)
	w.load.Add(-1)
}

// releaseLocked frees t's slot on w once the work has really stopped. It
// returns w's connection when w is retired and now idle, to be closed
// outside the lock.
func (c *core) releaseLocked(w *worker, t *task) xport.Worker {
	c.release(w, t)
	if w.retired && w.load.Load() == 0 && w.conn != nil {
		return w.conn
	}
	return nil
}

// checkIdleLocked signals Shutdown once nothing runs or waits, or once
// every work left has been cancelled (see abandonedLocked).
func (c *core) checkIdleLocked() {
	if !c.closing || c.idleSet || c.queue.len() > 0 {
		return
	}
	if c.running.Load() == 0 {
		c.idleSet = true
		close(c.idle)
		return
	}
	if !c.abandonedSet && c.abandonedLocked() {
		c.abandonedSet = true
		close(c.abandoned)
	}
}

// abandonedLocked reports whether every work still running in this process
// has been cancelled: a graceful Shutdown then has nothing left to wait
// for but works that ignore their ctx, and waits for them only the kill
// grace. Remote works need no such check: a cancelled one that ignores its
// ctx costs its worker process after the kill grace (armKill).
func (c *core) abandonedLocked() bool { return c.be.abandonedLocked() }

// localAbandonedLocked is abandonedLocked for goroutine workers.
func (c *core) localAbandonedLocked() bool {
	for _, w := range c.allWorkersLocked() {
		w.mu.Lock()
		for t := w.running.head; t != nil; t = t.next {
			if t.state.Load() == stRunning {
				w.mu.Unlock()
				return false
			}
		}
		w.mu.Unlock()
	}
	return true
}

// cancelledRunning is called after a running work was cancelled: during a
// shutdown it may have been the last one the drain waited for.
func (c *core) cancelledRunning() {
	if !c.stopping.Load() {
		return
	}
	c.mu.Lock()
	c.checkIdleLocked()
	c.unlock()
}

// countOutcome updates the slot's counters when a dispatched task ends.
func countOutcome(t *task, err error, cancelled bool) {
	if t.w == nil {
		return
	}
	switch {
	case cancelled:
		t.w.stats.cancelled.Add(1)
	case err != nil:
		t.w.stats.failed.Add(1)
	default:
		t.w.stats.completed.Add(1)
	}
}

// stopWork cancels a running work wherever it runs.
func (c *core) stopWork(t *task, err error) { c.be.stop(t, err) }
