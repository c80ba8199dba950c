// Package wire is the protocol shared by process and cluster workers: the
// message kinds exchanged between an executor and a worker host, their
// binary encoding, length-prefixed frames with a version byte and a size
// limit, and the CBOR codec for work arguments and results.
//
// The envelope (kinds, ids, names, counts) is a small hand-written binary
// format; user payloads (arguments, results) are opaque CBOR byte strings
// inside it. Every decoder bounds its allocations by the input it was given,
// so a malformed or hostile frame costs memory in proportion to its own
// size, never to the counts and lengths it claims.
//
// PROTOCOL.md, beside this file, states the protocol as a whole: the
// framing and size limits, every message and who sends it when (process
// pipes and NATS subjects), the handshake, heartbeats, drain, kill and
// leave sequences, the version rule, and what every ErrCode means for the
// future waiting on the job. Change it with the code.
package wire

import "time"

// Version is the protocol version carried in every frame header. A peer that
// reads a different version rejects the frame with ErrVersion, so a worker
// built with another protocol fails its handshake with an error naming both
// versions. Version 2: a Job carries the time it has left (Timeout) instead
// of an absolute deadline and a Header of propagated ctx values, an Error
// carries the typed values of registered error types, and Heartbeat lost
// its unused RSS field. Version 3: a Run carries Slots, so that a worker
// holds the jobs an executor sends beyond them (WithPrefetch). Version 4:
// a Job carries Limit (a call's Deadline(d), counted from the job's start on
// the worker) apart from Timeout, and Ahead; a worker reports the start of
// Ahead jobs in Started messages. Version 5: a Heartbeat says whether an
// executor killed the worker (Killed), and a Bye the highest job id the
// worker received from each executor (Seen). Version 6: a Killed Heartbeat
// carries Seen too.
const Version byte = 6

// Kind identifies a message.
type Kind byte

// Message kinds.
const (
	KindHello     Kind = 1 // worker → executor: first message, handshake
	KindRun       Kind = 2 // executor → worker: a batch of jobs to run
	KindCancel    Kind = 3 // executor → worker: cancel jobs by id
	KindResult    Kind = 4 // worker → executor: a batch of finished jobs
	KindHeartbeat Kind = 5 // worker → executor: liveness and load
	KindShutdown  Kind = 6 // executor → worker: finish (or abort) and exit
	KindBye       Kind = 7 // worker → executor: leaving; drained
	KindStarted   Kind = 8 // worker → executor: jobs sent ahead of a free slot have started
)

// Msg is any protocol message. Exactly the types below implement it.
type Msg interface{ Kind() Kind }

// Hello is the handshake a worker host sends first.
type Hello struct {
	Version  byte              // protocol version of the worker
	WorkerID string            // unique id chosen by the worker (cluster) or empty (process)
	PID      int               // the worker's OS process id
	MaxWorks int               // capacity it announces (0: the executor uses WithMaxWorksPerWorker)
	Works    []string          // registered work names it serves
	Labels   map[string]string // free-form worker labels (cluster)
}

// Job is one dispatch unit: a single work or a chunk of n items of the same
// work, which the host runs concurrently under one context.
//
// The deadline travels as the time left rather than as an instant, so the
// machines of a cluster need no synchronised clocks: the worker's deadline
// is the executor's, moved later by the time the job took to arrive.
type Job struct {
	ID   uint64 // unique per executor
	Name string // registered work name
	// Timeout is the time the job had left when the executor sent it (the
	// caller's ctx): the host ends the job's ctx Timeout after its arrival.
	// 0: no deadline; negative: the deadline has already passed.
	Timeout time.Duration
	// Limit is the call's Deadline(d): the host ends the job's ctx Limit
	// after the job starts, which for a job held for a slot (Ahead) is
	// later than its arrival. 0: none. The job's deadline is the earlier
	// of Timeout from its arrival and Limit from its start. Never negative.
	Limit time.Duration
	// Ahead marks a job sent ahead of a free slot (WithPrefetch): the host
	// names it in a Started message when it starts, held or not.
	Ahead bool
	// Header carries ctx values across the boundary (aplex.Propagator):
	// the executor injects them, the host extracts them into the job's
	// ctx. Nil: none. Its encoded size counts in the message (HeaderBound).
	Header map[string]string
	Args   [][]byte // CBOR-encoded arguments, one per item (len ≥ 1)
}

// Run is a batch of jobs. ReplyTo names where results go (cluster: the
// executor's inbox subject; process: empty).
type Run struct {
	ReplyTo string
	// Resend marks jobs sent before (cluster: the executor resends every
	// job it still awaits after a reconnect). A worker that cannot tell
	// whether such a job already ran answers it with CodeResultLost rather
	// than run it, so nothing runs twice. Process workers: always false.
	Resend bool
	// Slots is how many of this executor's jobs the worker runs at once
	// (its WithMaxWorksPerWorker, or the worker's own smaller MaxWorks);
	// it holds the others it is sent and starts each as one of those ends.
	// 0: no bound, the executor sends no more than the worker runs. Sent
	// by executors with a prefetch (WithPrefetch).
	Slots int
	Jobs  []Job
}

