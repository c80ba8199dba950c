package proc

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// worker is one child process. The core talks to it through the
// xport.Worker methods, which only queue; the link's goroutine (writer.go)
// turns the queue into frames, unless a round trip's Submit writes its job
// itself (Hold, Release). Results are delivered by a Get waiting for the
// worker's only job, which reads the pipe itself, or else by the reader
// goroutine (baton.go), which also reaps the process and reports its loss
// (reader.go).
type worker struct {
	t         *Transport
	slotIdx   int
	slot      *slot // set before the I/O goroutines start
	cmd       *exec.Cmd
	pid       int
	toChild   *os.File
	fromChild *os.File
	rd        *wire.Reader
	out       *link.Writer[link.Subject]
	label     *spawn.LineWriter
	hello     *wire.Hello

	mu      sync.Mutex
	closed  bool  // Close was called: an exit with status 0 is clean
	dead    bool  // the pipe is gone: new input is dropped
	sent    int   // jobs sent, for RecycleAfter
	killErr error // first Kill reason

	done chan struct{} // closed after Sink.Lost

	rb       readBaton    // who reads fromChild (reader.go)
	inflight atomic.Int64 // jobs sent and not answered yet
	closing  atomic.Bool  // Close was called
	lastHold atomic.Int64 // when a Submit last asked Hold, as time since t.epoch
	// roundTrips is set when a waiting Get read its own reply, cleared
	// when the reader goroutine reads one: Hold's hint that Submits come
	// one at a time, each followed by its Get.
	roundTrips atomic.Bool

	gone atomic.Bool // reaped and reported
	// heard is when the reader last got a frame, as time since t.epoch, or
	// -1 while the silence is not the child's: the reader is delivering
	// results (in Sink.Done) or the stream has ended (see watchHeartbeats).
	heard   atomic.Int64
	said    atomic.Bool // the child sent Bye: it finished every job and is exiting
	recycle atomic.Bool // RecycleAfter reached
}

var (
	_ xport.Worker   = (*worker)(nil)
	_ xport.Budgeted = (*worker)(nil)
	_ xport.Reader   = (*worker)(nil)
	_ xport.Holder   = (*worker)(nil)
)

func newWorker(t *Transport, slot int, cmd *exec.Cmd, toChild, fromChild *os.File, label *spawn.LineWriter) *worker {
	w := &worker{
		t:         t,
		slotIdx:   slot,
		cmd:       cmd,
		pid:       cmd.Process.Pid,
		toChild:   toChild,
		fromChild: fromChild,
		rd:        wire.NewReader(link.PipeReader(fromChild), t.cfg.MaxFrame),
		label:     label,
		done:      make(chan struct{}),
	}
	w.out = newLink(w)
	w.rb.init()
	return w
}

// startIO starts the writer and reader goroutines. Called after Sink.Join,
// so that the core never sees Lost before Join.
func (w *worker) startIO() {
	// Its silence counts from here: its heartbeats may have waited in the
	// pipe while the other workers of Start were still starting.
	w.heardNow()
	w.out.Start()
	w.t.wg.Go(w.readLoop)
	notify(w.rb.wake) // the goroutine reads until a waiter takes over
}

// Slot returns the worker's slot, shared with its replacements.
func (w *worker) Slot() int { return w.slotIdx }

// Info describes the worker.
func (w *worker) Info() xport.Info {
	return xport.Info{ID: "proc-" + strconv.Itoa(w.slotIdx), PID: w.pid}
}

// Capacity is the MaxWorks the child announced (0: the executor decides).
func (w *worker) Capacity() int { return w.hello.MaxWorks }

// Budget is RecycleAfter (xport.Budgeted): the core stops dispatching to
// the worker once it has sent it that many jobs, and Send's count starts
// its replacement.
func (w *worker) Budget() int { return w.t.cfg.RecycleAfter }

// Send queues jobs for the writer and never blocks. Jobs sent to a worker
// whose pipe broke are dropped: its loss is about to be reported, and the
// core fails them then.
func (w *worker) Send(jobs []*wire.Job) {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return
	}
	w.sent += len(jobs)
	recycle := w.t.cfg.RecycleAfter > 0 && w.sent >= w.t.cfg.RecycleAfter
	w.mu.Unlock()
	w.inflight.Add(int64(len(jobs)))
	w.out.Jobs(link.Peer, jobs, false)
	if recycle && !w.recycle.Swap(true) {
		notify(w.slot.wake) // the supervisor retires w and starts its successor
	}
}

// directGap is the least time between two Submits to a worker for the
// second to write its job itself (Hold). A caller that submits and waits
// for each result (a round trip at a time) leaves more; one that submits
// in a loop leaves less, and the writer's goroutine then gathers several
// jobs in a write (measured: a write per Submit made a sliding window of
// 64 works 15% slower, a Map of ChunkSize(1) half as fast).
const directGap = 10 * time.Microsecond

// Hold makes jobs Sent from now on wait for Release rather than wake the
// writer's goroutine (xport.Holder), when the worker serves round trips:
// its last reply was read by the Get that waited for it (baton.go),
// nothing else is in flight, and the last Submit to it came directGap ago
// or more.
func (w *worker) Hold() bool {
	now := int64(time.Since(w.t.epoch))
	if now-w.lastHold.Swap(now) < int64(directGap) || !w.roundTrips.Load() || w.inflight.Load() != 0 {
		return false
	}
	w.out.Hold()
	return true
}

// Release writes what Hold kept back, in the calling goroutine when the
// writer is idle, and never blocks on the pipe (link.Writer.Release).
func (w *worker) Release() { w.out.Release() }

// Cancel queues a cancel for the writer and never blocks.
func (w *worker) Cancel(ids []uint64) {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.out.Cancel(link.Peer, ids)
}

// Close asks the child to finish its jobs and exit; Sink.Lost(w, nil)
// follows its clean exit.
func (w *worker) Close() {
	w.mu.Lock()
	if w.closed || w.dead {
		w.closed = true
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	w.closing.Store(true)
	w.out.Send(link.Peer, &wire.Shutdown{Graceful: true})
	notify(w.rb.wake) // its Bye and EOF must be read
}

// Kill sends SIGKILL to the child. The loss is reported with an *ExitError
// that wraps the first reason given.
func (w *worker) Kill(reason error) {
	if reason == nil {
		reason = errors.New("killed by the executor")
	}
	w.mu.Lock()
	if w.killErr == nil {
		w.killErr = reason
	}
	w.mu.Unlock()
	// After the process was reaped this is a no-op (os.Process knows), so
	// a late Kill can never hit a recycled pid.
	w.cmd.Process.Kill()
	w.closing.Store(true)
	notify(w.rb.wake) // its EOF must be read
}

// notify posts a wake-up token without blocking; one pending token is
// enough, as the woken goroutine looks at everything queued.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
