package proc

import (
	"time"

	"github.com/aplex-go/aplex/internal/spawn"
)

// slot is one position of the pool. Its supervisor goroutine owns cur, the
// worker the core dispatches to; a retired predecessor may still be
// draining beside it.
type slot struct {
	idx  int
	wake chan struct{} // capacity 1: cur died or is due for recycling
	cur  *worker       // only touched by the supervisor (and Start before it)
}

// supervise keeps slot s staffed until Close: it replaces a worker that
// died, and retires and replaces one that reached RecycleAfter.
func (t *Transport) supervise(s *slot) {
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-s.wake:
		}
		switch w := s.cur; {
		case w == nil:
		case w.gone.Load():
			t.replace(s)
		case w.recycle.Load():
			// Retire first so the core stops dispatching to w; it calls
			// w.Close once w's last job ended, and w exits with Lost(w, nil).
			t.sink.Retire(w)
			t.replace(s)
		}
	}
}

// replace starts a successor in s, retrying with exponential back-off
// while starts fail. It gives up only when the transport closes.
func (t *Transport) replace(s *slot) {
	s.cur = nil
	delay := time.Duration(0)
	for {
		if delay > 0 && !t.sleep(delay) {
			return
		}
		w, err := t.spawn(t.ctx, s.idx)
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			delay = spawn.NextBackoff(delay)
			t.log.Warn("aplex: cannot restart process worker", "slot", s.idx, "retry_in", delay, "err", err)
			if t.noLiveWorker() {
				t.sink.Broken(err)
			}
			continue
		}
		w.slot = s
		if !t.register(w) {
			w.abort() // Close began while it started
			return
		}
		s.cur = w
		t.sink.Join(w)
		w.startIO()
		return
	}
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

// sleep waits d, or until Close; it reports whether the transport is still
// open.
func (t *Transport) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}
