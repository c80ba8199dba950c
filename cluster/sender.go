package cluster

import (
	"fmt"
	"sync"

	"github.com/aplex-go/aplex/internal/wire"
)

// sender publishes the executor's Runs and Cancels from one goroutine.
// The core calls Worker.Send under its lock, so Send only queues; the
// sender takes everything queued at once, merges each worker's jobs into
// as few Run messages as fit NATS' max payload, and publishes them. NATS'
// flusher then writes a burst to the socket at once. Per worker, messages
// keep the order they were queued in, so a Cancel follows its Run.
type sender struct {
	t      *transport
	budget int // bound on the summed wire.JobBound of one Run

	mu     sync.Mutex
	queue  []sendOp
	spare  []sendOp
	closed bool
	wake   chan struct{}
	done   chan struct{}

	// Used only by the sender goroutine.
	batches []runBatch
	jobBuf  []wire.Job
	buf     []byte
}

type sendOp struct {
	m      *member
	jobs   []*wire.Job
	resend bool // jobs sent before, again: their Runs are marked Resend
	cancel []uint64
}

// runBatch gathers one round's jobs for one worker.
type runBatch struct {
	m      *member
	jobs   []*wire.Job
	size   int
	resend bool
}

func newSender(t *transport) *sender {
	return &sender{
		t:      t,
		budget: t.max - len(t.inbox) - wire.EnvelopeBound,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

func (s *sender) jobs(m *member, jobs []*wire.Job) { s.push(sendOp{m: m, jobs: jobs}) }

// resend queues jobs sent to m before, in Runs marked Resend: the worker
// runs none of them it might have run already.
func (s *sender) resend(m *member, jobs []*wire.Job) {
	s.push(sendOp{m: m, jobs: jobs, resend: true})
}

func (s *sender) cancel(m *member, ids []uint64) {
	s.push(sendOp{m: m, cancel: ids})
}

func (s *sender) push(op sendOp) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	first := len(s.queue) == 0
	s.queue = append(s.queue, op)
	s.mu.Unlock()
	if first {
		notify(s.wake)
	}
}

// close stops the goroutine once the queue is empty and waits for it.
func (s *sender) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	notify(s.wake)
	<-s.done
}

// run is the sender goroutine.
func (s *sender) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		ops, closed := s.queue, s.closed
		if len(ops) == 0 {
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.wake
			continue
		}
		s.queue = s.spare[:0] // swap buffers: the steady state allocates nothing
		s.mu.Unlock()
		s.round(ops)
		clear(ops)
		s.mu.Lock()
		s.spare = ops[:0]
		s.mu.Unlock()
	}
}

// round publishes one swap of the queue.
func (s *sender) round(ops []sendOp) {
	s.batches = s.batches[:0]
	for _, op := range ops {
		if op.m.gone.Load() {
			continue // dropped: its jobs were failed or re-queued already
		}
		b := s.batch(op.m)
		if op.cancel != nil {
			s.flush(b)
			s.publish(op.m, &wire.Cancel{ReplyTo: s.t.inbox, IDs: op.cancel})
			continue
		}
		if op.resend != b.resend {
			// Resends never share a Run with new jobs, which the worker
			// must run whatever it remembers.
			s.flush(b)
			b.resend = op.resend
		}
		for _, j := range op.jobs {
			size := wire.JobBound(j)
			if size > s.budget {
				s.tooLarge(op.m, j, size)
				continue
			}
			if b.size+size > s.budget {
				s.flush(b)
			}
			b.jobs = append(b.jobs, j)
			b.size += size
		}
	}
	for i := range s.batches {
		s.flush(&s.batches[i])
	}
}

// batch returns this round's batch for m.
func (s *sender) batch(m *member) *runBatch {
	return groupIn(&s.batches,
		func(b *runBatch) bool { return b.m == m },
		func(b *runBatch) { b.m, b.jobs, b.size, b.resend = m, b.jobs[:0], 0, false })
}

// flush publishes b's jobs as one Run and empties b.
func (s *sender) flush(b *runBatch) {
	if len(b.jobs) == 0 {
		return
	}
	s.jobBuf = s.jobBuf[:0]
	for _, j := range b.jobs {
		s.jobBuf = append(s.jobBuf, *j)
	}
	s.publish(b.m, &wire.Run{ReplyTo: s.t.inbox, Resend: b.resend, Jobs: s.jobBuf})
	clear(s.jobBuf) // drop references to arguments
	clear(b.jobs)
	b.jobs, b.size = b.jobs[:0], 0
}

// publish sends one message to m. A failed publish (the connection is
// closed, or its reconnect buffer is full) is not retried here: the jobs
// stay awaited and are sent again when the worker re-announces itself
// after the reconnect, or fail when it is dropped.
func (s *sender) publish(m *member, msg wire.Msg) {
	var err error
	s.buf, err = wire.AppendMsg(s.buf[:0], msg)
	if err == nil {
		err = s.t.link.Publish(m.subject, s.buf)
	}
	if err != nil {
		s.t.log.Debug("aplex cluster: publish", "worker", m.wid, "kind", msg.Kind(), "err", err)
	}
	if cap(s.buf) > 4<<20 {
		s.buf = nil // do not pin a large message's buffer
	}
}

// tooLarge answers a job that cannot fit one NATS message (a Map chunk
// whose items together exceed the max payload) with an error per item.
func (s *sender) tooLarge(m *member, j *wire.Job, size int) {
	e := &wire.Error{
		Code:    wire.CodeTooLarge,
		Message: fmt.Sprintf("aplex: job of about %d bytes exceeds the NATS max payload of %d bytes; use a smaller ChunkSize", size, s.t.max),
	}
	items := make([]wire.Outcome, len(j.Args))
	for i := range items {
		items[i].Err = e
	}
	s.t.deliver(m, []wire.Result{{ID: j.ID, Items: items}})
}
