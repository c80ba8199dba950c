package aplex

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// maxWindow caps Map's default window, so a huge pool does not read
// millions of inputs ahead.
const maxWindow = 4096

// flushDelay is how long a chunk that is not full waits for its next input
// before it is sent anyway (ChunkSize's policy). A fast input fills its
// chunks well within it; a slow one does not keep a chunk, and so its
// results, waiting for inputs that have not come.
const flushDelay = time.Millisecond

// Map runs w over inputs on ex and yields the results in input order.
//
// Inputs are read lazily, no more than a window of chunks ahead of the
// results (see Window), so an endless or huge sequence runs in constant
// memory. The window bounds the work in flight, not the latency: each
// result is yielded as soon as it is next in order, while the input is
// still being read. ChunkSize(n) sends n inputs to one worker in one
// dispatch, where they run concurrently. Timeout(d) bounds the whole Map
// from this call. The first error (a work's, in its place in input order; a
// timeout; ctx's) ends the Map: the input is no longer read, every remaining
// work is cancelled, and the error is yielded last; a loop that breaks early
// cancels them too. Bad arguments are yielded as the only error.
//
// The input sequence runs on a goroutine of its own, so that a slow input
// does not hold back results; it must not share unsynchronised state with
// the loop body. The results are yielded on the caller's goroutine. When the
// Map ends early, the input is asked to stop the next time it yields, and
// the loop returns once it has returned: an input blocked in its own code
// delays the end of the loop (not the error, which is yielded at once),
// unless the loop body panicked or called runtime.Goexit, which never wait
// for the input. A panic in the input sequence is raised again in the
// caller's goroutine, and runtime.Goexit there ends the caller's goroutine.
func Map[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return mapSeq(ctx, ex, w, inputs, opts, true)
}

// MapUnordered is Map yielding each result as soon as its work is done, in
// completion order (by chunk; the items of one chunk keep their order); the
// first error in that order ends it.
func MapUnordered[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return mapSeq(ctx, ex, w, inputs, opts, false)
}

func mapSeq[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts []CallOption, ordered bool) iter.Seq2[R, error] {
	cc, err := buildCallConfig(opts, true)
	switch {
	case err != nil:
	case ctx == nil:
		err = errors.New("aplex: Map: nil context")
	case inputs == nil:
		err = errors.New("aplex: Map: nil inputs")
	default:
		err = w.check(ex)
	}
	var deadline time.Time
	if cc.timeout > 0 {
		deadline = time.Now().Add(cc.timeout) // from the call, not the first iteration
	}
	return func(yield func(R, error) bool) {
		if err != nil {
			var zero R
			yield(zero, err)
			return
		}
		m := &mapRun[A, R]{ex: ex, w: w, cc: cc, ordered: ordered, yield: yield, size: cc.chunkSize}
		m.window = cc.window
		if m.window == 0 {
			m.window = min(max(ex.c.cfg.poolSize*ex.c.cfg.maxWorksPerWorker, 1), maxWindow)
		}
		// The reader may be ahead of the results by a window of full
		// chunks; it gets credit back in batches, so that it does not
		// wake up for every result.
		m.credit = math.MaxInt
		if m.size <= math.MaxInt/m.window {
			m.credit = m.window * m.size
		}
		m.creditBatch = max(m.credit/4, 1)
		if deadline.IsZero() {
			m.ctx, m.cancel = context.WithCancel(ctx)
		} else {
			m.ctx, m.cancel = context.WithDeadline(ctx, deadline)
		}
		m.parent = ctx
		m.wake = make(chan struct{}, 1)
		m.more = make(chan struct{}, 1)
		m.exited = make(chan struct{})
		if ordered {
			m.wakeFn = func() { signal(m.wake) }
		}
		defer m.end()
		go m.read(inputs)
		m.run()
		m.returned = true
	}
}

