//go:build linux

package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex/internal/testutil"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// doneSink is a fakeSink that also closes the done channel registered for
// a job when its result arrives, as the core ends the job's future, and
// records the goroutine that delivered it.
type doneSink struct {
	*fakeSink
	done map[uint64]chan struct{} // written before the job is sent
	by   chan int                 // the goroutine of each Done
}

func (s *doneSink) Started(xport.Worker, []uint64) {}

func (s *doneSink) Done(w xport.Worker, rs []wire.Result) {
	s.by <- testutil.GoroutineID()
	for _, r := range rs {
		if c := s.done[r.ID]; c != nil {
			close(c)
		}
	}
	s.fakeSink.Done(w, rs)
}

// startOne starts a transport of one worker whose sink closes done
// channels.
func startOne(t *testing.T) (*worker, *doneSink) {
	t.Helper()
	tr, err := New(Config{Size: 1, Output: &testutil.Buffer{}, StartTimeout: waitFor})
	if err != nil {
		t.Fatal(err)
	}
	s := &doneSink{fakeSink: newSink(t), done: map[uint64]chan struct{}{}, by: make(chan int, 64)}
	if err := tr.Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w := recv(t, s.joined, "Join").(*worker)
	t.Cleanup(func() { closeAndCheck(t, tr, s.fakeSink) })
	return w, s
}

// send sends one job whose result closes the returned channel.
func (s *doneSink) send(w *worker, j *wire.Job) chan struct{} {
	c := make(chan struct{})
	s.done[j.ID] = c
	w.Send([]*wire.Job{j})
	return c
}

// readAsync runs w.ReadUntil(ctx, done) on a goroutine of its own; the
// channel it returns is closed once ReadUntil has returned.
func readAsync(w *worker, ctx context.Context, done <-chan struct{}) chan struct{} {
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		w.ReadUntil(ctx, done)
	}()
	return returned
}

// readingInPipe waits until a waiter holds w's baton and reads.
func readingInPipe(t *testing.T, w *worker) {
	t.Helper()
	if !waitReading(w) {
		t.Fatal("no waiter read the pipe")
	}
}

// readOwnReply sends a job that answers only once cancelled, and reads
// its reply as a waiting Get does; the job is cancelled once the waiter
// reads the pipe, so that the reply cannot reach the reader goroutine
// first, however loaded the machine. It returns the reply's done channel.
func readOwnReply(t *testing.T, w *worker, s *doneSink) chan struct{} {
	t.Helper()
	j := job("sleep")
	done := s.send(w, j)
	cancelled := make(chan struct{})
	go func() {
		defer close(cancelled)
		if !waitReading(w) {
			t.Error("the waiter never read the pipe")
		}
		w.Cancel([]uint64{j.ID})
	}()
	w.ReadUntil(context.Background(), done)
	<-cancelled
	return done
}

// waitReading waits, for at most waitFor, until a waiter holds w's baton
// and reads; it may be called from any goroutine.
func waitReading(w *worker) bool {
	for end := time.Now().Add(waitFor); time.Now().Before(end); runtime.Gosched() {
		w.rb.mu.Lock()
		reading := w.rb.state.Load() == rdWaiter && !w.rb.handling
		w.rb.mu.Unlock()
		if reading {
			return true
		}
	}
	return false
}

// TestWaiterReadsItsReply: a waiter for the one job in flight takes the
// pipe from the reader goroutine (which holds it from the start) and the
// reply is delivered on the waiter's goroutine; the next one finds the
// pipe free and reads too.
func TestWaiterReadsItsReply(t *testing.T) {
	w, s := startOne(t)
	me := testutil.GoroutineID()
	for i := range 2 {
		done := readOwnReply(t, w, s)
		select {
		case <-done:
		default:
			t.Fatalf("round %d: ReadUntil returned before the reply", i)
		}
		if by := recv(t, s.by, "Done"); by != me {
			t.Fatalf("round %d: the reply was delivered by goroutine %d, not the waiter %d", i, by, me)
		}
		recv(t, s.results, "the result")
	}
}

// TestInterruptEndsAWaiterInThePipe: a waiter blocked in the pipe for a
// job that does not answer returns once its done is closed and it is
// interrupted (a future cancelled locally); the reader goroutine then
// reads on, so the job's late reply is still delivered.
func TestInterruptEndsAWaiterInThePipe(t *testing.T) {
	w, s := startOne(t)
	j := job("sleep") // waits for its ctx
	done := s.send(w, j)
	returned := readAsync(w, context.Background(), done)
	readingInPipe(t, w)
	close(done)
	s.done[j.ID] = nil // ended here; the sink must not close it again
	w.Interrupt(done)
	recv(t, returned, "ReadUntil to return")
	w.Cancel([]uint64{j.ID})
	if r := recv(t, s.results, "the cancelled job's result"); r.ID != j.ID {
		t.Fatalf("result of job %d, want %d", r.ID, j.ID)
	}
}

