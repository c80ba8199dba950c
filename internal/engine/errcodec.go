package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/aplex-go/aplex/internal/wire"
)

// This file is the error codec across processes: encodeError runs in the
// worker (host.Config.EncodeError), decodeError in the executor; what each
// wire code means for a future is decided in internal/wire/codes.go.

// decodeError rebuilds a worker's error: a job the worker refused or whose
// result it lost to a *WorkerError, other host failures to aplex's
// sentinels, panics to *PanicError, everything else to *RemoteError
// matching the registered sentinels it matched in the worker and holding
// the values of registered error types its chain held (errors.As).
func decodeError(e *wire.Error) error {
	switch e.Code.Fate() {
	case wire.FateRequeue, wire.FateLost:
		// Not the work's error: the worker refused the job and it could not
		// run elsewhere (the executor is closing), or the job ran and its
		// result was lost. Either way the worker failed it, not the work.
		return &WorkerError{Reason: e.Message}
	}
	switch e.Code {
	case wire.CodeUnknownWork:
		return fmt.Errorf("%w: %s", ErrNotRegistered, e.Message)
	case wire.CodeBadArgument, wire.CodeBadResult:
		return fmt.Errorf("%w: %s", ErrEncoding, e.Message)
	case wire.CodeTooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, e.Message)
	}
	if e.Panic {
		return &PanicError{Value: e.Message, Stack: e.Stack, Remote: true, sentinels: lookupSentinels(e.Sentinels), typed: errorTypes.decode(e.Types)}
	}
	re := &RemoteError{Type: e.Type, Message: e.Message, sentinels: lookupSentinels(e.Sentinels), typed: errorTypes.decode(e.Types)}
	switch e.Code {
	case wire.CodeCanceled:
		re.sentinels = append(re.sentinels, context.Canceled)
	case wire.CodeDeadline:
		re.sentinels = append(re.sentinels, context.DeadlineExceeded)
	}
	return re
}

// lookupSentinels maps sentinel keys from a worker to this binary's
// registered sentinels, skipping those it does not know.
func lookupSentinels(keys []string) []error {
	var errs []error
	for _, key := range keys {
		if s := sentinels.lookup(key); s != nil {
			errs = append(errs, s)
		}
	}
	return errs
}

// encodeError is the worker side of decodeError.
func encodeError(err error) *wire.Error {
	e := &wire.Error{Type: fmt.Sprintf("%T", err), Message: err.Error()}
	var ce *codecError
	if errors.As(err, &ce) {
		e.Code = wire.CodeBadResult
		if ce.what == "decode argument" {
			e.Code = wire.CodeBadArgument
		}
		return e
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		e.Panic, e.Stack, e.Message = true, pe.Stack, fmt.Sprint(pe.Value)
	}
	e.Sentinels = sentinels.matching(err)
	e.Types = errorTypes.encode(err)
	return e
}