// Cancel asks the worker to cancel the contexts of these jobs. Unknown ids
// are ignored (the job already finished). ReplyTo scopes ids to an executor.
type Cancel struct {
	ReplyTo string
	IDs     []uint64
}

// Outcome is the result of one item of a job: either Value (CBOR) or Err.
type Outcome struct {
	Value []byte
	Err   *Error
}

// Result is one finished job: one outcome per item, in item order.
type Result struct {
	ID    uint64
	Items []Outcome
}

// Failed returns the result of job id whose n items all fail with e (they
// share it): a job refused or too large to send, a result too large to
// return or no longer held. Every side that answers a job it cannot run or
// answer in full uses it.
func Failed(id uint64, n int, e *Error) Result {
	items := make([]Outcome, n)
	for i := range items {
		items[i].Err = e
	}
	return Result{ID: id, Items: items}
}

// Results is a batch of finished jobs.
type Results struct {
	WorkerID string
	Results  []Result
}

// Error is an error as it crosses the boundary.
type Error struct {
	Type      string   // Go type name of the original error, e.g. "*fs.PathError"
	Message   string   // err.Error()
	Sentinels []string // keys of registered sentinel errors the original matched (errors.Is)
	// Types are the values of registered error types found in the
	// original's chain (errors.As), so the executor can rebuild them with
	// their exported fields.
	Types []TypedValue
	Panic bool // the work panicked; Message is the panic value, Stack the stack
	Stack string
	Code  ErrCode // why the host itself failed the item, when it did
}

// TypedValue is a value of a Go type both sides registered under Name. The
// wire does not interpret either field: Value is the value's CBOR encoding
// and, once decoded, aliases the input like Outcome.Value.
type TypedValue struct {
	Name  string
	Value []byte
}

// ErrCode classifies failures produced by the host rather than by the work.
// What each code means for the future waiting on the job is decided once,
// by ErrCode.Fate (codes.go), never by a sender or receiver on its own.
type ErrCode byte

// Error codes.
const (
	CodeNone        ErrCode = 0 // the work returned or panicked with this error
	CodeUnknownWork ErrCode = 1 // no work registered under that name
	CodeBadArgument ErrCode = 2 // the argument could not be decoded
	CodeBadResult   ErrCode = 3 // the result could not be encoded
	CodeTooLarge    ErrCode = 4 // the result exceeds the frame size limit
	CodeCanceled    ErrCode = 5 // the job's ctx was cancelled and the work returned ctx.Err()
	CodeDeadline    ErrCode = 6 // the job's deadline passed
	CodeShutdown    ErrCode = 7 // the host refused the job before it ran: it is shutting down
	CodeResultLost  ErrCode = 8 // the job ran (or, resent, may have run), but its result was lost and is no longer held
)

// Started tells the executor that jobs it sent ahead of a free slot
// (Job.Ahead: WithPrefetch) have started on the worker: their works now
// run, their Deadline(d) counts from now. A job answered without running
// (cancelled or expired while held, refused at a drain) is never named.
type Started struct {
	WorkerID string   // as in Results: empty for a process worker
	IDs      []uint64 // the jobs, in the order they started
}

// Heartbeat tells the executor a worker is alive and how loaded it is.
type Heartbeat struct {
	WorkerID string
	Load     int  // jobs running now
	MaxWorks int  // capacity
	Draining bool // no longer accepts jobs
	// Killed: an executor killed the worker (Shutdown{Graceful: false}).
	// A cluster worker then answers none of the jobs it still holds,
	// whoever sent them, and sends no result after this heartbeat; a
	// process child still answers its one executor, which killed it.
	// Set with Draining.
	Killed bool
	// Seen is set with Killed, as a Bye's is: per executor, the highest
	// job id the worker received before it was killed (cluster workers;
	// nil elsewhere). It starts none it receives after, so an executor's
	// jobs above that id never ran there and may run elsewhere.
	Seen map[string]uint64
}

// Shutdown asks the worker to stop. Graceful: finish running jobs, then exit;
// otherwise cancel them first.
type Shutdown struct {
	Graceful bool
}

// Bye is sent by a worker that leaves; every job it held has been answered.
type Bye struct {
	WorkerID string
	// Seen is, per executor (the ReplyTo of its Runs), the highest job id
	// the worker received from it (cluster workers; nil elsewhere). An
	// executor sends a worker its jobs in increasing id order, so a job it
	// still awaits above that id never reached the worker, which left
	// before it arrived: it may run elsewhere. An executor the worker has
	// no session of (none, or one forgotten) is not named.
	Seen map[string]uint64
}

// Kind returns KindHello.
func (*Hello) Kind() Kind { return KindHello }

// Kind returns KindRun.
func (*Run) Kind() Kind { return KindRun }

// Kind returns KindCancel.
func (*Cancel) Kind() Kind { return KindCancel }

// Kind returns KindResult.
func (*Results) Kind() Kind { return KindResult }

// Kind returns KindStarted.
func (*Started) Kind() Kind { return KindStarted }

// Kind returns KindHeartbeat.
func (*Heartbeat) Kind() Kind { return KindHeartbeat }

// Kind returns KindShutdown.
func (*Shutdown) Kind() Kind { return KindShutdown }

// Kind returns KindBye.
func (*Bye) Kind() Kind { return KindBye }
