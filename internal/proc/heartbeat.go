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
func (t *Transport) watchHeartbeats() {
	timeout := t.cfg.HeartbeatTimeout
	tick := time.NewTicker(timeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-t.reaped:
			return
		case <-tick.C:
		}
		now := int64(time.Since(t.epoch))
		for _, w := range t.live() {
			if heard := w.heard.Load(); heard >= 0 && time.Duration(now-heard) > timeout {
				w.Kill(&HeartbeatError{Timeout: timeout})
			}
		}
	}
}
