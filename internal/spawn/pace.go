package spawn

import "time"

// Pacing shared by every transport that restarts worker processes.
const (
	// WaitDelay bounds how long exec.Cmd.Wait waits for a grandchild that
	// holds a worker's stdout open after the worker itself has exited.
	WaitDelay = 500 * time.Millisecond

	backoffMin = 10 * time.Millisecond
	backoffMax = 2 * time.Second
)

// NextBackoff returns the wait before the next restart of a worker whose
// last start failed after waiting d (0 for the first failure): it doubles
// from 10ms up to 2s, so a worker that keeps dying costs little but is
// retried soon after a passing failure.
func NextBackoff(d time.Duration) time.Duration {
	return min(max(2*d, backoffMin), backoffMax)
}
