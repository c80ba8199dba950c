package lazyctx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// owner is a minimal Owner: a ctx whose parent's end ends it alone, as a
// worker's job's does.
type owner struct {
	mu     sync.Mutex
	s      State
	parent context.Context
}

func (o *owner) Parent() context.Context { return o.parent }
func (o *owner) Lazy() *State            { return &o.s }
func (o *owner) Lock()                   { o.mu.Lock() }
func (o *owner) Unlock()                 { o.mu.Unlock() }
func (o *owner) ParentEnded(err error)   { Cancel(o, err) }

// ctx is the owner as a context.Context, made with this package.
type ctx owner

func (c *ctx) o() *owner                             { return (*owner)(c) }
func (c *ctx) Deadline() (time.Time, bool)           { return Deadline(c.o()) }
func (c *ctx) Done() <-chan struct{}                 { return Done(c.o()) }
func (c *ctx) Err() error                            { return Err(c.o()) }
func (c *ctx) Value(key any) any                     { return c.parent.Value(key) }
func (c *ctx) AfterFunc(f func()) (stop func() bool) { return AfterFunc(c.o(), f) }

func newCtx(parent context.Context, deadline time.Duration) *ctx {
	c := &ctx{parent: parent}
	if deadline != 0 {
		c.s.SetDeadline(time.Now().Add(deadline).UnixNano())
	}
	return c
}

// ended waits for done, failing the test after 5 s.
func ended(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the ctx did not end")
	}
}

func TestNothingIsMadeUntilWatched(t *testing.T) {
	c := newCtx(context.Background(), time.Hour)
	if err := c.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	// The deadline of its own is kept in the watch state (SetDeadline);
	// nothing watches the ctx yet.
	if w := c.s.w.Load(); c.s.done != nil || w == nil || w.timer != nil || w.stop != nil {
		t.Fatal("Err and Deadline made a channel or armed a watch")
	}
	plain := newCtx(context.Background(), 0)
	if err := plain.Err(); err != nil {
		t.Fatalf("Err = %v", err)
	}
	if _, ok := plain.Deadline(); ok {
		t.Fatal("a ctx without a deadline reports one")
	}
	if plain.s.done != nil || plain.s.w.Load() != nil {
		t.Fatal("Err and Deadline of a ctx without a deadline made a channel or a watch")
	}
	done := c.Done()
	if c.s.w.Load() == nil || c.s.w.Load().timer == nil {
		t.Fatal("Done armed no deadline timer")
	}
	if c.Done() != done {
		t.Fatal("a second Done made another channel")
	}
	Release(c.o())
	if w := c.s.w.Load(); w.stop != nil || w.timer != nil || w.target != nil || w.funcs != nil {
		t.Fatal("Release left the watches armed")
	}
}

// TestEnds: each way the ctx ends, seen through Done, Err and a derived
// ctx, whether it was watched before or not.
func TestEnds(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T) (*ctx, func()) // the ctx and what ends it
		want    error
		watched bool // Done called before the end
	}{
		{"Cancel", func(t *testing.T) (*ctx, func()) {
			c := newCtx(context.Background(), 0)
			return c, func() { Cancel(c.o(), context.Canceled) }
		}, context.Canceled, true},
		{"the parent ends, watched", func(t *testing.T) (*ctx, func()) {
			p, cancel := context.WithCancel(context.Background())
			return newCtx(p, 0), cancel
		}, context.Canceled, true},
		{"the parent ends, unwatched", func(t *testing.T) (*ctx, func()) {
			p, cancel := context.WithCancel(context.Background())
			return newCtx(p, 0), cancel
		}, context.Canceled, false},
		{"its deadline passes, watched", func(t *testing.T) (*ctx, func()) {
			return newCtx(context.Background(), 20*time.Millisecond), func() {}
		}, context.DeadlineExceeded, true},
		{"its deadline passed, unwatched", func(t *testing.T) (*ctx, func()) {
			return newCtx(context.Background(), -time.Millisecond), func() {}
		}, context.DeadlineExceeded, false},
		{"the parent's deadline passes", func(t *testing.T) (*ctx, func()) {
			p, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			t.Cleanup(cancel)
			return newCtx(p, time.Hour), func() {}
		}, context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, end := tt.make(t)
			defer Release(c.o())
			var derived context.Context
			var stop context.CancelFunc
			if tt.watched {
				c.Done()
				derived, stop = context.WithCancel(c)
				defer stop()
			}
			end()
			if !tt.watched {
				// Err sees the end first; Done then is closed already.
				if err := c.Err(); !errors.Is(err, tt.want) {
					t.Fatalf("Err = %v, want %v", err, tt.want)
				}
			}
			ended(t, c.Done())
			if err := c.Err(); !errors.Is(err, tt.want) {
				t.Fatalf("Err = %v, want %v", err, tt.want)
			}
			if derived != nil {
				ended(t, derived.Done())
			}
		})
	}
}

func TestTheFirstCauseWins(t *testing.T) {
	own := errors.New("a cause of its own")
	for _, tt := range []struct {
		name   string
		causes []error
		watch  bool // Done before the causes
	}{
		{"deadline then canceled", []error{context.DeadlineExceeded, context.Canceled}, false},
		{"canceled then deadline", []error{context.Canceled, context.DeadlineExceeded}, true},
		{"its own then canceled", []error{own, context.Canceled}, false},
		{"its own, watched", []error{own, context.DeadlineExceeded}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCtx(context.Background(), 0)
			if tt.watch {
				c.Done()
			}
			for _, err := range tt.causes {
				Cancel(c.o(), err)
			}
			// The cause outlives Release, which stops the watches (the
			// state that keeps a cause of its own among them).
			Release(c.o())
			if err := c.Err(); err != tt.causes[0] {
				t.Fatalf("Err = %v, want the first cause %v", err, tt.causes[0])
			}
			ended(t, c.Done())
		})
	}
}

