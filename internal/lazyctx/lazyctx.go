// Package lazyctx is the state of a context that costs nothing until it
// is watched, embedded in the object whose context it is: the ctx of a
// work that runs in this process (internal/engine, a view of its task)
// and of a job a worker runs (internal/host, a view of the job). So a
// work's ctx is no allocation of its own; its done channel is made by the
// first Done, the watch on its parent and its deadline's timer only then;
// and contexts derived from it (context.WithCancel, WithTimeout,
// AfterFunc) register a callback here, through the AfterFunc method the
// context package looks for, instead of a goroutine each.
//
// The owner implements context.Context with the functions of this
// package: Deadline, Done, Err and AfterFunc, its own Value. Its lock
// guards the State; the functions take it themselves, and call nothing
// of the owner's under it but Parent and Lazy.
package lazyctx

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Owner is the object that embeds a State. ParentEnded is what its
// parent's end does: it must end the ctx (Cancel), and may end more (the
// engine cancels the work's task). It is called without the lock.
type Owner interface {
	// Parent is the ctx this one derives from: its values, its deadline
	// and its cancellation.
	Parent() context.Context
	// Lazy returns the owner's State.
	Lazy() *State
	Lock()
	Unlock()
	ParentEnded(err error)
}

// State is a lazy context's state, guarded by its owner's lock. Its zero
// value is a ctx without a deadline of its own, not ended. It is two
// words: what a ctx needs only once it is watched, has a deadline of its
// own or has ended is out of line (watch), so that its owner stays in a
// small size class (a task's: see internal/engine). A deadline of its own
// so costs an allocation (SetDeadline) that a ctx whose deadline is
// watched (Done, AfterFunc: its timer lives there) needed anyway; only a
// work that never looks at its ctx but has a deadline pays it anew.
type State struct {
	done chan struct{} // made by the first Done
	// w is made only once something watches the ctx, it gets a deadline
	// of its own or it ends (watchFor). Atomic so that Release, once per
	// work, can see that nothing watched it without taking the lock, and
	// so that SetDeadline, which takes no lock, and a Cancel racing it
	// make one watch between them.
	w atomic.Pointer[watch]
}

// cause says how a ctx ended.
type cause uint32

const (
	notEnded cause = iota
	endedCanceled
	endedDeadline
	endedOther // w.err
)

// watch is what a ctx needs only once something watches it. Out of line,
// so that a ctx nobody watches stays small.
type watch struct {
	// deadline is in Unix nanoseconds; 0: none but the parent's. Set
	// before use (SetDeadline), or moved earlier under the owner's lock
	// (Tighten); atomic so that Deadline and expired read it without the
	// lock.
	deadline atomic.Int64
	// ended is the first cause, once ended: one of the standard errors,
	// or another kept in err. Under the owner's lock.
	ended  cause
	stop   func() bool // the watch on the parent
	timer  *time.Timer // the deadline's
	target *target     // what the timer ends
	funcs  map[*func()]struct{}
	err    error // the first cause, when it is not a standard error
}

// endedLocked returns how the ctx ended, notEnded while it has not.
func (s *State) endedLocked() cause {
	if w := s.w.Load(); w != nil {
		return w.ended
	}
	return notEnded
}

// deadlineNano returns the ctx's own deadline, 0 if it has none. No lock.
func (s *State) deadlineNano() int64 {
	if w := s.w.Load(); w != nil {
		return w.deadline.Load()
	}
	return 0
}

// errLocked returns the first cause, nil while the ctx has not ended.
func (s *State) errLocked() error {
	switch s.endedLocked() {
	case notEnded:
		return nil
	case endedCanceled:
		return context.Canceled
	case endedDeadline:
		return context.DeadlineExceeded
	default:
		return s.w.Load().err
	}
}

// endLocked records err as the cause; err is not nil.
func (s *State) endLocked(err error) {
	w := s.watchFor()
	switch err {
	case context.Canceled:
		w.ended = endedCanceled
	case context.DeadlineExceeded:
		w.ended = endedDeadline
	default:
		w.err = err
		w.ended = endedOther
	}
}

