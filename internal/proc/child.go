package proc

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/aplex-go/aplex/internal/host"
)

// EnvRole is the environment variable that marks a worker process; its
// value is "process" in children started by a Transport.
const EnvRole = "APLEX_WORKER_ROLE"

// Further variables a Transport sets for its children.
const (
	envMaxFrame  = "APLEX_WORKER_MAX_FRAME" // the parent's frame limit
	envSlot      = "APLEX_WORKER_SLOT"      // the worker's slot
	envHeartbeat = "APLEX_WORKER_HEARTBEAT" // the interval of Heartbeat frames, a time.Duration
)

// roleProcess is EnvRole's value in process workers.
const roleProcess = "process"

// The child's ends of the pipes, as ExtraFiles places them.
const (
	childInFD  = 3 // requests from the parent
	childOutFD = 4 // replies to the parent
)

// IsChild reports whether this process was started as a process worker and
// has not begun serving yet (ServeChild clears the marker, so that programs
// a work starts are not mistaken for workers).
func IsChild() bool { return os.Getenv(EnvRole) == roleProcess }

// ChildSlot returns the slot of this worker process, as the parent set it,
// and whether there is one.
func ChildSlot() (int, bool) {
	n, err := strconv.Atoi(os.Getenv(envSlot))
	return n, err == nil
}

// ServeChild serves the parent executor over fd 3 (requests in) and fd 4
// (replies out) with host.ServeConn and returns when the parent is gone or
// has shut the worker down; the caller then exits the process. It ignores
// SIGINT, because Ctrl-C at a terminal reaches the whole process group and
// the parent decides when its workers stop. cfg.MaxFrame defaults to the
// parent's limit.
func ServeChild(cfg host.Config) error {
	if !IsChild() {
		return errors.New("aplex: ServeChild called in a process that is not a worker")
	}
	signal.Ignore(os.Interrupt)
	os.Unsetenv(EnvRole)
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame, _ = strconv.Atoi(os.Getenv(envMaxFrame))
	}
	if cfg.Heartbeat <= 0 {
		// The parent counts a worker silent for three of these as lost.
		cfg.Heartbeat, _ = time.ParseDuration(os.Getenv(envHeartbeat))
	}
	in, err := childFile(childInFD, "aplex-requests")
	if err != nil {
		return err
	}
	out, err := childFile(childOutFD, "aplex-replies")
	if err != nil {
		in.Close()
		return err
	}
	defer out.Close()
	return host.ServeConn(context.Background(), cfg, in, out)
}
