package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// The bad-input table: every way a hostile or careless caller can misuse the
// API gets a clear error (errors.Is against the sentinel where one exists,
// else a message naming the bad thing), never a panic or a hang, and the
// pools it was tried against still serve afterwards.

// badCase is one bad input.
type badCase struct {
	name string
	do   func(t *testing.T) error
	want error  // matched with errors.Is, when set
	text string // else (or also) contained in the message
	// noErr: the API has no error to return (Stats, AsCompleted); do
	// returns an error only when the behaviour is wrong.
	noErr bool
}

// buildErr returns the error of a constructor, closing an executor it
// should not have built.
func buildErr(ex *aplex.Executor, err error) error {
	if err == nil {
		ex.Close()
		return errors.New("constructor accepted the bad option")
	}
	return err
}

// mapErr returns the first error a Map yields, or an error if it yields none.
func mapErr[R any](seq func(func(R, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return errors.New("Map yielded no error")
}

// node is a linked list node, for cyclic arguments.
type node struct {
	Next *node
	V    int
}

func TestBadInputTable(t *testing.T) {
	ctx := ctxT(t)
	tx := newThread(t, aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2))
	px := newProcess(t, aplex.WithPoolSize(1))
	var nilWork *aplex.Work[int, int]
	var nilEx *aplex.Executor
	intCh := make(chan int)

	closedThread := func(t *testing.T, shutdown bool) *aplex.Executor {
		ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1))
		if err != nil {
			t.Fatal(err)
		}
		if shutdown {
			err = ex.Shutdown(ctx)
		} else {
			err = ex.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	thread := func(opts ...aplex.Option) func(*testing.T) error {
		return func(*testing.T) error { return buildErr(aplex.NewThreadExecutor(opts...)) }
	}
	process := func(opts ...aplex.Option) func(*testing.T) error {
		return func(*testing.T) error { return buildErr(aplex.NewProcessExecutor(opts...)) }
	}
	submitT := func(opts ...aplex.CallOption) func(*testing.T) error {
		return func(*testing.T) error { _, err := aplex.Submit(ctx, tx, double, 1, opts...); return err }
	}
	mapT := func(opts ...aplex.CallOption) func(*testing.T) error {
		return func(*testing.T) error { return mapErr(aplex.Map(ctx, tx, double, seq(3, nil), opts...)) }
	}
	submitP := func(arg any) func(*testing.T) error {
		return func(*testing.T) error { _, err := aplex.Submit(ctx, px, pAny, arg); return err }
	}
	// hugeOption: a huge ChunkSize or Window must not allocate in
	// proportion to its value (item 6). It either works or is refused
	// with an error naming the option; it never crashes the caller.
	hugeOption := func(name string, unordered bool, opt aplex.CallOption) func(*testing.T) error {
		return func(*testing.T) error {
			m := aplex.Map[int, int]
			if unordered {
				m = aplex.MapUnordered[int, int]
			}
			n := 0
			for v, err := range m(ctx, tx, double, seq(5, nil), opt) {
				if err != nil {
					if strings.Contains(err.Error(), name) {
						return nil // refused clearly: fine
					}
					return err
				}
				if !unordered && v != 2*n {
					return fmt.Errorf("item %d = %d", n, v)
				}
				n++
			}
			if n != 5 {
				return fmt.Errorf("%d results, want 5", n)
			}
			return nil
		}
	}

	cases := []badCase{
		// Options of thread executors (options.go).
		{name: "WithPoolSize(0)", do: thread(aplex.WithPoolSize(0)), text: "WithPoolSize(0)"},
		{name: "WithPoolSize(-1)", do: thread(aplex.WithPoolSize(-1)), text: "WithPoolSize(-1)"},
		{name: "WithMaxWorksPerWorker(0)", do: thread(aplex.WithMaxWorksPerWorker(0)), text: "WithMaxWorksPerWorker(0)"},
		{name: "WithMaxWorksPerWorker(-5)", do: thread(aplex.WithMaxWorksPerWorker(-5)), text: "WithMaxWorksPerWorker(-5)"},
		{name: "WithQueueSize(-1)", do: thread(aplex.WithQueueSize(-1)), text: "WithQueueSize(-1)"},
		{name: "WithLoadBalancer(nil)", do: thread(aplex.WithLoadBalancer(nil)), text: "WithLoadBalancer(nil)"},
		{name: "WithWorkerInit(nil)", do: thread(aplex.WithWorkerInit(nil)), text: "WithWorkerInit(nil)"},
		{name: "WithKillGrace(0)", do: thread(aplex.WithKillGrace(0)), text: "WithKillGrace(0s)"},
		{name: "WithKillGrace(-1s)", do: thread(aplex.WithKillGrace(-time.Second)), text: "WithKillGrace(-1s)"},
		{name: "WithLogger(nil)", do: thread(aplex.WithLogger(nil)), text: "WithLogger(nil)"},
		{name: "nil option", do: thread(nil), text: "option 0 is nil"},
		{name: "nil option after a good one", do: thread(aplex.WithPoolSize(1), nil), text: "option 1 is nil"},
		{name: "worker-process option on a thread executor", do: thread(aplex.WithRecycleAfter(3)), text: "WithRecycleAfter applies to process and cluster executors only"},
		{name: "WithHeartbeatTimeout on a thread executor", do: thread(aplex.WithHeartbeatTimeout(time.Second)), text: "WithHeartbeatTimeout applies to process and cluster executors only"},
		{name: "WithStartTimeout on a thread executor", do: thread(aplex.WithStartTimeout(time.Second)), text: "WithStartTimeout applies to process and cluster executors only"},
		// Options of process executors (options_process.go).
		{name: "WithWorkerCommand(\"\")", do: process(aplex.WithWorkerCommand("")), text: "WithWorkerCommand: empty path"},
		{name: "WithWorkerEnv without =", do: process(aplex.WithWorkerEnv("NOEQUALS")), text: `WithWorkerEnv("NOEQUALS")`},
		{name: "WithWorkerEnv without key", do: process(aplex.WithWorkerEnv("=v")), text: `WithWorkerEnv("=v")`},
		{name: "WithWorkerEnv empty", do: process(aplex.WithWorkerEnv("")), text: `WithWorkerEnv("")`},
		{name: "WithWorkerOutput(nil)", do: process(aplex.WithWorkerOutput(nil)), text: "WithWorkerOutput(nil)"},
		{name: "WithRecycleAfter(0)", do: process(aplex.WithRecycleAfter(0)), text: "WithRecycleAfter(0)"},
		{name: "WithRecycleAfter(-1)", do: process(aplex.WithRecycleAfter(-1)), text: "WithRecycleAfter(-1)"},
		{name: "WithPrefetch(-1)", do: process(aplex.WithPrefetch(-1)), text: "WithPrefetch(-1): must not be negative"},
		{name: "WithPrefetch on a thread executor", do: thread(aplex.WithPrefetch(1)), text: "WithPrefetch applies to process and cluster executors only"},
		{name: "WithPrefetch(huge)", do: process(aplex.WithPrefetch(math.MaxInt)), text: "WithPrefetch(9223372036854775807): at most 2147483647"},
		{name: "WithPrefetch with huge slots", do: process(aplex.WithPrefetch(1), aplex.WithMaxWorksPerWorker(1<<40)),
			text: "WithPrefetch needs WithMaxWorksPerWorker at most 2147483647"},
		{name: "WithWorkerMemoryLimit(1 KiB)", do: process(aplex.WithWorkerMemoryLimit(1024)), text: "WithWorkerMemoryLimit(1024)"},
		{name: "WithStartTimeout(0)", do: process(aplex.WithStartTimeout(0)), text: "WithStartTimeout(0s)"},
		{name: "WithHeartbeatTimeout(0)", do: process(aplex.WithHeartbeatTimeout(0)), text: "WithHeartbeatTimeout(0s)"},
		{name: "WithHeartbeatTimeout(1ms)", do: process(aplex.WithHeartbeatTimeout(time.Millisecond)), text: "WithHeartbeatTimeout(1ms)"},
		{name: "WithWorkerInit on a process executor", do: process(aplex.WithWorkerInit(func(ctx context.Context, _ aplex.WorkerInfo) (context.Context, error) { return ctx, nil })), text: "RegisterWorkerInit"},
		{name: "WithPoolSize(0) on a process executor", do: process(aplex.WithPoolSize(0)), text: "WithPoolSize(0)"},
		{name: "WithKillGrace(0) on a process executor", do: process(aplex.WithKillGrace(0)), text: "WithKillGrace(0s)"},
		{name: "nil option on a process executor", do: process(aplex.WithPoolSize(1), nil), text: "option 1 is nil"},

		// Submit's arguments.
		{name: "Submit nil ctx", do: func(*testing.T) error { _, err := aplex.Submit(nilCtx, tx, double, 1); return err }, text: "nil context"},
		{name: "TrySubmit nil ctx", do: func(*testing.T) error { _, err := aplex.TrySubmit(nilCtx, tx, double, 1); return err }, text: "nil context"},
		{name: "Submit nil executor", do: func(*testing.T) error { _, err := aplex.Submit(ctx, nilEx, double, 1); return err }, text: "nil executor"},
		{name: "TrySubmit nil executor", do: func(*testing.T) error { _, err := aplex.TrySubmit(ctx, nilEx, double, 1); return err }, text: "nil executor"},
		{name: "Submit nil work", do: func(*testing.T) error { _, err := aplex.Submit(ctx, tx, nilWork, 1); return err }, text: "nil work"},
		{name: "Submit Fn(nil)", do: func(*testing.T) error { _, err := aplex.Submit(ctx, tx, aplex.Fn[int, int](nil), 1); return err }, text: "Fn(nil)"},
		{name: "Submit Register with empty name", do: func(*testing.T) error {
			_, err := aplex.Submit(ctx, tx, aplex.Register("", func(context.Context, int) (int, error) { return 0, nil }), 1)
			return err
		}, text: "empty work name"},
		{name: "Submit Register with a taken name", do: func(*testing.T) error {
			_, err := aplex.Submit(ctx, px, aplex.Register("test.double", func(context.Context, int) (int, error) { return 0, nil }), 1)
			return err
		}, text: `"test.double"): name already registered`},
		{name: "Submit Register with nil function", do: func(*testing.T) error {
			_, err := aplex.Submit(ctx, px, aplex.Register[int, int]("test.badinput.nilfn", nil), 1)
			return err
		}, text: `Register("test.badinput.nilfn", nil)`},
		{name: "Submit nil call option", do: submitT(nil), text: "call option 0 is nil"},
		{name: "Submit nil call option after a good one", do: submitT(aplex.Retry(1), nil), text: "call option 1 is nil"},
		{name: "Submit ChunkSize (Map only)", do: submitT(aplex.ChunkSize(2)), text: "ChunkSize applies to Map"},
		{name: "Submit Timeout (Map only)", do: submitT(aplex.Timeout(time.Second)), text: "Timeout applies to Map"},
		{name: "TrySubmit Window (Map only)", do: func(*testing.T) error {
			_, err := aplex.TrySubmit(ctx, tx, double, 1, aplex.Window(4))
			return err
		}, text: "Window applies to Map"},
		{name: "Submit Deadline(0)", do: submitT(aplex.Deadline(0)), text: "Deadline(0s)"},
		{name: "Submit Deadline(-1ns)", do: submitT(aplex.Deadline(-1)), text: "Deadline(-1ns)"},
		{name: "Submit Retry(-1)", do: submitT(aplex.Retry(-1)), text: "Retry(-1)"},
		{name: "Submit Retry(32768)", do: submitT(aplex.Retry(32768)), text: "Retry(32768): must be between 0 and 32767"},
		{name: "Submit cancelled ctx", do: func(*testing.T) error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := aplex.Submit(c, tx, double, 1)
			return err
		}, want: context.Canceled},

		// Map's arguments.
		{name: "Map nil ctx", do: func(*testing.T) error { return mapErr(aplex.Map(nilCtx, tx, double, seq(3, nil))) }, text: "nil context"},
		{name: "Map nil executor", do: func(*testing.T) error { return mapErr(aplex.Map(ctx, nilEx, double, seq(3, nil))) }, text: "nil executor"},
		{name: "Map nil work", do: func(*testing.T) error { return mapErr(aplex.Map(ctx, tx, nilWork, seq(3, nil))) }, text: "nil work"},
		{name: "Map nil inputs", do: func(*testing.T) error { return mapErr(aplex.Map(ctx, tx, double, nil)) }, text: "nil inputs"},
		{name: "Map nil call option", do: mapT(nil), text: "call option 0 is nil"},
		{name: "Map ChunkSize(0)", do: mapT(aplex.ChunkSize(0)), text: "ChunkSize(0)"},
		{name: "Map ChunkSize(-3)", do: mapT(aplex.ChunkSize(-3)), text: "ChunkSize(-3)"},
		{name: "Map Window(0)", do: mapT(aplex.Window(0)), text: "Window(0)"},
		{name: "MapUnordered Window(-1)", do: func(*testing.T) error {
			return mapErr(aplex.MapUnordered(ctx, tx, double, seq(3, nil), aplex.Window(-1)))
		}, text: "Window(-1)"},
		{name: "Map Timeout(0)", do: mapT(aplex.Timeout(0)), text: "Timeout(0s)"},
		{name: "Map Timeout(-1s)", do: mapT(aplex.Timeout(-time.Second)), text: "Timeout(-1s)"},
		{name: "Map Retry(-2)", do: mapT(aplex.Retry(-2)), text: "Retry(-2)"},
		{name: "Map ChunkSize(MaxInt) (item 6)", do: hugeOption("ChunkSize", false, aplex.ChunkSize(math.MaxInt)), noErr: true},
		{name: "MapUnordered Window(MaxInt) (item 6)", do: hugeOption("Window", true, aplex.Window(math.MaxInt)), noErr: true},
		{name: "Map Window(MaxInt) (item 6)", do: hugeOption("Window", false, aplex.Window(math.MaxInt)), noErr: true},

		// What only a process executor can refuse.
		{name: "Fn work on a process executor", do: func(*testing.T) error { _, err := aplex.Submit(ctx, px, double, 1); return err }, want: aplex.ErrNotRegistered, text: "aplex.Register"},
		{name: "Map of an Fn work on a process executor", do: func(*testing.T) error { return mapErr(aplex.Map(ctx, px, double, seq(3, nil))) }, want: aplex.ErrNotRegistered},
		{name: "name unknown to the worker binary", do: func(*testing.T) error {
			f, err := aplex.Submit(ctx, px, parentOnly, 1)
			if err != nil {
				return fmt.Errorf("Submit: %w", err)
			}
			_, err = f.Get(ctx)
			return err
		}, want: aplex.ErrNotRegistered, text: "test.parent-only"},
		{name: "func argument", do: submitP(func() {}), want: aplex.ErrEncoding, text: "func()"},
		{name: "chan argument", do: submitP(intCh), want: aplex.ErrEncoding, text: "chan int"},
		{name: "complex argument", do: submitP(complex(1, 2)), want: aplex.ErrEncoding, text: "complex128"},
		{name: "func in a struct field", do: submitP(struct{ F func() }{func() {}}), want: aplex.ErrEncoding},
		{name: "cyclic pointer argument (item 3)", do: cyclicInChild("pointer"), want: aplex.ErrEncoding, text: "node"},
		{name: "cyclic map argument (item 3)", do: cyclicInChild("map"), want: aplex.ErrEncoding, text: "map"},
		{name: "too large argument", do: submitP(strings.Repeat("y", 17<<20)), want: aplex.ErrTooLarge},
		{name: "Map with a too large argument", do: func(*testing.T) error {
			big := func(yield func(string) bool) { _ = yield("a") && yield(strings.Repeat("z", 17<<20)) }
			return mapErr(aplex.Map(ctx, px, pLen, big))
		}, want: aplex.ErrTooLarge},
		{name: "Map with an unencodable argument", do: func(*testing.T) error {
			fns := func(yield func(any) bool) { _ = yield(1) && yield(func() {}) }
			return mapErr(aplex.Map(ctx, px, pAny, fns))
		}, want: aplex.ErrEncoding},

		// Lifecycle.
		{name: "Submit after Shutdown", do: func(t *testing.T) error {
			_, err := aplex.Submit(ctx, closedThread(t, true), double, 1)
			return err
		}, want: aplex.ErrClosed},
		{name: "TrySubmit after Close", do: func(t *testing.T) error {
			_, err := aplex.TrySubmit(ctx, closedThread(t, false), double, 1)
			return err
		}, want: aplex.ErrClosed},
		{name: "Map after Shutdown", do: func(t *testing.T) error {
			return mapErr(aplex.Map(ctx, closedThread(t, true), double, seq(3, nil)))
		}, want: aplex.ErrClosed},
		{name: "Submit to a closed process executor", do: func(t *testing.T) error {
			ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := ex.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = aplex.Submit(ctx, ex, pDouble, 1)
			return err
		}, want: aplex.ErrClosed},
		{name: "TrySubmit on a full bounded queue", do: func(t *testing.T) error {
			ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithQueueSize(1))
			g := newGate()
			running := mustSubmit(t, ex, g.work, 0)
			waitFor(t, "the gated work to start", func() bool { return g.startedN() == 1 })
			queued := mustSubmit(t, ex, g.work, 1)
			_, err := aplex.TrySubmit(ctx, ex, g.work, 2)
			close(g.release)
			mustGet(t, running)
			mustGet(t, queued)
			if v := mustGet(t, mustSubmit(t, ex, double, 4)); v != 8 {
				t.Errorf("after ErrFull: %d", v)
			}
			return err
		}, want: aplex.ErrFull},
		{name: "Shutdown nil ctx", do: func(*testing.T) error { return tx.Shutdown(nilCtx) }, text: "nil context"},
		{name: "Shutdown nil executor", do: func(*testing.T) error { return nilEx.Shutdown(ctx) }, text: "nil executor"},
		{name: "Close nil executor", do: func(*testing.T) error { return nilEx.Close() }, text: "nil executor"},

		// A zero-value Executor (item 10) is refused like a nil one.
		{name: "zero Executor Submit (item 10)", do: func(*testing.T) error {
			var z aplex.Executor
			_, err := aplex.Submit(ctx, &z, double, 1)
			return err
		}, text: "executor"},
		{name: "zero Executor TrySubmit (item 10)", do: func(*testing.T) error {
			var z aplex.Executor
			_, err := aplex.TrySubmit(ctx, &z, double, 1)
			return err
		}, text: "executor"},
		{name: "zero Executor Map (item 10)", do: func(*testing.T) error {
			var z aplex.Executor
			return mapErr(aplex.Map(ctx, &z, double, seq(3, nil)))
		}, text: "executor"},
		{name: "zero Executor Shutdown (item 10)", do: func(*testing.T) error { var z aplex.Executor; return z.Shutdown(ctx) }, text: "executor"},
		{name: "zero Executor Close (item 10)", do: func(*testing.T) error { var z aplex.Executor; return z.Close() }, text: "executor"},
		{name: "zero Executor Stats (item 10)", do: func(*testing.T) error {
			var z aplex.Executor
			if st := z.Stats(); len(st.Workers) != 0 || st.Running != 0 || st.Queued != 0 {
				return fmt.Errorf("Stats of a zero Executor: %+v", st)
			}
			return nil
		}, noErr: true},

		// Waiting.
		{name: "Wait nil ctx", do: func(*testing.T) error { _, _, err := aplex.Wait(nilCtx, aplex.AllCompleted); return err }, text: "nil context"},
		{name: "Wait mode 0", do: func(*testing.T) error { _, _, err := aplex.Wait(ctx, 0); return err }, text: "unknown mode WaitMode(0)"},
		{name: "Wait mode 99", do: func(*testing.T) error { _, _, err := aplex.Wait(ctx, 99); return err }, text: "unknown mode WaitMode(99)"},
		{name: "Wait typed nil future", do: func(*testing.T) error {
			var f *aplex.Future[int]
			_, _, err := aplex.Wait(ctx, aplex.AllCompleted, mustSubmit(t, tx, double, 1), f)
			return err
		}, text: "future 1 is nil"},
		{name: "Wait nil Awaitable", do: func(*testing.T) error {
			_, _, err := aplex.Wait(ctx, aplex.FirstCompleted, nil)
			return err
		}, text: "future 0 is nil"},
		{name: "AsCompleted nil future", do: func(*testing.T) error {
			var typed *aplex.Future[int]
			f := mustSubmit(t, tx, double, 3)
			var err error
			n := 0
			for _, e := range aplex.AsCompleted(ctx, f, typed) {
				err = e
				n++
			}
			if n != 1 {
				return fmt.Errorf("AsCompleted yielded %d times for a nil future, want one error", n)
			}
			return err
		}, text: "future 1 is nil"},
		{name: "AsCompleted nil ctx", do: func(*testing.T) error {
			f := mustSubmit(t, tx, double, 3)
			for _, err := range aplex.AsCompleted(nilCtx, f) {
				return err
			}
			return errors.New("AsCompleted yielded nothing")
		}, text: "nil context"},
		{name: "Get nil ctx on an ended future (item 17)", do: func(t *testing.T) error {
			f := mustSubmit(t, tx, double, 2)
			mustGet(t, f)
			_, err := f.Get(nilCtx)
			return err
		}, text: "nil context"},
		{name: "Get nil ctx on a pending future (item 17)", do: func(t *testing.T) error {
			g := newGate()
			f := mustSubmit(t, tx, g.work, 0)
			defer f.Cancel()
			got := make(chan error, 1)
			go func() { _, err := f.Get(nilCtx); got <- err }()
			select {
			case err := <-got:
				return err
			case <-time.After(2 * time.Second):
				f.Cancel() // ends the blocked Get
				<-got
				return errors.New("Get(nil) blocked instead of refusing the nil ctx")
			}
		}, text: "nil context"},
		{name: "Get with a cancelled ctx on a pending future", do: func(t *testing.T) error {
			g := newGate()
			f := mustSubmit(t, tx, g.work, 0)
			defer f.Cancel()
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := f.Get(c)
			return err
		}, want: context.Canceled},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := protect(func() error { return c.do(t) })
			switch {
			case c.noErr && err != nil:
				t.Errorf("%v", err)
			case c.noErr:
			case err == nil:
				t.Errorf("no error")
			case c.want != nil && !errors.Is(err, c.want):
				t.Errorf("got %q, want an error matching %v", err, c.want)
			case c.text != "" && !strings.Contains(err.Error(), c.text):
				t.Errorf("got %q, want it to mention %q", err, c.text)
			}
			// Both pools still serve.
			if v := mustGet(t, mustSubmit(t, tx, double, 21)); v != 42 {
				t.Errorf("thread pool after %s: %d", c.name, v)
			}
			if v := mustGet(t, mustSubmit(t, px, pDouble, 21)); v != 42 {
				t.Errorf("process pool after %s: %d", c.name, v)
			}
		})
	}
	t.Logf("%d bad inputs tried", len(cases))
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// protect runs do, turning a panic into an error: a bad input must never
// panic, and one that does must not take the rest of the table with it.
func protect(do func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panicked: %v", v)
		}
	}()
	return do()
}

