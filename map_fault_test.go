package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// mapFunc is Map or MapUnordered.
type mapFunc func(context.Context, *aplex.Executor, *aplex.Work[int, int], iter.Seq[int], ...aplex.CallOption) iter.Seq2[int, error]

var mapKinds = []struct {
	name    string
	run     mapFunc
	ordered bool
}{
	{"Map", aplex.Map[int, int], true},
	{"MapUnordered", aplex.MapUnordered[int, int], false},
}

// TestHugeChunkSizeOrWindowDoesNotCrash: ChunkSize and Window values far
// beyond the input must not be allocated up front (they used to panic in
// makeslice/makechan, or die out of memory for 1<<40).
func TestHugeChunkSizeOrWindowDoesNotCrash(t *testing.T) {
	executors := []struct {
		name string
		ex   *aplex.Executor
		work *aplex.Work[int, int]
	}{
		{"thread", newThread(t, aplex.WithPoolSize(2)), double},
		{"process", newProcess(t, aplex.WithPoolSize(2)), pDouble},
	}
	options := []struct {
		name string
		opts []aplex.CallOption
	}{
		{"ChunkSize(MaxInt)", []aplex.CallOption{aplex.ChunkSize(math.MaxInt)}},
		{"ChunkSize(1<<40)", []aplex.CallOption{aplex.ChunkSize(1 << 40)}},
		{"Window(MaxInt)", []aplex.CallOption{aplex.Window(math.MaxInt)}},
		{"Window(1<<40)", []aplex.CallOption{aplex.Window(1 << 40)}},
		{"both MaxInt", []aplex.CallOption{aplex.ChunkSize(math.MaxInt), aplex.Window(math.MaxInt)}},
		{"both 1<<40", []aplex.CallOption{aplex.ChunkSize(1 << 40), aplex.Window(1 << 40)}},
	}
	const n = 300
	for _, e := range executors {
		for _, o := range options {
			for _, k := range mapKinds {
				t.Run(e.name+"/"+o.name+"/"+k.name, func(t *testing.T) {
					var got []int
					for v, err := range k.run(ctxT(t), e.ex, e.work, seq(n, nil), o.opts...) {
						if err != nil {
							t.Fatalf("after %d results: %v", len(got), err)
						}
						got = append(got, v)
					}
					if !k.ordered {
						slices.Sort(got)
					}
					if len(got) != n {
						t.Fatalf("%d results, want %d", len(got), n)
					}
					for i, v := range got {
						if v != 2*i {
							t.Fatalf("result %d = %d, want %d", i, v, 2*i)
						}
					}
				})
			}
		}
	}
}

// TestMapYieldsWhileInputIsSlow: the input releases item k+1 only once the
// result of item k has been yielded. Map used to yield nothing before a
// whole window of inputs was read, so this deadlocked; a partial chunk must
// not wait for its missing inputs forever either.
func TestMapYieldsWhileInputIsSlow(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	const n = 20
	for _, k := range mapKinds {
		for _, chunk := range []int{1, 3, 1000} {
			t.Run(fmt.Sprintf("%s/chunk=%d", k.name, chunk), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				release := make(chan struct{})
				var starved atomic.Bool
				input := func(yield func(int) bool) {
					for i := range n {
						if i > 0 {
							select {
							case <-release:
							case <-ctx.Done():
								starved.Store(true) // never released: the result did not come
								return
							}
						}
						if !yield(i) {
							return
						}
					}
				}
				got := 0
				for v, err := range k.run(ctx, ex, double, input, aplex.ChunkSize(chunk)) {
					if err != nil {
						t.Fatalf("after %d results: %v", got, err)
					}
					if v != 2*got {
						t.Fatalf("result %d = %d", got, v)
					}
					got++
					if got < n {
						select {
						case release <- struct{}{}:
						case <-ctx.Done():
							t.Fatalf("the input did not take item %d", got)
						}
					}
				}
				if starved.Load() || got != n {
					t.Fatalf("%d of %d results; the input waited for a result that never came", got, n)
				}
			})
		}
	}
}

// TestMapStopsAtFirstErrorWhileInputIsSlow: the error of item 3 must be
// yielded while the input still waits to produce item 4, and the input
// must then be told to stop.
func TestMapStopsAtFirstErrorWhileInputIsSlow(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	boom := errors.New("boom")
	w := aplex.Fn(func(_ context.Context, x int) (int, error) {
		if x == 3 {
			return 0, boom
		}
		return x, nil
	})
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			release := make(chan struct{})
			var starved, stopped atomic.Bool
			var read atomic.Int32
			input := func(yield func(int) bool) {
				for i := 0; ; i++ {
					if i == 4 {
						select {
						case <-release:
						case <-ctx.Done():
							starved.Store(true)
							return
						}
					}
					read.Add(1)
					if !yield(i) {
						stopped.Store(true)
						return
					}
				}
			}
			var got []int
			var mapErr error
			for v, err := range k.run(ctx, ex, w, input) {
				if err != nil {
					mapErr = err
					close(release) // only now may the input go on
					continue       // the sequence must end by itself
				}
				got = append(got, v)
			}
			if starved.Load() {
				t.Fatal("the error was not yielded while the input waited")
			}
			if !errors.Is(mapErr, boom) {
				t.Fatalf("got %v then %v, want boom", got, mapErr)
			}
			if k.ordered && !slices.Equal(got, []int{0, 1, 2}) {
				t.Fatalf("got %v before the error, want [0 1 2]", got)
			}
			if !stopped.Load() || read.Load() != 5 {
				t.Fatalf("input read %d items, stopped %v: it should be stopped at the item after the error", read.Load(), stopped.Load())
			}
		})
	}
}

