package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// Chaos tests with counted outcomes: worker processes are SIGKILLed while
// works run, and every outcome is counted. What must hold: no future hangs,
// no result is wrong, a work fails only with a *WorkerError (and not at all
// when it may be retried more often than there are kills), and the pool is
// back to full size afterwards.

// chaosArg is the argument of pChaos.
type chaosArg struct {
	X   int
	Ms  int    // how long the work runs
	Log string // a file each attempt appends its X to, to count attempts
}

// pChaos runs Ms milliseconds (that is the work itself) and returns 3X+1.
var pChaos = aplex.Register("test.chaos", func(ctx context.Context, a chaosArg) (int, error) {
	if a.Log != "" {
		f, err := os.OpenFile(a.Log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(f, "%d\n", a.X)
		f.Close()
	}
	select {
	case <-time.After(time.Duration(a.Ms) * time.Millisecond):
		return 3*a.X + 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
})

// isChild reports whether pid is a live child process of this test.
func isChild(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ppid …; comm may hold spaces, so cut at the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 2 && fields[0] != "Z" && fields[1] == strconv.Itoa(os.Getpid())
}

// killer SIGKILLs a random worker of ex every few ms, each process at most
// once, until it has killed max or stop is closed. It returns the count.
func killer(ex *aplex.Executor, max int, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		killed := map[int]bool{}
		n := 0
		defer func() { out <- n }()
		for n < max {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond): // the storm's pace, not a synchronisation
			}
			var pids []int
			for _, w := range ex.Stats().Workers {
				if w.PID != 0 && !killed[w.PID] && isChild(w.PID) {
					pids = append(pids, w.PID)
				}
			}
			if len(pids) == 0 {
				continue // every worker is being replaced
			}
			pid := pids[int(time.Now().UnixNano()/1000)%len(pids)]
			if kill(pid, syscall.SIGKILL) == nil {
				killed[pid] = true
				n++
			}
		}
	}()
	return out
}

// chaosCounts are a chaos run's outcomes.
type chaosCounts struct {
	submitted, succeeded, workerErrs, otherErrs, hung, wrong int
	kills, attempts, startedTwice                            int
}

func (c chaosCounts) String() string {
	return fmt.Sprintf("submitted %d, succeeded %d, failed with *WorkerError %d, other errors %d, hung %d, wrong %d; kills %d, attempts started %d, works started more than once %d",
		c.submitted, c.succeeded, c.workerErrs, c.otherErrs, c.hung, c.wrong, c.kills, c.attempts, c.startedTwice)
}

// countAttempts reads the attempt log.
func (c *chaosCounts) countAttempts(t *testing.T, log string) {
	b, err := os.ReadFile(log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Fields(string(b)) {
		seen[line]++
		c.attempts++
	}
	for _, n := range seen {
		if n > 1 {
			c.startedTwice++
		}
	}
}

// classify counts one outcome.
func (c *chaosCounts) classify(x, v int, err error) {
	var we *aplex.WorkerError
	switch {
	case err == nil && v == 3*x+1:
		c.succeeded++
	case err == nil:
		c.wrong++
	case errors.As(err, &we) && errors.Is(err, aplex.ErrWorkerBroken):
		c.workerErrs++
	default:
		c.otherErrs++
	}
}

const (
	chaosPool  = 4
	chaosCap   = 4
	chaosWorks = 2000
	chaosKills = 20
)

func TestChaosKillStorm(t *testing.T) {
	cases := []struct {
		name     string
		useMap   bool
		retries  int
		prefetch int // WithPrefetch: works held by a worker die with it too
	}{
		{"Submit", false, 0, 0},
		{"Submit with Retry", false, chaosKills, 0},
		{"Map", true, 0, 0},
		{"Map with Retry", true, chaosKills, 0},
		{"Submit with Retry and prefetch", false, chaosKills, chaosCap},
		{"Map with prefetch", true, 0, chaosCap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := newProcess(t, aplex.WithPoolSize(chaosPool), aplex.WithMaxWorksPerWorker(chaosCap), aplex.WithPrefetch(tc.prefetch),
				aplex.WithWorkerOutput(io.Discard))
			log := t.TempDir() + "/attempts"
			// Generous: a hung future fails the test, it does not hang it.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var opts []aplex.CallOption
			if tc.retries > 0 {
				opts = append(opts, aplex.Retry(tc.retries))
			}
			stop := make(chan struct{})
			kills := killer(ex, chaosKills, stop)
			var c chaosCounts
			start := time.Now()
			if tc.useMap {
				c = chaosMap(ctx, ex, log, opts)
			} else {
				c = chaosSubmit(t, ctx, ex, log, opts)
			}
			close(stop)
			c.kills = <-kills
			c.countAttempts(t, log)
			t.Logf("%s in %v", c, time.Since(start).Round(time.Millisecond))

			if c.hung != 0 || c.wrong != 0 || c.otherErrs != 0 {
				t.Errorf("hung %d, wrong %d, errors other than *WorkerError %d", c.hung, c.wrong, c.otherErrs)
			}
			if tc.retries >= c.kills && c.workerErrs != 0 {
				t.Errorf("%d works failed with Retry(%d) and only %d kills", c.workerErrs, tc.retries, c.kills)
			}
			if c.succeeded+c.workerErrs+c.otherErrs+c.hung+c.wrong != c.submitted {
				t.Errorf("outcomes do not add up: %s", c)
			}
			poolRecovers(t, ex)
		})
	}
}

