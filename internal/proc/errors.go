package proc

import (
	"errors"
	"fmt"

	"github.com/aplex-go/aplex/internal/spawn"
)

// ErrHandshake is wrapped by every error of a worker process that did not
// complete the handshake: it exited first, said nothing in time, or spoke
// another protocol version.
var ErrHandshake = errors.New("aplex: worker handshake failed")

// ErrProtocol is wrapped by the Lost cause of a worker killed because it
// sent a malformed, oversize or unexpected frame.
var ErrProtocol = errors.New("aplex: worker protocol error")

// ExitError is the cause Sink.Lost reports for a worker process that ended
// other than by a clean exit after Close.
type ExitError struct {
	Slot   int    // the worker's slot
	PID    int    // its process id
	Status string // how it ended: "exit status 3", "signal: killed"
	Reason string // why it was killed, if it was ("killed: memory limit 64 MiB exceeded (RSS 80 MiB)")
	Err    error  // the Kill reason, if any; errors.Is and errors.As see it
}

// Error reads "worker 2 (pid 123): exit status 3", with the kill reason
// first when there is one.
func (e *ExitError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("worker %d (pid %d): %s (%s)", e.Slot, e.PID, e.Reason, e.Status)
	}
	return fmt.Sprintf("worker %d (pid %d): %s", e.Slot, e.PID, e.Status)
}

// Unwrap returns the Kill reason.
func (e *ExitError) Unwrap() error { return e.Err }

// MemoryLimitError is the Kill reason of a worker whose resident memory
// went over Config.MemoryLimit (spawn.WatchMemory).
type MemoryLimitError = spawn.MemoryLimitError
