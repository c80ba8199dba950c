//go:build unix

package cluster_test

import (
	"errors"
	"syscall"
)

// The tests kill and look for worker processes through these, so that the
// package's tests compile and vet on every system (signals_other_test.go);
// they run where local workers do, on Unix.
var kill = syscall.Kill

// processGone reports whether process pid has exited and been reaped.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
