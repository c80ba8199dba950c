package link

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingWriter counts the writes that reach it: each is a system call
// on a real pipe. The count is atomic, for tests that read it while the
// Writer's goroutine writes.
type countingWriter struct {
	w io.Writer
	n atomic.Int32
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.w.Write(p)
}

// readAll reads every frame of r until EOF.
func readAll(t *testing.T, r io.Reader, max int) []wire.Msg {
	t.Helper()
	rd := wire.NewReader(r, max)
	var msgs []wire.Msg
	for {
		m, err := rd.Next()
		if err == io.EOF {
			return msgs
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
}

// pipeWriter returns a Writer over an os.Pipe and a function that closes
// it and returns every frame written.
func pipeWriter(t *testing.T, max int, cfg Config[Subject]) (*Writer[Subject], *countingWriter, func() []wire.Msg) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cw := &countingWriter{w: pw}
	w := New(Pipe(cw, max), cfg)
	got := make(chan []wire.Msg, 1)
	go func() { got <- readAll(t, pr, max); pr.Close() }()
	return w, cw, func() []wire.Msg {
		w.Close()
		pw.Close()
		return <-got
	}
}

func job(id uint64, size int) *wire.Job {
	return &wire.Job{ID: id, Name: "w", Args: [][]byte{make([]byte, size)}}
}

// TestBatching: what is queued together leaves in as few frames as fit
// the budget (one system call for a burst), in order, nothing lost.
func TestBatching(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n, size   int
		max       int
		maxFrames int
	}{
		{"one frame", 100, 10, 0, 1},
		{"split", 20, 10000, 64 << 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, cw, finish := pipeWriter(t, tc.max, Config[Subject]{WorkerID: "w0"})
			// Queue everything before the goroutine starts, as results pile
			// up behind a write in progress.
			for i := range tc.n {
				w.Result(Peer, wire.Result{ID: uint64(i), Items: []wire.Outcome{{Value: make([]byte, tc.size)}}})
			}
			w.Start()
			msgs := finish()
			seen := 0
			for _, m := range msgs {
				rs := m.(*wire.Results)
				if rs.WorkerID != "w0" {
					t.Fatalf("WorkerID = %q", rs.WorkerID)
				}
				for _, r := range rs.Results {
					if r.ID != uint64(seen) {
						t.Fatalf("result %d out of order", r.ID)
					}
					seen++
				}
			}
			if seen != tc.n || len(msgs) > tc.maxFrames {
				t.Errorf("%d results in %d frames; want %d in ≤ %d", seen, len(msgs), tc.n, tc.maxFrames)
			}
			if n := cw.n.Load(); tc.maxFrames == 1 && n != 1 {
				t.Errorf("a burst of one frame took %d writes, want 1", n)
			}
		})
	}
}

// TestCancelFollowsItsRun: Runs and Cancels queued in one round merge into
// one Run and one Cancel, and every cancelled id arrives after its job.
func TestCancelFollowsItsRun(t *testing.T) {
	w, _, finish := pipeWriter(t, 0, Config[Subject]{})
	for id := range uint64(10) {
		w.Jobs(Peer, []*wire.Job{job(id, 1)}, false)
		w.Cancel(Peer, []uint64{id})
	}
	w.Send(Peer, &wire.Shutdown{Graceful: true})
	w.Start()
	msgs := finish()
	var kinds []string
	sent := map[uint64]bool{}
	for _, m := range msgs {
		kinds = append(kinds, m.Kind().String())
		switch m := m.(type) {
		case *wire.Run:
			for _, j := range m.Jobs {
				sent[j.ID] = true
			}
		case *wire.Cancel:
			for _, id := range m.IDs {
				if !sent[id] {
					t.Errorf("Cancel of %d before its Run", id)
				}
			}
		}
	}
	if got := strings.Join(kinds, " "); got != "Run Cancel Shutdown" {
		t.Errorf("frames %q, want %q", got, "Run Cancel Shutdown")
	}
}