// signal posts a wake-up on a 1-buffered channel without ever blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// mapRun is one iteration of a Map. Its loop (run) runs on the caller's
// goroutine: it turns inputs into chunks, submits them while the window has
// room, and yields results. The input sequence is read on a goroutine of its
// own (read), which hands inputs over through buf.
type mapRun[A, R any] struct {
	parent  context.Context
	ctx     context.Context
	cancel  context.CancelFunc
	ex      *Executor
	w       *Work[A, R]
	cc      callConfig
	ordered bool
	window  int
	size    int
	yield   func(R, error) bool

	// The loop's own state.
	items      []A          // inputs taken from the reader, not yet in a chunk
	ii         int          // items[:ii] are in chunks
	cur        *chunk[A, R] // the chunk being filled
	inputEnded bool         // the reader has returned and everything it read is in items
	flushDue   bool         // send cur even though it is not full
	timer      *time.Timer  // flushDelay for a chunk that is not full
	timerOn    bool
	armedLen   int            // len(cur.args) when the timer was armed
	pending    []*chunk[A, R] // ordered: submitted and not yielded, in input order
	head       int            // pending[:head] are yielded
	ready      []*chunk[A, R] // unordered: done chunks being yielded
	flying     int            // chunks submitted and not yet yielded
	owed       int            // inputs yielded and not yet credited to the reader
	wakeFn     func()         // ordered: wakes the loop when the head chunk ends
	over       bool           // ended: input stopped, works cancelled
	returned   bool           // the loop returned, not panicked or Goexited
	wake       chan struct{}  // wakes the loop: input, a completion
	more       chan struct{}  // wakes the reader: credit, stop
	exited     chan struct{}  // closed when the reader has returned
	inputPanic any            // what the input sequence panicked with

	// The fields below are shared with the reader and the completion
	// callbacks; the padding keeps the loop's own fields off their cache
	// lines, which every input would otherwise bounce between the cores.
	_           [128]byte
	mu          sync.Mutex
	buf         []A            // read, not yet taken by the loop
	credit      int            // how many more inputs the reader may read
	creditBatch int            // credit is given back in batches of at least this
	inEnded     bool           // the reader has returned
	inPanicked  bool           // … by a panic (inputPanic)
	inGoexit    bool           // … by runtime.Goexit
	stop        bool           // the Map is over: the reader's yield returns false
	readerWaits bool           // the reader waits on more for credit
	wantInput   bool           // the loop waits on wake for input
	wantDone    bool           // the loop waits on wake for a completion (unordered)
	done        []*chunk[A, R] // unordered: chunks done, not yet taken by the loop
	_           [128]byte
}

// read runs the input sequence on its own goroutine.
func (m *mapRun[A, R]) read(inputs iter.Seq[A]) {
	normal := false
	defer func() {
		var p any
		if !normal {
			p = recover() // nil: runtime.Goexit (a nil panic is a *runtime.PanicNilError)
		}
		m.mu.Lock()
		m.inEnded = true
		if !normal {
			m.inputPanic = p
			m.inPanicked = p != nil
			m.inGoexit = p == nil
		}
		wake := m.wantInput
		m.wantInput = false
		m.mu.Unlock()
		if wake {
			signal(m.wake)
		}
		close(m.exited)
	}()
	m.mu.Lock()
	stop := m.stop
	m.mu.Unlock()
	if !stop {
		inputs(m.push)
	}
	normal = true
}

// push is the input sequence's yield: it hands a over to the loop, first
// waiting for credit if the reader is a window ahead.
func (m *mapRun[A, R]) push(a A) bool {
	m.mu.Lock()
	for m.credit == 0 && !m.stop {
		m.readerWaits = true
		m.mu.Unlock()
		<-m.more
		m.mu.Lock()
	}
	if m.stop {
		m.mu.Unlock()
		return false
	}
	m.credit--
	m.buf = append(m.buf, a)
	wake := m.wantInput
	m.wantInput = false
	m.mu.Unlock()
	if wake {
		signal(m.wake)
	}
	return true
}

// giveCreditLocked hands the yielded inputs back to the reader as credit.
func (m *mapRun[A, R]) giveCreditLocked() {
	if m.owed == 0 {
		return
	}
	if m.credit <= math.MaxInt-m.owed {
		m.credit += m.owed
	} else {
		m.credit = math.MaxInt
	}
	m.owed = 0
	if m.readerWaits {
		m.readerWaits = false
		signal(m.more)
	}
}

// completed queues a done chunk for MapUnordered's loop. It runs in the
// goroutine that ended the chunk, perhaps a transport's: it never blocks.
func (m *mapRun[A, R]) completed(ch *chunk[A, R]) {
	m.mu.Lock()
	m.done = append(m.done, ch)
	wake := m.wantDone
	m.wantDone = false
	m.mu.Unlock()
	if wake {
		signal(m.wake)
	}
}

