package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/testutil"
)

// The ctx parity tests: the caller's deadline, a per-work Deadline and
// propagated values reach a work the same way on goroutine and process
// workers (the cluster package has the same tests for cluster workers).

var (
	// pCtxSeen reports its ctx's deadline and request id.
	pCtxSeen = aplex.Register("test.ctx-seen", testutil.SeeCtx)
	// pPastDeadline ignores its ctx: it returns a value once marker
	// exists, which the test creates after the caller's ctx has ended (or
	// calls runtime.Goexit, if the marker says "goexit").
	pPastDeadline = aplex.Register("test.past-deadline", func(_ context.Context, marker string) (int, error) {
		b, err := testutil.AwaitMarker(marker)
		if err != nil {
			return 0, err
		}
		if string(b) == "goexit" {
			runtime.Goexit()
		}
		return 1, nil
	})
	// pCtxThenMarker waits for its ctx to end, then (still running) for
	// marker, and returns a value.
	pCtxThenMarker = aplex.Register("test.ctx-then-marker", func(ctx context.Context, marker string) (int, error) {
		<-ctx.Done()
		if _, err := testutil.AwaitMarker(marker); err != nil {
			return 0, err
		}
		return 1, nil
	})
)

// ctxKind is a kind of executor the ctx tests run on.
type ctxKind struct {
	name string
	new  func(t *testing.T) *aplex.Executor
}

var ctxKinds = []ctxKind{
	{"thread", func(t *testing.T) *aplex.Executor { return newThread(t, aplex.WithPoolSize(2)) }},
	{"process", func(t *testing.T) *aplex.Executor { return newProcess(t, aplex.WithPoolSize(1)) }},
}

// seenBy submits pCtxSeen with ctx and opts, and returns what the work saw
// and the times just before Submit and just after Get.
func seenBy(t *testing.T, ctx context.Context, ex *aplex.Executor, opts ...aplex.CallOption) (s testutil.CtxSeen, before, after time.Time) {
	t.Helper()
	before = time.Now()
	f, err := aplex.Submit(ctx, ex, pCtxSeen, 0, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	s = mustGet(t, f)
	return s, before, time.Now()
}

// checkDeadline checks that the work's deadline lies in [lo, hi].
func checkDeadline(t *testing.T, s testutil.CtxSeen, lo, hi time.Time) {
	t.Helper()
	if !s.HasDeadline {
		t.Fatalf("the work's ctx has no deadline; want one in [%v, %v]", lo, hi)
	}
	got := time.Unix(0, s.Deadline)
	if got.Before(lo.Round(0)) || got.After(hi.Round(0)) {
		t.Fatalf("the work's deadline is %v: %v after the earliest it may be, %v after the latest",
			got, got.Sub(lo), got.Sub(hi))
	}
}

func TestCallerDeadlineReachesProcessWork(t *testing.T) {
	for _, k := range ctxKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := k.new(t)
			ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
			defer cancel()
			want, _ := ctx.Deadline()
			s, before, after := seenBy(t, ctx, ex)
			// Sent as the time left: the worker's deadline is the caller's,
			// moved at most by the time the job took to get there.
			checkDeadline(t, s, want, want.Add(after.Sub(before)))

			// Without a deadline, the work has none either.
			if s, _, _ := seenBy(t, context.Background(), ex); s.HasDeadline {
				t.Fatalf("a work submitted without a deadline has one: %v", time.Unix(0, s.Deadline))
			}
		})
	}
}

func TestPerWorkDeadlineIsRemainingTime(t *testing.T) {
	const d = 3 * time.Second
	for _, k := range ctxKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := k.new(t)

			// Deadline(d) alone, and under a later caller deadline: d after
			// the work starts.
			for _, parent := range []time.Duration{0, time.Hour} {
				ctx := ctxT(t)
				if parent > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(context.Background(), parent)
					defer cancel()
				}
				s, before, after := seenBy(t, ctx, ex, aplex.Deadline(d))
				checkDeadline(t, s, before.Add(d), after.Add(d))
			}

			// Under an earlier caller deadline: the caller's.
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			want, _ := ctx.Deadline()
			s, before, after := seenBy(t, ctx, ex, aplex.Deadline(time.Hour))
			checkDeadline(t, s, want, want.Add(after.Sub(before)))
		})
	}
}

