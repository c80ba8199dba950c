package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/aplex-go/aplex/internal/xport"
)

// Resize changes the number of workers of a live executor to n, for every
// kind: goroutine and process executors, and a cluster executor's local
// workers (cluster.SpawnLocalWorkers). For a cluster executor n counts its
// local workers only, and may be 0: remote cluster workers join and leave
// on their own, and Resize never counts, adds or removes them. New local
// workers take the lowest slots Stats does not list; shrinking retires the
// highest local ones.
//
// Growing adds worker slots that are used at once; a new process worker
// runs RegisterWorkerInit like the first ones. Shrinking retires the
// highest slots: a retired worker takes no new work, finishes the works it
// holds, and then leaves (a process exits); its slot then shows in no
// Stats. Each worker keeps WithMaxWorksPerWorker, so the total capacity,
// and the default Map window of Maps started afterwards, follow n (a
// cluster executor's window also counts its remote workers, and never
// falls below WithPoolSize, runtime.NumCPU() by default). A
// bounded queue (WithQueueSize) keeps its bound: it counts waiting works,
// not workers.
//
// Resize returns once the pool has n workers: new ones have joined, and
// retired ones have left. If ctx ends first it returns ctx's error; the
// pool then goes on towards n (the change is not undone) and no work is
// lost either way. Concurrent Resize calls run one after the other; the
// last one sets the size. After Shutdown or Close began it returns
// ErrClosed; n < 1 is an error (n < 0 for a cluster executor).
//
// With WithAutoscale, Resize is refused: the autoscaler owns the size.
func (ex *Executor) Resize(ctx context.Context, n int) error {
	if ex == nil {
		return errors.New("aplex: Resize of a nil executor")
	}
	if ex.c == nil {
		return errZeroExecutor
	}
	if ctx == nil {
		return errors.New("aplex: Resize: nil context")
	}
	defer runtime.KeepAlive(ex)
	if ex.c.cfg.kind == kindCluster {
		if n < 0 {
			return fmt.Errorf("aplex: Resize(%d): a cluster executor's local workers cannot be fewer than 0", n)
		}
	} else if n < 1 {
		return fmt.Errorf("aplex: Resize(%d): need at least 1 worker", n)
	}
	if n > MaxPoolSize {
		return fmt.Errorf("aplex: Resize(%d): at most %d workers (for more works at once, raise WithMaxWorksPerWorker)", n, MaxPoolSize)
	}
	if ex.c.cfg.autoscale.max > 0 {
		return errors.New("aplex: Resize: the executor scales itself (WithAutoscale)")
	}
	if err := ex.c.be.resizable(); err != nil {
		return err
	}
	return ex.c.resize(ctx, n)
}

// resize takes the pool to n slots; see Resize.
func (c *core) resize(ctx context.Context, n int) error {
	return c.changeSlots(ctx, func(live []int) (add, remove []int) {
		switch {
		case n > len(live):
			for slot := 0; len(add) < n-len(live); slot++ {
				if c.slots[slot] == nil {
					add = append(add, slot)
				}
			}
		case n < len(live):
			remove = live[n:] // the highest slots
		}
		return add, remove
	})
}

// removeSlot takes one slot away (the autoscaler's choice).
func (c *core) removeSlot(ctx context.Context, slot int) error {
	return c.changeSlots(ctx, func(live []int) (add, remove []int) {
		if slices.Contains(live, slot) {
			remove = []int{slot}
		}
		return nil, remove
	})
}