// pAny accepts any argument, so the table can offer it unencodable ones.
var pAny = aplex.Register("test.any", func(_ context.Context, v any) (int, error) { return 1, nil })

// envCyclic makes TestBadInputCyclicChild submit a cyclic argument.
const envCyclic = "APLEX_TEST_CYCLIC"

// cyclicInChild submits a cyclic argument in a child test process: before
// item 3 is fixed, the encoder overflows the stack, which is fatal to the
// whole process and could not be recovered here. The child reports the
// error Submit returned on its last output line.
func cyclicInChild(kind string) func(*testing.T) error {
	return func(t *testing.T) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBadInputCyclicChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCyclic+"="+kind)
		out, err := cmd.CombinedOutput()
		const mark = "SUBMIT ERROR: "
		i := strings.LastIndex(string(out), mark)
		if err != nil || i < 0 {
			return fmt.Errorf("the process submitting a cyclic %s argument died (%v):\n%.600s", kind, err, out)
		}
		line, _, _ := strings.Cut(string(out[i+len(mark):]), "\n")
		if line == "<nil>" {
			return errors.New("Submit accepted a cyclic argument")
		}
		// Rebuild the sentinel the child saw, for errors.Is.
		if strings.Contains(line, aplex.ErrEncoding.Error()) {
			return fmt.Errorf("%w (from the child: %s)", aplex.ErrEncoding, line)
		}
		return errors.New(line)
	}
}