// TestResendNeverSharesARun: new jobs and resent jobs go in separate Runs,
// the resent ones marked.
func TestResendNeverSharesARun(t *testing.T) {
	w, _, finish := pipeWriter(t, 0, Config[Subject]{ReplyTo: "inbox"})
	w.Jobs(Peer, []*wire.Job{job(1, 1)}, false)
	w.Jobs(Peer, []*wire.Job{job(2, 1), job(3, 1)}, true)
	w.Jobs(Peer, []*wire.Job{job(4, 1)}, false)
	w.Start()
	msgs := finish()
	want := []struct {
		resend bool
		n      int
	}{{false, 1}, {true, 2}, {false, 1}}
	if len(msgs) != len(want) {
		t.Fatalf("%d frames, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		r := m.(*wire.Run)
		if r.Resend != want[i].resend || len(r.Jobs) != want[i].n || r.ReplyTo != "inbox" {
			t.Errorf("Run %d: Resend %v, %d jobs, ReplyTo %q; want %v, %d, inbox", i, r.Resend, len(r.Jobs), r.ReplyTo, want[i].resend, want[i].n)
		}
	}
}

// TestTooLargeJobIsRejected: a job no message can hold is answered with a
// CodeTooLarge outcome per item instead of vanishing, and the jobs around
// it are sent.
func TestTooLargeJobIsRejected(t *testing.T) {
	const max = 16 << 10
	var mu sync.Mutex
	var rejected []wire.Result
	w, _, finish := pipeWriter(t, max, Config[Subject]{Reject: func(_ Subject, r wire.Result) {
		mu.Lock()
		rejected = append(rejected, r)
		mu.Unlock()
	}})
	big := &wire.Job{ID: 2, Name: "w", Args: [][]byte{make([]byte, max/2), make([]byte, max/2)}}
	w.Jobs(Peer, []*wire.Job{job(1, 1), big, job(3, 1)}, false)
	w.Start()
	msgs := finish()
	if len(msgs) != 1 || len(msgs[0].(*wire.Run).Jobs) != 2 {
		t.Fatalf("sent %v, want one Run of jobs 1 and 3", msgs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rejected) != 1 || rejected[0].ID != 2 || len(rejected[0].Items) != 2 {
		t.Fatalf("rejected %+v, want job 2 with 2 items", rejected)
	}
	for _, o := range rejected[0].Items {
		if o.Err == nil || o.Err.Code != wire.CodeTooLarge || !strings.Contains(o.Err.Message, "ChunkSize") {
			t.Errorf("outcome %+v, want CodeTooLarge naming ChunkSize", o)
		}
	}
}

// TestTooLargeResultIsAnError: a result no message can hold goes out as
// CodeTooLarge outcomes, so the executor hears of the job.
func TestTooLargeResultIsAnError(t *testing.T) {
	const max = 16 << 10
	w, _, finish := pipeWriter(t, max, Config[Subject]{})
	w.Result(Peer, wire.Result{ID: 7, Items: []wire.Outcome{{Value: make([]byte, max)}}})
	w.Start()
	msgs := finish()
	if len(msgs) != 1 {
		t.Fatalf("%d frames, want 1", len(msgs))
	}
	r := msgs[0].(*wire.Results).Results[0]
	if r.ID != 7 || len(r.Items) != 1 || r.Items[0].Err == nil || r.Items[0].Err.Code != wire.CodeTooLarge {
		t.Fatalf("result %+v, want job 7 with a CodeTooLarge outcome", r)
	}
}

// TestLoneMessageGoesOutAtOnce: a message queued to an idle Writer is
// flushed without waiting for more.
func TestLoneMessageGoesOutAtOnce(t *testing.T) {
	w, rd, _ := startedPipeWriter(t, nil)
	w.Send(Peer, &wire.Heartbeat{WorkerID: "x"})
	m, err := rd.Next()
	if err != nil || m.(*wire.Heartbeat).WorkerID != "x" {
		t.Fatalf("read %v, %v; want the Heartbeat", m, err)
	}
}

// TestFirstWriteErrorIsReported: a pipe whose reader is gone fails the
// Writer once: OnError gets the error, and later input is dropped. (A process worker whose fd 3 was closed is
// lost this way.)
func TestFirstWriteErrorIsReported(t *testing.T) {
	w, errs := brokenPipeWriter(t)
	w.Jobs(Peer, []*wire.Job{job(1, 1)}, false)
	if err := <-errs; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("OnError(%v), want EPIPE", err)
	}
	w.Jobs(Peer, []*wire.Job{job(2, 1)}, false)
	w.Close()
	noMoreErrors(t, errs)
}

// TestDropWritesNothing: after Drop nothing queued is written and no
// error is reported, even when the pipe is closed behind it.
func TestDropWritesNothing(t *testing.T) {
	w, _, finish := pipeWriter(t, 0, Config[Subject]{OnError: func(err error) { t.Errorf("OnError(%v) after Drop", err) }})
	w.Jobs(Peer, []*wire.Job{job(1, 1)}, false)
	w.Drop()
	w.Start()
	w.Jobs(Peer, []*wire.Job{job(2, 1)}, false)
	w.Wait()
	if msgs := finish(); len(msgs) != 0 {
		t.Fatalf("wrote %v after Drop", msgs)
	}
}

// dest is a Dest that can go.
type dest struct {
	subject string
	gone    bool
}

func (d *dest) Subject() string { return d.subject }
func (d *dest) Gone() bool      { return d.gone }

// memConn records what it is given: the Conn of a test that needs
// several destinations without a NATS server.
type memConn struct {
	mu   sync.Mutex
	sent []string // subject and kind
}

func (c *memConn) Max() int     { return wire.DefaultMaxFrame }
func (c *memConn) Flush() error { return nil }
func (c *memConn) Write(subject string, m wire.Msg) error {
	c.mu.Lock()
	c.sent = append(c.sent, subject+":"+m.Kind().String())
	c.mu.Unlock()
	return nil
}

// TestPerDestinationOrder: each destination gets its messages in order,
// merged per destination; a destination that is gone gets nothing.
func TestPerDestinationOrder(t *testing.T) {
	c := &memConn{}
	a, b, gone := &dest{subject: "a"}, &dest{subject: "b"}, &dest{subject: "g", gone: true}
	w := New(c, Config[*dest]{})
	w.Jobs(a, []*wire.Job{job(1, 1)}, false)
	w.Jobs(b, []*wire.Job{job(2, 1)}, false)
	w.Jobs(gone, []*wire.Job{job(3, 1)}, false)
	w.Cancel(a, []uint64{1})
	w.Jobs(a, []*wire.Job{job(4, 1)}, false)
	w.Send(b, &wire.Shutdown{})
	w.Jobs(b, []*wire.Job{job(5, 1)}, false)
	w.Start()
	w.Close()
	got := strings.Join(c.sent, " ")
	// b's Shutdown writes b's open Run first; a's Run and Cancel, and b's
	// later Run, go at the end of the round.
	if want := "b:Run b:Shutdown a:Run a:Cancel b:Run"; got != want {
		t.Fatalf("sent %q, want %q", got, want)
	}
}

// TestHeldMessagesLeaveTogether: what is queued under a Hold is written at
// its Release, all in one frame and one system call, by the caller when
// the Writer is idle (a process child's reader running quick jobs).
func TestHeldMessagesLeaveTogether(t *testing.T) {
	var cw *countingWriter
	w, rd, _ := startedPipeWriter(t, func(pw io.Writer) io.Writer {
		cw = &countingWriter{w: pw}
		return cw
	})
	// A first message, read back: the goroutine has flushed it, and holds
	// nothing more of the queue.
	w.Send(Peer, &wire.Heartbeat{WorkerID: "x"})
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	w.Hold()
	const n = 10
	for i := range n {
		w.Result(Peer, wire.Result{ID: uint64(i), Items: []wire.Outcome{{Value: []byte("v")}}})
	}
	w.Release()
	m, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rs, ok := m.(*wire.Results); !ok || len(rs.Results) != n {
		t.Fatalf("read %v, want one Results of %d", m, n)
	}
	w.Close()
	if n := cw.n.Load(); n != 2 {
		t.Errorf("%d writes, want 2 (the heartbeat, the held results)", n)
	}
}

// TestCloseWritesHeldMessages: Close writes what a Hold still holds.
func TestCloseWritesHeldMessages(t *testing.T) {
	w, _, finish := pipeWriter(t, 0, Config[Subject]{})
	w.Start()
	w.Hold()
	w.Result(Peer, wire.Result{ID: 7, Items: []wire.Outcome{{}}})
	if msgs := finish(); len(msgs) != 1 || msgs[0].(*wire.Results).Results[0].ID != 7 {
		t.Fatalf("wrote %v, want the held Results", msgs)
	}
}

// TestReleaseWriteErrorIsReported: a write error met by Release fails the
// Writer like one met by its goroutine: OnError once, then nothing.
func TestReleaseWriteErrorIsReported(t *testing.T) {
	w, errs := brokenPipeWriter(t)
	w.Hold()
	w.Result(Peer, wire.Result{ID: 1, Items: []wire.Outcome{{}}})
	w.Release()
	if err := <-errs; !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("OnError(%v), want EPIPE", err)
	}
	w.Hold()
	w.Result(Peer, wire.Result{ID: 2, Items: []wire.Outcome{{}}})
	w.Release()
	w.Close()
	noMoreErrors(t, errs)
}

