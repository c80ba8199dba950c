package proc

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aplex-go/aplex/internal/wire"
)

// readLoop is the worker's reader goroutine. It hands each Results frame
// to Sink.Done itself (measured: an extra hand-off goroutine costs more
// than the pipe), and when the stream ends it reaps the child and reports
// the loss.
func (w *worker) readLoop() {
	defer w.finish()
	for {
		m, err := w.rd.Next()
		if err != nil {
			w.heard.Store(-1) // reap bounds the wait for the exit from here
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				w.Kill(fmt.Errorf("%w: %w", ErrProtocol, err))
			}
			return
		}
		// Any frame is a sign of life.
		switch m := m.(type) {
		case *wire.Results:
			w.heard.Store(-1) // time spent here is ours, not the child's silence
			w.t.sink.Done(w, m.Results)
			w.heardNow()
		case *wire.Heartbeat:
			w.heardNow()
		case *wire.Bye:
			// Bye is followed by exit; nothing to do until EOF.
			w.said.Store(true)
		default:
			w.Kill(fmt.Errorf("%w: unexpected %v message from the worker", ErrProtocol, m.Kind()))
			return
		}
	}
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
	w.t.sink.Lost(w, cause)
	w.gone.Store(true)
	close(w.done)
	notify(w.slot.wake)
}