type inputPanic struct{}

// TestMapInputPanicReachesTheCaller: a panic in the input sequence is
// re-raised in the goroutine ranging over the Map (the input may be read on
// another goroutine, where it would crash the process), after the Map's
// works were cancelled.
func TestMapInputPanicReachesTheCaller(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	var cancelled atomic.Int32
	started := make(chan struct{}, 2)
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		if x == 0 {
			return 0, nil
		}
		started <- struct{}{}
		<-ctx.Done()
		cancelled.Add(1)
		return 0, ctx.Err()
	})
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			cancelled.Store(0)
			ctx := ctxT(t)
			input := func(yield func(int) bool) {
				for i := range 3 {
					if !yield(i) {
						return
					}
				}
				for range 2 { // works 1 and 2 run: the panic must cancel them
					select {
					case <-started:
					case <-ctx.Done():
						return
					}
				}
				panic(inputPanic{})
			}
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				for _, err := range k.run(ctx, ex, w, input) {
					if err != nil {
						t.Errorf("yielded %v instead of panicking", err)
					}
				}
			}()
			if _, ok := recovered.(inputPanic); !ok {
				t.Fatalf("recovered %v, want the input's panic", recovered)
			}
			waitFor(t, "the works cancelled", func() bool { return ex.Stats().Running == 0 })
			if cancelled.Load() != 2 {
				t.Fatalf("%d works cancelled, want 2", cancelled.Load())
			}
		})
	}
}

// TestMapInputGoexitEndsTheCaller: runtime.Goexit in the input (what
// t.FailNow does) ends the goroutine ranging over the Map, as it would if
// the input ran there.
func TestMapInputGoexitEndsTheCaller(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			input := func(yield func(int) bool) {
				if yield(0) {
					runtime.Goexit()
				}
			}
			var afterLoop, exited atomic.Bool
			done := make(chan any)
			go func() {
				defer func() {
					exited.Store(true)
					done <- recover()
				}()
				for range k.run(ctxT(t), ex, double, input) {
				}
				afterLoop.Store(true)
			}()
			if r := <-done; r != nil || afterLoop.Load() || !exited.Load() {
				t.Fatalf("recovered %v, ran past the loop: %v; want the goroutine ended by Goexit", r, afterLoop.Load())
			}
		})
	}
}

// TestMapCtxEndsWhileInputIsBlocked: a cancelled ctx is yielded at once,
// though the input is blocked; the loop ends when the input yields again.
func TestMapCtxEndsWhileInputIsBlocked(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			guard, stop := context.WithTimeout(context.Background(), 5*time.Second)
			defer stop()
			ctx, cancel := context.WithCancel(guard)
			defer cancel()
			release := make(chan struct{})
			var starved atomic.Bool
			input := func(yield func(int) bool) {
				if !yield(0) {
					return
				}
				select {
				case <-release:
				case <-guard.Done():
					starved.Store(true)
					return
				}
				yield(1)
			}
			var errs []error
			for v, err := range k.run(ctx, ex, double, input) {
				if err != nil {
					errs = append(errs, err)
					close(release)
					continue
				}
				if v != 0 {
					t.Fatalf("got %d", v)
				}
				cancel() // while the input is blocked
			}
			if starved.Load() || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
				t.Fatalf("errors %v, input starved %v: want context.Canceled yielded while the input waited", errs, starved.Load())
			}
		})
	}
}

