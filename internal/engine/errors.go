package engine

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by executors. Compare with errors.Is.
var (
	// ErrClosed is returned by Submit, TrySubmit and Map after Shutdown or
	// Close. Futures of works cancelled by a shutdown match both ErrClosed
	// and context.Canceled.
	ErrClosed = errors.New("aplex: executor closed")
	// ErrFull is returned by TrySubmit when the queue set by WithQueueSize is full.
	ErrFull = errors.New("aplex: queue full")
	// ErrWorkerBroken is matched by every *WorkerError: the work's worker died
	// (process exit, signal, lost heartbeat) or no worker could be started.
	ErrWorkerBroken = errors.New("aplex: worker broken")
	// ErrNotRegistered is returned when a work is not registered by name
	// where it must run: an aplex.Fn work submitted to a process or cluster
	// executor, or a name the worker binary does not know.
	ErrNotRegistered = errors.New("aplex: work not registered")
	// ErrTooLarge is returned when an argument or a result does not fit in
	// one message of the executor's transport.
	ErrTooLarge = errors.New("aplex: message too large")
	// ErrEncoding is returned when an argument or result cannot be encoded
	// or decoded (CBOR) on its way to or from another process. A struct
	// with an unexported field, which CBOR would silently drop, is refused
	// with ErrEncoding naming the type and the field (at Submit for an
	// argument, on the future for a result), unless the type marshals
	// itself (MarshalCBOR or MarshalBinary; time.Time and big.Int do);
	// tag a field `cbor:"-"` to leave it out on purpose.
	ErrEncoding = errors.New("aplex: cannot encode or decode value")
	// ErrGoexit is the error of a work that called runtime.Goexit (which is
	// what t.FailNow and testify's require do): its future fails with it and
	// its worker slot is freed, on every kind of executor.
	ErrGoexit = RegisterError(errors.New("aplex: work called runtime.Goexit"))
)

// errZeroExecutor is the error of every method of an Executor that no
// constructor made (var ex aplex.Executor).
var errZeroExecutor = errors.New("aplex: executor not made by a constructor (NewThreadExecutor, NewProcessExecutor, cluster.NewExecutor)")

// errShutdown is the error of futures cancelled by Shutdown or Close: it
// matches ErrClosed and context.Canceled.
var errShutdown = fmt.Errorf("%w: work cancelled (%w)", ErrClosed, errCanceled)

// PanicError is the error of a work that panicked. The worker survives.
type PanicError struct {
	// Value is the value passed to panic. For a work that ran in another
	// process it is the panic value's text.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack string
	// Remote reports that the panic happened in another process.
	Remote bool

	// sentinels are the registered sentinel errors a remote panic value
	// matched in its worker (see Is).
	sentinels []error
	// typed are the values of registered error types a remote panic
	// value's chain held (see As).
	typed []error
}

// Error says that the work panicked, and with what.
func (e *PanicError) Error() string {
	where := ""
	if e.Remote {
		where = " (in worker process)"
	}
	return fmt.Sprintf("aplex: work panicked%s: %v", where, e.Value)
}

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Is reports whether target is a sentinel registered with RegisterError
// that the panic value matched in its worker process. With Unwrap it makes
// a panic(err) behave like a returned err on every kind of executor:
// in-process, errors.Is sees the value itself; from another process, the
// registered sentinels it matched, as a *RemoteError does.
func (e *PanicError) Is(target error) bool {
	for _, s := range e.sentinels {
		if s == target {
			return true
		}
	}
	return false
}

// As makes errors.As find, in a panic from another process, the values of
// error types registered with RegisterErrorType that the panic value's
// chain held, with their exported fields, as it finds them through Unwrap
// in-process.
func (e *PanicError) As(target any) bool { return asTyped(e.typed, target) }

// WorkerError is the error of a work whose worker died while holding it, or
// of a Submit when no worker can be started. It matches ErrWorkerBroken.
type WorkerError struct {
	// Worker identifies the worker, e.g. "process 2".
	Worker string
	// PID is the worker's process id (0 when unknown).
	PID int
	// Reason says why: "exit status 3", "signal: killed",
	// "killed: no heartbeat for 3s (signal: killed)", …
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

// Error names the worker and says why it broke.
func (e *WorkerError) Error() string {
	var b strings.Builder
	b.WriteString("aplex: worker")
	if e.Worker != "" {
		b.WriteString(" ")
		b.WriteString(e.Worker)
	}
	if e.PID != 0 {
		fmt.Fprintf(&b, " (pid %d)", e.PID)
	}
	b.WriteString(" broken")
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns ErrWorkerBroken and the cause.
func (e *WorkerError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrWorkerBroken}
	}
	return []error{ErrWorkerBroken, e.Err}
}

// RemoteError is an error returned by a work that ran in another process.
// It keeps the original message and Go type name; errors.Is matches the
// sentinel errors registered with RegisterError that the original matched,
// and errors.As finds copies of the values of error types registered with
// RegisterErrorType that the original's chain held.
type RemoteError struct {
	// Type is the Go type of the original error, e.g. "*fs.PathError".
	Type string
	// Message is the original error's text.
	Message string

	sentinels []error
	typed     []error
}

// Error returns the original error's message.
func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the registered sentinel errors the original error matched.
func (e *RemoteError) Unwrap() []error { return e.sentinels }

// As makes errors.As find the values of registered error types (see
// RegisterErrorType) the original error's chain held.
func (e *RemoteError) As(target any) bool { return asTyped(e.typed, target) }
