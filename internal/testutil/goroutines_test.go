package testutil

import (
	"runtime"
	"sync/atomic"
	"testing"
)

//go:noinline
func receiveIn(ch chan struct{}) { <-ch }

//go:noinline
func spinIn(stop *atomic.Bool, started chan<- struct{}) {
	close(started)
	for !stop.Load() {
		runtime.Gosched()
	}
}

// TestBlockedInCountsOnlyGoroutinesBlockedInTheFunction checks the
// handshake that replaced counters bumped just before a goroutine blocks
// (gopool's Parked counts a goroutine about to park; tests that took it
// for parked handed it a task it was not yet there to take, and flaked):
// BlockedIn sees a goroutine only once it waits inside the function named,
// not one running there, nor one blocked elsewhere.
func TestBlockedInCountsOnlyGoroutinesBlockedInTheFunction(t *testing.T) {
	const fn = "internal/testutil.receiveIn"
	if n := BlockedIn(fn); n != 0 {
		t.Fatalf("BlockedIn before any goroutine: %d", n)
	}

	var stop atomic.Bool
	started := make(chan struct{})
	go spinIn(&stop, started)
	<-started
	if n := BlockedIn("internal/testutil.spinIn"); n != 0 {
		t.Errorf("BlockedIn counts a goroutine running in the function: %d", n)
	}
	if IsBlockedIn(GoroutineID(), "internal/testutil.TestBlockedInCountsOnlyGoroutinesBlockedInTheFunction") {
		t.Error("IsBlockedIn is true for the running test goroutine")
	}
	stop.Store(true)

	other := make(chan struct{})
	go func() { <-other }()
	ch := make(chan struct{})
	ids := make(chan int, 2)
	for range 2 {
		go func() { ids <- GoroutineID(); receiveIn(ch) }()
	}
	WaitFor(t, "two goroutines blocked in receiveIn", func() bool { return BlockedIn(fn) == 2 })
	for range 2 {
		if id := <-ids; !IsBlockedIn(id, fn) {
			t.Errorf("IsBlockedIn(%d) is false for a goroutine BlockedIn counts", id)
		}
	}
	// Blocked means a send now finds a receiver waiting.
	select {
	case ch <- struct{}{}:
	default:
		t.Fatal("a goroutine BlockedIn counted did not take a non-blocking send")
	}
	WaitFor(t, "one goroutine left blocked in receiveIn", func() bool { return BlockedIn(fn) == 1 })
	close(ch)
	close(other)
	WaitFor(t, "no goroutine blocked in receiveIn", func() bool { return BlockedIn(fn) == 0 })
}
