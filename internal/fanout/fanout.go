// Package fanout runs the items of a chunk "concurrently" at the cost of a
// loop when they are quick.
//
// A chunk's items must run concurrently: one that blocks must not hold up
// the others. A goroutine per item gives that, but costs several hundred
// nanoseconds per item, which dwarfs a small work. Run instead calls the
// items one after another in the calling goroutine, and as soon as the
// chunk has run longer than Patience it gives every item not yet started a
// goroutine of its own. Quick items never pay for a goroutine; slow or
// blocking ones start at most Patience late.
package fanout

import (
	"sync"
	"sync/atomic"
	"time"
)

// Patience is how long a chunk runs its items in one goroutine before it
// fans the rest out.
const Patience = 50 * time.Microsecond

// Run calls fn(i) for every i in [0, n) and returns when all have returned.
// fn must not panic (callers recover inside it). If fn calls
// runtime.Goexit, the other items still run, and the calling goroutine
// ends only once they all have returned.
func Run(n int, fn func(i int)) {
	switch n {
	case 0:
		return
	case 1:
		fn(0)
		return
	}
	var next atomic.Int64 // the next item to claim
	var wg sync.WaitGroup
	claim := func() (int, bool) {
		i := int(next.Add(1) - 1)
		return i, i < n
	}
	wg.Add(1) // held by the timer until it has fanned out or is stopped
	timer := time.AfterFunc(Patience, func() {
		defer wg.Done()
		for i, ok := claim(); ok; i, ok = claim() {
			wg.Go(func() { fn(i) })
		}
	})
	returned := false
	defer func() {
		if returned {
			return
		}
		// fn called runtime.Goexit in this goroutine, which is unwinding:
		// Run still keeps its promise to the caller's deferred calls that
		// every item has run and returned.
		if timer.Stop() {
			wg.Done()
		}
		for i, ok := claim(); ok; i, ok = claim() {
			wg.Go(func() { fn(i) })
		}
		wg.Wait()
	}()
	for i, ok := claim(); ok; i, ok = claim() {
		fn(i)
	}
	returned = true
	if timer.Stop() {
		wg.Done()
	}
	wg.Wait()
}
