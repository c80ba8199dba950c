// Package gopool keeps goroutines that have run a task parked, to run the
// next one: a goroutine executor's works, and a worker's jobs, each get a
// goroutine of their own while they run (a task may block for as long as
// it likes), without one being created and destroyed per task, and
// without a fresh goroutine's stack growing again for each.
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
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultIdle is the idle time the project's pools use: goroutines spare
// for a whole second end.
const DefaultIdle = time.Second

// Task is what a Pool runs. Run runs it and returns the next task for the
// same goroutine to run at once, or nil to park the goroutine (so a
// goroutine that finishes a task can take a queued one without a
// hand-off).
//
// The pool calls Run itself, so that nothing of the pool's sits between
// its loop and the task's code but that one frame: a task that blocks
// (a work sleeping, waiting on I/O) wakes to its goroutine's stack gone
// cold, and each frame under it is a cache line or two more to fetch,
// and stack for the GC to unwind at every cycle.
type Task interface {
	Run() Task
}

// Pool runs Tasks on goroutines it keeps. Its methods are safe for
// concurrent use; Run is never called under the pool's lock.
type Pool struct {
	idle time.Duration
	// handoff is never closed: a nil task retires the goroutine that
	// receives it, so a Go racing Close never sends on a closed channel.
	handoff chan Task
	closed  atomic.Bool
	// parked is written by the pool's goroutines at every task; on a cache
	// line of its own, away from handoff, which Go reads.
	_      [128]byte
	parked atomic.Int32 // goroutines parked or about to park
	// taken counts the tasks parked goroutines received since the
	// reaper's last tick (tick): beside parked, which the same goroutine
	// writes just before.
	taken atomic.Int32
	_     [128]byte
	// waking counts the tasks Go handed to a goroutine that has not started
	// them yet (OnStart); written by Go and by the woken goroutines.
	waking  atomic.Int32
	_       [128]byte
	started func() // OnStart's hook; nil: waking is not kept

	mu    sync.Mutex // serialises the reaper's ticks
	spare int32      // goroutines parked at the last tick (those left); under mu

	// The reaper: one timer, armed while goroutines are parked.
	armed atomic.Bool
	timer *time.Timer
}

// New returns a pool whose goroutines run the tasks handed to them, and
// the tasks those return. Goroutines parked for idle or longer are
// retired.
func New(idle time.Duration) *Pool {
	p := &Pool{idle: idle, handoff: make(chan Task)}
	p.timer = time.AfterFunc(time.Hour, p.tick)
	p.timer.Stop()
	return p
}

// OnStart makes the pool count the tasks handed over by Go that no
// goroutine has started yet (Waking), and call started on the goroutine
// that takes one, once that count is lowered and before its Run. Call it
// before the first Go.
func (p *Pool) OnStart(started func()) { p.started = started }

// Waking returns the number of tasks handed over by Go whose goroutine has
// not started them yet (0 without OnStart).
func (p *Pool) Waking() int { return int(p.waking.Load()) }

// Go runs t on a parked goroutine, or on a new one if none is parked. After
// Close, t runs on a goroutine of its own, which then ends.
func (p *Pool) Go(t Task) {
	if p.started != nil {
		p.waking.Add(1)
	}
	select {
	case p.handoff <- t:
	default:
		go p.loop(t)
	}
}

// loop is a pool goroutine: it runs t and the tasks run returns, then parks
// for the next until it is retired.
func (p *Pool) loop(t Task) {
	for t != nil {
		if p.started != nil {
			p.waking.Add(-1)
			p.started()
		}
		for t != nil {
			t = t.Run()
		}
		t = p.park()
	}
}

// park waits for the next task; nil means the goroutine is retired.
func (p *Pool) park() Task {
	p.parked.Add(1)
	// Counted first, then the flag: Close sets the flag, then waits for
	// every counted goroutine, so none parks unseen after Close.
	if p.closed.Load() {
		p.parked.Add(-1)
		return nil
	}
	if !p.armed.Load() && p.armed.CompareAndSwap(false, true) {
		p.timer.Reset(p.idle)
	}
	t := <-p.handoff
	p.parked.Add(-1)
	if t != nil {
		p.taken.Add(1)
	}
	return t
}

// Parked returns the number of goroutines parked now, or about to park: a
// goroutine is counted just before it blocks in the hand-off, so a Go right
// after may still start a new goroutine. (Tests that need a goroutine
// blocked there wait for it with testutil.IsBlockedIn.)
func (p *Pool) Parked() int { return int(p.parked.Load()) }

// tick retires the goroutines that stayed parked from the tick before to
// this one: the pool did not need them for a whole idle period. Of the
// goroutines parked at the last tick, those the hand-off woke since are
// the first taken ones, since it wakes the longest parked goroutine
// first; the others are still parked, first in line, and those are the
// ones the nil tasks of retireLocked reach. A pool that goes through
// bursts, all its goroutines parked between two, keeps them. Retiring one
// too many costs a goroutine start later, never a task.
func (p *Pool) tick() {
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return // armed stays set: nothing re-arms a closed pool
	}
	now := p.parked.Load()
	spare := max(0, min(now, p.spare-p.taken.Swap(0)))
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

// retireLocked retires up to n parked goroutines, those blocked in the
// hand-off now.
func (p *Pool) retireLocked(n int32) {
	for range n {
		select {
		case p.handoff <- nil:
		default:
			return
		}
	}
}

// Close retires every goroutine: the parked ones before it returns, the
// others once their task returns. It does not wait for tasks that still
// run.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.timer.Stop()
	// Every goroutine counted in parked either blocks in the hand-off now
	// or will, having missed the flag: each takes a nil. The wait is for
	// goroutines between their count and their receive, a few
	// instructions away.
	for p.parked.Load() > 0 {
		select {
		case p.handoff <- nil:
		default:
			runtime.Gosched()
		}
	}
}