// TestBadInputCyclicChild is the child half of cyclicInChild; run
// directly, it has nothing to do.
func TestBadInputCyclicChild(t *testing.T) {
	kind := os.Getenv(envCyclic)
	if kind == "" {
		return
	}
	// A runaway recursion should die fast, not after growing a 1 GB stack.
	debug.SetMaxStack(64 << 20)
	ex := newProcess(t, aplex.WithPoolSize(1))
	var arg any
	switch kind {
	case "pointer":
		n := &node{V: 1}
		n.Next = n
		arg = n
	case "map":
		m := map[string]any{}
		m["self"] = m
		arg = m
	}
	_, err := aplex.Submit(ctxT(t), ex, pAny, arg)
	fmt.Printf("SUBMIT ERROR: %v\n", err)
}

// TestANilFutureEndsFailedInsteadOfPanicking: every method of a nil
// *Future (what a failed Submit returns, its error unchecked) panicked
// with a nil dereference in the caller's goroutine, where a nil *Executor
// answers with an error. A nil future behaves as one that ended with an
// error saying so: Get and Err return it, Done is closed, OnDone calls fn
// at once with it, Cancel and Cancelled say false.
func TestANilFutureEndsFailedInsteadOfPanicking(t *testing.T) {
	var f *aplex.Future[int]
	if v, err := f.Get(ctxT(t)); err == nil || v != 0 || !strings.Contains(err.Error(), "nil") {
		t.Errorf("Get = %d, %v; want 0 and an error about the nil future", v, err)
	}
	if err := f.Err(); err == nil {
		t.Error("Err = nil; want the nil future's error")
	}
	select {
	case <-f.Done():
	default:
		t.Error("Done is not closed")
	}
	if f.Cancel() || f.Cancelled() {
		t.Error("Cancel or Cancelled said true")
	}
	var got error
	f.OnDone(func(_ int, err error) { got = err })
	if got == nil {
		t.Error("OnDone did not call fn at once with the nil future's error")
	}
}
