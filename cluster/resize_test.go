package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/obstest"
)

// holdArg names a rzHold work: Dir holds its marker files, Key is its own.
type holdArg struct {
	Dir string
	Key string
}

// rzHold says it started (creating Dir/started-Key), holds its worker
// until Dir/release exists, and returns its process's pid.
var rzHold = aplex.Register("cluster.resize-hold", func(ctx context.Context, a holdArg) (int, error) {
	if err := os.WriteFile(filepath.Join(a.Dir, "started-"+a.Key), nil, 0o600); err != nil {
		return 0, err
	}
	for {
		if _, err := os.Stat(filepath.Join(a.Dir, "release")); err == nil {
			return os.Getpid(), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
})

// submitHolds submits n rzHold works.
func submitHolds(t *testing.T, ex *aplex.Executor, dir string, n int) []*aplex.Future[int] {
	t.Helper()
	var fs []*aplex.Future[int]
	for i := range n {
		fs = append(fs, submit(t, ex, rzHold, holdArg{Dir: dir, Key: itoa(i)}))
	}
	return fs
}

// holdsStarted returns a condition for waitFor: n rzHold works started.
func holdsStarted(t *testing.T, dir string, n int) func() bool {
	return func() bool {
		m, err := filepath.Glob(filepath.Join(dir, "started-*"))
		if err != nil {
			t.Fatal(err)
		}
		return len(m) == n
	}
}

func releaseHolds(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// resizeCtx bounds a test's Resize calls.
func resizeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// slotIDs returns the slots in s.
func slotIDs(s aplex.Stats) []int {
	var ids []int
	for _, w := range s.Workers {
		ids = append(ids, w.ID)
	}
	return ids
}

// TestClusterResizeGrowsAndShrinksLocalWorkersUnderLoad: Resize starts
// local worker processes that take queued works at once, and retires the
// highest local ones, which finish the works they hold, exit and leave
// Stats before Resize returns; no work fails and the capacity in force is
// never exceeded.
func TestClusterResizeGrowsAndShrinksLocalWorkersUnderLoad(t *testing.T) {
	ctx := resizeCtx(t)
	dir := t.TempDir()
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithMaxWorksPerWorker(1),
		aplex.WithWorkerOutput(newTestLog(t)))
	fs := submitHolds(t, ex, dir, 6)
	waitFor(t, 10*time.Second, "1 work running", holdsStarted(t, dir, 1))

	if err := ex.Resize(ctx, 3); err != nil {
		t.Fatalf("Resize(3): %v", err)
	}
	waitFor(t, 10*time.Second, "the new local workers to take queued works", holdsStarted(t, dir, 3))
	s := ex.Stats()
	if s.Size != 3 || !slices.Equal(slotIDs(s), []int{0, 1, 2}) || s.Running != 3 || s.Queued != 3 {
		t.Fatalf("after Resize(3): Size %d, slots %v, %d running, %d queued; want 3, [0 1 2], 3, 3",
			s.Size, slotIDs(s), s.Running, s.Queued)
	}
	exid, _ := strings.CutSuffix(s.Workers[0].Name, "-0")
	var retired []int
	for _, w := range s.Workers[1:] {
		if w.Name != exid+"-"+itoa(w.ID) || w.PID == 0 {
			t.Errorf("new local worker in slot %d: name %q, pid %d; want %q", w.ID, w.Name, w.PID, exid+"-"+itoa(w.ID))
		}
		retired = append(retired, w.PID)
	}

	shrunk := make(chan error, 1)
	go func() { shrunk <- ex.Resize(ctx, 1) }()
	waitFor(t, 10*time.Second, "the shrink to take effect", func() bool { return ex.Stats().Size == 1 })
	if s := ex.Stats(); s.Running > 3 {
		t.Fatalf("%d works running on 3 workers of capacity 1", s.Running)
	}
	select {
	case err := <-shrunk:
		t.Fatalf("Resize(1) returned (%v) while the retired local workers held works", err)
	default:
	}
	releaseHolds(t, dir)
	if err := <-shrunk; err != nil {
		t.Fatalf("Resize(1): %v", err)
	}
	ranOn := map[int]int{}
	for _, f := range fs {
		pid, err := get(t, f)
		if err != nil {
			t.Fatalf("a work failed: %v", err)
		}
		ranOn[pid]++
	}
	for _, pid := range retired {
		if ranOn[pid] != 1 {
			t.Errorf("retired local worker %d finished %d works, want the 1 it held", pid, ranOn[pid])
		}
		if !processGone(pid) {
			t.Errorf("retired local worker process %d still runs after Resize returned", pid)
		}
	}
	s = ex.Stats()
	if s.Size != 1 || !slices.Equal(slotIDs(s), []int{0}) || s.Completed != 6 || s.Failed != 0 {
		t.Fatalf("after Resize(1): Size %d, slots %v, completed %d, failed %d; want 1, [0], 6, 0",
			s.Size, slotIDs(s), s.Completed, s.Failed)
	}
}

// TestClusterShrinkWithRunInFlight: a local worker retired right after a
// work was dispatched to it, its Run maybe still on the way, runs that
// work before it leaves. (Told to leave at once, a local worker, which has
// no accept window, could say Bye before the Run arrived, failing the
// work.)
func TestClusterShrinkWithRunInFlight(t *testing.T) {
	ctx := resizeCtx(t)
	ex := newExecutor(t, cluster.SpawnLocalWorkers(2), aplex.WithMaxWorksPerWorker(1),
		aplex.WithWorkerOutput(newTestLog(t)))
	for round := range 3 {
		if round > 0 {
			if err := ex.Resize(ctx, 2); err != nil {
				t.Fatalf("round %d: Resize(2): %v", round, err)
			}
		}
		fs := []*aplex.Future[string]{
			submit(t, ex, whoami, 20*time.Millisecond),
			submit(t, ex, whoami, 20*time.Millisecond),
		}
		if err := ex.Resize(ctx, 1); err != nil {
			t.Fatalf("round %d: Resize(1): %v", round, err)
		}
		for _, f := range fs {
			if _, err := get(t, f); err != nil {
				t.Fatalf("round %d: a work dispatched before the shrink failed: %v", round, err)
			}
		}
	}
}

// TestClusterResizeWithoutLocalWorkers: an executor started without local
// workers gets them from Resize, with their LocalWorkerLabels, and can
// give them all up (n = 0) and take a slot back.
func TestClusterResizeWithoutLocalWorkers(t *testing.T) {
	ctx := resizeCtx(t)
	ex := newExecutor(t, cluster.SpawnLocalWorkers(0), aplex.WithWorkerOutput(newTestLog(t)),
		cluster.LocalWorkerLabels(func(i int) map[string]string { return map[string]string{"slot": itoa(i)} }))
	if s := ex.Stats(); s.Size != 0 || len(s.Workers) != 0 {
		t.Fatalf("started with Size %d, %d workers; want none", s.Size, len(s.Workers))
	}
	f := submit(t, ex, square, 3)
	if err := ex.Resize(ctx, 2); err != nil {
		t.Fatalf("Resize(2): %v", err)
	}
	if v, err := get(t, f); err != nil || v != 9 {
		t.Fatalf("square(3) = %d, %v", v, err)
	}
	s := ex.Stats()
	if s.Size != 2 || !slices.Equal(slotIDs(s), []int{0, 1}) {
		t.Fatalf("after Resize(2): Size %d, slots %v", s.Size, slotIDs(s))
	}
	var pids []int
	for _, w := range s.Workers {
		if w.Labels["slot"] != itoa(w.ID) {
			t.Errorf("local worker %d has labels %v, want its LocalWorkerLabels", w.ID, w.Labels)
		}
		pids = append(pids, w.PID)
	}
	if err := ex.Resize(ctx, 0); err != nil {
		t.Fatalf("Resize(0): %v", err)
	}
	if s := ex.Stats(); s.Size != 0 || len(s.Workers) != 0 || s.Completed != 1 {
		t.Fatalf("after Resize(0): Size %d, workers %+v, completed %d", s.Size, s.Workers, s.Completed)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("local worker process %d still runs after Resize(0) returned", pid)
		}
	}
	// Slot 0 again: a new worker with the same id.
	f = submit(t, ex, square, 4)
	if err := ex.Resize(ctx, 1); err != nil {
		t.Fatalf("Resize(1) after Resize(0): %v", err)
	}
	if v, err := get(t, f); err != nil || v != 16 {
		t.Fatalf("square(4) = %d, %v", v, err)
	}
	if s := ex.Stats(); s.Size != 1 || !slices.Equal(slotIDs(s), []int{0}) || slices.Contains(pids, s.Workers[0].PID) {
		t.Fatalf("after Resize(1): Size %d, workers %+v; want a new process in slot 0", s.Size, s.Workers)
	}
}

// TestClusterMapWindowWithoutLocalWorkers: Map's default window of a
// cluster executor without local workers counts on WithPoolSize's default
// (runtime.NumCPU()) workers, not on its zero local ones, which would let
// a single chunk wait for the remote workers to come.
func TestClusterMapWindowWithoutLocalWorkers(t *testing.T) {
	ex := newExecutor(t, aplex.WithMaxWorksPerWorker(10))
	inputs := make([]int, 10)
	for i := range inputs {
		inputs[i] = i
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for _, e := range aplex.Map(context.Background(), ex, square, slices.Values(inputs), aplex.ChunkSize(1)) {
			if e != nil && err == nil {
				err = e
			}
		}
		done <- err
	}()
	waitFor(t, 10*time.Second, "the Map to queue every chunk", func() bool { return ex.Stats().Queued == len(inputs) })
	if err := ex.Resize(resizeCtx(t), 1); err != nil {
		t.Fatalf("Resize(1): %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Map: %v", err)
	}
}

// TestClusterResizeLeavesRemoteWorkersAlone: Resize counts, adds and
// removes local workers only; a worker started with the environment role
// and one running Serve in this process keep their slots, serve on, and
// count in Stats.Size beside the local ones.
func TestClusterResizeLeavesRemoteWorkersAlone(t *testing.T) {
	ctx := resizeCtx(t)
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	remote := spawnWorker(t, url, "rz", "remote-env")
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- cluster.Serve(serveCtx, cluster.ServeURL(url), cluster.ServePool("rz"),
			cluster.ServeWorkerID("remote-serve"), cluster.ServeHeartbeat(testHeartbeat))
	}()
	t.Cleanup(func() { // after the executor's Shutdown (cleanups run last first)
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("rz"), aplex.WithPoolSize(3),
		cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	remotes := func(s aplex.Stats) map[string]int {
		m := map[string]int{}
		for _, w := range s.Workers {
			if strings.HasPrefix(w.Name, "remote-") {
				m[w.Name] = w.ID
			}
		}
		return m
	}
	s := ex.Stats()
	before := remotes(s)
	if s.Size != 3 || len(before) != 2 {
		t.Fatalf("started with Size %d, remote workers %v; want 1 local + 2 remote", s.Size, before)
	}
	if err := ex.Resize(ctx, 2); err != nil {
		t.Fatalf("Resize(2): %v", err)
	}
	if s := ex.Stats(); s.Size != 4 || len(s.Workers) != 4 {
		t.Fatalf("after Resize(2): Size %d, %d workers; want 2 local + 2 remote", s.Size, len(s.Workers))
	}
	if err := ex.Resize(ctx, 0); err != nil {
		t.Fatalf("Resize(0): %v", err)
	}
	s = ex.Stats()
	if after := remotes(s); s.Size != 2 || len(s.Workers) != 2 || len(after) != 2 ||
		after["remote-env"] != before["remote-env"] || after["remote-serve"] != before["remote-serve"] {
		t.Fatalf("after Resize(0): Size %d, workers %+v; want the 2 remote ones only, in their slots %v", s.Size, s.Workers, before)
	}
	if remote.exited(0) {
		t.Fatal("Resize stopped a remote worker process")
	}
	select {
	case err := <-served:
		t.Fatalf("Resize stopped Serve: %v", err)
	default:
	}
	ran := map[string]bool{}
	for range 10 {
		who, err := get(t, submit(t, ex, whoami, 10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ran[worker(who)] = true
	}
	if len(ran) != 2 || !ran["remote-env"] || !ran["remote-serve"] {
		t.Errorf("with no local workers, works ran on %v; want both remote workers", ran)
	}
	// Growing again takes the lowest slot no worker holds: local 0's.
	if err := ex.Resize(ctx, 1); err != nil {
		t.Fatalf("Resize(1): %v", err)
	}
	if s := ex.Stats(); s.Size != 3 || !slices.Contains(slotIDs(s), 0) {
		t.Fatalf("after Resize(1): Size %d, slots %v; want a local worker in slot 0 beside the remote ones", s.Size, slotIDs(s))
	}
}

// TestClusterResizeRacingShutdown: Resize calls racing each other and a
// graceful Shutdown (which begins once the first of them returned, while
// the others grow or shrink the pool) each return nil or ErrClosed; every
// work submitted before completes, and Shutdown leaves no local worker
// process behind.
func TestClusterResizeRacingShutdown(t *testing.T) {
	ctx := resizeCtx(t)
	ex, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(2), aplex.WithMaxWorksPerWorker(1),
		aplex.WithWorkerOutput(newTestLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*aplex.Future[string]
	for range 6 {
		fs = append(fs, submit(t, ex, whoami, 100*time.Millisecond))
	}
	var mu sync.Mutex
	pids := map[int]bool{}
	record := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range ex.Stats().Workers {
			if w.PID != 0 {
				pids[w.PID] = true
			}
		}
	}
	record()
	first := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for n := range 6 {
		wg.Go(func() {
			err := ex.Resize(ctx, 1+n%3)
			record()
			first <- struct{}{}
			if err != nil && !errors.Is(err, aplex.ErrClosed) {
				t.Errorf("Resize(%d): %v", 1+n%3, err)
			}
		})
	}
	<-first
	if err := ex.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	for _, f := range fs {
		if _, err := get(t, f); err != nil {
			t.Errorf("a work submitted before Shutdown failed: %v", err)
		}
	}
	for pid := range pids {
		if !processGone(pid) {
			t.Errorf("local worker process %d still runs after Shutdown", pid)
		}
	}
	if err := ex.Resize(ctx, 2); !errors.Is(err, aplex.ErrClosed) {
		t.Errorf("Resize after Shutdown = %v, want ErrClosed", err)
	}
}

// TestClusterResizeGrowTimesOut: a grow whose ctx ends before the new
// local worker joined returns ctx's error and takes the slot back (its
// process is told to leave, and is not used should it announce itself);
// the next grow takes the same slot once that process has gone.
func TestClusterResizeGrowTimesOut(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ex.Resize(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resize(2) with a 20ms ctx = %v, want DeadlineExceeded", err)
	}
	if s := ex.Stats(); s.Size != 1 || !slices.Equal(slotIDs(s), []int{0}) {
		t.Fatalf("after a timed-out grow: Size %d, slots %v; want 1, [0]", s.Size, slotIDs(s))
	}
	if err := ex.Resize(resizeCtx(t), 2); err != nil {
		t.Fatalf("Resize(2): %v", err)
	}
	s := ex.Stats()
	if s.Size != 2 || !slices.Equal(slotIDs(s), []int{0, 1}) {
		t.Fatalf("after Resize(2): Size %d, slots %v; want 2, [0 1]", s.Size, slotIDs(s))
	}
	for range 4 {
		if v, err := get(t, submit(t, ex, square, 6)); err != nil || v != 36 {
			t.Fatalf("square(6) = %d, %v", v, err)
		}
	}
}

// TestClusterResizeBadInput: a negative size, a nil ctx and local worker
// labels that cannot be encoded are refused clearly, and a refused grow
// leaves the pool as it was.
func TestClusterResizeBadInput(t *testing.T) {
	ctx := resizeCtx(t)
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)),
		cluster.LocalWorkerLabels(func(i int) map[string]string {
			if i == 1 {
				return map[string]string{"bad,key": "x"}
			}
			return nil
		}))
	if err := ex.Resize(ctx, -1); err == nil || !strings.Contains(err.Error(), "Resize(-1)") {
		t.Errorf("Resize(-1) = %v, want it refused", err)
	}
	//lint:ignore SA1012 a nil ctx is the bad input under test
	if err := ex.Resize(nil, 2); err == nil {
		t.Error("Resize(nil ctx): no error")
	}
	err := ex.Resize(ctx, 2)
	if err == nil || !strings.Contains(err.Error(), "LocalWorkerLabels for worker 1") {
		t.Fatalf("Resize(2) with bad labels for worker 1 = %v, want the labels refused", err)
	}
	if s := ex.Stats(); s.Size != 1 || !slices.Equal(slotIDs(s), []int{0}) {
		t.Fatalf("after a refused grow: Size %d, slots %v; want 1, [0]", s.Size, slotIDs(s))
	}
	if v, err := get(t, submit(t, ex, square, 5)); err != nil || v != 25 {
		t.Fatalf("square(5) after a refused grow = %d, %v", v, err)
	}
}

// TestShutdownLetsALeavingLocalWorkerFinishItsWorks: a local worker that
// Resize told to leave (SIGTERM) was signalled again by its executor's
// Shutdown, and a second signal makes a worker exit at once: the works it
// was finishing for another executor of the pool failed with a
// *WorkerError ("worker left without answering 1 works"). Shutdown now
// signals only the workers not told yet, and the leaving one finishes
// them.
func TestShutdownLetsALeavingLocalWorkerFinishItsWorks(t *testing.T) {
	ctx := resizeCtx(t)
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	a, err := cluster.NewExecutor(cluster.WithURL(url), cluster.WithPool("twice"), cluster.SpawnLocalWorkers(2),
		aplex.WithWorkerOutput(newTestLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	rec := &obstest.Recorder{}
	b := newExecutor(t, cluster.WithURL(url), cluster.WithPool("twice"), aplex.WithPoolSize(2), aplex.WithObserver(rec))
	// Round robin: one of b's works runs on each of a's local workers.
	dir := t.TempDir()
	fs := submitHolds(t, b, dir, 2)
	waitFor(t, 10*time.Second, "b's works to run on a's workers", holdsStarted(t, dir, 2))
	resized := make(chan error, 1)
	go func() { resized <- a.Resize(ctx, 1) }() // worker 1 is idle for a: told to leave at once
	// b hears of a leaving worker from its draining heartbeat.
	leaving := func(suffix string) func(*obstest.Recorder) bool {
		return func(r *obstest.Recorder) bool {
			for _, e := range r.Workers(aplex.WorkerRecycled) {
				if strings.HasSuffix(e.Worker, suffix) {
					return true
				}
			}
			return false
		}
	}
	if !rec.Await(ctx, leaving("-1")) {
		t.Fatal("b never heard that a's worker 1 leaves")
	}
	shut := make(chan error, 1)
	go func() { shut <- a.Shutdown(ctx) }() // signals its workers: worker 1 again, before the fix
	if !rec.Await(ctx, leaving("-0")) {
		t.Fatal("b never heard that a's worker 0 leaves")
	}
	releaseHolds(t, dir)
	for i, f := range fs {
		if _, err := get(t, f); err != nil {
			t.Errorf("b's work %d, on a leaving worker of a: %v", i, err)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("a's Shutdown: %v", err)
	}
	if err := <-resized; err != nil && !errors.Is(err, aplex.ErrClosed) {
		t.Errorf("a's Resize: %v", err)
	}
}
