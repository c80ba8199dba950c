package link

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/aplex-go/aplex/internal/wire"
)

// Dest is where a message goes. A Writer is generic in it so that a
// destination is held without boxing (a cluster executor's *member, a
// Subject) and handed back as is to Config.Reject.
type Dest interface {
	comparable
	// Subject is the NATS subject ("" on a pipe).
	Subject() string
	// Gone reports that messages still queued for it are to be dropped: a
	// cluster worker the executor dropped must not get Runs whose jobs were
	// failed or re-queued elsewhere meanwhile.
	Gone() bool
}

// Subject is a Dest named by its NATS subject alone; it is never gone.
type Subject string

// Subject returns s.
func (s Subject) Subject() string { return string(s) }

// Gone is false.
func (Subject) Gone() bool { return false }

// Peer is the only destination of a pipe.
const Peer = Subject("")

// Config describes a Writer's messages.
type Config[D Dest] struct {
	// ReplyTo is the ReplyTo of its Runs and Cancels: the executor's inbox
	// on NATS, "" on a pipe.
	ReplyTo string
	// WorkerID is the WorkerID of its Results.
	WorkerID string
	// Slots is the Slots of its Runs: how many jobs a worker runs at once,
	// holding those sent beyond (an executor's WithPrefetch); 0: no bound.
	Slots int
	// Reject answers a job too large for one message (a Map chunk whose
	// items are small enough but together too big), with a CodeTooLarge
	// outcome per item, so it fails instead of vanishing. It is called from
	// the Writer's goroutine and may be nil on a side that sends no jobs.
	Reject func(to D, r wire.Result)
	// OnError is called once, from the Writer's goroutine, with the first
	// write error; everything queued then and later is dropped. A process
	// worker that cannot be written to is lost; a child whose executor
	// cannot be written to stops serving.
	OnError func(err error)
}

// A Writer batches messages over a Conn from one goroutine. Its methods
// only queue and never block on I/O, so callers may hold locks (the core
// calls Send and Cancel under its own); they are safe for concurrent use.
//
// It writes from a goroutine of its own rather than letting the caller
// that finds it idle write (as the cluster worker's writer did). The
// executor sides need the goroutine: their callers hold the core's lock
// and must never wait on a full pipe. On the worker sides the idle-caller
// variant was measured against it (interleaved runs, 2 busy cores): no
// round trip was faster, and a cluster Map of chunk 1 was 31% slower
// (p=0.04), as the work goroutine that found it idle encoded and published
// while other results waited behind it. The one exception is Release: a
// process child's reader that ran quick jobs itself writes their results
// when the Writer is idle, which spares the round trip a thread wake-up
// (measured: the child's context switches per round trip fell from 2.7
// to 1.6, with the jobs run in the reader), and so does a Submit on the
// executor's side when its worker serves round trips (xport.Holder). Over
// a pipe, Release never waits on it: the goroutine writes what the pipe
// does not take at once.
type Writer[D Dest] struct {
	conn      Conn
	cfg       Config[D]
	runBudget int // wire.BatchBudget of a Run or Cancel
	resBudget int // wire.BatchBudget of a Results
	cancelIDs int // ids per Cancel
	startIDs  int // ids per Started
	started   bool
	dropped   atomic.Bool   // Drop or a write error: nothing more is written
	wake      chan struct{} // capacity 1: "the queue went non-empty"
	done      chan struct{} // closed when the goroutine returns

	mu     sync.Mutex
	queue  []op[D]
	closed bool // no more input: write what is queued, flush, return
	held   int  // Holds not yet released: queue without waking the goroutine

	// wmu is held by whoever writes to conn: the goroutine from the round
	// that takes the queue until the flush that ends its burst, or a
	// Release that found it free. So whoever holds it takes the queue in
	// order, and finding it free means that conn holds nothing unflushed.
	// Order: wmu before mu (Release only tries it under mu).
	wmu sync.Mutex
	// Used only by the holder of wmu.
	groups  []group[D]
	jobBuf  []wire.Job
	spare   []op[D] // Release's queue buffer
	pending bool    // a Release left bytes in the Conn for the goroutine to flush
}

type opKind uint8

const (
	opJobs opKind = iota
	opCancel
	opResult
	opStarted
	opMsg
)

// op is one queued call.
type op[D Dest] struct {
	to     D
	kind   opKind
	resend bool
	jobs   []*wire.Job
	ids    []uint64
	result wire.Result
	msg    wire.Msg
}

// group gathers one round's messages for one destination.
type group[D Dest] struct {
	to      D
	jobs    []*wire.Job
	jobSize int
	resend  bool
	ids     []uint64
	results []wire.Result
	resSize int
	started []uint64 // ids of jobs sent ahead that have started (wire.Started)
}

