package cluster

import (
	"log/slog"
	"sync"

	"github.com/aplex-go/aplex/internal/wire"
)

// outbox sends a worker's finished jobs to their executors. It has no
// goroutine of its own: the work goroutine that finds it idle publishes
// what is queued, and keeps publishing while others queue more. A lone
// result therefore goes out with no hand-off to another goroutine (which
// costs tens of microseconds on a busy machine), while a burst is merged
// into one Results message per executor, as many results as fit NATS' max
// payload. NATS' own flusher then writes them to the socket in one go.
type outbox struct {
	nc       *sealConn
	workerID string
	budget   int // bound on the summed wire.ResultBound of one message
	log      *slog.Logger

	mu    sync.Mutex
	queue []outResult
	spare []outResult
	busy  bool       // a goroutine is publishing
	mute  bool       // results are dropped (the worker was killed)
	idle  *sync.Cond // signalled when busy ends (flush waits on it)

	// Used only by the publishing goroutine.
	groups []outGroup
	buf    []byte
}

type outResult struct {
	replyTo string
	r       wire.Result
	size    int
}

// outGroup gathers one round's results for one executor.
type outGroup struct {
	replyTo string
	rs      []wire.Result
	size    int
}

func newOutbox(nc *sealConn, workerID string, maxPayload int, log *slog.Logger) *outbox {
	o := &outbox{
		nc:       nc,
		workerID: workerID,
		budget:   maxPayload - len(workerID) - wire.EnvelopeBound,
		log:      log,
	}
	o.idle = sync.NewCond(&o.mu)
	return o
}

// add queues a finished job and, unless another goroutine is publishing,
// publishes everything queued.
func (o *outbox) add(replyTo string, r wire.Result, size int) {
	o.mu.Lock()
	if o.mute {
		o.mu.Unlock()
		return
	}
	o.queue = append(o.queue, outResult{replyTo, r, size})
	if o.busy {
		o.mu.Unlock()
		return
	}
	o.busy = true
	for len(o.queue) > 0 {
		batch := o.queue
		o.queue = o.spare[:0]
		o.mu.Unlock()
		o.publish(batch)
		clear(batch) // drop references to results until reuse
		o.mu.Lock()
		o.spare = batch[:0]
	}
	o.busy = false
	o.idle.Broadcast()
	o.mu.Unlock()
}

// silence drops every result from now on. A killed worker answers nothing:
// executors then see its works unanswered at its Bye and fail them with a
// *aplex.WorkerError, which aplex.Retry may resend elsewhere, rather than
// with a cancellation nobody asked for.
func (o *outbox) silence() {
	o.mu.Lock()
	o.mute = true
	clear(o.queue)
	o.queue = o.queue[:0]
	o.mu.Unlock()
}

// flush waits until everything queued has been handed to NATS.
func (o *outbox) flush() {
	o.mu.Lock()
	for o.busy || len(o.queue) > 0 {
		o.idle.Wait()
	}
	o.mu.Unlock()
}

// publish sends batch, grouped by executor in order of first appearance
// (an executor's results keep their order), in as few messages as fit.
func (o *outbox) publish(batch []outResult) {
	o.groups = o.groups[:0]
	for i := range batch {
		b := &batch[i]
		g := o.group(b.replyTo)
		if len(g.rs) > 0 && g.size+b.size > o.budget {
			o.send(g)
		}
		g.rs = append(g.rs, b.r)
		g.size += b.size
	}
	for i := range o.groups {
		if len(o.groups[i].rs) > 0 {
			o.send(&o.groups[i])
		}
	}
}

// group returns this round's group for replyTo.
func (o *outbox) group(replyTo string) *outGroup {
	return groupIn(&o.groups,
		func(g *outGroup) bool { return g.replyTo == replyTo },
		func(g *outGroup) { g.replyTo, g.rs, g.size = replyTo, g.rs[:0], 0 })
}

// send publishes g's results as one message and empties g. A failed
// publish (connection closed, reconnect buffer full) loses nothing for
// good: the executor sends the job again after it reconnects, and the
// worker's session memory answers it.
func (o *outbox) send(g *outGroup) {
	var err error
	o.buf, err = wire.AppendMsg(o.buf[:0], &wire.Results{WorkerID: o.workerID, Results: g.rs})
	if err == nil {
		err = o.nc.Publish(g.replyTo, o.buf)
	}
	if err != nil {
		o.log.Debug("aplex cluster worker: publish results", "to", g.replyTo, "results", len(g.rs), "err", err)
	}
	clear(g.rs)
	g.rs, g.size = g.rs[:0], 0
	if cap(o.buf) > 4<<20 {
		o.buf = nil // do not pin a large message's buffer
	}
}