// chaosSubmit submits chaosWorks works and waits for every future.
func chaosSubmit(t *testing.T, ctx context.Context, ex *aplex.Executor, log string, opts []aplex.CallOption) chaosCounts {
	var c chaosCounts
	fs := make([]*aplex.Future[int], 0, chaosWorks)
	for i := range chaosWorks {
		f, err := aplex.Submit(ctx, ex, pChaos, chaosArg{X: i, Ms: 2, Log: log}, opts...)
		if err != nil {
			t.Fatalf("Submit %d: %v", i, err)
		}
		fs = append(fs, f)
	}
	c.submitted = len(fs)
	for i, f := range fs {
		v, err := f.Get(ctx)
		if ctx.Err() != nil {
			c.hung++
			continue
		}
		c.classify(i, v, err)
	}
	return c
}

// chaosMap maps over chaosWorks inputs in chunks of 4, checking order.
// A Map ends at its first error (a killed chunk without Retry): the item
// that failed is counted, and a new Map takes the inputs from the next
// one, so every input ends counted, succeeded or failed.
func chaosMap(ctx context.Context, ex *aplex.Executor, log string, opts []aplex.CallOption) chaosCounts {
	var c chaosCounts
	c.submitted = chaosWorks
	for next := 0; next < chaosWorks; {
		inputs := func(yield func(chaosArg) bool) {
			for i := next; i < chaosWorks; i++ {
				if !yield(chaosArg{X: i, Ms: 2, Log: log}) {
					return
				}
			}
		}
		i := next
		for v, err := range aplex.Map(ctx, ex, pChaos, inputs, append(opts, aplex.ChunkSize(4))...) {
			if ctx.Err() != nil {
				c.hung += chaosWorks - i
				return c
			}
			c.classify(i, v, err)
			i++
			if err != nil {
				break // Map yields its first error last
			}
		}
		if i == next {
			c.otherErrs++ // a Map that yields nothing would loop forever
			return c
		}
		next = i
	}
	return c
}

// poolRecovers waits until the pool is back to full size with live
// processes and checks that each of them serves a work.
func poolRecovers(t *testing.T, ex *aplex.Executor) {
	t.Helper()
	var pids []int
	waitFor(t, "the pool back to full size", func() bool {
		st := ex.Stats()
		pids = pids[:0]
		for _, w := range st.Workers {
			if w.PID != 0 && w.Workload == 0 && isChild(w.PID) {
				pids = append(pids, w.PID)
			}
		}
		return len(pids) == chaosPool && st.Running == 0 && st.Queued == 0 && st.Prefetched == 0
	})
	// Round robin over an idle pool: 4 works per worker reach every one.
	seen := map[int]bool{}
	var fs []*aplex.Future[int]
	for i := range 4 * chaosPool {
		fs = append(fs, mustSubmit(t, ex, pPid, i))
	}
	for _, f := range fs {
		seen[mustGet(t, f)] = true
	}
	for _, pid := range pids {
		if !seen[pid] {
			t.Errorf("worker pid %d served none of %d works (served: %v; pool %v)", pid, len(fs), seen, pids)
		}
	}
	t.Logf("pool afterwards: %d live workers %v, each served a work", len(pids), pids)
}