// errDropped ends a round cut short by Drop; it is not reported.
var errDropped = errors.New("link: dropped")

// New returns a Writer over c; Start starts its goroutine.
func New[D Dest](c Conn, cfg Config[D]) *Writer[D] {
	limit := c.Max()
	w := &Writer[D]{
		conn:      c,
		cfg:       cfg,
		runBudget: wire.BatchBudget(limit, cfg.ReplyTo),
		resBudget: wire.BatchBudget(limit, cfg.WorkerID),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	w.cancelIDs = max(w.runBudget/wire.MaxVarint, 1)
	w.startIDs = max(w.resBudget/wire.MaxVarint, 1)
	return w
}

// Start starts the writing goroutine. Messages queued before are written
// then. A Writer that is never started writes nothing and needs no Close.
func (w *Writer[D]) Start() {
	w.started = true
	go w.run()
}

// Jobs queues jobs for to, to go out in Run messages (marked Resend if
// resend: the worker runs none it might have run already). Resends never
// share a Run with new jobs, which the worker must run whatever it
// remembers. jobs is kept until written.
func (w *Writer[D]) Jobs(to D, jobs []*wire.Job, resend bool) {
	w.push(op[D]{to: to, kind: opJobs, jobs: jobs, resend: resend})
}

// Cancel queues a Cancel of ids for to. It goes out after every job queued
// for to before it (it may also follow jobs queued after it, which is
// harmless: ids name jobs sent already). ids is kept until written.
func (w *Writer[D]) Cancel(to D, ids []uint64) {
	w.push(op[D]{to: to, kind: opCancel, ids: ids})
}

// Result queues a finished job for to, to go out in a Results message. A
// result too large for one (which the worker host prevents) goes out as a
// CodeTooLarge outcome per item.
func (w *Writer[D]) Result(to D, r wire.Result) {
	w.push(op[D]{to: to, kind: opResult, result: r})
}

// Started queues the id of a job sent ahead of a free slot that has
// started, to go out in a Started message, before any Results queued
// after it for to. A round's starts share one message, written before
// the round's results (flush).
func (w *Writer[D]) Started(to D, id uint64) {
	w.push(op[D]{to: to, kind: opStarted, result: wire.Result{ID: id}}) // the id alone: no allocation
}

// Send queues a message that is not merged (Hello, Heartbeat, Bye,
// Shutdown). It goes out after everything queued for to before it.
func (w *Writer[D]) Send(to D, m wire.Msg) {
	w.push(op[D]{to: to, kind: opMsg, msg: m})
}

func (w *Writer[D]) push(o op[D]) {
	w.mu.Lock()
	if w.closed || w.dropped.Load() {
		w.mu.Unlock()
		return
	}
	first := len(w.queue) == 0 && w.held == 0
	w.queue = append(w.queue, o)
	w.mu.Unlock()
	if first {
		w.signal()
	}
}

// Hold makes what is queued from now on wait for the matching Release
// instead of waking the goroutine: a caller about to queue several
// messages in a row (a process child's reader running quick jobs itself)
// gets them written together, by itself (see Release).
func (w *Writer[D]) Hold() {
	w.mu.Lock()
	w.held++
	w.mu.Unlock()
}

// Release ends a Hold. When none is left and something is queued, the
// caller writes and flushes it itself if nobody is writing, which saves
// waking the goroutine (another thread: the dearest step of a round
// trip); otherwise it wakes the goroutine. Over a Pipe on a non-blocking
// file the caller never waits: what the pipe does not take at once is
// left to the goroutine. Over another Conn the caller may block on it, so
// it must hold no lock that the Writer's other callers need (unlike Jobs,
// Cancel, Result and Send, which only queue).
func (w *Writer[D]) Release() {
	w.mu.Lock()
	w.held--
	if w.held > 0 || len(w.queue) == 0 {
		w.mu.Unlock()
		return
	}
	if w.closed || !w.started || w.dropped.Load() || !w.wmu.TryLock() {
		w.mu.Unlock()
		w.signal()
		return
	}
	ops := w.queue
	w.queue = w.spare[:0]
	w.mu.Unlock()
	// Never wait on the Conn when it can help it: on a pipe, what the
	// other end is not reading (a stopped child) stays buffered for the
	// goroutine, which waits instead of the caller.
	tc, try := w.conn.(tryConn)
	try = try && tc.tryStart()
	_, err := w.round(ops)
	if err == nil {
		err = w.conn.Flush()
	}
	left := try && !tc.tryEnd()
	clear(ops)
	w.spare = ops[:0]
	if left {
		w.pending = true
	}
	w.wmu.Unlock()
	if err != nil {
		w.fail(err)
		w.signal() // the goroutine sees the drop and returns
	} else if left {
		w.signal()
	}
}

// Close takes no more input, writes what is queued, flushes and waits for
// the goroutine to return.
func (w *Writer[D]) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.signal()
	w.Wait()
}

