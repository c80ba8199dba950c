package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/aplex-go/aplex/internal/wire"
)

// maxWindow caps Map's default window, so a huge pool does not read
// millions of inputs ahead.
const maxWindow = 4096

// defaultWindow is Map's window without Window(n): the pool's capacity,
// workers × perWorker, capped at maxWindow. Checked against the cap before
// it is multiplied: WithMaxWorksPerWorker(math.MaxInt), a pool with no
// per-worker bound, overflowed the product to a window of one input
// (TestMapWindowWithUnboundedWorkersPerWorker).
func defaultWindow(workers, perWorker int) int {
	if workers >= maxWindow || perWorker >= maxWindow {
		return maxWindow
	}
	return min(max(workers*perWorker, 1), maxWindow)
}

// flushDelay is how long a chunk that is not full waits for its next input
// before it is sent anyway (ChunkSize's policy). A fast input fills its
// chunks well within it; a slow one does not keep a chunk, and so its
// results, waiting for inputs that have not come. It is well above the
// scheduling delays of a busy machine, so a fast input's chunks stay whole.
const flushDelay = 5 * time.Millisecond

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
// caller's goroutine, and runtime.Goexit there ends the caller's goroutine;
// an input that calls yield again after it returned false panics, as it
// would in a range loop.
//
// Cost, measured on a 2 vCPU machine (the bench module's report,
// 2026-11-30, medians of 5 interleaved runs), no-op works: on a thread
// executor 14 M works/s with ChunkSize(100) (0.1 allocations per work) and
// 0.8 M works/s with ChunkSize(1) (1); on a process executor of 2 workers
// 1.8 M works/s with ChunkSize(100) (3 allocations per work) and 250 k
// works/s with ChunkSize(1) (9). Chunk works much shorter than a
// millisecond.
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
		if err = w.check(ex); err == nil {
			err = cc.bindTo(ex)
		}
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
		m.prog = newMapProgress(cc.progress)
		if ex.c.be.wire() {
			// One header for every chunk: the ctx is the same.
			h, err := header(ctx)
			if err != nil {
				var zero R
				yield(zero, err)
				return
			}
			m.header = h
		}
		m.window = cc.window
		if m.window == 0 {
			m.window = defaultWindow(ex.c.windowWorkers(), ex.c.cfg.maxWorksPerWorker+ex.c.cfg.prefetch)
		}
		// The reader may be ahead of the results by a window of full
		// chunks; it gets credit back in batches, so that it does not
		// wake up for every result.
		m.allow = math.MaxInt
		if m.size <= math.MaxInt/m.window {
			m.allow = m.window * m.size
		}
		m.creditBatch = max(m.allow/4, 1)
		m.maxRing = maxRingLen[A](m.allow)
		m.wring = make([]A, min(m.maxRing, 64))
		m.wmask = int64(len(m.wring) - 1)
		m.roomUntil = int64(len(m.wring))
		m.rring, m.rmask = m.wring, m.wmask
		if deadline.IsZero() {
			m.ctx, m.cancel = context.WithCancel(ctx)
		} else {
			m.ctx, m.cancel = context.WithDeadline(ctx, deadline)
		}
		m.parent = ctx
		m.chunkCtx = m.ctx
		if ex.c.be.wire() {
			m.chunkCtx = chunkParent{m.ctx}
			m.watch.start(ex.c, m.ctx)
		}
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

// errYieldAfterFalse is what an input sequence that goes on after its yield
// returned false panics with, in the caller's goroutine.
var errYieldAfterFalse = errors.New("aplex: Map: the input sequence called yield again after it returned false")

// signal posts a wake-up on a 1-buffered channel without ever blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// maxRingBytes bounds the memory of the ring that hands inputs from the
// reader to the loop (but it holds at least one input). The ring starts at
// 64 inputs and doubles while the reader finds it full, up to 4096 inputs
// and this: a full ring costs a goroutine switch each way, so a fast input
// needs a big one, while a small Map should not pay for it.
const maxRingBytes = 64 << 10

// maxRingLen returns the largest ring for inputs of type A and a read-ahead
// credit of limit: a power of two, so that an index is a mask.
func maxRingLen[A any](limit int) int {
	n := 4096
	if size := int(unsafe.Sizeof(*new(A))); size > 0 {
		n = min(n, max(1, maxRingBytes/size))
	}
	n = min(n, limit)
	p := 1
	for p*2 <= n {
		p *= 2
	}
	return p
}

// ringSwitch tells the loop that the reader writes into a bigger ring from
// the input numbered at on.
type ringSwitch[A any] struct {
	ring []A
	at   int64
}

