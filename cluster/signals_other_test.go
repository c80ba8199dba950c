//go:build !unix

package cluster_test

import (
	"errors"
	"syscall"
)

// errNoSignals is what kill returns here: the tests that need it exercise
// local worker processes, which these tests run on Unix only.
var errNoSignals = errors.New("signals are Unix-only in these tests")

func kill(int, syscall.Signal) error { return errNoSignals }

// processGone cannot tell here; the tests that ask need Unix.
func processGone(int) bool { return false }
