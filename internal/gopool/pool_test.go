package gopool

import (
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// task records the goroutine that ran it, then signals.
type task struct {
	gid  int
	next *task // run on the same goroutine right after
	done chan struct{}
	hold chan struct{} // if set, the task waits for it
}

func newTask() *task { return &task{done: make(chan struct{})} }

func (t *task) Run() Task {
	if t.hold != nil {
		<-t.hold
	}
	t.gid = testutil.GoroutineID()
	close(t.done)
	if t.next == nil {
		return nil // not a nil *task in a non-nil Task
	}
	return t.next
}

// pool wraps a Pool for the tests: s.p is the pool, s.Go and s.Close its
// methods.
type pool struct{ p *Pool }

func (s pool) Go(t *task) { s.p.Go(t) }
func (s pool) Close()     { s.p.Close() }

func newPool(idle time.Duration) pool { return pool{New(idle)} }

// waitParked waits until goroutine id, p's one goroutine, is parked:
// blocked in the hand-off, where the next Go finds it. Parked counts a
// goroutine from just before it blocks, so a Go as soon as it reads 1
// could miss the goroutine and start another (TestGoReusesAParkedGoroutine
// failed so under -race -cpu 1).
func waitParked(t *testing.T, p *Pool, id int) {
	t.Helper()
	testutil.WaitFor(t, "the goroutine parked", func() bool {
		return p.Parked() == 1 && testutil.IsBlockedIn(id, parkFn)
	})
}

// parkFn is the function a parked goroutine waits in.
const parkFn = "internal/gopool.(*Pool).park"

func TestGoReusesAParkedGoroutine(t *testing.T) {
	s := newPool(time.Hour)
	defer s.Close()
	first := newTask()
	s.Go(first)
	<-first.done
	waitParked(t, s.p, first.gid)
	second := newTask()
	s.Go(second)
	<-second.done
	if second.gid != first.gid {
		t.Fatalf("the second task ran on goroutine %d, not on the parked %d", second.gid, first.gid)
	}
}

func TestRunChainsTheNextTaskOnTheSameGoroutine(t *testing.T) {
	s := newPool(time.Hour)
	defer s.Close()
	first, second := newTask(), newTask()
	first.next = second
	s.Go(first)
	<-second.done
	if first.gid != second.gid {
		t.Fatalf("the chained task ran on goroutine %d, not %d", second.gid, first.gid)
	}
}

func TestBusyGoroutinesGetCompanyNotAQueue(t *testing.T) {
	s := newPool(time.Hour)
	defer s.Close()
	// A task that blocks holds its goroutine; the next one must not wait
	// behind it.
	blocker := newTask()
	blocker.hold = make(chan struct{})
	s.Go(blocker)
	other := newTask()
	s.Go(other)
	<-other.done
	close(blocker.hold)
	<-blocker.done
	if other.gid == blocker.gid {
		t.Fatal("two tasks at once ran on one goroutine")
	}
}

// runAtOnce runs n tasks on s, all running at once (each waits until the
// last has been handed over), so the pool has n goroutines, and returns
// once they have all run.
func runAtOnce(s pool, n int) {
	hold := make(chan struct{})
	tasks := make([]*task, n)
	for i := range tasks {
		tasks[i] = newTask()
		tasks[i].hold = hold
		s.Go(tasks[i])
	}
	close(hold)
	for _, tk := range tasks {
		<-tk.done
	}
}

func TestSpareGoroutinesRetireAfterIdle(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newPool(5 * time.Millisecond)
	defer s.Close()
	runAtOnce(s, 8)
	testutil.WaitFor(t, "every goroutine retired", func() bool { return s.p.Parked() == 0 && goleak.Find(before) == nil })
	// The pool still serves.
	again := newTask()
	s.Go(again)
	<-again.done
}

func TestCloseRetiresParkedGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := newPool(time.Hour)
	tk := newTask()
	s.Go(tk)
	<-tk.done
	waitParked(t, s.p, tk.gid)
	s.Close()
	if err := goleak.Find(before); err != nil {
		t.Fatal(err)
	}
}

func TestGoAfterCloseRunsTheTask(t *testing.T) {
	s := newPool(time.Hour)
	s.Close()
	tk := newTask()
	s.Go(tk)
	<-tk.done
}