// Drop drops what is queued and everything later; a write under way ends
// the goroutine without reporting an error. It does not wait (see Wait):
// a write blocked on a full pipe ends only when the pipe is closed.
func (w *Writer[D]) Drop() {
	w.mu.Lock()
	w.dropped.Store(true)
	clear(w.queue)
	w.queue = w.queue[:0]
	w.mu.Unlock()
	w.signal()
}

// Wait waits until the goroutine has returned (after Close, Drop or a
// write error); at once if it was never started.
func (w *Writer[D]) Wait() {
	if w.started {
		<-w.done
	}
}

// signal wakes the goroutine without blocking; a pending token is enough,
// as it looks at everything queued.
func (w *Writer[D]) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the writing goroutine. Each round it takes everything queued and
// writes it; it flushes only when a round finds the queue empty.
func (w *Writer[D]) run() {
	defer close(w.done)
	var ops []op[D]
	burst := false // the last round wrote several items: more may follow
	dirty := false // written since the last flush
	for {
		if !dirty {
			w.wmu.Lock() // a Release may be writing
		}
		if w.pending {
			w.pending, dirty = false, true // a Release left bytes to flush
		}
		w.mu.Lock()
		// Swap the queue with the (empty) one written last time, so the
		// steady state allocates nothing.
		ops, w.queue = w.queue, ops[:0]
		closed := w.closed
		w.mu.Unlock()
		if w.dropped.Load() {
			w.wmu.Unlock()
			return
		}
		if len(ops) == 0 {
			if burst {
				// In a burst, let the goroutines about to queue more (works
				// finishing, a Map being sent) run before paying a system
				// call, so they join this write. Not after a lone message,
				// whose wake-up yielded already (below).
				burst = false
				runtime.Gosched()
				continue
			}
			if dirty {
				if err := w.conn.Flush(); err != nil {
					w.wmu.Unlock()
					w.fail(err)
					return
				}
				dirty = false
			}
			w.wmu.Unlock()
			if closed {
				return
			}
			<-w.wake
			// Woken by one message, this goroutine would run next, ahead
			// of the goroutines made runnable together with the one that
			// queued it (works whose timers fired at once, a reader's
			// batch of dispatches): yield once, so they queue theirs
			// first and the round writes them all in one system call.
			// Measured on a process fan-out of sleeping works: a child
			// wrote one result per two works without it, one per
			// twenty-five with it. Round trips rarely wait here (their
			// writes are direct: Hold, Release); where they do (the
			// cluster), the yield was within the noise.
			runtime.Gosched()
			continue
		}
		n, err := w.round(ops)
		clear(ops) // the items belong to the callers: do not pin them
		if err != nil {
			w.wmu.Unlock()
			w.fail(err)
			return
		}
		dirty, burst = true, n > 1
	}
}

