package engine

import (
	"sync/atomic"
	"time"
)

// runnerIdle is how long the reaper lets goroutines sit parked before it
// retires those that were spare the whole time. A variable so that tests
// can shorten it; an executor reads it once, when it is made.
var runnerIdle = time.Second

// runners keeps the goroutines of a thread executor that have run a work
// and wait, parked, for the next: a dispatched work goes to a parked
// runner when there is one and to a new goroutine otherwise. Every running
// work still has a goroutine of its own (a work may block for as long as it
// likes), but a pool running many short works no longer creates and
// destroys a goroutine for each: waking a parked one costs less than
// creating one, and leaves the scheduler's free lists alone (the
// difference is the bench module's Overhead workload).
//
// The hand-off is an unbuffered channel, sent to without blocking: the
// send succeeds exactly when a runner is parked on it, so no list of idle
// runners is kept, and no extra lock taken. Parked runners are bounded by
// the most works the executor ran at once (its capacity); a reaper retires
// those that stayed spare for runnerIdle, and Shutdown retires them all.
//
// Locking: handLocked, retireLocked and close run under core.mu (close
// takes it); park takes no lock. closed is set under core.mu before the
// channel is closed, so a send under core.mu never meets a closed channel.
type runners struct {
	c       *core
	idle    time.Duration // runnerIdle when the executor was made
	handoff chan *task    // a nil task retires the runner that receives it
	closed  bool          // under core.mu
	parked  atomic.Int32

	// The reaper: one timer, armed while runners are parked.
	armed       atomic.Bool
	timer       *time.Timer // stopped until a runner parks
	spareBefore int32       // parked runners at the last tick; under core.mu
}

func (r *runners) init(c *core) {
	r.c = c
	r.idle = runnerIdle
	r.handoff = make(chan *task)
	r.timer = time.AfterFunc(time.Hour, r.tick)
	r.timer.Stop()
}

// handLocked gives t, just dispatched, to a parked runner: false if none
// is parked, and the caller starts a goroutine for t.
func (r *runners) handLocked(t *task) bool {
	if r.closed {
		return false
	}
	select {
	case r.handoff <- t:
		return true
	default:
		return false
	}
}

// park waits for the next work to run; nil means the runner is retired
// and its goroutine must end.
func (r *runners) park() *task {
	r.parked.Add(1)
	if !r.armed.Load() && r.armed.CompareAndSwap(false, true) {
		r.arm()
	}
	t := <-r.handoff // nil once closed
	r.parked.Add(-1)
	return t
}

// arm starts the reaper's timer; the caller set armed.
func (r *runners) arm() { r.timer.Reset(r.idle) }

// tick retires the runners that were parked at both this tick and the one
// before: the pool did not need them for a whole runnerIdle. Retiring one
// too many costs a goroutine start later, never a work.
func (r *runners) tick() {
	c := r.c
	c.mu.Lock()
	if r.closed {
		c.mu.Unlock()
		return // armed stays set: nothing re-arms a closed pool
	}
	now := r.parked.Load()
	spare := min(now, r.spareBefore)
	r.retireLocked(spare)
	r.spareBefore = now - spare
	c.mu.Unlock()
	r.armed.Store(false)
	// A runner that parked after the load above saw armed set and left
	// the timer to this tick: arm again while any runner is parked.
	if r.parked.Load() > 0 && r.armed.CompareAndSwap(false, true) {
		r.arm()
	}
}

// retireLocked retires up to n parked runners.
func (r *runners) retireLocked(n int32) {
	for range n {
		select {
		case r.handoff <- nil:
		default:
			return
		}
	}
}

// close retires every runner, parked now or later, at teardown: no work is
// dispatched once the executor is down.
func (r *runners) close() {
	c := r.c
	c.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.handoff)
	}
	c.mu.Unlock()
	r.timer.Stop()
}