func TestWorkPastCallerDeadlineFailsOnEveryKind(t *testing.T) {
	for _, k := range ctxKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := k.new(t)
			for _, how := range []string{"value", "goexit"} {
				marker := filepath.Join(t.TempDir(), "past")
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				f, err := aplex.Submit(ctx, ex, pPastDeadline, marker)
				if err != nil {
					t.Fatalf("Submit: %v", err)
				}
				<-ctx.Done()
				// The work returns (or exits) only now, after the caller's
				// deadline: the future fails as the caller's ctx did.
				if err := os.WriteFile(marker, []byte(how), 0o600); err != nil {
					t.Fatal(err)
				}
				v, err := f.Get(ctxT(t))
				if !errors.Is(err, context.DeadlineExceeded) || !f.Cancelled() {
					t.Fatalf("%s: Get = %v, %v (cancelled: %v); want context.DeadlineExceeded, cancelled", how, v, err, f.Cancelled())
				}
			}
			// The worker is fine.
			if v := mustGet(t, mustSubmit(t, ex, pDouble, 4)); v != 8 {
				t.Fatalf("double(4) = %d", v)
			}
		})
	}
}

// Worker processes register the propagator at package level, as a program
// would. The test process registers it only in the tests that use it
// (useRequestIDs), so that this package's benchmarks, run on their own,
// measure Submit without a propagator.
var errPropagatorInWorker = func() error {
	if os.Getenv("APLEX_WORKER_ROLE") == "" {
		return nil
	}
	return aplex.RegisterPropagator(testutil.RequestIDs{})
}()

var requestIDsOnce sync.Once

func useRequestIDs(t *testing.T) {
	t.Helper()
	var err error
	requestIDsOnce.Do(func() { err = aplex.RegisterPropagator(testutil.RequestIDs{}) })
	if err != nil || errPropagatorInWorker != nil {
		t.Fatalf("RegisterPropagator: %v, %v", err, errPropagatorInWorker)
	}
}

func TestPropagatorCarriesValues(t *testing.T) {
	useRequestIDs(t)
	for _, k := range ctxKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := k.new(t)
			ctx := context.WithValue(ctxT(t), testutil.RequestIDKey{}, "req-42")
			if s, _, _ := seenBy(t, ctx, ex); s.RequestID != "req-42" {
				t.Fatalf("the work saw the request id %q, want req-42", s.RequestID)
			}
			// Nothing to carry: the work's ctx has no request id.
			if s, _, _ := seenBy(t, ctxT(t), ex); s.RequestID != "" {
				t.Fatalf("a work submitted without a request id saw %q", s.RequestID)
			}
			// Map carries it to every chunk, and the caller's deadline too.
			dctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			n := 0
			for s, err := range aplex.Map(dctx, ex, pCtxSeen, seq(5, nil), aplex.ChunkSize(2)) {
				if err != nil {
					t.Fatalf("Map: %v", err)
				}
				if s.RequestID != "req-42" || !s.HasDeadline {
					t.Fatalf("a Map work saw %+v", s)
				}
				n++
			}
			if n != 5 {
				t.Fatalf("Map yielded %d results", n)
			}
		})
	}
}

func TestPropagatorPanicFailsSubmit(t *testing.T) {
	useRequestIDs(t)
	ex := newProcess(t, aplex.WithPoolSize(1))
	ctx := context.WithValue(ctxT(t), testutil.RequestIDKey{}, "panic")
	if _, err := aplex.Submit(ctx, ex, pCtxSeen, 0); err == nil || !strings.Contains(err.Error(), "cannot inject") {
		t.Fatalf("Submit with a panicking propagator: %v", err)
	}
	for _, err := range aplex.Map(ctx, ex, pCtxSeen, seq(3, nil)) {
		if err == nil || !strings.Contains(err.Error(), "cannot inject") {
			t.Fatalf("Map with a panicking propagator: %v", err)
		}
	}
	if s, _, _ := seenBy(t, ctxT(t), ex); s.RequestID != "" {
		t.Fatalf("saw %q", s.RequestID)
	}
}

func TestOversizedHeaderIsTooLarge(t *testing.T) {
	useRequestIDs(t)
	ex := newProcess(t, aplex.WithPoolSize(1))

	// A header above its own bound.
	ctx := context.WithValue(ctxT(t), testutil.RequestIDKey{}, strings.Repeat("r", 65<<10))
	if _, err := aplex.Submit(ctx, ex, pCtxSeen, 0); !errors.Is(err, aplex.ErrTooLarge) {
		t.Fatalf("Submit with a 65 KiB header: %v, want ErrTooLarge", err)
	}
	for _, err := range aplex.Map(ctx, ex, pCtxSeen, seq(3, nil)) {
		if !errors.Is(err, aplex.ErrTooLarge) {
			t.Fatalf("Map with a 65 KiB header: %v, want ErrTooLarge", err)
		}
	}

	// A header that fits, with an argument that fits alone (16 MiB frames,
	// less 8 KiB of headroom) but not with it: the header counts in the
	// message, as the error says.
	ctx = context.WithValue(ctxT(t), testutil.RequestIDKey{}, strings.Repeat("r", 60<<10))
	arg := strings.Repeat("a", 16<<20-32<<10)
	if _, err := aplex.Submit(ctx, ex, pLen, arg); !errors.Is(err, aplex.ErrTooLarge) || !strings.Contains(err.Error(), "and the header") {
		t.Fatalf("Submit with a header that does not fit beside the argument: %v, want ErrTooLarge", err)
	}

	// A thread executor sends nothing: the same ctx is fine.
	if s, _, _ := seenBy(t, ctx, newThread(t)); len(s.RequestID) != 60<<10 {
		t.Fatalf("the thread work saw a request id of %d bytes", len(s.RequestID))
	}
}

