// Package xport is the contract between the executor core and the transports
// that reach remote workers (child processes, cluster workers over NATS).
//
// The core owns scheduling: capacity, the FIFO queue, the load balancer, the
// future table, cancellation, kill grace and shutdown. A transport owns the
// workers' lifecycle and the bytes: it starts workers, announces them with
// Sink.Join, carries jobs and cancels to them, hands results back with
// Sink.Done, and reports a dead worker with Sink.Lost. Neither side blocks the
// other: Worker methods only enqueue, and Sink methods return quickly.
// What the messages and error codes mean on the wire is in
// internal/wire/PROTOCOL.md.
//
// # Locks and re-entrancy
//
// The core has one lock, core.mu (see the core struct in internal/engine
// for its own order). It calls Worker methods in two ways:
//
//   - Under core.mu: Send (dispatch), Cancel (a running work's future was
//     cancelled), Slot, Info and Budget (in Join). Dispatch happens in
//     Submit and Map, and inside Sink.Join, Sink.Done and Sink.Lost, which
//     hand queued works to workers with room; so Send runs on the
//     transport's own goroutine, nested in its Sink call, for any of its
//     workers. Cancel runs on the goroutine that cancels the future
//     (Future.Cancel, a watch on the caller's ctx, Shutdown).
//   - Without core.mu: Capacity (at Join, before the lock), Info (in Lost),
//     Close (from inside Sink.Retire or Sink.Done, after the core released
//     its lock: a retired worker that just became idle) and Kill (from the
//     kill-grace timer's goroutine).
//   - Holder.Hold runs under core.mu (a Submit's dispatch, before Send);
//     Holder.Release and the Reader methods run without it, on the
//     goroutine of a Submit, a Get, or whatever ends or awaits a future
//     (Interrupt, Need), except Reader.Need, which must take no lock and
//     also runs under core.mu (a work queued for a slot: every worker's
//     replies are needed). Reader.ReadUntil calls Sink.Done on the Get's
//     goroutine, so it runs completion callbacks there.
//   - Unreachable.Unreachable runs without core.mu, on the kill-grace
//     timer's goroutine before Kill; it may take the transport's locks
//     and wait a little (cluster: the NATS connection's status, whose
//     lock the client holds while it dials in a reconnect; a discover
//     request).
//
// Hence the rules for a transport:
//
//   - Send, Cancel, Slot, Info and Budget must not block, must not call
//     any Sink method, and must not take a lock that the transport holds
//     while it calls a Sink method. They take their own locks after
//     core.mu (process: the worker's mu; cluster: the sender's).
//   - Close and Kill may call Sink.Lost synchronously, and the cluster
//     transport does: a member's Close drops it and reports Lost(w, nil)
//     at once (the remote process serves other executors and is not
//     told), and its Kill reports Lost with the kill cause. This is safe
//     because the core calls them without its lock, and Lost tolerates
//     being nested in the Retire or Done call that led to Close. Process
//     workers call no Sink method from any Worker method: their loss is
//     reported by their reader goroutine.
//   - A transport calls Sink methods without holding any lock its Worker
//     methods take. Sink methods take core.mu; Done, Lost and Broken end
//     futures outside it, so they run completion callbacks
//     (Future.OnDone) on the transport's goroutine.
//   - Sink.Outstanding is a query: it takes core.mu (then the core's
//     worker lock), calls no Worker method and no callback, and returns.
//     So it may be called holding transport locks that no Worker method
//     takes under core.mu (cluster: transport.mu, in drop), and from
//     inside Close and Kill; never from inside Send, Cancel, Slot, Info or
//     Budget, which run under core.mu (it is not re-entrant).
//
// Which goroutines call the Sink:
//
//   - process (internal/proc): Join from Start's goroutine and from the
//     slot's supervisor (a replacement); Retire (recycling) and Broken
//     from the supervisor; Done from the worker's reader goroutine or a
//     Get reading the pipe in its place (Reader), and from its writer
//     goroutine for a job too large for a frame; Lost
//     from the reader goroutine, once, after the writer has stopped.
//   - cluster: Join from the NATS handler goroutines of the hello subject
//     and the executor's inbox (discover answers); Retire from the
//     heartbeat handler; Done from the inbox handler, and from the sender
//     goroutine for a job over the max payload; Lost from the handlers (a
//     restart under the same id, a Bye), the monitor goroutine (silence,
//     the connection closed for good), a local worker's supervisor (its
//     process exited), and inside Worker.Close and Worker.Kill; Broken
//     from the monitor; Outstanding from the hello handlers (a resend),
//     the Bye barrier and every drop.
//
// # One job table
//
// The core's job table is the only record, on the executor's side, of the
// jobs a worker holds: a transport keeps no copy. It learns what it needs
// from the events it reports and from Sink.Outstanding: the jobs to send
// again after a reconnect (cluster: Runs marked Resend), how many a
// departing worker left unanswered, and which to cancel on a worker it
// drops. Results need no filtering by the transport either: Done drops a
// result the core no longer awaits from that worker (answered already,
// failed or re-queued by Lost, a duplicate after a resend).
//
// # Order of events per worker
//
// Join comes first, exactly once per Worker value: a transport must not
// report a Worker's Done, Retire or Lost before its Join has returned, even
// when the worker ends (or drains) while Join runs on another goroutine. It
// holds such an event back and reports it once Join has returned (cluster:
// a member is visible to the drop paths a moment before its Join returns,
// so its join gate holds a Lost or Retire until then; process: the reader
// goroutine that reports Lost starts after Join). Otherwise the core would
// ignore the Lost of a worker it does not know yet, then add it, and works
// sent to the dead worker would wait until Shutdown. Done may
// come any number of times, concurrently; so may Retire, of which only
// the first counts. Lost comes at most once; the core then forgets the worker and
// ignores any later Done or Retire for it (results of jobs it no longer
// tracks, failed or re-queued by Lost or late duplicates, are dropped), so
// a Done racing a Lost does no harm. A Lost for a Worker the core does not
// know (never joined, or joined while the executor was tearing down) is
// ignored. A replacement (a new process in the same
// slot, a cluster worker back under the same id) is a new Worker value
// with a Join of its own.
//
// Once Transport.Close has returned, no Sink method is called. The core
// sends no more jobs or cancels, and fails whatever its table still holds
// with the shutdown error itself; only a Kill from a kill-grace timer that
// fired just before the teardown may still arrive, and must be harmless
// (process: the child is reaped, so Kill does nothing; cluster: the
// Shutdown is published only if the connection is still open, as one
// passed with WithConn is, and no Sink call follows).
package xport

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// Info describes a worker for errors, stats and logs.
type Info struct {
	ID     string            // transport-specific id ("proc-2", a cluster worker id)
	PID    int               // OS process id, 0 if unknown
	Labels map[string]string // cluster worker labels
}

