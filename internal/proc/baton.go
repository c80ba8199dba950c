package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// Who reads a worker's replies.
//
// A goroutine that waits in the pipe is woken by the network poller when
// bytes arrive, on the thread that polled: no hand-off. Any other goroutine
// that needs the reply then costs a wake-up of its own, and on a small
// machine that one hand-off doubles a round trip (BenchmarkRoundTrip's
// raw-pipes-handoff floor). So the replies are read, in turn, by whoever
// needs them:
//
//   - a caller waiting in Future.Get for a job of this worker (ReadUntil),
//     while nobody else reads: it reads, handles every reply (its own and
//     any other's) and stops once its future has ended;
//   - otherwise the worker's reader goroutine (readLoop, reader.go), which
//     also sees the end of the stream and reports the loss.
//
// The right to read is a baton (readBaton). The reader goroutine takes it
// when it is free and it is woken: at start, whenever a job is left
// unanswered (a waiter leaving with other jobs in flight, a future awaited
// by other means, a work queued for the slot a reply frees: Need), when
// the worker is closed or killed, and at the latest idleGrace after the
// last waiter left. That last delay keeps the
// baton free between the round trips of a caller that submits and waits,
// one work at a time, so that each of its Gets reads for itself; the price
// is that a reply nobody awaits (a submit whose future is never looked at)
// may be read that much later.
//
// A waiter reads only when its own job is the only one in flight (the
// round trip case); then, finding the reader goroutine reading, it takes
// the baton from it: it sets a read deadline, which wakes the goroutine,
// and the goroutine passes the baton over. With more jobs in flight the
// replies come in bursts, the goroutine's hand-off is shared by many, and
// the waiter just waits.
//
// A waiter blocked in the pipe is stopped the same way, by a read deadline
// (Interrupt), when its future ends otherwise (cancelled) or its ctx ends;
// wire.Reader keeps a frame cut by a deadline, so the next reader goes on
// from there.
//
// Lock order: readBaton.mu is taken alone; Sink.Done is never called under
// it.

// idleGrace is how long the baton stays free after a waiter left with
// nothing in flight, before the reader goroutine takes it back.
const idleGrace = 5 * time.Millisecond

// graceNow is the idle grace in force: idleGrace, unless a test of another
// package set it (SetIdleGrace).
var graceNow atomic.Int64

func init() { graceNow.Store(int64(idleGrace)) }

// SetIdleGrace sets the idle grace of every worker and returns a function
// that restores it. It is for tests in other packages only: one that makes
// the grace an hour shows that a reply is read when something needs it,
// not because the grace ran out.
func SetIdleGrace(d time.Duration) (restore func()) {
	old := graceNow.Swap(int64(d))
	return func() { graceNow.Store(old) }
}

// Baton states.
const (
	rdNone   int32 = iota // nobody reads
	rdLoop                // the reader goroutine reads
	rdWaiter              // a waiting caller reads (ReadUntil)
)

// readBaton is who reads a worker's replies. Its fields are guarded by mu;
// state is also read without it (Need, Interrupt).
type readBaton struct {
	mu          sync.Mutex
	state       atomic.Int32
	waitFor     <-chan struct{} // rdWaiter: the done channel it reads for
	handling    bool            // rdWaiter: handling a frame, not reading
	interrupted bool            // a read deadline stops the current reader
	evictTo     chan bool       // a waiter takes the baton from the goroutine, which sends once it passed it
	ended       bool            // the stream ended (a waiter or the goroutine met it): no waiter reads again

	wake  chan struct{} // capacity 1: the goroutine should look at the baton
	grace *time.Timer   // wakes the goroutine idleGrace after a waiter left
}

func (b *readBaton) init() {
	b.wake = make(chan struct{}, 1)
	b.grace = time.AfterFunc(time.Hour, func() { notify(b.wake) })
	b.grace.Stop()
}

// past is a read deadline that has passed: it stops a read at once.
var past = time.Unix(1, 0)