// run is the Map's loop: submit, yield, wait, until the input is used up and
// every result yielded, or the Map ends early.
func (m *mapRun[A, R]) run() {
	for {
		// Yield first: that frees room in the window for feed.
		if !m.yieldReady() || !m.feed() {
			return
		}
		if m.inputEnded && m.ii == len(m.items) && m.cur == nil && m.flying == 0 {
			return
		}
		if !m.wait() {
			return
		}
	}
}

// feed puts the inputs at hand into chunks and submits the chunks that are
// due while the window has room; false if the Map failed.
func (m *mapRun[A, R]) feed() bool {
	for {
		if m.ii < len(m.items) && (m.cur == nil || len(m.cur.args) < m.size) {
			n := len(m.items) - m.ii
			if m.cur == nil {
				m.cur = newChunk(m.w, m.size, n)
			}
			n = min(n, m.size-len(m.cur.args))
			m.cur.args = append(m.cur.args, m.items[m.ii:m.ii+n]...)
			m.ii += n
			continue
		}
		if m.ii == len(m.items) && !m.inputEnded && (m.cur == nil || len(m.cur.args) < m.size) && m.takeInput() {
			continue
		}
		if m.cur != nil && (len(m.cur.args) == m.size || m.flushDue || m.inputEnded) {
			if m.flying >= m.window {
				return true // wait for room
			}
			ch := m.cur
			m.cur, m.flushDue = nil, false
			m.stopTimer()
			if !m.submit(ch) {
				return false
			}
			continue
		}
		return true
	}
}

// takeInput takes what the reader has read; false if there was nothing new.
// A panic or Goexit of the input sequence is raised here, in the caller's
// goroutine.
func (m *mapRun[A, R]) takeInput() bool {
	m.mu.Lock()
	got := len(m.buf) > 0
	if got {
		clear(m.items) // drop references to inputs already sent
		m.items, m.buf = m.buf, m.items[:0]
		m.ii = 0
	}
	ended := m.inEnded && !got
	if m.owed >= m.creditBatch {
		m.giveCreditLocked()
	}
	m.mu.Unlock()
	if !ended {
		return got
	}
	m.inputEnded = true
	if m.inPanicked {
		panic(m.inputPanic)
	}
	if m.inGoexit {
		runtime.Goexit()
	}
	return true
}

// submit dispatches one chunk; false (after yielding the error) if it fails.
func (m *mapRun[A, R]) submit(ch *chunk[A, R]) bool {
	c := m.ex.c
	args := ch.args
	ch.t.init(c, ch, m.ctx, &m.cc)
	if c.remote() {
		enc := make([][]byte, len(args))
		for i, a := range args {
			b, err := c.encodeArg(a)
			if err != nil {
				return m.fail(err)
			}
			enc[i] = b
		}
		ch.t.rj = &remoteJob{job: wire.Job{Name: m.w.name, Args: enc}}
	}
	if err := c.submit(m.ctx, &ch.t, true); err != nil {
		return m.fail(m.ctxErr(err))
	}
	m.flying++
	if m.ordered {
		m.pending = append(m.pending, ch)
	} else {
		ch.t.onDone(func() { m.completed(ch) })
	}
	return true
}

// yieldReady yields the results that are due: the chunks at the head of the
// input order that are done (Map), or every done chunk (MapUnordered).
func (m *mapRun[A, R]) yieldReady() bool {
	if m.ordered {
		for m.flying > 0 && m.pending[m.head].t.finished() {
			ch := m.pending[m.head]
			m.pending[m.head] = nil
			m.head++
			if m.head > len(m.pending)/2 && m.head > 64 { // keep the slice from growing forever
				n := copy(m.pending, m.pending[m.head:])
				clear(m.pending[n:])
				m.pending = m.pending[:n]
				m.head = 0
			}
			if !m.yieldChunk(ch) {
				return false
			}
		}
		return true
	}
	m.mu.Lock()
	if len(m.done) == 0 {
		m.mu.Unlock()
		return true
	}
	m.ready, m.done = m.done, m.ready[:0]
	m.mu.Unlock()
	for i, ch := range m.ready {
		m.ready[i] = nil
		if !m.yieldChunk(ch) {
			return false
		}
	}
	return true
}