// fail records the first write error, drops everything queued and reports
// it; an error caused by Drop is not reported.
func (w *Writer[D]) fail(err error) {
	if w.dropped.Swap(true) {
		return
	}
	w.mu.Lock()
	clear(w.queue)
	w.queue = nil
	w.mu.Unlock()
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

// round writes one swap of the queue and returns how many items it held.
// Per destination it keeps one open Run (or Results) and the cancelled ids;
// an unmerged message writes what is open for its destination first.
func (w *Writer[D]) round(ops []op[D]) (int, error) {
	w.groups = w.groups[:0]
	n := 0
	for i := range ops {
		o := &ops[i]
		if o.to.Gone() {
			continue
		}
		g := w.group(o.to)
		var err error
		switch o.kind {
		case opJobs:
			n += len(o.jobs)
			err = w.addJobs(g, o.jobs, o.resend)
		case opCancel:
			n++
			g.ids = append(g.ids, o.ids...)
		case opResult:
			n++
			err = w.addResult(g, o.result)
		case opStarted:
			n++
			g.started = append(g.started, o.result.ID)
		case opMsg:
			n++
			if err = w.flush(g); err == nil {
				err = w.write(g.to, o.msg)
			}
		}
		if err != nil {
			return n, err
		}
	}
	for i := range w.groups {
		if err := w.flush(&w.groups[i]); err != nil {
			return n, err
		}
		var zero D
		w.groups[i].to = zero // do not pin a dropped member
	}
	return n, nil
}

// group returns this round's group for to, or starts one. A round rarely
// holds more than a few destinations, so a linear search beats a map, and
// groups from earlier rounds are reused with their buffers.
func (w *Writer[D]) group(to D) *group[D] {
	for i := range w.groups {
		if w.groups[i].to == to {
			return &w.groups[i]
		}
	}
	if len(w.groups) < cap(w.groups) {
		w.groups = w.groups[:len(w.groups)+1]
	} else {
		w.groups = append(w.groups, group[D]{})
	}
	g := &w.groups[len(w.groups)-1]
	g.to, g.resend = to, false
	g.jobs, g.jobSize = g.jobs[:0], 0
	g.ids = g.ids[:0]
	g.results, g.resSize = g.results[:0], 0
	g.started = g.started[:0]
	return g
}

// addJobs adds jobs to g's open Run, writing it whenever the next job
// would not fit.
func (w *Writer[D]) addJobs(g *group[D], jobs []*wire.Job, resend bool) error {
	if resend != g.resend {
		if err := w.writeRun(g); err != nil {
			return err
		}
		g.resend = resend
	}
	for _, j := range jobs {
		size := wire.JobBound(j)
		if size > w.runBudget {
			w.reject(g.to, j, size)
			continue
		}
		if g.jobSize+size > w.runBudget {
			if err := w.writeRun(g); err != nil {
				return err
			}
		}
		g.jobs = append(g.jobs, j)
		g.jobSize += size
	}
	return nil
}

// addResult adds r to g's open Results, writing it first if r would not
// fit.
func (w *Writer[D]) addResult(g *group[D], r wire.Result) error {
	size := wire.ResultBound(&r)
	if size > w.resBudget {
		r = wire.Failed(r.ID, len(r.Items), &wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("aplex: a result of up to %d bytes does not fit in a %d-byte message", size, w.conn.Max())})
		size = wire.ResultBound(&r)
	}
	if g.resSize+size > w.resBudget {
		// The starts queued so far go first: the results written now may
		// be of those jobs.
		if err := w.writeStarted(g); err != nil {
			return err
		}
		if err := w.writeResults(g); err != nil {
			return err
		}
	}
	g.results = append(g.results, r)
	g.resSize += size
	return nil
}

// flush writes what g holds: its Run, then its Cancels (after the Runs of
// the jobs they cancel), then its Started and its Results (the starts of
// the jobs whose results follow first).
func (w *Writer[D]) flush(g *group[D]) error {
	if err := w.writeRun(g); err != nil {
		return err
	}
	for len(g.ids) > 0 {
		k := min(len(g.ids), w.cancelIDs)
		if err := w.write(g.to, &wire.Cancel{ReplyTo: w.cfg.ReplyTo, IDs: g.ids[:k]}); err != nil {
			return err
		}
		g.ids = g.ids[k:]
	}
	if err := w.writeStarted(g); err != nil {
		return err
	}
	return w.writeResults(g)
}

// writeStarted writes g's started ids, in as many Started messages as the
// budget needs.
func (w *Writer[D]) writeStarted(g *group[D]) error {
	for len(g.started) > 0 {
		k := min(len(g.started), w.startIDs)
		if err := w.write(g.to, &wire.Started{WorkerID: w.cfg.WorkerID, IDs: g.started[:k]}); err != nil {
			return err
		}
		g.started = g.started[k:]
	}
	return nil
}

// writeRun writes g's open Run, if any.
func (w *Writer[D]) writeRun(g *group[D]) error {
	if len(g.jobs) == 0 {
		return nil
	}
	w.jobBuf = w.jobBuf[:0]
	for _, j := range g.jobs {
		w.jobBuf = append(w.jobBuf, *j)
	}
	err := w.write(g.to, &wire.Run{ReplyTo: w.cfg.ReplyTo, Resend: g.resend, Slots: w.cfg.Slots, Jobs: w.jobBuf})
	clear(w.jobBuf) // drop references to arguments
	clear(g.jobs)
	g.jobs, g.jobSize = g.jobs[:0], 0
	return err
}

// writeResults writes g's open Results, if any.
func (w *Writer[D]) writeResults(g *group[D]) error {
	if len(g.results) == 0 {
		return nil
	}
	err := w.write(g.to, &wire.Results{WorkerID: w.cfg.WorkerID, Results: g.results})
	clear(g.results)
	g.results, g.resSize = g.results[:0], 0
	return err
}

func (w *Writer[D]) write(to D, m wire.Msg) error {
	if w.dropped.Load() {
		return errDropped
	}
	return w.conn.Write(to.Subject(), m)
}

// reject answers a job that no message can hold.
func (w *Writer[D]) reject(to D, j *wire.Job, size int) {
	if w.cfg.Reject == nil {
		return
	}
	w.cfg.Reject(to, wire.Failed(j.ID, len(j.Args), &wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf(
		"aplex: job %q of %d items needs up to %d bytes, more than a %d-byte message holds; use a smaller ChunkSize",
		j.Name, len(j.Args), size, w.conn.Max())}))
}
