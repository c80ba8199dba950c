package testutil

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// GoroutineID returns the calling goroutine's id, read from its stack
// header: tests use it to see which goroutine ran a work.
func GoroutineID() int {
	var buf [64]byte
	header, _, _ := strings.Cut(string(buf[:runtime.Stack(buf[:], false)]), "\n")
	id, _ := blockedHeader(header) // the header alone: its state is "running"
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

// BlockedIn returns how many goroutines wait, blocked (on a channel, a
// lock, a sleep: any state but running, runnable or in a system call),
// with fn on their stack: fn is a function's name as stack traces print
// it, from a path element on, e.g. "internal/gopool.(*Pool).park". It is
// the handshake for "a goroutine has parked": a counter raised just before
// a goroutine blocks counts it while it is not there yet, so a
// non-blocking send right after can miss it; once BlockedIn counts a
// goroutine blocked in a receive, a send finds it waiting.
func BlockedIn(fn string) int { return len(blockedIn(fn)) }

// IsBlockedIn reports whether goroutine id (GoroutineID) waits, blocked,
// with fn on its stack, as BlockedIn counts them.
func IsBlockedIn(id int, fn string) bool { return slices.Contains(blockedIn(fn), id) }

// blockedIn returns the ids of the goroutines BlockedIn counts.
func blockedIn(fn string) []int {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var ids []int
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, frames, _ := strings.Cut(g, "\n")
		id, ok := blockedHeader(header)
		if !ok {
			continue
		}
		for _, line := range strings.Split(frames, "\n") {
			if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by ") {
				continue
			}
			if i := strings.Index(line, fn+"("); i == 0 || i > 0 && line[i-1] == '/' {
				ids = append(ids, id)
				break
			}
		}
	}
	return ids
}

// blockedHeader parses a stack trace's goroutine header, such as
// "goroutine 7 [chan receive, 2 minutes]:": the goroutine's id, and
// whether its state is one in which it waits.
func blockedHeader(header string) (id int, blocked bool) {
	rest, ok := strings.CutPrefix(header, "goroutine ")
	if !ok {
		return 0, false
	}
	num, state, ok := strings.Cut(rest, " [")
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(num)
	if err != nil {
		return 0, false
	}
	state, _, _ = strings.Cut(state, "]")
	state, _, _ = strings.Cut(state, ",")
	switch state {
	case "running", "runnable", "syscall", "preempted":
		return id, false
	}
	return id, true
}