// TestGoRacingCloseRunsEveryTask checks that Go may race Close: every task
// runs, nothing panics (the hand-off is never closed) and no goroutine is
// left.
func TestGoRacingCloseRunsEveryTask(t *testing.T) {
	before := goleak.IgnoreCurrent()
	for range 50 {
		p := New(time.Hour)
		var wg sync.WaitGroup
		tasks := make([]*task, 8)
		for i := range tasks {
			tasks[i] = newTask()
			wg.Go(func() { p.Go(tasks[i]) })
		}
		wg.Go(p.Close)
		wg.Wait()
		for _, tk := range tasks {
			<-tk.done
		}
		p.Close()
	}
	testutil.WaitFor(t, "every goroutine ended", func() bool { return goleak.Find(before) == nil })
}

// TestOnStartCountsTheTasksNotStartedYet: with OnStart, Waking counts the
// tasks Go handed over until their goroutine takes them, and the hook runs
// on that goroutine once the count is lowered, before the task.
func TestOnStartCountsTheTasksNotStartedYet(t *testing.T) {
	var s pool
	var mu sync.Mutex
	var seen []int
	s.p = New(time.Hour)
	s.p.OnStart(func() {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, s.p.Waking())
	})
	defer s.Close()
	hold := make(chan struct{})
	first := newTask()
	first.hold = hold
	s.Go(first)
	testutil.WaitFor(t, "the first task to start", func() bool { return s.p.Waking() == 0 })
	second := newTask()
	s.Go(second) // a new goroutine: the first holds its own
	<-second.done
	close(hold)
	<-first.done
	testutil.WaitFor(t, "both goroutines to park", func() bool {
		return s.p.Parked() == 2 && testutil.IsBlockedIn(first.gid, parkFn) && testutil.IsBlockedIn(second.gid, parkFn)
	})
	third := newTask()
	s.Go(third) // a parked goroutine
	<-third.done
	if third.gid != first.gid && third.gid != second.gid {
		t.Errorf("the third task ran on goroutine %d, not on a parked one (%d, %d)", third.gid, first.gid, second.gid)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("the hook ran %d times for 3 tasks handed over", len(seen))
	}
	for i, n := range seen {
		if n != 0 {
			t.Errorf("task %d: the hook saw %d tasks being woken; want 0 (its own counted off)", i+1, n)
		}
	}
}

// TestGoroutinesBusySinceTheLastTickAreNotRetired: the reaper retires the
// goroutines that stayed parked from one tick to the next, not as many as
// were parked at both ticks. Counting alone, it retired goroutines that
// had run tasks in between: a pool cycling through bursts (a fan-out's
// batches, all parked between two) lost some at every tick and started as
// many again, about 24 goroutines a batch of 10,000 works in the bench
// module's fan-out. The hand-off wakes the longest parked goroutine
// first, so the tasks taken since the last tick tell how many of the
// goroutines parked then were used.
func TestGoroutinesBusySinceTheLastTickAreNotRetired(t *testing.T) {
	const n = 8
	for _, tc := range []struct{ used, retired int }{{n, 0}, {3, n - 3}, {0, n}} {
		s := newPool(time.Hour) // ticks by hand
		runAtOnce(s, n)
		testutil.WaitFor(t, "every goroutine parked", func() bool { return testutil.BlockedIn(parkFn) == n })
		s.p.tick() // the first tick: every parked goroutine counts as spare from now
		used := map[int]bool{}
		for range tc.used {
			tk := newTask()
			s.Go(tk)
			<-tk.done
			used[tk.gid] = true
		}
		testutil.WaitFor(t, "every goroutine parked again", func() bool { return testutil.BlockedIn(parkFn) == n })
		s.p.tick()
		left := n - tc.retired
		testutil.WaitFor(t, "the idle goroutines retired", func() bool {
			return testutil.BlockedIn(parkFn) == left && s.p.Parked() == left
		})
		for range left {
			tk := newTask()
			s.Go(tk)
			<-tk.done
			if tc.used > 0 && !used[tk.gid] {
				t.Errorf("used %d of %d: a task ran on goroutine %d, not one of those used since the last tick", tc.used, n, tk.gid)
			}
		}
		s.Close()
		testutil.WaitFor(t, "the pool's goroutines ended", func() bool { return testutil.BlockedIn(parkFn) == 0 })
	}
}
