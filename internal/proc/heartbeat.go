package proc

import (
	"fmt"
	"time"
)

// HeartbeatError is the Kill reason of a worker that sent nothing, not
// even a heartbeat, for Config.HeartbeatTimeout: it is stopped (SIGSTOP),
// stuck in the kernel or otherwise unable to run.
type HeartbeatError struct {
	Timeout time.Duration
}

// Error reads "no heartbeat for 3s".
func (e *HeartbeatError) Error() string { return fmt.Sprintf("no heartbeat for %v", e.Timeout) }

// heardNow records a sign of life from the child.
func (w *worker) heardNow() { w.heard.Store(int64(time.Since(w.t.epoch))) }

// watchHeartbeats kills every worker silent for longer than the heartbeat
// timeout, checking four times per timeout; the kill makes the reader see
// EOF, report the loss and wake the slot's supervisor, as for any death.
// A SIGKILL ends a stopped process too. It runs until every worker is gone
// at Close.
//
// Silence must be the child's, not this process's: after a round that came
// late (this process was not scheduled, e.g. a loaded machine or a long GC
// pause) it waits one more round, so that the readers can catch up first,
// and a worker whose reply pipe holds unread bytes is not silent.
func (t *Transport) watchHeartbeats() {
	timeout := t.cfg.HeartbeatTimeout
	every := timeout / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := time.Since(t.epoch)
	for {
		select {
		case <-t.reaped:
			return
		case <-tick.C:
		}
		now := time.Since(t.epoch)
		late := now-last > 2*every
		last = now
		if late {
			continue
		}
		for _, w := range t.live() {
			heard := w.heard.Load()
			if heard < 0 || now-time.Duration(heard) <= timeout {
				continue
			}
			if unread(w.fromChild) > 0 {
				continue // the reader is behind, the child is not silent
			}
			w.Kill(&HeartbeatError{Timeout: timeout})
		}
	}
}
