// Package gopool keeps goroutines that have run a task parked, to run the
// next one: a goroutine executor's works each get a goroutine of their own
// while they run (a task may block for as long as it likes), without one
// being created and destroyed per task.
// Waking a parked goroutine costs less than creating one and leaves the
// scheduler's free lists alone; the bench module's Overhead workload
// shows the difference.
//
// The hand-off is an unbuffered channel, sent to without blocking: the
// send succeeds exactly when a goroutine is parked on it, so no list of
// idle goroutines is kept and no lock is taken. Parked goroutines are
// never more than the tasks that ran at once; a reaper retires those that
// stayed spare for the pool's idle time, and Close retires them all.
package gopool

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs tasks of type *T on goroutines it keeps.
//
// Go and Close must not run concurrently with each other: the caller
// serialises them (the executor calls both under its lock). A Go after
// Close runs its task on a goroutine of its own, which then ends. The
// pool's own lock is a leaf: it is taken by Close and by the reaper, never
// while calling run.
type Pool[T any] struct {
	run     func(*T) *T
	idle    time.Duration
	handoff chan *T // a nil task retires the goroutine that receives it
	parked  atomic.Int32

	mu     sync.Mutex // guards closed against the reaper; see Pool
	closed bool       // written under mu, by Close; read by Go without it
	spare  int32      // parked goroutines at the reaper's last tick; under mu

	// The reaper: one timer, armed while goroutines are parked.
	armed atomic.Bool
	timer *time.Timer
}

// New returns a pool whose goroutines call run(t) for each task t handed
// to them. run returns the next task for the same goroutine to run at
// once, or nil to park it (so a goroutine that finishes a task can take
// a queued one without a hand-off). Goroutines parked for idle or longer
// are retired.
func New[T any](run func(*T) *T, idle time.Duration) *Pool[T] {
	p := &Pool[T]{run: run, idle: idle, handoff: make(chan *T)}
	p.timer = time.AfterFunc(time.Hour, p.tick)
	p.timer.Stop()
	return p
}

// Go runs t on a parked goroutine, or on a new one if none is parked.
func (p *Pool[T]) Go(t *T) {
	if !p.closed {
		select {
		case p.handoff <- t:
			return
		default:
		}
	}
	go p.loop(t)
}

// loop is a pool goroutine: it runs t and the tasks run returns, then parks
// for the next until it is retired.
func (p *Pool[T]) loop(t *T) {
	for t != nil {
		for t != nil {
			t = p.run(t)
		}
		t = p.park()
	}
}

// park waits for the next task; nil means the goroutine is retired.
func (p *Pool[T]) park() *T {
	p.parked.Add(1)
	if !p.armed.Load() && p.armed.CompareAndSwap(false, true) {
		p.timer.Reset(p.idle)
	}
	t := <-p.handoff // nil once closed
	p.parked.Add(-1)
	return t
}

// Parked returns the number of goroutines parked now.
func (p *Pool[T]) Parked() int { return int(p.parked.Load()) }

// tick retires the goroutines that were parked at both this tick and the
// one before: the pool did not need them for a whole idle period.
// Retiring one too many costs a goroutine start later, never a task.
func (p *Pool[T]) tick() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return // armed stays set: nothing re-arms a closed pool
	}
	now := p.parked.Load()
	spare := min(now, p.spare)
	p.retireLocked(spare)
	p.spare = now - spare
	p.mu.Unlock()
	p.armed.Store(false)
	// A goroutine that parked after the load above saw armed set and left
	// the timer to this tick: arm again while any is parked.
	if p.parked.Load() > 0 && p.armed.CompareAndSwap(false, true) {
		p.timer.Reset(p.idle)
	}
}

// retireLocked retires up to n parked goroutines.
func (p *Pool[T]) retireLocked(n int32) {
	for range n {
		select {
		case p.handoff <- nil:
		default:
			return
		}
	}
}

// Close retires every goroutine, parked now or once its task returns. It
// does not wait for tasks that still run.
func (p *Pool[T]) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.handoff)
	}
	p.mu.Unlock()
	p.timer.Stop()
}