// startedPipeWriter returns a started Writer over an os.Pipe (through out,
// if not nil, which wraps the pipe's write end), a frame reader of the
// pipe and its write end; the test's cleanup closes them all.
func startedPipeWriter(t *testing.T, out func(io.Writer) io.Writer) (*Writer[Subject], *wire.Reader, *os.File) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var dst io.Writer = pw
	if out != nil {
		dst = out(pw)
	}
	w := New(Pipe(dst, 0), Config[Subject]{})
	w.Start()
	t.Cleanup(func() { w.Close(); pw.Close(); pr.Close() })
	return w, wire.NewReader(pr, 0), pw
}

// brokenPipeWriter returns a started Writer over a pipe whose reader is
// gone, and the channel its OnError reports to.
func brokenPipeWriter(t *testing.T) (*Writer[Subject], chan error) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	t.Cleanup(func() { pw.Close() })
	errs := make(chan error, 2)
	w := New(Pipe(pw, 0), Config[Subject]{OnError: func(err error) { errs <- err }})
	w.Start()
	return w, errs
}

// noMoreErrors fails the test if OnError reported anything more; the
// Writer must be closed.
func noMoreErrors(t *testing.T, errs chan error) {
	t.Helper()
	close(errs)
	for err := range errs {
		t.Errorf("OnError called again with %v", err)
	}
}

