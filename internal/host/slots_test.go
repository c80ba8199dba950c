package host

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// gated is a Host with a slot bound whose "gate" work announces its start
// (its argument) and returns when its gate is opened or its ctx ends.
type gated struct {
	t       *testing.T
	h       *Host
	started chan string
	gates   map[string]chan struct{}
	results chan wire.Result
	runs    atomic.Int32 // works started, all kinds
	slots   int          // the Slots of its Runs

	mu     sync.Mutex
	opened map[string]bool // gates opened (open)
}

func newGated(t *testing.T, slots int, names ...string) *gated {
	return newGatedMax(t, slots, 0, names...)
}

// newGatedMax is newGated with a host of MaxWorks maxWorks.
func newGatedMax(t *testing.T, slots, maxWorks int, names ...string) *gated {
	return newGatedWith(t, slots, maxWorks, nil, names...)
}

// newGatedWith is newGatedMax with the host's Config changed by cfg (if
// not nil).
func newGatedWith(t *testing.T, slots, maxWorks int, cfg func(*Config), names ...string) *gated {
	g := &gated{t: t, slots: slots, started: make(chan string, 64), gates: map[string]chan struct{}{},
		results: make(chan wire.Result, 64), opened: map[string]bool{}}
	for _, n := range names {
		g.gates[n] = make(chan struct{})
	}
	reg := testRegistry()
	reg["gate"] = func(ctx context.Context, arg []byte) ([]byte, error) {
		g.runs.Add(1)
		g.started <- string(arg)
		select {
		case <-g.gates[string(arg)]:
			return arg, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	reg["stubborn"] = func(_ context.Context, arg []byte) ([]byte, error) {
		g.runs.Add(1)
		g.started <- string(arg)
		<-g.gates[string(arg)] // its ctx ending does not end it
		return arg, nil
	}
	reg["count"] = func(_ context.Context, arg []byte) ([]byte, error) {
		g.runs.Add(1)
		return arg, nil
	}
	reg["goexitcount"] = func(context.Context, []byte) ([]byte, error) {
		g.runs.Add(1)
		runtime.Goexit()
		return nil, nil
	}
	c := Config{Registry: reg, EncodeError: testEncodeError, MaxWorks: maxWorks,
		Emit: func(_ string, r wire.Result) { g.results <- r }}
	if cfg != nil {
		cfg(&c)
	}
	g.h = New(c)
	t.Cleanup(func() {
		g.h.CancelAll()
		for n := range g.gates {
			g.open(n) // a stubborn work ends only so, even when a test failed first
		}
		<-g.h.idleChan()
		g.h.Close()
	})
	return g
}

// open opens the gate of the work named n; opening it again does nothing.
func (g *gated) open(n string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened[n] {
		g.opened[n] = true
		close(g.gates[n])
	}
}

func (g *gated) run(jobs ...wire.Job) { g.h.Run(&wire.Run{Slots: g.slots, Jobs: jobs}) }

func gate(id uint64, name string) wire.Job {
	return wire.Job{ID: id, Name: "gate", Args: [][]byte{[]byte(name)}}
}

// waitStart returns the next work to start.
func (g *gated) waitStart() string { g.t.Helper(); return next(g.t, g.started, "no work started") }

// result returns the next result.
func (g *gated) result() wire.Result { g.t.Helper(); return next(g.t, g.results, "no result") }

// next receives from c, failing the test with msg after 5 s.
func next[T any](t *testing.T, c <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
	panic("unreachable")
}

func TestSlotsHoldJobsBeyondTheBoundAndStartThemInOrder(t *testing.T) {
	g := newGated(t, 2, "a", "b", "c", "d")
	g.run(gate(1, "a"), gate(2, "b"), gate(3, "c"), gate(4, "d"))
	got := map[string]bool{g.waitStart(): true, g.waitStart(): true}
	if !got["a"] || !got["b"] {
		t.Fatalf("started %v, want a and b", got)
	}
	// Run decides at once, under the host's lock: two started, two held.
	g.h.mu.Lock()
	held := g.h.heldLocked()
	g.h.mu.Unlock()
	if held != 2 {
		t.Fatalf("%d jobs held, want 2", held)
	}
	if n := g.h.Load(); n != 2 {
		t.Errorf("Load = %d with 2 running and 2 held, want 2", n)
	}
	g.open("b")
	if r := g.result(); r.ID != 2 {
		t.Fatalf("result %d, want 2", r.ID)
	}
	if s := g.waitStart(); s != "c" {
		t.Fatalf("after b ended, %q started, want c (the oldest held)", s)
	}
	g.open("a")
	g.result()
	if s := g.waitStart(); s != "d" {
		t.Fatalf("after a ended, %q started, want d", s)
	}
	g.open("c")
	g.open("d")
	for range 2 {
		if r := g.result(); r.Items[0].Err != nil {
			t.Errorf("job %d: %+v", r.ID, r.Items[0].Err)
		}
	}
	<-g.h.idleChan()
}

func TestHeldJobOutcomes(t *testing.T) {
	header := map[string]string{"k": "v"}
	tests := []struct {
		name string
		held wire.Job
		act  func(g *gated) // what ends the held job
		code wire.ErrCode
		// ends, if set, configures the host and returns what ends the held
		// job, instead of act.
		ends func(c *Config) func()
		// allEnd: the running job ends too.
		allEnd bool
	}{
		{"cancelled", wire.Job{ID: 2, Name: "count", Args: [][]byte{nil}},
			func(g *gated) { g.h.Cancel(&wire.Cancel{IDs: []uint64{2}}) }, wire.CodeCanceled, nil, false},
		{"deadline passes while held", wire.Job{ID: 2, Name: "count", Timeout: 10 * time.Millisecond, Args: [][]byte{nil}},
			func(*gated) {}, wire.CodeDeadline, nil, false},
		{"deadline passed on arrival", wire.Job{ID: 2, Name: "count", Timeout: -1, Args: [][]byte{nil}},
			func(*gated) {}, wire.CodeDeadline, nil, false},
		{"drained", wire.Job{ID: 2, Name: "count", Args: [][]byte{nil, nil}},
			func(g *gated) { g.h.Drain() }, wire.CodeShutdown, nil, false},
		{"CancelAll", wire.Job{ID: 2, Name: "count", Args: [][]byte{nil}},
			func(g *gated) { g.h.CancelAll() }, wire.CodeCanceled, nil, true},
		// Regression: a held job whose ctx ended other than by a cancel or
		// its deadline waited for a slot, then ran with its ended ctx. (The
		// running job ignores its ctx: were it to end as the base ctx ends,
		// the held job could start in its slot before the cancellation
		// reached the held job's ctx, legitimately.)
		{"base ctx ends", wire.Job{ID: 2, Name: "count", Args: [][]byte{nil}},
			nil, wire.CodeCanceled, func(c *Config) func() {
				ctx, cancel := context.WithCancel(context.Background())
				c.BaseContext = ctx
				return cancel
			}, false},
		{"a propagator's ctx ends", wire.Job{ID: 2, Name: "count", Header: header, Args: [][]byte{nil}},
			nil, wire.CodeCanceled, func(c *Config) func() {
				var cancel context.CancelFunc
				c.Extract = func(ctx context.Context, _ map[string]string) context.Context {
					ctx, cancel = context.WithCancel(ctx)
					return ctx
				}
				return func() { cancel() }
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var end func()
			g := newGatedWith(t, 1, 0, func(c *Config) {
				if tt.ends != nil {
					end = tt.ends(c)
				}
			}, "a")
			running := gate(1, "a")
			if tt.ends != nil {
				running.Name = "stubborn"
			}
			g.run(running, tt.held)
			g.waitStart()
			if end != nil {
				end()
			} else {
				tt.act(g)
			}
			r := g.result()
			if r.ID == 1 && tt.allEnd {
				r = g.result() // the running job's, ended too
			}
			if r.ID != 2 || len(r.Items) != len(tt.held.Args) {
				t.Fatalf("first result %+v, want the held job's", r)
			}
			for i, o := range r.Items {
				if o.Err == nil || o.Err.Code != tt.code {
					t.Errorf("item %d = %+v, want code %v", i, o.Err, tt.code)
				}
			}
			if tt.code == wire.CodeShutdown && !wire.NeverRan(r.Items) {
				t.Error("a drained held job must read as never run (requeued)")
			}
			if n := g.runs.Load(); n != 1 {
				t.Errorf("%d works ran, want only the gate: the held job never starts", n)
			}
			if !tt.allEnd {
				// The running job is untouched and its slot frees as usual.
				g.open("a")
				if r := g.result(); r.ID != 1 || r.Items[0].Err != nil {
					t.Errorf("running job: %+v", r)
				}
			}
			<-g.h.idleChan()
			g.h.mu.Lock()
			bounds, held, jobs := len(g.h.slots), g.h.heldLocked(), len(g.h.jobs)
			g.h.mu.Unlock()
			if bounds != 0 || held != 0 || jobs != 0 {
				t.Errorf("after: %d executors' bounds kept, %d held, %d jobs", bounds, held, jobs)
			}
		})
	}
}

func TestHeldJobStartsAfterAWorkThatCalledGoexit(t *testing.T) {
	g := newGated(t, 1)
	g.run(wire.Job{ID: 1, Name: "goexitcount", Args: [][]byte{nil}},
		wire.Job{ID: 2, Name: "count", Args: [][]byte{[]byte("x")}},
		wire.Job{ID: 3, Name: "goexitcount", Args: [][]byte{nil, nil}}, // a chunk
		wire.Job{ID: 4, Name: "count", Args: [][]byte{[]byte("y")}})
	got := map[uint64]wire.Result{}
	for range 4 {
		r := g.result()
		got[r.ID] = r
	}
	if string(got[2].Items[0].Value) != "x" || string(got[4].Items[0].Value) != "y" {
		t.Errorf("held jobs behind Goexit: %+v, %+v", got[2], got[4])
	}
	<-g.h.idleChan()
	if n := g.runs.Load(); n != 5 {
		t.Errorf("%d works ran, want 5", n)
	}
}

func TestSlotBounds(t *testing.T) {
	tests := []struct {
		name             string
		maxWorks         int
		runs             []wire.Run
		started, holding int
	}{
		{"no Slots: nothing held", 0,
			[]wire.Run{{Jobs: []wire.Job{gate(1, "a"), gate(2, "b"), gate(3, "c")}}}, 3, 0},
		{"a bound per executor", 0, []wire.Run{
			{ReplyTo: "x", Slots: 1, Jobs: []wire.Job{gate(1, "a"), gate(2, "b")}},
			{ReplyTo: "y", Slots: 1, Jobs: []wire.Job{gate(1, "c")}},
		}, 2, 1},
		{"the host's MaxWorks bounds Slots", 1,
			[]wire.Run{{Slots: 5, Jobs: []wire.Job{gate(1, "a"), gate(2, "b"), gate(3, "c")}}}, 1, 2},
		{"Slots below MaxWorks", 5,
			[]wire.Run{{Slots: 2, Jobs: []wire.Job{gate(1, "a"), gate(2, "b"), gate(3, "c")}}}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGatedMax(t, 0, tt.maxWorks, "a", "b", "c")
			for i := range tt.runs {
				g.h.Run(&tt.runs[i])
			}
			for range tt.started {
				g.waitStart()
			}
			g.h.mu.Lock()
			held := g.h.heldLocked()
			g.h.mu.Unlock()
			if held != tt.holding {
				t.Errorf("%d jobs held, want %d", held, tt.holding)
			}
			for _, n := range []string{"a", "b", "c"} {
				g.open(n)
			}
			for range tt.started + tt.holding {
				if r := g.result(); r.Items[0].Err != nil {
					t.Errorf("job %d: %+v", r.ID, r.Items[0].Err)
				}
			}
			<-g.h.idleChan()
		})
	}
}

// TestHeldJobsCancelledWhileSlotsStayBusyDoNotPileUp: a held job cancelled
// leaves its queue entry for pop to pass; with every slot busy nothing pops,
// so the entries of a long run of cancelled held jobs must be compacted.
func TestHeldJobsCancelledWhileSlotsStayBusyDoNotPileUp(t *testing.T) {
	g := newGated(t, 1, "a")
	g.run(gate(1, "a"))
	g.waitStart()
	for id := uint64(2); id < 1002; id++ {
		g.run(wire.Job{ID: id, Name: "count", Args: [][]byte{nil}})
		g.h.Cancel(&wire.Cancel{IDs: []uint64{id}})
		if r := g.result(); r.ID != id {
			t.Fatalf("result %d, want the cancelled held job %d", r.ID, id)
		}
	}
	g.h.mu.Lock()
	entries := len(g.h.slots[""].held.jobs)
	g.h.mu.Unlock()
	if entries > 32 {
		t.Errorf("%d queue entries kept for 1,000 cancelled held jobs", entries)
	}
	g.open("a")
	g.result()
	<-g.h.idleChan()
}

// A held job whose ctx only the host can end has no watch on it (a watch
// per held job was 8 % of a worker's CPU): a propagator that adds values
// only, the common case, does not make one.
func TestHeldJobWatchedOnlyIfItsCtxCanEndAlone(t *testing.T) {
	type key struct{}
	tests := []struct {
		name    string
		job     wire.Job
		extract func(ctx context.Context, _ map[string]string) context.Context
		watched bool
	}{
		{"no deadline", wire.Job{ID: 2, Name: "count", Args: [][]byte{nil}}, nil, false},
		{"a deadline", wire.Job{ID: 2, Name: "count", Timeout: time.Hour, Args: [][]byte{nil}}, nil, true},
		{"a propagator's values", wire.Job{ID: 2, Name: "count", Header: map[string]string{"k": "v"}, Args: [][]byte{nil}},
			func(ctx context.Context, _ map[string]string) context.Context {
				return context.WithValue(ctx, key{}, 1)
			}, false},
		{"a propagator's cancel", wire.Job{ID: 2, Name: "count", Header: map[string]string{"k": "v"}, Args: [][]byte{nil}},
			func(ctx context.Context, _ map[string]string) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				t.Cleanup(cancel)
				return ctx
			}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGatedWith(t, 1, 0, func(c *Config) { c.Extract = tt.extract }, "a")
			g.run(gate(1, "a"), tt.job)
			g.waitStart()
			g.h.mu.Lock()
			j := g.h.jobs[2]
			held, watched := j != nil && j.held, j != nil && j.unwatch != nil
			g.h.mu.Unlock()
			if !held {
				t.Fatal("job 2 is not held")
			}
			if watched != tt.watched {
				t.Errorf("held job watched: %v, want %v", watched, tt.watched)
			}
			g.open("a")
			g.result()
			g.result()
		})
	}
}

