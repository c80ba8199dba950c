package aplex_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/obstest"
	"github.com/aplex-go/aplex/internal/testutil"
)

// obsKinds builds a thread and a process executor observed by rec.
var obsKinds = []struct {
	name string
	new  func(t *testing.T, rec *obstest.Recorder, opts ...aplex.Option) *aplex.Executor
}{
	{"thread", func(t *testing.T, rec *obstest.Recorder, opts ...aplex.Option) *aplex.Executor {
		return newThread(t, append([]aplex.Option{aplex.WithPoolSize(1), aplex.WithObserver(rec)}, opts...)...)
	}},
	{"process", func(t *testing.T, rec *obstest.Recorder, opts ...aplex.Option) *aplex.Executor {
		return newProcess(t, append([]aplex.Option{aplex.WithPoolSize(1), aplex.WithObserver(rec)}, opts...)...)
	}},
}

func TestObserverSeesEachWork(t *testing.T) {
	for _, k := range obsKinds {
		t.Run(k.name, func(t *testing.T) {
			rec := &obstest.Recorder{}
			ex := k.new(t, rec)
			if v := mustGet(t, mustSubmit(t, ex, pDouble, 21)); v != 42 {
				t.Fatalf("double: %d", v)
			}
			if _, err := mustSubmit(t, ex, pFail, "plain").Get(ctxT(t)); err == nil {
				t.Fatal("pFail succeeded")
			}
			// WorkFinished is reported before the future ends.
			evs := rec.Works(0)
			want := []aplex.WorkEventKind{aplex.WorkQueued, aplex.WorkStarted, aplex.WorkFinished, aplex.WorkQueued, aplex.WorkStarted, aplex.WorkFinished}
			if len(evs) != len(want) {
				t.Fatalf("events %+v", evs)
			}
			for i, e := range evs {
				if e.Kind != want[i] || e.Executor != k.name || e.Items != 1 {
					t.Fatalf("event %d: %+v", i, e)
				}
			}
			ok, failed := evs[2], evs[5]
			if ok.Work != "test.double" || ok.Outcome != aplex.OutcomeOK || ok.Err != nil || ok.Attempt != 1 || ok.Worker == "" || ok.RunTime <= 0 || ok.QueueWait < 0 {
				t.Fatalf("finished ok: %+v", ok)
			}
			if k.name == "process" && (ok.PID <= 0 || ok.PID == os.Getpid() || ok.Worker != "proc-0") {
				t.Fatalf("a process work's worker: %+v", ok)
			}
			if failed.Work != "test.fail" || failed.Outcome != aplex.OutcomeFailed || failed.Err == nil || failed.Outcome.String() != "error" {
				t.Fatalf("finished with an error: %+v", failed)
			}
			if s := evs[1]; s.Attempt != 1 || s.Worker != ok.Worker {
				t.Fatalf("started: %+v", s)
			}
			// Workers: one joined.
			if j := rec.Workers(aplex.WorkerJoined); len(j) != 1 || j[0].Slot != 0 || j[0].Executor != k.name {
				t.Fatalf("joined: %+v", j)
			}
		})
	}
}

func TestObserverCtxValuesReachWork(t *testing.T) {
	useRequestIDs(t)
	for _, k := range obsKinds {
		t.Run(k.name, func(t *testing.T) {
			// The observer's ctx carries a request id; the propagator sends
			// it to a worker process.
			rec := &obsRequestID{id: "from-observer"}
			var ex *aplex.Executor
			if k.name == "thread" {
				ex = newThread(t, aplex.WithObserver(rec))
			} else {
				ex = newProcess(t, aplex.WithPoolSize(1), aplex.WithObserver(rec))
			}
			if s, _, _ := seenBy(t, ctxT(t), ex); s.RequestID != "from-observer" {
				t.Fatalf("the work saw request id %q", s.RequestID)
			}
			for s, err := range aplex.Map(ctxT(t), ex, pCtxSeen, seq(3, nil), aplex.ChunkSize(2)) {
				if err != nil || s.RequestID != "from-observer" {
					t.Fatalf("Map: %+v, %v", s, err)
				}
			}
		})
	}
}

// obsRequestID is an observer whose queued ctx carries a request id.
type obsRequestID struct{ id string }