// Worker is one remote worker as the core sees it. Implementations must be
// safe for concurrent use; no method may block on I/O. Which methods run
// under the core's lock, and which may call back into the Sink, is stated
// in the package doc ("Locks and re-entrancy").
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
	// Called under the core's lock: it must not call the Sink.
	Send(jobs []*wire.Job)
	// Cancel enqueues a cancel for running jobs, behind their Runs. Called
	// under the core's lock: it must not call the Sink.
	Cancel(ids []uint64)
	// Kill stops the worker now: a process worker gets SIGKILL, a cluster
	// worker a Shutdown{Graceful: false} and is dropped at once. The
	// transport then reports Sink.Lost with a cause that wraps reason
	// (cluster: synchronously, from inside Kill). Called without the core's
	// lock, from the kill-grace timer; a Kill of a worker already gone does
	// nothing.
	Kill(reason error)
	// Close ends the core's use of a retired worker. The core calls it once,
	// without its lock, from inside the Sink.Retire or Sink.Done call after
	// which the retired worker holds no job. A process worker is sent
	// Shutdown{Graceful: true}, exits once idle, and is reported with
	// Sink.Lost(w, nil) after its clean exit; a cluster member is dropped
	// and reported with Sink.Lost(w, nil) at once, from inside Close (the
	// worker process serves other executors and is not told).
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