// mapRun is one iteration of a Map. Its loop (run) runs on the caller's
// goroutine: it turns inputs into chunks, submits them while the window has
// room, and yields results. The input sequence is read on a goroutine of its
// own (read), which hands inputs over through a ring: the reader publishes
// each input with one atomic store (no lock), the loop takes them in
// batches.
type mapRun[A, R any] struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc
	chunkCtx context.Context // the chunks' parent: ctx, or for remote workers ctx without Done (mapwatch.go)
	watch    chunkWatch      // remote workers: the one watch on ctx for every chunk
	ex       *Executor
	w        *Work[A, R]
	cc       callConfig
	ordered  bool
	window   int
	size     int
	yield    func(R, error) bool
	header   map[string]string // propagated ctx values for remote chunks; shared, read-only
	prog     *mapProgress      // OnProgress; nil: none

	// The loop's own state.
	rring       []A          // the ring the loop takes inputs from
	rmask       int64        // len(rring)-1
	maxRing     int          // the largest ring
	taken       int64        // inputs taken into chunks
	seen        int64        // inputs known published (written, as last loaded)
	cur         *chunk[A, R] // the chunk being filled
	inputEnded  bool         // the reader has returned and every input is taken
	flushDue    bool         // send cur even though it is not full
	timer       *time.Timer  // flushDelay for a chunk that is not full
	timerOn     bool
	armedLen    int            // len(cur.args) when the timer was armed
	pending     []*chunk[A, R] // ordered: submitted and not yielded, in input order
	head        int            // pending[:head] are yielded
	ready       []*chunk[A, R] // unordered: done chunks being yielded
	flying      int            // chunks submitted and not yet yielded
	owed        int            // inputs yielded and not yet credited to the reader
	creditBatch int            // credit is given back in batches of at least this
	wakeFn      func()         // ordered: wakes the loop when the head chunk ends
	over        bool           // ended: input stopped, works cancelled
	returned    bool           // the loop returned, not panicked or Goexited
	wake        chan struct{}  // wakes the loop: input, a completion
	more        chan struct{}  // wakes the reader: credit, stop
	exited      chan struct{}  // closed when the reader has returned

	// The reader's own state, and what it publishes with each input. The
	// padding keeps the fields written for every input off the cache lines
	// of the others.
	_         [128]byte
	wring     []A   // the ring the reader writes to
	wmask     int64 // len(wring)-1
	wat       int64 // the number of the first input in wring
	wtotal    int64 // inputs published
	roomUntil int64 // the ring has room until wtotal reaches this
	allow     int   // inputs the reader may read before it needs credit
	refused   bool  // push has returned false
	written   atomic.Int64
	_         [128]byte

	// Read-mostly flags between the loop and the reader (set before ended:
	// inputPanic, inPanicked, inGoexit).
	stop        atomic.Bool                   // the Map is over: the reader's yield returns false
	ended       atomic.Bool                   // the reader has returned
	wantInput   atomic.Bool                   // the loop waits on wake for input
	readerWaits atomic.Bool                   // the reader waits on more for credit
	credit      atomic.Int64                  // credit given back, not yet taken into allow
	takenA      atomic.Int64                  // taken, published for the reader's ring room
	grown       atomic.Pointer[ringSwitch[A]] // set by the reader, cleared by the loop once it switched
	inputPanic  any                           // what the input sequence panicked with
	inPanicked  bool
	inGoexit    bool
	_           [128]byte

	// MapUnordered's completions, from the goroutines that end chunks.
	mu       sync.Mutex
	wantDone bool           // the loop waits on wake for a completion
	done     []*chunk[A, R] // chunks done, not yet taken by the loop
	_        [128]byte
}

// read runs the input sequence on its own goroutine.
func (m *mapRun[A, R]) read(inputs iter.Seq[A]) {
	normal := false
	defer func() {
		if !normal {
			p := recover() // nil: runtime.Goexit (a nil panic is a *runtime.PanicNilError)
			m.inputPanic, m.inPanicked, m.inGoexit = p, p != nil, p == nil
		}
		m.ended.Store(true)
		m.wakeLoopForInput()
		close(m.exited)
	}()
	if !m.stop.Load() {
		inputs(m.push)
	}
	normal = true
}

// push is the input sequence's yield: it hands a over to the loop, first
// waiting for credit if the reader is a window ahead, or for room in the
// ring.
func (m *mapRun[A, R]) push(a A) bool {
	if (m.allow == 0 || m.wtotal == m.roomUntil) && !m.waitRoom() || m.stop.Load() {
		if m.refused {
			// As the runtime does for a range loop: raised in the caller.
			panic(errYieldAfterFalse)
		}
		m.refused = true
		return false
	}
	m.allow--
	m.wring[m.wtotal&m.wmask] = a
	m.wtotal++
	m.written.Store(m.wtotal)
	m.wakeLoopForInput()
	return true
}