// TestStateSize: the State is embedded in every task and every job, whose
// allocations it must not push into a larger size class.
func TestStateSize(t *testing.T) {
	if n := unsafe.Sizeof(State{}); n > 32 {
		t.Fatalf("State is %d bytes; want at most 32", n)
	}
}

func TestAfterFunc(t *testing.T) {
	c := newCtx(context.Background(), 0)
	ran := make(chan struct{})
	stopped := c.AfterFunc(func() { t.Error("a stopped callback ran") })
	if !stopped() {
		t.Fatal("stop of a registered callback returned false")
	}
	if stopped() {
		t.Fatal("a second stop returned true")
	}
	c.AfterFunc(func() { close(ran) })
	Cancel(c.o(), context.Canceled)
	ended(t, ran)
	// Registered once the ctx has ended, a callback runs at once, in a
	// goroutine of its own.
	late := make(chan struct{})
	if c.AfterFunc(func() { close(late) })() {
		t.Fatal("stop after the end returned true")
	}
	ended(t, late)
}

// TestReleaseEmptiesTheTimersTarget: a stopped timer may stay in the
// runtime's heap until it would have fired; its function must not reach
// the owner then.
func TestReleaseEmptiesTheTimersTarget(t *testing.T) {
	c := newCtx(context.Background(), time.Hour)
	c.Done()
	tg := c.s.w.Load().target
	Release(c.o())
	tg.mu.Lock()
	o := tg.o
	tg.mu.Unlock()
	if o != nil {
		t.Fatal("the stopped timer's target still holds its owner")
	}
}

func TestTightenMovesTheDeadlineEarlier(t *testing.T) {
	const soon = 20 * time.Millisecond
	cases := []struct {
		name     string
		deadline time.Duration // the ctx's own before Tighten; 0: none
		watched  bool          // Done called before Tighten
		tighten  time.Duration // from now; negative: past
		ends     bool          // the ctx ends at the tightened deadline
	}{
		{"unwatched, no deadline", 0, false, soon, true},
		{"unwatched, later deadline", time.Hour, false, soon, true},
		{"watched, no deadline", 0, true, soon, true},
		{"watched, later deadline", time.Hour, true, soon, true},
		{"watched, already past", time.Hour, true, -time.Second, true},
		{"unwatched, already past", time.Hour, false, -time.Second, true},
		{"earlier deadline kept", time.Minute, true, time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCtx(context.Background(), tc.deadline)
			defer Release(c.o())
			before, _ := c.Deadline()
			if tc.watched {
				c.Done()
			}
			at := time.Now().Add(tc.tighten)
			Tighten(c.o(), at.UnixNano())
			got, ok := c.Deadline()
			if !ok {
				t.Fatal("no deadline after Tighten")
			}
			if !tc.ends {
				if !got.Equal(before) {
					t.Fatalf("deadline moved from %v to %v; want it kept", before, got)
				}
				if err := c.Err(); err != nil {
					t.Fatalf("Err = %v, want nil", err)
				}
				return
			}
			if !got.Equal(time.Unix(0, at.UnixNano())) {
				t.Fatalf("deadline = %v, want %v", got, at)
			}
			ended(t, c.Done())
			if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Err = %v, want DeadlineExceeded", err)
			}
		})
	}
}

func TestTightenLeavesAnEndedCtxAlone(t *testing.T) {
	c := newCtx(context.Background(), 0)
	Cancel(c.o(), context.Canceled)
	Tighten(c.o(), time.Now().Add(-time.Second).UnixNano())
	if err := c.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Err = %v, want Canceled (the first cause)", err)
	}
	Release(c.o())
}

func TestTightenRunsCallbacksOfDerivedCtxs(t *testing.T) {
	c := newCtx(context.Background(), time.Hour)
	child, cancel := context.WithCancel(c) // registers through AfterFunc
	defer cancel()
	Tighten(c.o(), time.Now().Add(10*time.Millisecond).UnixNano())
	ended(t, child.Done())
	if err := child.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("child Err = %v, want its parent's DeadlineExceeded", err)
	}
	Release(c.o())
}

// TestSetDeadlineRacingCancelKeepsBoth: SetDeadline takes no lock and makes
// the watch state that Cancel, under the lock, makes too (the deadline and
// the cause live there): racing, they must make one between them, so that
// neither the cause nor the deadline is lost.
func TestSetDeadlineRacingCancelKeepsBoth(t *testing.T) {
	for range 200 {
		c := &ctx{parent: context.Background()}
		deadline := time.Now().Add(time.Hour)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			c.s.SetDeadline(deadline.UnixNano())
		})
		wg.Go(func() {
			<-start
			Cancel(c.o(), context.Canceled)
		})
		close(start)
		wg.Wait()
		if err := c.Err(); err != context.Canceled {
			t.Fatalf("Err = %v, want the cause Cancel gave", err)
		}
		if d, ok := c.Deadline(); !ok || !d.Equal(time.Unix(0, deadline.UnixNano())) {
			t.Fatalf("Deadline = %v, %v; want the one SetDeadline gave", d, ok)
		}
	}
}