// Unreachable is implemented by workers that a network stands between
// (cluster members). Before a kill-grace timer kills a worker, the core
// asks it, without the core's lock:
// while the worker cannot be reached (the connection is down, or the
// worker has been silent for a while), its answer may be held up rather
// than missing, and a kill would cost a healthy worker; the core then
// asks again after the returned wait, and a worker that does not come
// back is dropped by its heartbeat timeout meanwhile. 0: reachable.
type Unreachable interface {
	// Unreachable is asked for job, whose kill is due; a transport may
	// keep a copy of it, to settle it with the worker should it come back
	// after it was lost (cluster: TestStubbornWorkOfAWorkerDroppedForSilenceIsSettledOnItsReturn).
	Unreachable(job *wire.Job) (retryIn time.Duration)
}

// Holder is implemented by workers whose Send can leave the writing to the
// caller (process workers). When a Submit dispatches its work, the core
// calls Hold under its lock, before Send; if Hold agrees, the core calls
// Release once it has let the lock go, so that the submitting goroutine
// writes the job itself instead of waking the link's goroutine.
type Holder interface {
	// Hold makes what Send queues from now on wait for Release, and
	// returns true; or it declines (false) when the link's goroutine
	// would do better: the worker has other jobs in flight, or Submits
	// come in quick succession, which the goroutine gathers into one
	// write.
	Hold() bool
	// Release writes what Hold kept back, or hands it to the link's
	// goroutine; it never blocks on I/O. Called without the core's lock.
	Release()
}

// Reader is implemented by workers whose replies a caller waiting for one
// of their jobs may read itself (process workers): a goroutine already
// waiting in the pipe is woken by the system when the reply arrives, where
// handing the reply from a reader goroutine to the waiter would cost a
// wake-up more. The core calls these methods without its lock.
type Reader interface {
	// ReadUntil reads and handles the worker's messages (Sink.Done and
	// all) in the calling goroutine until done is closed or ctx ends,
	// provided nobody else needs to read them; otherwise it returns at
	// once. Either way the caller then waits on done as it would have.
	ReadUntil(ctx context.Context, done <-chan struct{})
	// Interrupt stops a ReadUntil for done: its future ended otherwise (a
	// cancel, a loss), and done is closed.
	Interrupt(done <-chan struct{})
	// Need asks for the worker's messages to be read without delay: one of
	// its jobs is awaited other than by ReadUntil (a completion callback,
	// a select on the future's Done channel), or a queued work waits for
	// the slot a reply frees. It takes no lock and never blocks.
	Need()
}

// Sink receives a transport's events. The core implements it.
type Sink interface {
	// Join adds a ready worker to the pool (a new one or a replacement).
	Join(w Worker)
	// Retire stops dispatching to w (process: recycling after RecycleAfter
	// jobs; cluster: a worker announcing that it drains). The core calls
	// w.Close once w holds no job: from inside this call if it is idle
	// already, else from the Done that ends its last job. A second Retire,
	// or one for a worker the core retired itself (xport.Budgeted), does
	// nothing.
	Retire(w Worker)
	// Done delivers finished jobs. It may be called from any transport
	// goroutine (never from inside a Send, Cancel, Slot, Info or Budget
	// call), concurrently for one worker, and should come before that
	// worker's Lost: results the core no longer awaits are dropped. The
	// results' byte slices must stay valid afterwards. It may dispatch
	// queued works (Worker.Send, for any worker), close w (Worker.Close)
	// and run future callbacks, on the calling goroutine.
	Done(w Worker, results []wire.Result)
	// Started reports that jobs sent to w ahead of a free slot
	// (wire.Job.Ahead) have started there (wire.Started). Called as Done
	// is, before the Done of those jobs; ids the core no longer awaits
	// are ignored.
	Started(w Worker, ids []uint64)
	// Lost removes w. Every job it still held fails with a *WorkerError
	// wrapping cause, or goes back to the queue using one retry when
	// submitted with aplex.Retry. cause is nil only when w ended cleanly
	// holding no job: after Close, or (cluster) a worker that said Bye
	// with nothing outstanding. It may dispatch queued works to other
	// workers (Worker.Send) on the calling goroutine.
	Lost(w Worker, cause error)
	// Broken reports that no worker can be started (err != nil), so Submit
	// should fail clearly instead of queueing forever; Broken(nil) or the
	// next Join clears it.
	Broken(err error)
	// Outstanding returns what w holds in the core's job table (see "One
	// job table"): copies of the jobs sent to w and neither answered nor
	// failed or re-queued by Lost, in id order, which the transport may
	// keep and read at will; and the ids among them whose future ended
	// early (cancelled, or the caller's ctx ended), for which the core has
	// sent or is sending a Cancel. Nothing for a worker the core does not
	// know (its Join has not run, or it was lost). It may be called under
	// the transport's locks and inside Close and Kill, never inside a
	// Worker method that runs under core.mu ("Locks and re-entrancy").
	Outstanding(w Worker) (jobs []*wire.Job, cancelled []uint64)
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
	// returns once the workers it must wait for joined (process: all of
	// them; cluster: its local workers and WithPoolSize workers, if given),
	// or the first error (having stopped any worker it started).
	Start(ctx context.Context, sink Sink) error
	// MaxMessage is the largest message the transport carries (a frame, a
	// NATS payload); the core rejects arguments bigger than its
	// wire.PayloadLimit at Submit.
	MaxMessage() int
	// Close stops every worker it started (killing those still running
	// when ctx ends) and waits until they are gone; remote cluster workers,
	// which serve other executors, are left alone. No Sink method is called
	// after it returns. The core calls Close once, during teardown, after
	// the drain; Sink calls may still arrive while it runs (a worker's last
	// results, its Lost). The one exception: a goroutine of the transport
	// still in Sink.Done or Sink.Lost StuckGrace after its workers were
	// stopped may be running a completion callback that waits for this
	// Close (one that shuts the executor down, which Future.OnDone forbids
	// but must not hang); Close leaves it to return on its own and says so
	// in its error.
	Close(ctx context.Context) error
}