// changeSlots adds and removes the slots plan picks from the live ones,
// and waits until the new slots serve and the removed ones are gone.
// Growing and shrinking are the same for every backend but for how a slot
// gets its worker (backend.addSlot) and loses it (backend.removeSlot).
func (c *core) changeSlots(ctx context.Context, plan func(live []int) (add, remove []int)) error {
	// One change at a time, but a waiting caller still honours its ctx.
	select {
	case c.resizing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return ErrClosed
	}
	defer func() { <-c.resizing }()
	c.mu.Lock()
	if c.closing {
		c.unlock()
		return ErrClosed
	}
	live := c.liveSlotsLocked()
	add, remove := plan(live)
	for _, slot := range add {
		c.statsFor(slot) // reserved: Resize's count includes it from now on
		delete(c.removedSlots, slot)
	}
	var gone []chan struct{}
	var idle []xport.Worker
	for _, slot := range remove {
		ch, conns := c.removeSlotLocked(slot)
		gone = append(gone, ch)
		idle = append(idle, conns...)
	}
	c.size.Store(int64(len(live) + len(add) - len(remove)))
	c.unlock()
	for _, slot := range remove {
		c.be.removeSlot(slot)
	}
	for _, conn := range idle {
		conn.Close() // outside the lock: it may report Lost at once
	}
	// New slots start concurrently: a process worker's start-up dominates.
	errs := make(chan error, len(add))
	for _, slot := range add {
		go func() { errs <- c.be.addSlot(ctx, slot) }()
	}
	var err error
	for range add {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		c.mu.Lock()
		for _, slot := range add {
			if c.dropUnstaffedLocked(slot) {
				if c.removedSlots == nil {
					c.removedSlots = map[int]bool{}
				}
				c.removedSlots[slot] = true // the backend gave it up
			}
		}
		c.size.Store(int64(len(c.liveSlotsLocked())))
		if c.closing {
			err = fmt.Errorf("%w (%v)", ErrClosed, err) // the shutdown stopped the start
		}
		c.unlock()
		return err
	}
	for _, ch := range gone {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.baseCtx.Done():
			// Torn down: the transport is closed and reports no more
			// departures (a cluster's members are not lost at Close).
			select {
			case <-ch:
			default:
				return ErrClosed
			}
		}
	}
	return nil
}

// sizeLocked is Stats.Size: the workers the executor keeps (its own
// slots: every worker of a goroutine or process executor, a cluster
// executor's local workers), plus the remote cluster workers serving it
// now.
func (c *core) sizeLocked() int {
	n := int(c.size.Load())
	for _, w := range c.workers {
		if !c.be.ownsSlot(w.slot) {
			n++
		}
	}
	return n
}

// windowWorkers is the number of workers Map's default window is made
// for: Stats.Size, and for a cluster executor at least WithPoolSize
// (default runtime.NumCPU()), as before Resize existed: remote workers may
// join once the Map runs, and a cluster with few or no local workers would
// otherwise get a window of a chunk or two.
func (c *core) windowWorkers() int {
	c.mu.Lock()
	n := c.sizeLocked()
	c.unlock()
	if c.cfg.kind == kindCluster {
		n = max(n, c.cfg.poolSize)
	}
	return n
}

// keepSizeLocked sets the size the executor keeps to the slots it owns,
// once the transport has started: a cluster executor keeps its local
// workers, not WithPoolSize (the remote workers Start waits for).
func (c *core) keepSizeLocked() {
	c.size.Store(int64(len(c.liveSlotsLocked())))
}

// liveSlotsLocked returns the slots the pool keeps and Resize counts, in
// order: those the backend owns (not a remote cluster worker's), with a
// worker or being (re)started, but for removed ones.
func (c *core) liveSlotsLocked() []int {
	var live []int
	for slot, st := range c.slots {
		if !st.removed && c.be.ownsSlot(slot) {
			live = append(live, slot)
		}
	}
	slices.Sort(live)
	return live
}

// dropUnstaffedLocked forgets a slot reserved by a Resize whose worker
// never joined, and reports whether it did.
func (c *core) dropUnstaffedLocked(slot int) bool {
	st := c.slots[slot]
	if st == nil || st.removed || st.pid.Load() != 0 || st.name != "" {
		return false
	}
	delete(c.slots, slot)
	return true
}