// target is what a deadline's timer ends, emptied once the timer is
// stopped: a stopped timer can stay in the runtime's timer heap, its
// function reachable, until it would have fired, and an owner (a task)
// may point to what must not stay reachable that long (its executor).
type target struct {
	mu sync.Mutex
	o  Owner
}

// DeadlineIn returns the deadline d from now, in Unix nanoseconds, for
// SetDeadline and Tighten. It saturates: a deadline past what Unix
// nanoseconds hold (the year 2262, as Deadline(math.MaxInt64) or a
// caller's deadline centuries away give) is the latest one they hold,
// where time.Now().Add(d).UnixNano() wrapped around into the past and
// ended the work at once (TestHugeDeadlinesDoNotOverflow).
func DeadlineIn(d time.Duration) int64 {
	now := time.Now().UnixNano()
	if d > 0 && int64(d) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(d)
}

// SetDeadline gives the ctx a deadline of its own, in Unix nanoseconds,
// before anyone uses it.
func (s *State) SetDeadline(unixNano int64) { s.watchFor().deadline.Store(unixNano) }

// Tighten moves the ctx's own deadline to unixNano if that is earlier than
// the one it has (or it has none), at any time: a worker's job held for a
// slot gets its Deadline(d) when it starts, after its ctx may have been
// watched (a held job's expiry watch, a propagator's derived ctx). A
// watched ctx's timer is moved; a deadline already past ends the ctx now.
// Not after Release (which stops the timer for good), unless the ctx has
// ended, when Tighten does nothing.
func Tighten(o Owner, unixNano int64) {
	s := o.Lazy()
	o.Lock()
	if s.endedLocked() != notEnded {
		o.Unlock()
		return
	}
	if d := s.deadlineNano(); d != 0 && d <= unixNano {
		o.Unlock()
		return
	}
	s.watchFor().deadline.Store(unixNano)
	if s.done == nil {
		o.Unlock() // not watched yet: Done arms the timer from the new deadline
		return
	}
	if time.Now().UnixNano() >= unixNano {
		o.Unlock()
		Cancel(o, context.DeadlineExceeded)
		return
	}
	w := s.watchFor()
	if w.timer != nil {
		w.timer.Reset(time.Until(time.Unix(0, unixNano)))
	} else {
		armDeadlineLocked(o, w, unixNano)
	}
	o.Unlock()
}

// armDeadlineLocked starts the timer that ends the ctx at its deadline.
func armDeadlineLocked(o Owner, w *watch, unixNano int64) {
	w.target = &target{o: o}
	tg := w.target
	w.timer = time.AfterFunc(time.Until(time.Unix(0, unixNano)), func() {
		tg.mu.Lock()
		o := tg.o
		tg.mu.Unlock()
		if o != nil {
			Cancel(o, context.DeadlineExceeded)
		}
	})
}

// watchFor returns the watch state, making it. Its fields but deadline
// are guarded by the owner's lock; making it is not, as SetDeadline makes
// it without the lock.
func (s *State) watchFor() *watch {
	if w := s.w.Load(); w != nil {
		return w
	}
	if w := new(watch); s.w.CompareAndSwap(nil, w) {
		return w
	}
	return s.w.Load()
}

// Deadline is context.Context's: the earlier of the parent's and the ctx's
// own.
func Deadline(o Owner) (time.Time, bool) {
	pd, ok := o.Parent().Deadline()
	d := o.Lazy().deadlineNano()
	if d == 0 || (ok && pd.UnixNano() < d) {
		return pd, ok
	}
	return time.Unix(0, d), true
}