// TestReleaseNeverWaitsOnAFullPipe: over a pipe nobody reads (a stopped
// child), Release returns at once and leaves what the pipe did not take to
// the goroutine; once the reader drains the pipe, every message arrives
// whole and in order, the later ones after the held ones.
func TestReleaseNeverWaitsOnAFullPipe(t *testing.T) {
	w, rd, pw := startedPipeWriter(t, nil)
	// A first message, read back: the goroutine is idle now, so Release
	// writes itself.
	w.Send(Peer, &wire.Heartbeat{WorkerID: "x"})
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20 // far more than a pipe holds (64 KiB on Linux)
	released := make(chan struct{})
	go func() {
		defer close(released)
		w.Hold()
		w.Jobs(Peer, []*wire.Job{job(1, size)}, false)
		w.Jobs(Peer, []*wire.Job{job(2, size)}, false)
		w.Release()
	}()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("Release blocked on the full pipe")
	}
	w.Jobs(Peer, []*wire.Job{job(3, 10)}, false) // behind the held ones
	got := make(chan []wire.Msg, 1)
	go func() {
		var msgs []wire.Msg
		for {
			m, err := rd.Next()
			if err != nil {
				got <- msgs
				return
			}
			msgs = append(msgs, m)
		}
	}()
	w.Close()
	pw.Close()
	var ids []uint64
	for _, m := range <-got {
		for _, j := range m.(*wire.Run).Jobs {
			if len(j.Args[0]) != map[uint64]int{1: size, 2: size, 3: 10}[j.ID] {
				t.Errorf("job %d arrived with %d bytes", j.ID, len(j.Args[0]))
			}
			ids = append(ids, j.ID)
		}
	}
	if !slices.Equal(ids, []uint64{1, 2, 3}) {
		t.Fatalf("jobs arrived as %v, want [1 2 3]", ids)
	}
}