// StuckGrace is how long a transport's Close waits for a goroutine that
// is delivering to the core (Sink.Done, Sink.Lost) before it leaves it
// running: see Transport.Close.
const StuckGrace = time.Second

// Config is what a transport learns from the executor's options. A
// transport package's own settings reach it beside Config, typed (see
// engine.NewClusterExecutor).
type Config struct {
	PoolSize          int           // WithPoolSize, if given (0: not given)
	MaxWorksPerWorker int           // WithMaxWorksPerWorker
	Slots             int           // the Slots of every Run (wire.Run): MaxWorksPerWorker with WithPrefetch, else 0
	StartTimeout      time.Duration // WithStartTimeout
	HeartbeatTimeout  time.Duration // WithHeartbeatTimeout: a worker silent this long is lost
	KillGrace         time.Duration // WithKillGrace: how long a cancelled work may take to end before it costs its worker
	Output            io.Writer     // WithWorkerOutput: output of the worker processes the transport starts (nil: not given)
	Env               []string      // WithWorkerEnv: "KEY=value" entries for the worker processes it starts
	Command           string        // WithWorkerCommand: the binary of the worker processes it starts ("": this one)
	CommandArgs       []string      // WithWorkerCommand: their arguments
	MemoryLimit       int64         // WithWorkerMemoryLimit: each one's resident memory limit in bytes (0: none)
	RecycleAfter      int           // WithRecycleAfter: jobs each one may be sent before it is replaced (0: no limit; Budgeted)
	Autoscale         bool          // WithAutoscale: the engine sizes the pool it keeps (Resizable), from AutoscaleMin workers
	AutoscaleMin      int
	Logger            *slog.Logger
}

// Resizable is implemented by a transport whose pool the engine can
// resize (Executor.Resize, WithAutoscale): the process transport, and the
// cluster transport for its local workers. The engine picks the slots: it
// adds the lowest free ones and removes the highest.
type Resizable interface {
	// AddSlot starts a worker for the new slot, keeps it staffed from then
	// on like the first ones, and returns once the worker joined
	// (Sink.Join), or with an error when it cannot start or ctx ends.
	AddSlot(ctx context.Context, slot int) error
	// RemoveSlot stops keeping slot staffed. The core has retired the
	// slot's worker already and closes it once idle (Worker.Close); the
	// transport reports it Lost once it has gone, and never starts
	// another worker in slot. Called without the core's lock.
	RemoveSlot(slot int)
	// OwnsSlot reports whether slot is one the transport keeps staffed
	// (a cluster executor's remote workers are not).
	OwnsSlot(slot int) bool
}
