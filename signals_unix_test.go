//go:build unix

package aplex_test

import "syscall"

// The tests stop, kill and lock through these names, so that the package's
// tests compile and vet on every system (signals_other_test.go); they run
// where process workers do, on Unix.
var (
	kill  = syscall.Kill
	flock = syscall.Flock
)

const (
	sigSTOP = syscall.SIGSTOP
	lockEX  = syscall.LOCK_EX
	lockUN  = syscall.LOCK_UN
)