// Done is context.Context's. The first call makes the channel and arms
// the watches on the parent and the deadline.
func Done(o Owner) <-chan struct{} {
	s := o.Lazy()
	o.Lock()
	done := s.done
	if done != nil {
		o.Unlock()
		return done
	}
	done = make(chan struct{})
	s.done = done
	p := o.Parent()
	if s.endedLocked() == notEnded {
		if err := p.Err(); err != nil {
			// The parent ended before anyone looked: that ends the ctx
			// (outside the lock), and so closes done.
			o.Unlock()
			o.ParentEnded(err)
			return done
		}
		if err := s.expired(); err != nil {
			s.endLocked(err)
		}
	}
	if s.endedLocked() != notEnded {
		close(done)
		o.Unlock()
		return done
	}
	if p.Done() != nil {
		s.watchFor().stop = context.AfterFunc(p, func() { o.ParentEnded(p.Err()) })
	}
	if d := s.deadlineNano(); d != 0 {
		armDeadlineLocked(o, s.watchFor(), d)
	}
	o.Unlock()
	return done
}

// expired reports whether the ctx's own deadline has passed. No lock: the
// deadline is atomic, and one moved earlier meanwhile is seen by the next
// call or ends the ctx itself (Tighten).
func (s *State) expired() error {
	if d := s.deadlineNano(); d != 0 && time.Now().UnixNano() >= d {
		return context.DeadlineExceeded
	}
	return nil
}

// Err is context.Context's. A cause seen before its watch fired (the
// parent ended, the deadline passed) ends the ctx now, callbacks included.
func Err(o Owner) error {
	s := o.Lazy()
	o.Lock()
	err := s.errLocked()
	o.Unlock()
	if err != nil {
		return err
	}
	if perr := o.Parent().Err(); perr != nil {
		o.ParentEnded(perr)
	} else if err := s.expired(); err != nil {
		Cancel(o, err)
	} else {
		return nil
	}
	o.Lock()
	err = s.errLocked()
	o.Unlock()
	return err
}

// AfterFunc is the method the context package looks for: contexts derived
// from the ctx register f here, to run once it ends; stop unregisters it.
func AfterFunc(o Owner, f func()) (stop func() bool) {
	Done(o) // arms the watches on the parent and the deadline
	s := o.Lazy()
	o.Lock()
	if s.endedLocked() != notEnded {
		o.Unlock()
		// Not in this goroutine: callers may hold their own lock here.
		go f()
		return func() bool { return false }
	}
	w := s.watchFor()
	if w.funcs == nil {
		w.funcs = map[*func()]struct{}{}
	}
	key := &f
	w.funcs[key] = struct{}{}
	o.Unlock()
	return func() bool {
		o.Lock()
		defer o.Unlock()
		_, ok := w.funcs[key]
		delete(w.funcs, key)
		return ok
	}
}

// Cancel ends the ctx with err, unless it has ended (the first cause
// wins), and runs the callbacks registered with AfterFunc, outside the
// lock.
func Cancel(o Owner, err error) {
	s := o.Lazy()
	o.Lock()
	if s.endedLocked() != notEnded {
		o.Unlock()
		return
	}
	s.endLocked(err)
	if s.done != nil {
		close(s.done)
	}
	var fns map[*func()]struct{}
	if w := s.w.Load(); w != nil {
		fns, w.funcs = w.funcs, nil
	}
	o.Unlock()
	for f := range fns {
		(*f)()
	}
}

// Release stops the watches on the parent and the deadline, once the ctx's
// work has returned: nothing ends the ctx after that but Cancel, and
// contexts derived from it that outlive the work are on their own, as
// with a standard ctx.
func Release(o Owner) {
	s := o.Lazy()
	if s.w.Load() == nil {
		// Nothing watched the ctx: the common case, without the lock. A
		// Done racing this, from a goroutine the work left behind, arms
		// watches nothing stops, as one after the lock would.
		return
	}
	// The watch itself stays: it holds the deadline and the cause.
	o.Lock()
	var stop func() bool
	var timer *time.Timer
	var tg *target
	if w := s.w.Load(); w != nil {
		stop, timer, tg = w.stop, w.timer, w.target
		w.stop, w.timer, w.target, w.funcs = nil, nil, nil, nil
	}
	o.Unlock()
	if stop != nil {
		stop()
	}
	if timer != nil {
		timer.Stop()
		tg.mu.Lock()
		tg.o = nil
		tg.mu.Unlock()
	}
}