// removeSlotLocked retires slot's worker, if any: out of the balancer's
// view, closed once idle. It returns a channel closed once the slot has
// no worker left (slotGoneLocked), and the idle remote workers to close
// once the lock is released.
func (c *core) removeSlotLocked(slot int) (gone chan struct{}, idle []xport.Worker) {
	st := c.slots[slot]
	st.removed = true
	st.gone = make(chan struct{})
	if c.removedSlots == nil {
		c.removedSlots = map[int]bool{}
	}
	c.removedSlots[slot] = true
	busy := false
	for _, w := range c.allWorkersLocked() {
		if w.slot != slot {
			continue
		}
		c.removeWorkerLocked(w)
		w.retired = true
		w.leaving.Store(true)
		if w.load.Load() > 0 {
			busy = true
			if w.conn == nil {
				c.retiring = append(c.retiring, w)
			}
			continue
		}
		if w.conn != nil {
			busy = true // gone at its Lost, after Close
			idle = append(idle, w.conn)
		}
	}
	if !busy {
		c.slotGoneLocked(slot)
	}
	return st.gone, idle
}

// leftIfIdleLocked lets a leaving goroutine worker that holds no work any
// more leave, and its slot with it.
func (c *core) leftIfIdleLocked(w *worker) {
	if !w.leaving.Load() || w.load.Load() > 0 {
		return
	}
	if i := slices.Index(c.retiring, w); i >= 0 {
		c.retiring = slices.Delete(c.retiring, i, i+1)
		c.slotGoneLocked(w.slot)
	}
}

// slotGoneLocked forgets a removed slot whose worker has left: its
// counters move into the executor's totals, and it shows in no Stats.
func (c *core) slotGoneLocked(slot int) {
	st := c.slots[slot]
	if st == nil || !st.removed {
		return
	}
	c.goneCompleted += st.completed.Load()
	c.goneFailed += st.failed.Load()
	c.goneCancelled += st.cancelled.Load()
	delete(c.slots, slot)
	close(st.gone)
}

// addSlot starts a goroutine worker in slot: it runs the worker inits, as
// the first workers did, then takes works at once.
func (b goroutines) addSlot(_ context.Context, slot int) error {
	c := b.c
	w := &worker{slot: slot, name: threadName(slot), cap: c.cfg.maxWorksPerWorker, ctx: context.Background()}
	ctx, err := threadWorkerInit(c.baseCtx, c.cfg, WorkerInfo{ID: slot})
	c.mu.Lock()
	defer c.unlock()
	st := c.slots[slot]
	if err == nil && (c.closing || st == nil || st.removed) {
		err = ErrClosed
	}
	if err != nil {
		return err // resize forgets the slot
	}
	w.stats = st
	st.name = w.name
	if ctx != c.baseCtx {
		w.ctx = ctx
	}
	c.addWorkerLocked(w)
	c.observeWorker(WorkerJoined, w, "", nil)
	c.drainLocked(false)
	return nil
}

// removeSlot needs nothing more for goroutine workers: the core retired
// the slot's worker (removeSlotLocked).
func (goroutines) removeSlot(int) {}

// ownsSlot: every slot of a thread executor is the engine's.
func (goroutines) ownsSlot(int) bool { return true }

func (goroutines) resizable() error { return nil }

// addSlot asks the transport for a worker in slot and waits for it to join.
func (b *remote) addSlot(ctx context.Context, slot int) error {
	return b.tr.(xport.Resizable).AddSlot(ctx, slot) // resizable() was checked
}

// resizable reports whether the transport can be resized.
func (b *remote) resizable() error {
	if _, ok := b.tr.(xport.Resizable); !ok {
		return fmt.Errorf("aplex: Resize: a %s executor's workers cannot be resized", b.c.cfg.kind)
	}
	return nil
}

// removeSlot tells the transport to stop keeping slot staffed.
func (b *remote) removeSlot(slot int) {
	if rz, ok := b.tr.(xport.Resizable); ok {
		rz.RemoveSlot(slot)
	}
}

// ownsSlot reports whether the transport supervises slot: every process
// slot, and only a cluster executor's local workers.
func (b *remote) ownsSlot(slot int) bool {
	if rz, ok := b.tr.(xport.Resizable); ok {
		return rz.OwnsSlot(slot)
	}
	return true
}