func TestRegisterPropagatorNil(t *testing.T) {
	if err := aplex.RegisterPropagator(nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("RegisterPropagator(nil) = %v", err)
	}
	if err := aplex.RegisterPropagator((*nilPropagator)(nil)); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("RegisterPropagator of a nil pointer = %v", err)
	}
}

type nilPropagator struct{ testutil.RequestIDs }

// TestCallerCtxEndEndsFutureAtOnce: when the caller's ctx ends, the future
// ends then, cancelled, while the work is still running, on every kind.
func TestCallerCtxEndEndsFutureAtOnce(t *testing.T) {
	for _, k := range ctxKinds {
		t.Run(k.name, func(t *testing.T) {
			ex := k.new(t)
			marker := filepath.Join(t.TempDir(), "release")
			ctx, cancel := context.WithCancel(context.Background())
			f, err := aplex.Submit(ctx, ex, pCtxThenMarker, marker)
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			cancel()
			select {
			case <-f.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the future did not end with its caller's ctx")
			}
			if err := f.Err(); !errors.Is(err, context.Canceled) || !f.Cancelled() {
				t.Fatalf("Err = %v (cancelled: %v); want context.Canceled, cancelled", err, f.Cancelled())
			}
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the slot freed", func() bool { return ex.Stats().Running == 0 })
		})
	}
}

// pCtxAlive returns x, or an error if its ctx has ended or has a
// deadline less than a year away.
var pCtxAlive = aplex.Register("test.ctx-alive", func(ctx context.Context, x int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < 365*24*time.Hour {
		return 0, fmt.Errorf("deadline %v is less than a year away", d)
	}
	return x, nil
})

// TestHugeDeadlinesDoNotOverflow: a deadline beyond 2262 (the end of
// UnixNano) overflowed into the past: Deadline(math.MaxInt64) ended a
// goroutine worker's work at once, and on a process worker armed a kill
// timer of a negative duration that killed the worker; a caller's ctx
// with a deadline in the year 2500 and a huge WithKillGrace did the same.
// Such deadlines are as good as none: the works succeed.
func TestHugeDeadlinesDoNotOverflow(t *testing.T) {
	// Not under ctxT's: its own deadline is minutes away.
	far, cancel := context.WithDeadline(context.Background(), time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC))
	defer cancel()
	none := context.Background()
	twoYears := 2 * 365 * 24 * time.Hour
	for _, tc := range []struct {
		name string
		ex   *aplex.Executor
		ctx  context.Context
		opts []aplex.CallOption
	}{
		{"goroutine, Deadline(MaxInt64)", newThread(t, aplex.WithPoolSize(1)), none, []aplex.CallOption{aplex.Deadline(math.MaxInt64)}},
		{"goroutine, ctx deadline in 2500", newThread(t, aplex.WithPoolSize(1)), far, nil},
		{"process, Deadline(MaxInt64)", newProcess(t, aplex.WithPoolSize(1)), none, []aplex.CallOption{aplex.Deadline(math.MaxInt64)}},
		{"process, ctx deadline in 2500", newProcess(t, aplex.WithPoolSize(1)), far, nil},
		{"process, WithKillGrace(MaxInt64) and Deadline(two years)", newProcess(t, aplex.WithPoolSize(1), aplex.WithKillGrace(math.MaxInt64)), none, []aplex.CallOption{aplex.Deadline(twoYears)}},
	} {
		f, err := aplex.Submit(tc.ctx, tc.ex, pCtxAlive, 7, tc.opts...)
		if err != nil {
			t.Errorf("%s: Submit: %v", tc.name, err)
			continue
		}
		if v, err := f.Get(ctxT(t)); err != nil || v != 7 {
			t.Errorf("%s: %d, %v; want 7, nil", tc.name, v, err)
		}
		if s := tc.ex.Stats(); s.Restarts != 0 {
			t.Errorf("%s: the worker restarted", tc.name)
		}
	}
}