// TestResultsOfWorksEndingTogetherShareAWrite: results queued by
// goroutines that became runnable together (works whose timers fired at
// once) leave in one write. The writer goroutine, woken by the first, was
// run before the others (the runtime runs a goroutine just woken next),
// and wrote the results one system call each: a process worker wrote about
// one result per two works in a fan-out of sleeping works.
func TestResultsOfWorksEndingTogetherShareAWrite(t *testing.T) {
	// One P, so the order is the scheduler's alone: the goroutines below
	// are all in its run queue when the first one wakes the writer.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	cw := &countingWriter{}
	w, rd, _ := startedPipeWriter(t, func(pw io.Writer) io.Writer { cw.w = pw; return cw })
	w.Send(Peer, &wire.Heartbeat{WorkerID: "x"}) // read back: the writer is idle
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	before := cw.n.Load()
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { w.Result(Peer, wire.Result{ID: uint64(i), Items: []wire.Outcome{{}}}) })
	}
	wg.Wait()
	for got := 0; got < n; {
		m, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		got += len(m.(*wire.Results).Results)
	}
	// Two, not one: the scheduler looks at its global queue, where the
	// yielding writer waits, once in 61 turns.
	if writes := cw.n.Load() - before; writes > 2 {
		t.Fatalf("%d results of goroutines run together took %d writes, want one or two", n, writes)
	}
}

// TestStartedPrecedesTheResultsQueuedAfterIt: a job's Started goes out
// before its Result, and the starts of one round merge into one Started
// however they interleave with results (a child's works end and start the
// held ones in turn: one message per start cost the process fan-out 13 %
// of its CPU).
func TestStartedPrecedesTheResultsQueuedAfterIt(t *testing.T) {
	w, _, finish := pipeWriter(t, 0, Config[Subject]{WorkerID: "w0"})
	res := func(id uint64) wire.Result { return wire.Result{ID: id, Items: []wire.Outcome{{Value: []byte("v")}}} }
	w.Started(Peer, 1)
	w.Started(Peer, 2)
	w.Result(Peer, res(1))
	w.Started(Peer, 3)
	w.Result(Peer, res(3))
	w.Result(Peer, res(2))
	w.Start()
	started := map[uint64]int{} // id → index of the message that named it
	var order []string
	for i, m := range finish() {
		switch m := m.(type) {
		case *wire.Started:
			if m.WorkerID != "w0" {
				t.Errorf("Started's WorkerID = %q, want w0", m.WorkerID)
			}
			for _, id := range m.IDs {
				started[id] = i
			}
			order = append(order, fmt.Sprint("started", m.IDs))
		case *wire.Results:
			for _, r := range m.Results {
				if at, ok := started[r.ID]; !ok || at > i {
					t.Errorf("result %d went out before its Started", r.ID)
				}
			}
			order = append(order, fmt.Sprint("results", len(m.Results)))
		default:
			t.Fatalf("unexpected %T", m)
		}
	}
	if len(started) != 3 || len(order) != 2 {
		t.Errorf("messages %v: want one Started of the 3 starts, then one Results (a round's starts share a message)", order)
	}
}

// TestStartedPrecedesResultsThatOutgrowAMessage: when a round's results
// fill a Results mid-round, the starts queued so far go out before it.
func TestStartedPrecedesResultsThatOutgrowAMessage(t *testing.T) {
	w, _, finish := pipeWriter(t, 64<<10, Config[Subject]{WorkerID: "w0"})
	const n = 20
	for i := range uint64(n) {
		w.Started(Peer, i)
		w.Result(Peer, wire.Result{ID: i, Items: []wire.Outcome{{Value: make([]byte, 10000)}}})
	}
	w.Start()
	started := map[uint64]bool{}
	results := 0
	for _, m := range finish() {
		switch m := m.(type) {
		case *wire.Started:
			for _, id := range m.IDs {
				started[id] = true
			}
		case *wire.Results:
			for _, r := range m.Results {
				if !started[r.ID] {
					t.Fatalf("result %d went out before its Started", r.ID)
				}
				results++
			}
		}
	}
	if results != n || len(started) != n {
		t.Errorf("%d results and %d starts, want %d of each", results, len(started), n)
	}
}
