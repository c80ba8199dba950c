package aplex_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

var sleepMs = aplex.Fn(func(ctx context.Context, ms int) (int, error) {
	if ms < 0 {
		return 0, errors.New("negative")
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
})

func TestWaitModes(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(4))
	fast := mustSubmit(t, ex, sleepMs, 1)
	failing := mustSubmit(t, ex, sleepMs, -1)
	slow := mustSubmit(t, ex, sleepMs, 10_000)

	done, pending, err := aplex.Wait(ctxT(t), aplex.FirstCompleted, slow, fast)
	if err != nil || len(done) != 1 || len(pending) != 1 || done[0] != aplex.Awaitable(fast) {
		t.Fatalf("FirstCompleted: done %v pending %v err %v", done, pending, err)
	}
	done, pending, err = aplex.Wait(ctxT(t), aplex.FirstError, slow, failing)
	if err != nil || len(done) != 1 || done[0].Err() == nil || len(pending) != 1 {
		t.Fatalf("FirstError: done %v pending %v err %v", done, pending, err)
	}
	short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	done, pending, err = aplex.Wait(short, aplex.AllCompleted, fast, slow)
	if !errors.Is(err, context.DeadlineExceeded) || len(done) != 1 || len(pending) != 1 {
		t.Fatalf("AllCompleted with a short ctx: done %v pending %v err %v", done, pending, err)
	}
	slow.Cancel()
	done, pending, err = aplex.Wait(ctxT(t), aplex.AllCompleted, fast, slow, failing)
	if err != nil || len(done) != 3 || len(pending) != 0 {
		t.Fatalf("AllCompleted: done %v pending %v err %v", done, pending, err)
	}
}

func TestAsCompleted(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(3))
	// Each work ends when released: b first, then c once b was yielded,
	// then a.
	release := map[int]chan struct{}{0: make(chan struct{}), 1: make(chan struct{}), 2: make(chan struct{})}
	gated := aplex.Fn(func(ctx context.Context, i int) (int, error) {
		select {
		case <-release[i]:
			return i, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	a := mustSubmit(t, ex, gated, 0)
	b := mustSubmit(t, ex, gated, 1)
	c := mustSubmit(t, ex, gated, 2)
	next := map[aplex.Awaitable]int{b: 2, c: 0}
	close(release[1])
	var order []aplex.Awaitable
	for f, err := range aplex.AsCompleted(ctxT(t), a, b, c) {
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, f)
		if i, ok := next[f]; ok {
			close(release[i])
		}
	}
	if len(order) != 3 || order[0] != aplex.Awaitable(b) || order[1] != aplex.Awaitable(c) || order[2] != aplex.Awaitable(a) {
		t.Fatalf("completion order wrong: %v", order)
	}
}

func TestFutureInSelect(t *testing.T) {
	ex := newThread(t)
	f := mustSubmit(t, ex, sleepMs, 5)
	select {
	case <-f.Done():
		if v, err := f.Get(context.Background()); v != 5 || err != nil {
			t.Fatalf("got %d, %v", v, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("future never ended")
	}
}

// TestWaitPrefersEndedFuturesOverEndedCtx: when the futures have ended
// and ctx has too, Wait reports the futures, with no error, every time
// (it used to pick one of the two at random).
func TestWaitPrefersEndedFuturesOverEndedCtx(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	f := mustSubmit(t, ex, sleepMs, 0)
	if _, err := f.Get(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctxT(t))
	cancel()
	for _, mode := range []aplex.WaitMode{aplex.FirstCompleted, aplex.FirstError, aplex.AllCompleted} {
		for range 50 {
			done, pending, err := aplex.Wait(ended, mode, f)
			if err != nil || len(done) != 1 || len(pending) != 0 {
				t.Fatalf("%v with ended futures and an ended ctx: done %v pending %v err %v", mode, done, pending, err)
			}
		}
	}
}

// TestWaitCostDoesNotGrowPerFuture: Wait registers nothing on futures
// that have ended (AllCompleted waits on the running ones from the last,
// FirstCompleted and FirstError stop at the first that decides), so 2,000
// ended futures cost a handful of allocations more than 100 (the result
// slices), not two per future as they used to.
func TestWaitCostDoesNotGrowPerFuture(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	futures := make([]aplex.Awaitable, 2000)
	for i := range futures {
		futures[i] = mustSubmit(t, ex, sleepMs, 0)
	}
	ctx := ctxT(t)
	if _, pending, err := aplex.Wait(ctx, aplex.AllCompleted, futures...); err != nil || len(pending) != 0 {
		t.Fatalf("Wait: %d pending, %v", len(pending), err)
	}
	for _, mode := range []aplex.WaitMode{aplex.FirstCompleted, aplex.FirstError, aplex.AllCompleted} {
		allocs := func(n int) float64 {
			return testing.AllocsPerRun(20, func() {
				if done, _, err := aplex.Wait(ctx, mode, futures[:n]...); err != nil || len(done) != n {
					t.Fatalf("%v over %d: %d done, %v", mode, n, len(done), err)
				}
			})
		}
		small, large := allocs(100), allocs(2000)
		if large-small > 20 {
			t.Fatalf("%v allocated %.0f times over 100 futures and %.0f over 2,000: it grows per future", mode, small, large)
		}
	}
}

// TestWaitWithoutFutures returns at once, in every mode.
func TestWaitWithoutFutures(t *testing.T) {
	for _, mode := range []aplex.WaitMode{aplex.FirstCompleted, aplex.FirstError, aplex.AllCompleted} {
		done, pending, err := aplex.Wait(ctxT(t), mode)
		if err != nil || len(done) != 0 || len(pending) != 0 {
			t.Fatalf("%v with no futures: done %v pending %v err %v", mode, done, pending, err)
		}
	}
}
