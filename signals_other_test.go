//go:build !unix

package aplex_test

import (
	"errors"
	"syscall"
)

// errNoSignals is what the Unix-only helpers return here: the tests that
// need them exercise process workers, which need Unix.
var errNoSignals = errors.New("signals and file locks are Unix-only in these tests")

func kill(int, syscall.Signal) error { return errNoSignals }

func flock(int, int) error { return errNoSignals }

const (
	sigSTOP = syscall.Signal(0x13)
	lockEX  = 2
	lockUN  = 8
)
