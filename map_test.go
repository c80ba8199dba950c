package aplex_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

func TestMapOrder(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(3))
	// Later inputs finish first; results must still come in input order.
	w := aplex.Fn(func(_ context.Context, x int) (int, error) {
		time.Sleep(time.Duration(50-x) * 100 * time.Microsecond)
		return x * x, nil
	})
	for _, chunk := range []int{1, 3, 7, 50} {
		i := 0
		for v, err := range aplex.Map(ctxT(t), ex, w, seq(50, nil), aplex.ChunkSize(chunk)) {
			if err != nil || v != i*i {
				t.Fatalf("chunk %d: item %d = %d, %v", chunk, i, v, err)
			}
			i++
		}
		if i != 50 {
			t.Fatalf("chunk %d: %d results", chunk, i)
		}
	}
}

func TestMapIsLazyWithABoundedWindow(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(4))
	for _, c := range []struct{ window, chunk int }{{3, 1}, {2, 5}, {0, 1}} {
		var read atomic.Int64 // the input runs on the Map's reader goroutine
		yielded := 0
		opts := []aplex.CallOption{aplex.ChunkSize(c.chunk)}
		window := 8 // the pool's capacity: the default window
		if c.window > 0 {
			opts = append(opts, aplex.Window(c.window))
			window = c.window
		}
		for v, err := range aplex.Map(ctxT(t), ex, double, countedSeq(&read), opts...) { // endless input
			if err != nil || v != 2*yielded {
				t.Fatalf("got %d, %v", v, err)
			}
			yielded++
			if ahead := int(read.Load()) - yielded; ahead > window*c.chunk {
				t.Fatalf("window %d × chunk %d: read %d inputs ahead of results", window, c.chunk, ahead)
			}
			if yielded == 100 {
				break
			}
		}
	}
	waitFor(t, "map's works to end", func() bool { return ex.Stats().Running == 0 })
}

// countedSeq yields 0, 1, … forever, counting in read what was read.
func countedSeq(read *atomic.Int64) func(func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			read.Store(int64(i + 1))
			if !yield(i) {
				return
			}
		}
	}
}

func TestMapChunkIsOneDispatchRunConcurrently(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(1), withWorkerID())
	var inFlight, peak atomic.Int32
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
		return workerOf(ctx), nil
	})
	var workers []int
	for v, err := range aplex.Map(ctxT(t), ex, w, seq(12, nil), aplex.ChunkSize(4)) {
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, v)
	}
	for c := 0; c < 12; c += 4 {
		if chunk := workers[c : c+4]; slices.Max(chunk) != slices.Min(chunk) {
			t.Fatalf("chunk %d ran on several workers: %v", c/4, chunk)
		}
	}
	// Two workers × one chunk each × four items at once.
	if p := peak.Load(); p < 5 {
		t.Fatalf("at most %d items ran at once; chunks should run their items concurrently", p)
	}
	var dispatched uint64
	for _, ws := range ex.Stats().Workers {
		dispatched += ws.Completed
	}
	if dispatched != 3 {
		t.Fatalf("%d dispatches for 3 chunks", dispatched)
	}
}

func TestMapTimeoutCountsFromTheCall(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(1))
	var cancelled atomic.Int32
	slow := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return 0, ctx.Err()
		case <-time.After(time.Duration(x) * 50 * time.Millisecond):
			return x, nil
		}
	})
	seq := aplex.Map(ctxT(t), ex, slow, seq(10, nil), aplex.Timeout(300*time.Millisecond))
	time.Sleep(200 * time.Millisecond) // counts against the timeout
	var got []int
	var mapErr error
	start := time.Now()
	for v, err := range seq {
		if err != nil {
			mapErr = err
			break
		}
		got = append(got, v)
	}
	if !errors.Is(mapErr, context.DeadlineExceeded) {
		t.Fatalf("got %v after %v, want a timeout", mapErr, got)
	}
	// From the call, 100ms are left: items 0, 1 and perhaps 2 (at 100ms).
	// Counted from the first iteration it would be 300ms: items 0 … 5.
	if len(got) > 3 || time.Since(start) > 2*time.Second {
		t.Fatalf("yielded %v in %v: the timeout should count from the Map call", got, time.Since(start))
	}
	waitFor(t, "remaining works cancelled", func() bool { return ex.Stats().Running == 0 })
	if cancelled.Load() == 0 {
		t.Fatal("no work saw its ctx cancelled")
	}
}

func TestMapFirstErrorCancelsTheRest(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	boom := errors.New("boom")
	var cancelled atomic.Int32
	started := make(chan struct{})
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		if x == 3 { // fails once a later work runs, to be cancelled
			<-started
			return 0, boom
		}
		if x > 3 {
			if x == 4 {
				close(started)
			}
			<-ctx.Done()
			cancelled.Add(1)
			return 0, ctx.Err()
		}
		return x, nil
	})
	var got []int
	var mapErr error
	for v, err := range aplex.Map(ctxT(t), ex, w, seq(20, nil)) {
		if err != nil {
			mapErr = err
			continue // the sequence must end by itself after the error
		}
		got = append(got, v)
	}
	if !errors.Is(mapErr, boom) || !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("got %v then %v", got, mapErr)
	}
	waitFor(t, "the rest cancelled", func() bool { return ex.Stats().Running == 0 })
	if cancelled.Load() == 0 {
		t.Fatal("later works were not cancelled")
	}
}

func TestMapBreakCancelsTheRest(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	var cancelled atomic.Int32
	started := make(chan struct{})
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		switch x {
		case 0: // its result, and so the break, come once work 1 runs
			<-started
			return 0, nil
		case 1:
			close(started)
		}
		<-ctx.Done()
		cancelled.Add(1)
		return 0, ctx.Err()
	})
	for range aplex.Map(ctxT(t), ex, w, seq(10, nil)) {
		break
	}
	waitFor(t, "the rest cancelled", func() bool { return ex.Stats().Running == 0 && ex.Stats().Queued == 0 })
	if cancelled.Load() == 0 {
		t.Fatal("no running work was cancelled")
	}
}

func TestMapUnorderedYieldsInCompletionOrder(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(4))
	// The works end in the order the test opens their gates: 3, then each
	// one after the previous result was yielded.
	var gates [4]chan struct{}
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		select {
		case <-gates[x]:
			return x, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	close(gates[3])
	var got []int
	for v, err := range aplex.MapUnordered(ctxT(t), ex, w, seq(4, nil)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		if v > 0 {
			close(gates[v-1])
		}
	}
	if !slices.Equal(got, []int{3, 2, 1, 0}) {
		t.Fatalf("completion order %v, want [3 2 1 0]", got)
	}
}

func TestMapEmptyInput(t *testing.T) {
	ex := newThread(t)
	for range aplex.Map(ctxT(t), ex, double, seq(0, nil)) {
		t.Fatal("yielded from empty input")
	}
}
