package engine

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// TestKillTimerAsksUnreachableWithoutTheCoreLock: a kill-grace timer asked
// the worker whether it could be reached (xport.Unreachable) under the
// core's lock. A cluster member answers from its NATS connection's status,
// whose lock the NATS client holds while it dials a server in a reconnect
// (up to its dial timeout, for a server that does not answer), so every
// Submit, result and cancel of the executor waited as long. The question
// is now asked without the lock.
func TestKillTimerAsksUnreachableWithoutTheCoreLock(t *testing.T) {
	w := &askWorker{asked: make(chan struct{}), release: make(chan struct{}), killed: make(chan error, 1)}
	tr := &askTransport{w: w}
	cfg, err := buildConfig(kindProcess, []Option{WithPoolSize(1), WithMaxWorksPerWorker(4), WithKillGrace(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := startRemote(cfg, tr)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	work := &Work[int, int]{name: "test.work"}
	ctx := context.Background()
	f, err := Submit(ctx, ex, work, 1, Deadline(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	<-w.asked // the kill timer fired and waits for the answer
	submitted := make(chan error, 1)
	go func() {
		_, err := Submit(ctx, ex, work, 2)
		submitted <- err
	}()
	select {
	case err := <-submitted:
		if err != nil {
			t.Fatalf("Submit while the kill timer waits for its answer: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(w.release)
		t.Fatal("Submit waited for the kill timer's question to the worker")
	}
	close(w.release) // reachable: the work is past its deadline and the grace
	select {
	case reason := <-w.killed:
		if reason == nil {
			t.Fatal("killed without a reason")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker was not killed once it said it was reachable")
	}
	var we *WorkerError
	if _, err := f.Get(ctx); !errors.As(err, &we) {
		t.Fatalf("the work of the killed worker: %v, want a *WorkerError", err)
	}
}

// askTransport has one worker that never answers, whose Unreachable waits
// for the test.
type askTransport struct {
	sink xport.Sink
	w    *askWorker
}

func (tr *askTransport) Start(_ context.Context, sink xport.Sink) error {
	tr.sink = sink
	tr.w.tr = tr
	sink.Join(tr.w)
	return nil
}

func (tr *askTransport) MaxMessage() int { return 1 << 20 }

func (tr *askTransport) Close(context.Context) error {
	tr.w.lose(errors.New("transport closed"))
	return nil
}

type askWorker struct {
	tr      *askTransport
	asked   chan struct{} // closed by the first Unreachable
	release chan struct{} // closed by the test: Unreachable returns 0
	killed  chan error
	once    sync.Once
	mu      sync.Mutex
	gone    bool
}

func (w *askWorker) Slot() int             { return 0 }
func (w *askWorker) Info() xport.Info      { return xport.Info{ID: "ask-0", PID: 1} }
func (w *askWorker) Capacity() int         { return 4 }
func (w *askWorker) Send(jobs []*wire.Job) {}
func (w *askWorker) Cancel(ids []uint64)   {}
func (w *askWorker) Close()                { w.lose(nil) }
func (w *askWorker) Kill(reason error)     { w.killed <- reason; w.lose(reason) }
func (w *askWorker) Unreachable(*wire.Job) time.Duration {
	w.once.Do(func() { close(w.asked) })
	<-w.release
	return 0
}

// lose reports the worker lost, once.
func (w *askWorker) lose(cause error) {
	w.mu.Lock()
	gone := w.gone
	w.gone = true
	w.mu.Unlock()
	if !gone {
		w.tr.sink.Lost(w, cause)
	}
}

// TestKillTimerReplacedAsItFiresKillsNothing: a kill timer that fired as
// the core replaced it (a held work's Started re-arms its Deadline(d)'s
// timer from its start; a cancel re-arms it for the kill grace) waited
// for the core's lock, then found the job still outstanding and killed
// its worker on the old timer's reckoning. Only the last timer armed for
// a job may kill now.
func TestKillTimerReplacedAsItFiresKillsNothing(t *testing.T) {
	w := &askWorker{asked: make(chan struct{}), release: make(chan struct{}), killed: make(chan error, 1)}
	close(w.release) // reachable: only armKillIn's own check can spare the worker
	cfg, err := buildConfig(kindProcess, []Option{WithPoolSize(1), WithMaxWorksPerWorker(4), WithKillGrace(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := startRemote(cfg, &askTransport{w: w})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	f, err := Submit(context.Background(), ex, &Work[int, int]{name: "test.work"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, task := ex.c, &f.t
	const firing = "internal/engine.(*core).armKillIn.func2"
	c.mu.Lock()
	task.rjob().killTimer = c.armKill(task, 0, "test: the timer replaced")
	testutil.WaitFor(t, "the timer to fire and wait for the lock", func() bool { return testutil.BlockedIn(firing) == 1 })
	task.rjob().killTimer.Stop() // too late: it fired
	task.rjob().killTimer = c.armKill(task, time.Hour, "test: the timer that replaced it")
	c.unlock()
	testutil.WaitFor(t, "the replaced timer's function to return", func() bool { return !onAnyStack(firing) })
	select {
	case reason := <-w.killed:
		t.Fatalf("a replaced kill timer killed the worker: %v", reason)
	default:
	}
	select {
	case <-w.asked:
		t.Fatal("a replaced kill timer asked whether the worker can be reached")
	default:
	}
}

// onAnyStack reports whether some goroutine, in any state, has fn on its
// stack.
func onAnyStack(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn+"(")
}
