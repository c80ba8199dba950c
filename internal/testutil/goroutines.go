package testutil

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GoroutineID returns the calling goroutine's id, read from its stack
// header: tests use it to see which goroutine ran a work.
func GoroutineID() int {
	var buf [64]byte
	s := strings.TrimPrefix(string(buf[:runtime.Stack(buf[:], false)]), "goroutine ")
	id, _ := strconv.Atoi(s[:strings.IndexByte(s, ' ')])
	return id
}

// WaitFor polls cond every millisecond for up to 5 seconds and fails the
// test if it never holds. It is for states nothing signals, such as a
// goroutine having parked or ended; it bounds the wait, never times it.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