// yieldChunk yields a done chunk's results; false to stop.
func (m *mapRun[A, R]) yieldChunk(ch *chunk[A, R]) bool {
	m.flying--
	m.owed += len(ch.args)
	if ch.t.err != nil {
		return m.fail(m.ctxErr(ch.t.err))
	}
	for i := range ch.vals {
		if ch.errs[i] != nil {
			return m.fail(ch.errs[i])
		}
		if !m.yield(ch.vals[i], nil) {
			return false
		}
	}
	return true
}

// wait blocks until there is something to do: an input, a completion that
// can be yielded, a partial chunk due, or the end of ctx. False if the Map
// ended.
func (m *mapRun[A, R]) wait() bool {
	if m.ordered && m.flying > 0 {
		if h := m.pending[m.head]; !h.watched {
			h.watched = true
			h.t.onDone(m.wakeFn)
		}
	}
	// Input is wanted when it can be used: not when the window is full,
	// where the completion that frees it wakes the loop anyway.
	wantInput := !m.inputEnded && m.ii == len(m.items) && (m.cur == nil || len(m.cur.args) < m.size) && m.flying < m.window
	partial := m.cur != nil && len(m.cur.args) < m.size && !m.flushDue
	m.mu.Lock()
	if wantInput && (len(m.buf) > 0 || m.inEnded) || len(m.done) > 0 {
		m.mu.Unlock()
		return true
	}
	if m.owed >= m.creditBatch || m.flying == 0 {
		m.giveCreditLocked()
	}
	m.wantInput = wantInput
	m.wantDone = !m.ordered && m.flying > 0
	m.mu.Unlock()

	var timerC <-chan time.Time
	if partial {
		// Count the input's silence: re-arm whenever the chunk grew.
		if !m.timerOn || m.armedLen != len(m.cur.args) {
			if m.timer == nil {
				m.timer = time.NewTimer(flushDelay)
			} else {
				m.timer.Reset(flushDelay)
			}
			m.timerOn, m.armedLen = true, len(m.cur.args)
		}
		timerC = m.timer.C
	}
	select {
	case <-m.wake:
	case <-timerC:
		m.timerOn = false
		m.flushDue = true
	case <-m.ctx.Done():
		return m.fail(m.ctxErr(m.ctx.Err()))
	}
	return true
}

func (m *mapRun[A, R]) stopTimer() {
	if m.timerOn {
		m.timer.Stop()
		m.timerOn = false
	}
}

// ctxErr explains a failure caused by the Map's own deadline.
func (m *mapRun[A, R]) ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && m.parent.Err() == nil && m.cc.timeout > 0 {
		return fmt.Errorf("aplex: Map timed out after %v: %w", m.cc.timeout, context.DeadlineExceeded)
	}
	return err
}

// fail ends the Map and yields err as its last value.
func (m *mapRun[A, R]) fail(err error) bool {
	m.stopAll()
	var zero R
	m.yield(zero, err)
	return false
}

// stopAll stops the reader and cancels every work not yet yielded, before
// the error is yielded: the loop body may take its time.
func (m *mapRun[A, R]) stopAll() {
	if m.over {
		return
	}
	m.over = true
	m.mu.Lock()
	m.stop = true
	if m.readerWaits {
		m.readerWaits = false
		signal(m.more)
	}
	m.mu.Unlock()
	if m.ordered {
		for _, ch := range m.pending[m.head:] {
			ch.t.cancel(errCanceled)
		}
	}
	// Unordered chunks are tracked by the executor only: cancelling the
	// Map's ctx cancels the running ones, and queued ones see it too.
	m.cancel()
}

// end runs when the Map's loop returns, however it does (end of input, an
// error, a break, a panic or Goexit in the loop body): the works are
// cancelled and the reader told to stop. When the loop returned, end waits
// for the reader too, so that nothing the Map started outlives it. A panic
// or Goexit of the loop body (t.Fatal) does not wait: an input blocked in
// its own code must not turn a failure into a hang; the reader then returns
// as soon as the input yields again.
func (m *mapRun[A, R]) end() {
	m.stopAll()
	m.stopTimer()
	if m.returned || m.inputEnded {
		<-m.exited
	}
}
