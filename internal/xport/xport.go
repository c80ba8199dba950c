// Package xport is the contract between the executor core and the transports
// that reach remote workers (child processes, cluster workers over NATS).
//
// The core owns scheduling: capacity, the FIFO queue, the load balancer, the
// future table, cancellation, kill grace and shutdown. A transport owns the
// workers' lifecycle and the bytes: it starts workers, announces them with
// Sink.Join, carries jobs and cancels to them, hands results back with
// Sink.Done, and reports a dead worker with Sink.Lost. Neither side blocks the
// other: Worker methods only enqueue, and Sink methods return quickly.
package xport

import (
	"context"

	"github.com/aplex-go/aplex/internal/wire"
)

// Info describes a worker for errors, stats and logs.
type Info struct {
	ID     string            // transport-specific id ("proc-2", a cluster worker id)
	PID    int               // OS process id, 0 if unknown
	Labels map[string]string // cluster worker labels
}

// Worker is one remote worker as the core sees it. Implementations must be
// safe for concurrent use; no method may block on I/O.
type Worker interface {
	// Slot is the worker's stable identity for load balancers. A replacement
	// of a dead or recycled worker takes the same slot, so key affinity
	// survives a restart. Slots are small non-negative integers.
	Slot() int
	// Info describes the worker.
	Info() Info
	// Capacity is how many jobs the worker accepts at once (0: use the
	// executor's MaxWorksPerWorker).
	Capacity() int
	// Send enqueues jobs; the transport batches them into few writes. The
	// jobs belong to the core: the transport may read them until their
	// result arrives or the worker is lost, and must not modify them.
	Send(jobs []*wire.Job)
	// Cancel enqueues a cancel for running jobs.
	Cancel(ids []uint64)
	// Kill stops the worker now (a process is killed). The transport then
	// reports Sink.Lost with a cause that wraps reason.
	Kill(reason error)
	// Close asks the worker to exit once idle. The core calls it after Retire
	// once every job of the worker ended. The transport reports Sink.Lost
	// (cause nil for a clean exit) when it is gone.
	Close()
}

// Budgeted is implemented by workers that may be given only so many jobs
// in their life (process workers with WithRecycleAfter). The core reads
// Budget once, at Join, and retires the worker from dispatch (as Retire
// does) under its own lock the moment it has sent the worker its last job,
// so that no burst can overshoot the budget; the transport replaces the
// worker as it does after Retire (a later Retire is a no-op).
type Budgeted interface {
	// Budget is how many jobs the worker may be sent (0: no limit).
	Budget() int
}

// Sink receives a transport's events. The core implements it.
type Sink interface {
	// Join adds a ready worker to the pool (a new one or a replacement).
	Join(w Worker)
	// Retire stops dispatching to w (recycling, memory limit, a worker that
	// leaves cleanly). The core calls w.Close once w holds no job.
	Retire(w Worker)
	// Done delivers finished jobs. It may be called from any transport
	// goroutine (never from inside a Worker method), concurrently for one
	// worker, but always before that worker's Lost; the results' byte
	// slices must stay valid afterwards.
	Done(w Worker, results []wire.Result)
	// Lost removes w. Every job it still held fails with a *WorkerError
	// wrapping cause (or is retried when marked so). cause is nil only for
	// a clean exit after Close.
	Lost(w Worker, cause error)
	// Broken reports that no worker can be started (err != nil), so Submit
	// should fail clearly instead of queueing forever; Broken(nil) or the
	// next Join clears it.
	Broken(err error)
}

// Reasoner is implemented by Lost causes that can say how the worker ended
// without naming the worker ("exit status 3", "lost heartbeat"), which the
// executor's error names itself.
type Reasoner interface {
	WorkerReason() string
}

// Transport starts and supervises workers of one kind.
type Transport interface {
	// Start brings up the initial workers, calling sink.Join for each, and
	// returns once they all joined, or the first error (having stopped any
	// worker it started).
	Start(ctx context.Context, sink Sink) error
	// MaxMessage is the largest encoded job or result the transport carries;
	// the core rejects bigger arguments at Submit.
	MaxMessage() int
	// Close stops every worker (killing those still running when ctx ends)
	// and waits until all are gone. No Sink method is called after it
	// returns. Close is called once.
	Close(ctx context.Context) error
}
