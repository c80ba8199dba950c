package host

import (
	"errors"
	"runtime"
	"sync"

	"github.com/aplex-go/aplex/internal/wire"
)

// outbox is ServeConn's writer: work goroutines append finished results and
// control messages under a mutex, and one goroutine writes them. It merges
// every result queued at that moment into as few Results frames as fit, and
// flushes only when the queue is empty, so a burst of results costs one
// system call while a lone result still goes out at once.
type outbox struct {
	w        *wire.Writer
	workerID string
	budget   int // bound on wire.ResultBound sums per Results frame

	mu      sync.Mutex
	results []wire.Result
	ctrl    []wire.Msg
	closed  bool  // no more input: drain, flush, exit
	err     error // first write error; everything is dropped after it

	wake   chan struct{} // capacity 1: "the queue went non-empty"
	failed chan struct{} // closed on the first write error
	done   chan struct{} // closed when run returns
}

func newOutbox(w *wire.Writer, max int, workerID string) *outbox {
	return &outbox{
		w:        w,
		workerID: workerID,
		budget:   max - 64, // the Results envelope (worker id bounded separately)
		wake:     make(chan struct{}, 1),
		failed:   make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// result queues a finished job; it is Config.Emit for ServeConn.
func (o *outbox) result(_ string, r wire.Result) {
	o.enqueue(func() { o.results = append(o.results, r) })
}

// send queues a control message (Hello, Heartbeat, Bye).
func (o *outbox) send(m wire.Msg) {
	o.enqueue(func() { o.ctrl = append(o.ctrl, m) })
}

// enqueue runs add under the lock, unless the outbox is closed or broken,
// and wakes the writer when the queue was empty.
func (o *outbox) enqueue(add func()) {
	o.mu.Lock()
	if o.err != nil || o.closed {
		o.mu.Unlock()
		return
	}
	first := len(o.results) == 0 && len(o.ctrl) == 0
	add()
	o.mu.Unlock()
	if first {
		o.signal()
	}
}

// close makes run write what is queued, flush and return. Later input is
// dropped.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
}

// signal wakes run without blocking; a pending token is enough.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// writeErr returns the first write error.
func (o *outbox) writeErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// run is the writer goroutine.
func (o *outbox) run() {
	defer close(o.done)
	var results []wire.Result
	var ctrl []wire.Msg
	burst := false // the last round wrote several results: more may follow
	dirty := false // written since the last flush
	for {
		o.mu.Lock()
		// Swap the queues with the (empty) buffers written last time, so the
		// steady state allocates nothing.
		results, o.results = o.results, results[:0]
		ctrl, o.ctrl = o.ctrl, ctrl[:0]
		closed := o.closed
		o.mu.Unlock()

		if len(results) == 0 && len(ctrl) == 0 {
			if burst {
				// In a burst, let work goroutines that are about to finish
				// run before paying a system call, so they join this write.
				// Not for a lone result: yielding wakes another thread,
				// which costs more latency than it saves (measured).
				burst = false
				runtime.Gosched()
				continue
			}
			if dirty {
				if err := o.w.Flush(); err != nil {
					o.fail(err)
					return
				}
				dirty = false
			}
			if closed {
				return
			}
			<-o.wake
			continue
		}
		// Control messages first, so that Hello precedes every result;
		// but a Bye, the last word, follows the results of its round.
		var err error
		var bye wire.Msg
		for _, m := range ctrl {
			if _, ok := m.(*wire.Bye); ok {
				bye = m
				continue
			}
			if err = o.w.Write(m); err != nil {
				break
			}
		}
		if err == nil {
			err = o.writeResults(results)
		}
		if err == nil && bye != nil {
			err = o.w.Write(bye)
		}
		clear(results) // drop references to the items until reuse
		clear(ctrl)
		dirty, burst = true, len(results) > 1
		if err != nil {
			o.fail(err)
			return
		}
	}
}

// writeResults writes rs in as few frames as fit the budget.
func (o *outbox) writeResults(rs []wire.Result) error {
	for len(rs) > 0 {
		n, size := 0, len(o.workerID)+2*wire.MaxVarint
		for n < len(rs) {
			s := wire.ResultBound(&rs[n])
			if n > 0 && size+s > o.budget {
				break
			}
			size += s
			n++
		}
		if err := o.writeBatch(rs[:n]); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// writeBatch writes one Results frame. The host keeps every result under
// the limit, so a frame too large can only come from a worker id as big as
// the limit; the results are then answered with size errors in smaller
// frames rather than dropped.
func (o *outbox) writeBatch(rs []wire.Result) error {
	err := o.w.Write(&wire.Results{WorkerID: o.workerID, Results: rs})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		return err
	}
	if len(rs) > 1 {
		half := len(rs) / 2
		if err := o.writeBatch(rs[:half]); err != nil {
			return err
		}
		return o.writeBatch(rs[half:])
	}
	r := wire.Failed(rs[0].ID, len(rs[0].Items), &wire.Error{Code: wire.CodeTooLarge, Message: "aplex: result does not fit in a frame"})
	return o.w.Write(&wire.Results{Results: []wire.Result{r}})
}

// fail records the first write error and drops everything queued.
func (o *outbox) fail(err error) {
	o.mu.Lock()
	o.err = err
	o.results, o.ctrl = nil, nil
	o.mu.Unlock()
	close(o.failed)
}
