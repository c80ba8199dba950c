package wire

import "strconv"

// Fate is what an item's error code means for the future waiting on its
// job. It is decided here, in one place, for every code: the worker sides
// (host, cluster session) only say what happened, and the executor acts on
// the fate without interpreting codes itself.
type Fate byte

// Fates.
const (
	// FateFail: the future fails with the item's error. The work ran and
	// failed (returned an error, panicked, was cancelled, ran past its
	// deadline), or the host rejected it for a reason that running it
	// again would not change (unknown name, bad argument, result too
	// large or not encodable).
	FateFail Fate = iota
	// FateRequeue: the host refused the job before it ran (it was shutting
	// down). It may run elsewhere, without using up a retry; if it cannot
	// (the executor is closing), it fails with a worker error.
	FateRequeue
	// FateLost: the job ran, but its result is lost. The future fails with
	// a worker error and the job never runs again, Retry or not: running
	// it twice would break at-most-once delivery.
	FateLost
)

// Fate returns what the code means for the future waiting on the job. An
// unknown code (a newer peer) fails the future: never running a job twice
// is the safe default.
func (c ErrCode) Fate() Fate {
	switch c {
	case CodeShutdown:
		return FateRequeue
	case CodeResultLost:
		return FateLost
	}
	return FateFail
}

// NeverRan reports whether a job's result says it did not run at all:
// every item was refused before it ran. Only such a job may run again
// without a Retry; a chunk that ran in part never does.
func NeverRan(items []Outcome) bool {
	for _, o := range items {
		if o.Err == nil || o.Err.Code.Fate() != FateRequeue {
			return false
		}
	}
	return len(items) > 0
}

// String names the code, for log lines and test failures.
func (c ErrCode) String() string {
	switch c {
	case CodeNone:
		return "None"
	case CodeUnknownWork:
		return "UnknownWork"
	case CodeBadArgument:
		return "BadArgument"
	case CodeBadResult:
		return "BadResult"
	case CodeTooLarge:
		return "TooLarge"
	case CodeCanceled:
		return "Canceled"
	case CodeDeadline:
		return "Deadline"
	case CodeShutdown:
		return "Shutdown"
	case CodeResultLost:
		return "ResultLost"
	}
	return "ErrCode(" + strconv.Itoa(int(c)) + ")"
}

// String names the fate.
func (f Fate) String() string {
	switch f {
	case FateFail:
		return "Fail"
	case FateRequeue:
		return "Requeue"
	case FateLost:
		return "Lost"
	}
	return "Fate(" + strconv.Itoa(int(f)) + ")"
}