// wakeLoopForInput wakes the loop if it waits for input. The loop sets
// wantInput before it looks at written and ended one last time, and the
// reader changes those before it reads wantInput: one of the two sees the
// other (Go's atomics are sequentially consistent).
func (m *mapRun[A, R]) wakeLoopForInput() {
	if m.wantInput.Load() && m.wantInput.CompareAndSwap(true, false) {
		signal(m.wake)
	}
}

// waitRoom waits until the reader may read one more input: credit and
// room in the ring, which the loop gives back (false: the Map is over).
func (m *mapRun[A, R]) waitRoom() bool {
	for {
		if m.stop.Load() {
			return false
		}
		if m.refreshRoom() {
			return true
		}
		m.readerWaits.Store(true)
		if m.refreshRoom() || m.stop.Load() {
			if !m.readerWaits.CompareAndSwap(true, false) {
				<-m.more // the loop has claimed the wake-up: take its token
			}
			continue
		}
		<-m.more
	}
}

// refreshRoom takes the credit and ring room the loop has given back; true
// if the reader may read one more input.
func (m *mapRun[A, R]) refreshRoom() bool {
	if m.allow == 0 {
		m.allow = int(m.credit.Swap(0))
	}
	if m.wtotal == m.roomUntil {
		m.roomUntil = max(m.takenA.Load(), m.wat) + int64(len(m.wring))
		if m.wtotal == m.roomUntil && len(m.wring) < m.maxRing && m.grown.Load() == nil {
			// Full, and the loop reads from this ring: double it. The
			// inputs in the old one stay there until the loop took them.
			n := 2 * len(m.wring)
			m.wring, m.wmask, m.wat = make([]A, n), int64(n-1), m.wtotal
			m.grown.Store(&ringSwitch[A]{ring: m.wring, at: m.wtotal})
			m.roomUntil = m.wtotal + int64(n)
		}
	}
	return m.allow > 0 && m.wtotal < m.roomUntil
}

// wakeReader wakes the reader if it waits for credit.
func (m *mapRun[A, R]) wakeReader() {
	if m.readerWaits.Load() && m.readerWaits.CompareAndSwap(true, false) {
		signal(m.more)
	}
}