// deadlineLeft is a work that returns how long its ctx's deadline left it
// as it started, in milliseconds ("none" without one).
func deadlineLeft(ctx context.Context, _ []byte) ([]byte, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return []byte("none"), nil
	}
	return []byte(time.Until(d).Round(time.Millisecond).String()), nil
}

// newAhead is a gated host whose Started ids go to the returned channel,
// with the work "left" (deadlineLeft) registered.
func newAhead(t *testing.T, slots int, names ...string) (*gated, chan uint64) {
	started := make(chan uint64, 64)
	g := newGatedWith(t, slots, 0, func(c *Config) {
		c.Registry.(registry)["left"] = deadlineLeft
		c.Started = func(_ string, id uint64) { started <- id }
	}, names...)
	return g, started
}

func TestAheadJobsReportTheirStart(t *testing.T) {
	g, started := newAhead(t, 1, "a", "b", "c")
	ahead := func(j wire.Job) wire.Job { j.Ahead = true; return j }
	// a is not ahead (no report); b is ahead and starts at once on a host
	// whose slot freed before it arrived; c is ahead and held.
	g.run(gate(1, "a"))
	g.waitStart()
	g.open("a")
	if r := g.result(); r.ID != 1 {
		t.Fatalf("result %d, want 1", r.ID)
	}
	g.run(ahead(gate(2, "b")), ahead(gate(3, "c")), ahead(gate(4, "never")))
	if id := next(t, started, "b's start not reported"); id != 2 {
		t.Fatalf("Started %d first, want 2 (b, started on arrival)", id)
	}
	g.waitStart()
	g.h.Cancel(&wire.Cancel{IDs: []uint64{4}}) // held, answered without running
	if r := g.result(); r.ID != 4 {
		t.Fatalf("result %d, want 4 (cancelled while held)", r.ID)
	}
	select {
	case id := <-started:
		t.Fatalf("Started %d while c is held and the cancelled job never ran", id)
	default:
	}
	g.open("b")
	if r := g.result(); r.ID != 2 {
		t.Fatalf("result %d, want 2", r.ID)
	}
	if id := next(t, started, "c's start not reported"); id != 3 {
		t.Fatalf("Started %d, want 3 (c, once b's slot freed)", id)
	}
	g.waitStart()
	g.open("c")
	g.result()
	select {
	case id := <-started:
		t.Fatalf("Started %d more than once per ahead job", id)
	default:
	}
}

