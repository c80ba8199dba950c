package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// readLoop is the worker's reader goroutine. It reads whenever the baton
// is free and it is woken (baton.go), handing each Results frame to
// Sink.Done itself, and when the stream ends it reaps the child and
// reports the loss.
func (w *worker) readLoop() {
	defer w.finish()
	b := &w.rb
	defer b.grace.Stop()
	for {
		<-b.wake
		b.mu.Lock()
		if b.state.Load() != rdNone {
			b.mu.Unlock()
			continue // a waiter reads; it wakes us when it leaves
		}
		b.state.Store(rdLoop)
		b.mu.Unlock()
		if w.readAsLoop() {
			b.mu.Lock()
			b.ended = true // a Get finds nothing to read here
			b.mu.Unlock()
			return
		}
	}
}

// readAsLoop reads and handles replies until the stream ends (true) or a
// waiter takes the baton (false).
func (w *worker) readAsLoop() (ended bool) {
	b := &w.rb
	for {
		m, err := w.rd.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.mu.Lock()
			w.fromChild.SetReadDeadline(time.Time{})
			if to := b.evictTo; to != nil {
				b.evictTo = nil
				b.state.Store(rdWaiter)
				b.mu.Unlock()
				to <- true
				return false
			}
			b.mu.Unlock()
			continue // the waiter that asked gave up meanwhile
		}
		if err != nil {
			w.streamEnded(err)
			return true
		}
		if !w.handle(m) {
			return true
		}
		if _, ok := m.(*wire.Results); ok && w.roundTrips.Load() {
			w.roundTrips.Store(false)
		}
	}
}

// streamEnded handles the error that ended the reply stream: a stream that
// is not at its clean end is a protocol error, and kills the child.
func (w *worker) streamEnded(err error) {
	w.heard.Store(-1) // reap bounds the wait for the exit from here
	if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
		w.Kill(fmt.Errorf("%w: %w", ErrProtocol, err))
	}
}

// handle handles one reply, for the reader goroutine or a waiter; false
// means a protocol error: the child is killed, and the reading must stop.
func (w *worker) handle(m wire.Msg) bool {
	// Any frame is a sign of life.
	switch m := m.(type) {
	case *wire.Results:
		w.inflight.Add(-int64(len(m.Results)))
		w.heard.Store(-1) // time spent here is ours, not the child's silence
		w.t.delivering.Add(1)
		w.t.sink.Done(w, m.Results)
		w.t.delivering.Add(-1)
		w.heardNow()
	case *wire.Started:
		w.t.sink.Started(w, m.IDs)
		w.heardNow()
	case *wire.Heartbeat:
		w.heardNow()
	case *wire.Bye:
		// Bye is followed by exit; nothing to do until EOF.
		w.said.Store(true)
	default:
		w.Kill(fmt.Errorf("%w: unexpected %v message from the worker", ErrProtocol, m.Kind()))
		return false
	}
	return true
}

// finish runs once the reply stream has ended: it stops the writer, reaps
// the child, reports Sink.Lost and wakes the slot's supervisor.
func (w *worker) finish() {
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	w.out.Drop()
	// Closing our end of the request pipe unblocks a writer stuck on a full
	// pipe and, if the child is still alive, tells it the executor is gone.
	w.toChild.Close()
	w.out.Wait()
	status := w.reap()

	w.mu.Lock()
	// A write that failed because the child exited after Close, and the
	// kill that followed it, do not make a clean exit unclean.
	clean := w.closed && (w.killErr == nil || errors.Is(w.killErr, errUnwritable)) && w.cmd.ProcessState.Success()
	killErr := w.killErr
	w.mu.Unlock()
	var cause error
	if !clean {
		e := &ExitError{Slot: w.slotIdx, PID: w.pid, Status: status, Err: killErr}
		if killErr != nil {
			e.Reason = "killed: " + killErr.Error()
		}
		cause = e // the core logs the loss, with the worker's name and reason
	}
	w.t.unregister(w)
	w.t.delivering.Add(1) // Lost fails futures: their callbacks run here
	w.t.sink.Lost(w, cause)
	w.t.delivering.Add(-1)
	w.gone.Store(true)
	close(w.done)
	notify(w.slot.wake)
}