func (o *obsRequestID) ObserveWork(ctx context.Context, e aplex.WorkEvent) context.Context {
	if e.Kind == aplex.WorkQueued {
		return context.WithValue(ctx, testutil.RequestIDKey{}, o.id)
	}
	return ctx
}
func (o *obsRequestID) ObserveWorker(aplex.WorkerEvent) {}

func TestObserverMapChunkIsOneWork(t *testing.T) {
	for _, k := range obsKinds {
		t.Run(k.name, func(t *testing.T) {
			rec := &obstest.Recorder{}
			ex := k.new(t, rec)
			n := 0
			for _, err := range aplex.Map(ctxT(t), ex, pDouble, seq(8, nil), aplex.ChunkSize(4)) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			fin := rec.Works(aplex.WorkFinished)
			if n != 8 || len(rec.Works(aplex.WorkQueued)) != 2 || len(fin) != 2 {
				t.Fatalf("%d results; events %+v", n, rec.Works(0))
			}
			for _, e := range fin {
				if e.Items != 4 || e.Outcome != aplex.OutcomeOK || e.Work != "test.double" {
					t.Fatalf("chunk finished: %+v", e)
				}
			}
			// A chunk one input of which fails is a failed work.
			for _, err := range aplex.Map(ctxT(t), ex, pFail, func(yield func(string) bool) { yield("plain") }) {
				if err == nil {
					t.Fatal("no error")
				}
			}
			fin = rec.Works(aplex.WorkFinished)
			if last := fin[len(fin)-1]; last.Outcome != aplex.OutcomeFailed || last.Err == nil {
				t.Fatalf("failed chunk: %+v", last)
			}
		})
	}
}

func TestObserverCancelledWhileQueued(t *testing.T) {
	rec := &obstest.Recorder{}
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithObserver(rec))
	release := make(chan struct{})
	block := aplex.Fn(func(context.Context, int) (int, error) { <-release; return 0, nil })
	first := mustSubmit(t, ex, block, 0)
	queued := mustSubmit(t, ex, block, 1)
	if !queued.Cancel() {
		t.Fatal("Cancel of a queued work returned false")
	}
	close(release)
	mustGet(t, first)
	fin := rec.Works(aplex.WorkFinished)
	if len(fin) != 2 || fin[0].Outcome != aplex.OutcomeCancelled || fin[0].Attempt != 0 || fin[0].Worker != "" || fin[0].RunTime != 0 || fin[1].Outcome != aplex.OutcomeOK {
		t.Fatalf("finished: %+v", fin)
	}
	if s := rec.Works(aplex.WorkStarted); len(s) != 1 {
		t.Fatalf("started: %+v", s)
	}
}

