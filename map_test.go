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
	// The items of the first two chunks wait for one another: the Map
	// ends only if both chunks run at once, each with its four items at
	// once (else it hangs until ctxT's deadline, and fails).
	var inFlight, peak atomic.Int32
	all := make(chan struct{})
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if x < 8 {
			if n == 8 {
				close(all)
			}
			select {
			case <-all:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
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
	var ran atomic.Int32
	fast := aplex.Fn(func(_ context.Context, x int) (int, error) { ran.Add(1); return x, nil })
	const timeout = 50 * time.Millisecond
	results := aplex.Map(ctxT(t), ex, fast, seq(10, nil), aplex.Timeout(timeout))
	// The whole timeout passes between the call and the first iteration
	// (that is the scenario, not a synchronisation). Counted from the call,
	// the Map has timed out before it reads an input; counted from the
	// first iteration, its ten instant works would all succeed.
	time.Sleep(timeout + 10*time.Millisecond)
	var got []int
	var mapErr error
	for v, err := range results {
		if err != nil {
			mapErr = err
			break
		}
		got = append(got, v)
	}
	if !errors.Is(mapErr, context.DeadlineExceeded) || len(got) != 0 || ran.Load() != 0 {
		t.Fatalf("yielded %v and %v after %d works ran: the timeout should count from the Map call", got, mapErr, ran.Load())
	}
	// A work still running when the timeout passes is cancelled.
	var cancelled atomic.Int32
	block := aplex.Fn(func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		cancelled.Add(1)
		return 0, ctx.Err()
	})
	for v, err := range aplex.Map(ctxT(t), ex, block, seq(3, nil), aplex.Timeout(timeout)) {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, %v; want a timeout", v, err)
		}
	}
	waitFor(t, "the running work cancelled", func() bool { return cancelled.Load() > 0 && ex.Stats().Running == 0 })
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