// TestChaosKillsDuringShutdown kills workers while a graceful Shutdown
// drains queued and running works (item 2): every worker at once, or a
// storm of kills that also hits the replacements. Shutdown must return,
// and every future must end, with its result or a *WorkerError.
func TestChaosKillsDuringShutdown(t *testing.T) {
	for _, tc := range []struct {
		name      string
		storm     bool
		works, ms int
	}{
		{"every worker once", false, 40, 200},
		{"storm", true, 200, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2), aplex.WithWorkerOutput(io.Discard))
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			ctx := ctxT(t)
			var fs []*aplex.Future[int]
			for i := range tc.works { // 4 run, the rest queue
				fs = append(fs, mustSubmit(t, ex, pChaos, chaosArg{X: i, Ms: tc.ms}))
			}
			var pids []int
			for _, w := range ex.Stats().Workers {
				pids = append(pids, w.PID)
			}
			shut := make(chan error, 1)
			go func() { shut <- ex.Shutdown(context.Background()) }()
			// Handshake: the Shutdown has begun once Submit is refused. An
			// extra work that gets in before that is one more future to count.
			waitFor(t, "Shutdown to begin", func() bool {
				f, err := aplex.TrySubmit(ctx, ex, pChaos, chaosArg{X: len(fs), Ms: 1})
				if err == nil {
					fs = append(fs, f)
				}
				return errors.Is(err, aplex.ErrClosed)
			})
			var c chaosCounts
			stop := make(chan struct{})
			var kills <-chan int
			if tc.storm {
				kills = killer(ex, chaosKills, stop)
			} else {
				for _, pid := range pids {
					if kill(pid, syscall.SIGKILL) == nil {
						c.kills++
					}
				}
			}
			select {
			case err := <-shut:
				t.Logf("Shutdown returned %v", err)
			case <-time.After(15 * time.Second):
				t.Errorf("Shutdown(context.Background()) has not returned 15s after the kills began (item 2)")
				ex.Close()
				<-shut
			}
			close(stop)
			if kills != nil {
				c.kills = <-kills
			}
			c.submitted = len(fs)
			for i, f := range fs {
				select {
				case <-f.Done():
					v, err := f.Get(ctx)
					c.classify(i, v, err)
				default:
					c.hung++
				}
			}
			t.Logf("%s", c)
			if c.hung != 0 || c.wrong != 0 || c.otherErrs != 0 {
				t.Errorf("after Shutdown: %d futures pending, %d wrong, %d errors other than *WorkerError", c.hung, c.wrong, c.otherErrs)
			}
			for _, w := range ex.Stats().Workers {
				if w.PID != 0 && isChild(w.PID) {
					t.Errorf("worker %d still runs after Shutdown", w.PID)
				}
			}
			for _, pid := range pids {
				if isChild(pid) {
					t.Errorf("killed worker %d still runs", pid)
				}
			}
		})
	}
}

// TestChaosOutcomesAreCounted is a guard for the counters themselves: a
// run without faults succeeds entirely.
func TestChaosOutcomesAreCounted(t *testing.T) {
	ex := newProcess(t, aplex.WithPoolSize(2), aplex.WithWorkerOutput(io.Discard))
	log := t.TempDir() + "/attempts"
	var wg sync.WaitGroup
	var c chaosCounts
	var mu sync.Mutex
	for i := range 50 {
		f := mustSubmit(t, ex, pChaos, chaosArg{X: i, Log: log})
		wg.Go(func() {
			v, err := f.Get(ctxT(t))
			mu.Lock()
			c.classify(i, v, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	c.submitted = 50
	c.countAttempts(t, log)
	if c.succeeded != 50 || c.attempts != 50 || c.startedTwice != 0 {
		t.Fatalf("%s", c)
	}
}
