package proc

import (
	"context"
	"time"
)

// slot is one position of the pool. Its supervisor goroutine
// (spawn.Supervisor, running runSlot) owns cur, the worker the core
// dispatches to; a retired predecessor may still be draining beside it.
type slot struct {
	idx  int
	wake chan struct{} // capacity 1: cur died or is due for recycling
	cur  *worker       // only touched by the supervisor (and Start before it)
	// A slot added by Resize (AddSlot) reports its first worker's join, or
	// its first failed start, on these; guarded by Transport.mu.
	joined   chan struct{} // closed at the first Join
	startErr error         // the first failed start, if before any Join
	failed   chan struct{} // closed at the first failed start before a Join
}

func newSlot(i int) *slot {
	return &slot{idx: i, wake: make(chan struct{}, 1), joined: make(chan struct{}), failed: make(chan struct{})}
}

// runSlot is one incarnation of slot i for the supervisor: it starts a
// worker, unless the one Start brought up is still in place, and returns
// once that worker has died, or is due for recycling (RecycleAfter). A
// recycled worker is retired first, so the core stops dispatching to it;
// it calls w.Close once w's last job ended, and w exits with Lost(w, nil)
// while its successor already serves. The supervisor restarts the slot at
// once (a worker that completed its handshake started), and
// backs off while starts fail.
func (t *Transport) runSlot(ctx context.Context, i int) error {
	t.mu.Lock()
	s := t.slots[i]
	t.mu.Unlock()
	if s == nil {
		return nil // removed before it ran
	}
	w := s.cur
	if w == nil {
		var err error
		if w, err = t.spawn(ctx, i); err != nil {
			return err
		}
		w.slot = s
		if !t.register(w) {
			w.abort() // Close began while it started
			return nil
		}
		s.cur = w
		t.sink.Join(w)
		w.startIO()
		t.joinedSlot(s)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		switch {
		case w.gone.Load():
		case w.recycle.Load():
			t.sink.Retire(w)
		default:
			continue // its retired predecessor exited
		}
		s.cur = nil
		return nil
	}
}

// startFailed is told of a failed restart (spawn.SupervisorConfig.Failed):
// while no worker can take jobs, the core fails Submit clearly
// (Sink.Broken) instead of queueing for a worker that may never come. The
// slot keeps trying until Close.
func (t *Transport) startFailed(i int, err error, _ time.Duration) bool {
	t.failedSlot(i, err)
	if t.noLiveWorker() {
		t.sink.Broken(err)
	}
	return true
}

// noLiveWorker reports whether no worker can take jobs: every registered
// worker is dead or retired.
func (t *Transport) noLiveWorker() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.workers {
		if !w.gone.Load() && !w.recycle.Load() {
			return false
		}
	}
	return true
}