// ReadUntil reads the worker's replies in the calling goroutine, a caller
// waiting for one of its jobs, until done is closed or ctx ends, if it can
// take the baton (see the comment at the top of this file); otherwise it
// returns at once. The caller then waits on done as before. It must be
// called holding no lock that Sink.Done takes or a completion callback
// might.
func (w *worker) ReadUntil(ctx context.Context, done <-chan struct{}) {
	b := &w.rb
	b.mu.Lock()
	switch {
	case b.ended || b.state.Load() == rdWaiter:
		b.mu.Unlock()
		return
	case w.inflight.Load() != 1:
		// Other jobs in flight: their replies come in bursts, which the
		// reader goroutine reads and hands out as cheaply, while a waiter
		// would stop reading once its own reply came, for the goroutine
		// to take over again.
		if b.state.Load() == rdNone {
			notify(b.wake)
		}
		b.mu.Unlock()
		return
	case b.state.Load() == rdLoop:
		if b.evictTo != nil {
			b.mu.Unlock()
			return
		}
		to := make(chan bool, 1)
		b.evictTo = to
		w.fromChild.SetReadDeadline(past)
		b.mu.Unlock()
		select {
		case <-to:
		case <-done:
			if !w.cancelEvict(to) {
				return
			}
		case <-ctx.Done():
			if !w.cancelEvict(to) {
				return
			}
		}
		b.mu.Lock() // the goroutine passed the baton: state is rdWaiter
	default:
		b.state.Store(rdWaiter)
	}
	b.waitFor, b.handling = done, true
	b.mu.Unlock()

	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { w.Interrupt(done) })
	}
	ended, own := false, false
	defer func() {
		if stop != nil {
			stop()
		}
		if own {
			w.roundTrips.Store(true)
		}
		p := recover()
		w.leave(ended)
		if p != nil {
			crash(p)
		}
	}()
	for {
		// Between frames. A future or ctx that ended meanwhile is either
		// seen here, or its Interrupt (after handling is false) sets a
		// deadline that ends the read below at once. An Interrupt seen
		// before is lifted first: if it was for this turn, done or ctx
		// says so below; it may also be stale (the late AfterFunc of an
		// earlier Get of the same future, whose ctx ended), and must not
		// stop this one.
		b.mu.Lock()
		b.handling = false
		if b.interrupted {
			b.interrupted = false
			w.fromChild.SetReadDeadline(time.Time{})
		}
		b.mu.Unlock()
		select {
		case <-done:
		default:
			if ctx.Err() == nil {
				m, err := w.rd.Next()
				b.mu.Lock()
				b.handling = true
				b.mu.Unlock()
				switch {
				case errors.Is(err, os.ErrDeadlineExceeded):
					continue // Interrupt: look again
				case err != nil:
					ended = true // the goroutine reads the same error and finishes
				case !w.handle(m):
					ended = true
				default:
					if _, ok := m.(*wire.Results); ok {
						select {
						case <-done:
							own = true // its own reply, read by itself
						default:
						}
					}
					continue
				}
			}
		}
		break
	}
}

// crash ends the program with p, a panic from a completion callback (or an
// observer) that ran while a Get read the pipe. On the reader goroutine it
// would have ended the program; re-raised in the Get's goroutine, a caller
// that recovers would leave the other futures of that reply unfinished.
// So it ends the program the same way, with the callback's stack.
func crash(p any) {
	stack := debug.Stack()
	go panic(fmt.Sprintf("%v [recovered and re-raised: a completion callback panicked while Future.Get read a process worker's replies]\n\n%s", p, stack))
	select {}
}

// cancelEvict withdraws a waiter's request for the baton: false means it
// was withdrawn, true that the goroutine had passed the baton already (the
// waiter holds it and must leave as a reader does).
func (w *worker) cancelEvict(to chan bool) bool {
	b := &w.rb
	b.mu.Lock()
	if b.evictTo == to {
		b.evictTo = nil // the goroutine meets the deadline and reads on
		b.mu.Unlock()
		return false
	}
	b.mu.Unlock()
	<-to
	return true
}

// leave ends a waiter's turn: it lifts its read deadline, frees the baton
// and wakes the goroutine now if replies are due (or the stream ended),
// else idleGrace from now.
func (w *worker) leave(ended bool) {
	b := &w.rb
	b.mu.Lock()
	if b.interrupted {
		b.interrupted = false
		w.fromChild.SetReadDeadline(time.Time{})
	}
	b.waitFor, b.handling = nil, false
	b.ended = b.ended || ended
	b.state.Store(rdNone)
	if b.ended || w.inflight.Load() > 0 || w.closing.Load() {
		notify(b.wake)
	} else {
		b.grace.Reset(time.Duration(graceNow.Load()))
	}
	b.mu.Unlock()
}

// Interrupt stops a ReadUntil for done that is blocked in the pipe: done
// was closed (its future ended otherwise) or its ctx ended.
func (w *worker) Interrupt(done <-chan struct{}) {
	b := &w.rb
	if b.state.Load() != rdWaiter {
		return
	}
	b.mu.Lock()
	if b.state.Load() == rdWaiter && b.waitFor == done && !b.handling && !b.interrupted {
		b.interrupted = true
		w.fromChild.SetReadDeadline(past)
	}
	b.mu.Unlock()
}

// Need asks for the replies to be read now: a job's future is awaited other
// than by ReadUntil (a callback, a select on Done).
func (w *worker) Need() {
	if w.rb.state.Load() == rdNone {
		notify(w.rb.wake)
	}
}