func TestObserverSubmitRefusedIsRejected(t *testing.T) {
	rec := &obstest.Recorder{}
	ex, err := aplex.NewThreadExecutor(aplex.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := aplex.Submit(ctxT(t), ex, noop, 1); !errors.Is(err, aplex.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	evs := rec.Works(0)
	if len(evs) != 2 || evs[0].Kind != aplex.WorkQueued || evs[1].Outcome != aplex.OutcomeRejected || !errors.Is(evs[1].Err, aplex.ErrClosed) {
		t.Fatalf("events: %+v", evs)
	}
}

func TestWithObserverNil(t *testing.T) {
	for _, o := range []aplex.Observer{nil, (*obstest.Recorder)(nil)} {
		if _, err := aplex.NewThreadExecutor(aplex.WithObserver(o)); err == nil || !strings.Contains(err.Error(), "WithObserver") {
			t.Fatalf("WithObserver(%#v): %v", o, err)
		}
	}
}

// TestObserverWorkerLostRestartedAndLogged kills a process worker under a
// work submitted with Retry(1): the observer sees the worker lost (with
// its reason) and restarted, and the work's second attempt; the logger
// gets both events with the worker, pid and reason.
func TestObserverWorkerLostRestartedAndLogged(t *testing.T) {
	rec := &obstest.Recorder{}
	var logs testutil.Buffer
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithObserver(rec),
		aplex.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	marker := filepath.Join(t.TempDir(), "once")
	f := mustSubmit(t, ex, pOnce, marker, aplex.Retry(1))
	// The work creates the marker, then writes its pid: read it once
	// written.
	var pid int
	waitFor(t, "the first attempt's pid in "+marker, func() bool {
		b, err := os.ReadFile(marker)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(string(b))
		return err == nil
	})
	if err := kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, f); got == pid {
		t.Fatal("the retry ran in the killed process")
	}
	lost := rec.Workers(aplex.WorkerLost)
	if len(lost) != 1 || lost[0].PID != pid || lost[0].Worker != "proc-0" || !strings.Contains(lost[0].Reason, "killed") {
		t.Fatalf("lost: %+v", lost)
	}
	if r := rec.Workers(aplex.WorkerRestarted); len(r) != 1 || r[0].Slot != 0 || r[0].PID == pid {
		t.Fatalf("restarted: %+v", r)
	}
	fin := rec.Works(aplex.WorkFinished)
	if len(fin) != 1 || fin[0].Attempt != 2 || fin[0].Outcome != aplex.OutcomeOK || len(rec.Works(aplex.WorkStarted)) != 2 {
		t.Fatalf("finished: %+v", rec.Works(0))
	}
	out := logs.String()
	for _, want := range []string{
		fmt.Sprintf(`msg="aplex: worker lost" executor=process worker=proc-0 slot=0 pid=%d reason=`, pid),
		`msg="aplex: worker restarted" executor=process worker=proc-0 slot=0 pid=`,
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestObserverWorkerRecycled(t *testing.T) {
	rec := &obstest.Recorder{}
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithRecycleAfter(1), aplex.WithObserver(rec))
	for i := range 2 {
		mustGet(t, mustSubmit(t, ex, pDouble, i))
	}
	if r := rec.Workers(aplex.WorkerRecycled); len(r) < 1 || r[0].Worker != "proc-0" {
		t.Fatalf("recycled: %+v", rec.Workers(0))
	}
	if r := rec.Workers(aplex.WorkerRestarted); len(r) < 1 {
		t.Fatalf("restarted: %+v", rec.Workers(0))
	}
	if l := rec.Workers(aplex.WorkerLost); len(l) != 0 {
		t.Fatalf("a recycled worker reported lost: %+v", l)
	}
}

func TestWithObserverTwiceChainsCtx(t *testing.T) {
	useRequestIDs(t)
	rec := &obstest.Recorder{}
	ex := newProcess(t, aplex.WithPoolSize(1), aplex.WithObserver(&obsRequestID{id: "first"}), aplex.WithObserver(rec))
	if s, _, _ := seenBy(t, ctxT(t), ex); s.RequestID != "first" {
		t.Fatalf("the work saw %q, want the first observer's ctx", s.RequestID)
	}
	if len(rec.Works(0)) != 3 || len(rec.Workers(aplex.WorkerJoined)) != 1 {
		t.Fatalf("the second observer saw %+v, %+v", rec.Works(0), rec.Workers(0))
	}
}

// nopObserver returns ctx and does nothing: the cost of the hooks alone.
type nopObserver struct{}

func (nopObserver) ObserveWork(ctx context.Context, _ aplex.WorkEvent) context.Context { return ctx }
func (nopObserver) ObserveWorker(aplex.WorkerEvent)                                    {}

// BenchmarkSubmitGetObserved is BenchmarkSubmitGet/aplex with an observer
// that does nothing: what the hooks cost when present (three events, the
// clock read at each).
func BenchmarkSubmitGetObserved(b *testing.B) {
	ex, err := aplex.NewThreadExecutor(aplex.WithMaxWorksPerWorker(1<<20), aplex.WithObserver(nopObserver{}))
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	submitAllGetAll(b, ex, noop)
}

// TestObserverCancelAtStartIsRaceFree cancels works as they are
// dispatched: a Cancel that wins the race with the start reports the
// finish while the start is being reported, unless the start is reported
// before the work can be cancelled as running (run with -race).
func TestObserverCancelAtStartIsRaceFree(t *testing.T) {
	rec := &obstest.Recorder{}
	// One slot: each Cancel frees it for the next work, dispatched while
	// the test goes on to cancel that one.
	ex := newThread(t, aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithObserver(rec))
	spin := aplex.Fn(func(ctx context.Context, _ int) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
	const n = 300
	fs := make([]*aplex.Future[int], n)
	for i := range fs {
		fs[i] = mustSubmit(t, ex, spin, i)
	}
	for _, f := range fs {
		f.Cancel()
	}
	if fin := rec.Works(aplex.WorkFinished); len(fin) != n {
		t.Fatalf("%d finished events, want %d", len(fin), n)
	}
	for _, e := range rec.Works(aplex.WorkFinished) {
		if e.Outcome != aplex.OutcomeCancelled {
			t.Fatalf("finished: %+v", e)
		}
	}
}