// TestCtxEndsAWaiterInThePipe: a waiter blocked in the pipe returns once
// its ctx ends; the job's reply is read later by the next reader.
func TestCtxEndsAWaiterInThePipe(t *testing.T) {
	w, s := startOne(t)
	j := job("sleep")
	done := s.send(w, j)
	ctx, cancel := context.WithCancel(context.Background())
	returned := readAsync(w, ctx, done)
	readingInPipe(t, w)
	cancel()
	recv(t, returned, "ReadUntil to return")
	w.Cancel([]uint64{j.ID})
	recv(t, done, "the job's reply")
}

// TestStreamEndWhileAWaiterReads: the child exits while a waiter reads its
// pipe; the waiter returns and the reader goroutine reports the loss.
func TestStreamEndWhileAWaiterReads(t *testing.T) {
	w, s := startOne(t)
	done := s.send(w, job("exit", "3"))
	w.ReadUntil(context.Background(), done)
	if ev := recv(t, s.lost, "Lost"); ev.w != w || ev.cause == nil {
		t.Fatalf("Lost(%v, %v), want this worker with a cause", ev.w, ev.cause)
	}
}

// TestHoldOnlyForRoundTrips: a Submit writes its job itself (Hold agrees)
// only when the worker serves round trips: its last reply was read by the
// Get that waited for it, nothing is in flight, and the previous Submit
// was not just before.
func TestHoldOnlyForRoundTrips(t *testing.T) {
	w, s := startOne(t)
	if w.Hold() {
		t.Fatal("Hold agreed before any round trip")
	}
	readOwnReply(t, w, s)
	recv(t, s.results, "the result")
	if !w.roundTrips.Load() {
		t.Fatal("a Get read its own reply, but the worker is not marked as serving round trips")
	}
	w.lastHold.Store(-int64(directGap)) // long ago
	if !w.Hold() {
		t.Fatal("Hold declined a round trip")
	}
	w.Release()
	w.lastHold.Store(int64(time.Since(w.t.epoch) + time.Hour)) // the previous Submit: just now, whatever the machine's pace
	if w.Hold() {
		t.Fatal("Hold agreed to a second Submit right after the first")
	}
	w.lastHold.Store(-int64(directGap))
	j := job("sleep") // in flight until cancelled
	s.send(w, j)
	if w.Hold() {
		t.Fatal("Hold agreed with a job in flight")
	}
	w.Cancel([]uint64{j.ID})
	recv(t, s.results, "the cancelled job's result")
}

// panicSink's Done panics, as a completion callback can.
type panicSink struct{ *fakeSink }

func (panicSink) Done(xport.Worker, []wire.Result) { panic("callback boom") }

// callbackPanicChild is the test binary in callbackpanic mode: a Get
// reads a reply whose callback panics, in a caller that recovers. The
// program must end with the panic, as when the reader goroutine ran the
// callback; returning would leave the other futures of that reply
// unfinished.
func callbackPanicChild() {
	os.Unsetenv(testModeEnv) // its own workers serve
	tr, err := New(Config{Size: 1, Output: io.Discard, StartTimeout: waitFor})
	if err != nil {
		panic(err)
	}
	s := panicSink{&fakeSink{joined: make(chan xport.Worker, 1)}}
	if err := tr.Start(context.Background(), s); err != nil {
		panic(err)
	}
	w := (<-s.joined).(*worker)
	j := job("sleep") // answers once cancelled, below: by then the waiter reads
	w.Send([]*wire.Job{j})
	go func() {
		waitReading(w)
		w.Cancel([]uint64{j.ID})
	}()
	func() {
		defer func() { recover() }() // the caller of Get recovers
		w.ReadUntil(context.Background(), make(chan struct{}))
	}()
	fmt.Println("the program went on after the panic")
	os.Exit(0)
}

// TestCallbackPanicInAReadingGetEndsTheProgram: see callbackPanicChild.
func TestCallbackPanicInAReadingGetEndsTheProgram(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testModeEnv+"=callbackpanic")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "callback boom") {
		t.Fatalf("exit %v, output:\n%s\nwant exit status 2 with the callback's panic", err, out)
	}
}

// TestStaleInterruptDoesNotStopAWaiter: an Interrupt for a done that is
// not closed, with the waiter's ctx alive (the late AfterFunc of an earlier
// Get of the same future, whose ctx ended), must not stop the waiter for
// good: it read nothing ever again, spinning on the deadline, and the
// future's last Get waited forever.
func TestStaleInterruptDoesNotStopAWaiter(t *testing.T) {
	w, s := startOne(t)
	j := job("sleep")
	done := s.send(w, j)
	returned := readAsync(w, context.Background(), done)
	readingInPipe(t, w)
	w.Interrupt(done) // stale: done is open, the ctx alive
	w.Cancel([]uint64{j.ID})
	recv(t, returned, "ReadUntil to read the reply and return")
	select {
	case <-done:
	default:
		t.Fatal("ReadUntil returned before the reply")
	}
}