// giveCredit hands the yielded inputs back to the reader as credit. The
// reader's allow and credit and the inputs not yet yielded never sum to more
// than the initial credit, so this cannot overflow.
func (m *mapRun[A, R]) giveCredit() {
	if m.owed == 0 {
		return
	}
	m.credit.Add(int64(m.owed))
	m.owed = 0
	m.wakeReader()
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
		if m.prog != nil {
			m.prog.tick()
		}
		if m.inputEnded && m.cur == nil && m.flying == 0 {
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
		if m.cur == nil || len(m.cur.args) < m.size {
			if m.taken < m.seen {
				m.fill()
				continue
			}
			if !m.inputEnded && m.takeInput() {
				continue
			}
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

// fill moves published inputs into cur, starting one if needed, and gives
// their room in the ring back to the reader.
func (m *mapRun[A, R]) fill() {
	avail := m.seen - m.taken
	if m.cur == nil {
		m.cur = newChunk(m.w, m.size, max(int(avail), min(m.maxRing, 256)), m.ex.c.be.wire())
	}
	n := int(min(avail, int64(m.size-len(m.cur.args))))
	for n > 0 {
		lim := n
		if sw := m.grown.Load(); sw != nil {
			if m.taken == sw.at {
				m.rring, m.rmask = sw.ring, int64(len(sw.ring)-1)
				m.grown.Store(nil)
				continue
			}
			lim = min(lim, int(sw.at-m.taken)) // the rest is in the new ring
		}
		i := int(m.taken & m.rmask)
		k := min(lim, len(m.rring)-i)
		in := m.rring[i : i+k]
		m.cur.args = append(m.cur.args, in...)
		clear(in) // the chunk holds them now; the ring must not keep them alive
		m.taken += int64(k)
		n -= k
	}
	m.takenA.Store(m.taken)
	m.wakeReader()
}

// takeInput looks for inputs the reader has published since; false if
// there were none. When the input has ended and every input is taken, it
// raises a panic or Goexit of the input sequence here, in the caller's
// goroutine.
func (m *mapRun[A, R]) takeInput() bool {
	if m.owed >= m.creditBatch {
		m.giveCredit()
	}
	ended := m.ended.Load() // before written: all of it is then published
	if w := m.written.Load(); w > m.seen {
		m.seen = w
		return true
	}
	if !ended {
		return false
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
	ch.t.init(m.ex, ch, m.chunkCtx, &m.cc)
	vctx := c.observeQueued(&ch.t, m.ctx, len(args)) // m.ctx without an observer
	if c.be.wire() {
		h := m.header
		if ch.t.ob() != nil { // the observer's values (a span) for this chunk
			var err error
			if h, err = header(vctx); err != nil {
				return m.fail(c.rejected(&ch.t, err))
			}
		}
		rj := ch.t.rjob() // newChunk's
		var enc [][]byte
		var err error
		if len(args) == 1 {
			rj.arg1[0], err = encodeArg(c, &args[0], h)
			enc = rj.arg1[:]
		} else {
			enc, err = encodeArgs(c, args, h)
		}
		if err != nil {
			return m.fail(c.rejected(&ch.t, err))
		}
		rj.job = wire.Job{Name: m.w.name, Header: h, Args: enc}
	}
	if err := c.submit(m.ctx, &ch.t, true); err != nil {
		return m.fail(m.ctxErr(c.rejected(&ch.t, err)))
	}
	m.watch.submitted(&ch.t)
	m.flying++
	if m.prog != nil {
		m.prog.submitted += len(args)
	}
	if m.ordered {
		m.pending = append(m.pending, ch)
	} else {
		ch.onDone.fn = func() { m.completed(ch) }
		ch.t.onDoneNode(&ch.onDone)
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
	if err := ch.t.outcomeErr(); err != nil {
		m.countProgress(0, len(ch.args))
		return m.fail(m.ctxErr(err))
	}
	vals, errs := ch.outcomes()
	for i := range vals {
		if errs[i] != nil {
			m.countProgress(i, 1)
			return m.fail(errs[i])
		}
		if !m.yield(vals[i], nil) {
			m.countProgress(i+1, 0)
			return false
		}
	}
	m.countProgress(len(vals), 0)
	return true
}

// countProgress counts inputs yielded for OnProgress.
func (m *mapRun[A, R]) countProgress(done, failed int) {
	if m.prog != nil {
		m.prog.done += done
		m.prog.failed += failed
	}
}

// wait blocks until there is something to do: an input, a completion that
// can be yielded, a partial chunk due, or the end of ctx. False if the Map
// ended.
func (m *mapRun[A, R]) wait() bool {
	if m.ordered && m.flying > 0 {
		if h := m.pending[m.head]; h.onDone.fn == nil {
			// Registered once; if the chunk has ended meanwhile, wakeFn
			// runs now and the chunk is yielded next round.
			h.onDone.fn = m.wakeFn
			h.t.onDoneNode(&h.onDone)
		}
	}
	// Input is wanted when it can be used: not when the window is full,
	// where the completion that frees it wakes the loop anyway.
	wantInput := !m.inputEnded && m.taken == m.seen && (m.cur == nil || len(m.cur.args) < m.size) && m.flying < m.window
	partial := m.cur != nil && len(m.cur.args) < m.size && !m.flushDue
	if wantInput {
		m.wantInput.Store(true)
		if m.written.Load() > m.seen || m.ended.Load() {
			m.wantInput.Store(false) // a wake-up already sent is only spurious
			return true
		}
	}
	if !m.ordered {
		m.mu.Lock()
		if len(m.done) > 0 {
			m.mu.Unlock()
			m.wantInput.Store(false)
			return true
		}
		m.wantDone = m.flying > 0
		m.mu.Unlock()
	}
	if m.owed >= m.creditBatch || m.flying == 0 {
		m.giveCredit()
	}

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
	ok := true
	select {
	case <-m.wake:
	case <-timerC:
		m.timerOn = false
		m.flushDue = true
	case <-m.ctx.Done():
		ok = m.fail(m.ctxErr(m.ctx.Err()))
	}
	if wantInput {
		m.wantInput.Store(false)
	}
	return ok
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
	m.stop.Store(true)
	m.wakeReader()
	if m.ordered {
		for _, ch := range m.pending[m.head:] {
			ch.t.cancel(errCanceled)
		}
	}
	// Unordered chunks are tracked by the executor only: ending the Map's
	// ctx cancels them, through each chunk's own watch on goroutine
	// workers, through the Map's one watch on remote ones (mapwatch.go),
	// which has cancelled every chunk not yielded yet once end returns.
	m.cancel()
	m.watch.end(m.flying > 0)
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
	if m.prog != nil && m.returned {
		m.prog.final()
	}
	if !m.returned && !m.inputEnded {
		return
	}
	<-m.exited
	// The input panicked or called Goexit after the loop stopped taking
	// its inputs (told to stop, it went on): raise it here, as if it had
	// run in this goroutine.
	if m.returned && !m.inputEnded {
		if m.inPanicked {
			panic(m.inputPanic)
		}
		if m.inGoexit {
			runtime.Goexit()
		}
	}
}