func TestAheadJobLimitCountsFromItsStart(t *testing.T) {
	const limit = 400 * time.Millisecond
	g, _ := newAhead(t, 1, "a")
	g.run(gate(1, "a"))
	g.waitStart()
	arrived := time.Now()
	g.run(wire.Job{ID: 2, Name: "left", Limit: limit, Ahead: true, Args: [][]byte{nil}})
	// Held past its Limit, it must not have ended: the Limit has not begun.
	for time.Since(arrived) < limit+100*time.Millisecond {
		select {
		case r := <-g.results:
			t.Fatalf("held job answered before it started: %+v", r)
		case <-time.After(10 * time.Millisecond):
		}
	}
	g.open("a")
	g.result()
	r := g.result()
	if r.ID != 2 || r.Items[0].Err != nil {
		t.Fatalf("result %+v, want job 2's", r)
	}
	left, err := time.ParseDuration(string(r.Items[0].Value))
	if err != nil || left <= 0 || left > limit {
		t.Fatalf("the held job started with %q left, want (0, %v]", r.Items[0].Value, limit)
	}
}

func TestJobLimitAndTimeout(t *testing.T) {
	cases := []struct {
		name           string
		timeout, limit time.Duration
		want           time.Duration // the deadline left at the start; 0: none
	}{
		{"neither", 0, 0, 0},
		{"timeout only", time.Minute, 0, time.Minute},
		{"limit only", 0, time.Minute, time.Minute},
		{"limit first", time.Hour, time.Minute, time.Minute},
		{"timeout first", time.Minute, time.Hour, time.Minute},
	}
	for _, tc := range cases {
		for _, ahead := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ahead=%v", tc.name, ahead), func(t *testing.T) {
				g, _ := newAhead(t, 1)
				g.run(wire.Job{ID: 1, Name: "left", Timeout: tc.timeout, Limit: tc.limit, Ahead: ahead, Args: [][]byte{nil}})
				r := g.result()
				got := string(r.Items[0].Value)
				if tc.want == 0 {
					if got != "none" {
						t.Fatalf("deadline left %s, want none", got)
					}
					return
				}
				left, err := time.ParseDuration(got)
				if err != nil || left > tc.want || left < tc.want-time.Second {
					t.Fatalf("deadline left %q, want about %v", got, tc.want)
				}
			})
		}
	}
}