// TestMapSendsAPartialChunkWhileOthersRun: with a chunk in flight that
// waits for the test, a partial chunk whose input has gone quiet is sent
// anyway (after a moment), instead of waiting for inputs that only come
// after its result.
func TestMapSendsAPartialChunkWhileOthersRun(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hold, started := make(chan struct{}), make(chan struct{})
	w := aplex.Fn(func(ctx context.Context, x int) (int, error) {
		if x == 0 {
			close(started)
			select {
			case <-hold:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return x, nil
	})
	release := make(chan struct{})
	var starved atomic.Bool
	input := func(yield func(int) bool) {
		if !yield(0) {
			return
		}
		select { // item 1 only once item 0 runs: a chunk of its own
		case <-started:
		case <-ctx.Done():
			starved.Store(true)
			return
		}
		if !yield(1) {
			return
		}
		select { // item 2 only once item 1's result is out
		case <-release:
		case <-ctx.Done():
			starved.Store(true)
			return
		}
		yield(2)
	}
	var got []int
	for v, err := range aplex.MapUnordered(ctx, ex, w, input, aplex.ChunkSize(3)) {
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, v)
		if v == 1 {
			close(release)
			close(hold)
		}
	}
	if starved.Load() || len(got) != 3 || got[0] != 1 {
		t.Fatalf("got %v (input starved %v): item 1 should have been sent without waiting for item 2", got, starved.Load())
	}
}

// TestMapLoopPanicDoesNotWaitForABlockedInput: a panic in the loop body
// (or t.Fatal) reaches the caller at once, though the input is blocked in
// its own code; the input is stopped once it yields again.
func TestMapLoopPanicDoesNotWaitForABlockedInput(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := ctxT(t)
			release := make(chan struct{})
			var stopped atomic.Bool
			input := func(yield func(int) bool) {
				defer stopped.Store(true)
				if !yield(0) {
					return
				}
				select {
				case <-release:
				case <-ctx.Done():
					return
				}
				if yield(1) {
					t.Error("the input was not stopped")
				}
			}
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				for range k.run(ctx, ex, double, input) {
					panic(inputPanic{})
				}
			}()
			if _, ok := recovered.(inputPanic); !ok {
				t.Fatalf("recovered %v", recovered)
			}
			if stopped.Load() {
				t.Fatal("the input returned before it was released")
			}
			close(release)
			waitFor(t, "the input to stop", stopped.Load)
		})
	}
}

// TestMapHandOffKeepsEveryInput drives the reader's ring through growth and
// wrap-around, with the loop sometimes slower than the reader and sometimes
// faster: every input must come out once, in order for Map.
func TestMapHandOffKeepsEveryInput(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	const n = 8000
	for _, k := range mapKinds {
		for _, c := range []struct{ chunk, window int }{{1, 0}, {7, 3}, {1000, 0}, {1, 1}, {64, 1000}} {
			t.Run(fmt.Sprintf("%s/chunk=%d/window=%d", k.name, c.chunk, c.window), func(t *testing.T) {
				opts := []aplex.CallOption{aplex.ChunkSize(c.chunk)}
				if c.window > 0 {
					opts = append(opts, aplex.Window(c.window))
				}
				input := func(yield func(int) bool) {
					for i := range n {
						if i%997 == 0 {
							runtime.Gosched() // now and then, let the loop catch up
						}
						if !yield(i) {
							return
						}
					}
				}
				seen := make([]bool, n)
				got := 0
				for v, err := range k.run(ctxT(t), ex, double, input, opts...) {
					if err != nil {
						t.Fatalf("after %d results: %v", got, err)
					}
					i := v / 2
					if v%2 != 0 || i < 0 || i >= n || seen[i] || k.ordered && i != got {
						t.Fatalf("result %d: %d (a duplicate, out of range or out of order)", got, v)
					}
					seen[i] = true
					got++
					if got%1500 == 0 {
						runtime.Gosched() // and let the reader run ahead
					}
				}
				if got != n {
					t.Fatalf("%d results, want %d", got, n)
				}
			})
		}
	}
}

// TestMapLargeInputs: inputs of a large type get a small ring, not one
// sized for small inputs.
func TestMapLargeInputs(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	type big [256 << 10]byte // by value: a ring of one
	w := aplex.Fn(func(_ context.Context, b big) (int, error) { return int(b[0]), nil })
	input := func(yield func(big) bool) {
		var b big
		for i := range 50 {
			b[0] = byte(i)
			if !yield(b) {
				return
			}
		}
	}
	got := 0
	for v, err := range aplex.Map(ctxT(t), ex, w, input) {
		if err != nil || v != got {
			t.Fatalf("result %d: %d, %v", got, v, err)
		}
		got++
	}
	if got != 50 {
		t.Fatalf("%d results", got)
	}
}

// TestMapInputThatIgnoresStopPanics: an input that calls yield again after
// it returned false gets a panic, raised in the caller's goroutine (what
// the runtime does for a range loop), instead of a Map that never ends.
func TestMapInputThatIgnoresStopPanics(t *testing.T) {
	ex := newThread(t, aplex.WithPoolSize(2))
	for _, k := range mapKinds {
		t.Run(k.name, func(t *testing.T) {
			input := func(yield func(int) bool) {
				for i := 0; ; i++ {
					yield(i) // ignores false
				}
			}
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				for range k.run(ctxT(t), ex, double, input) {
					break
				}
			}()
			if err, ok := recovered.(error); !ok || !strings.Contains(err.Error(), "after it returned false") {
				t.Fatalf("recovered %v, want the yield-after-false panic", recovered)
			}
		})
	}
}
