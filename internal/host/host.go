// Package host is the worker side of the wire protocol, shared by process
// workers (a child re-executed from the same binary) and cluster workers.
//
// A Host runs jobs: each job gets its own context, each of its items runs in
// its own goroutine (kept parked between jobs: internal/gopool), except the
// quick jobs that a process child's reader runs itself (inline.go), and
// when every item has returned the job's result is handed to Config.Emit.
// The Host knows nothing about its executors; Serve
// (loop.go) is the one worker loop around it, which drains, kills and
// leaves the same way whatever carries the messages: a Link, either a byte
// stream of frames (ServeConn, process workers) or NATS (cluster workers).
package host

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/wire"
)

// Handler runs one item: it decodes the CBOR argument into the work's typed
// parameter, calls the work and encodes its result. The engine (internal/engine) builds
// one per registered work. A Handler that wants to report a failure of the
// machinery rather than of the work (an argument that does not decode)
// returns an error that Config.EncodeError maps to a wire.Error with a Code.
type Handler func(ctx context.Context, arg []byte) ([]byte, error)

// Registry finds the Handler of a registered work by name.
type Registry interface {
	// Lookup returns the handler registered under name.
	Lookup(name string) (Handler, bool)
	// Names lists every registered name (sent in Hello).
	Names() []string
}

// Config configures a Host.
type Config struct {
	// Registry resolves work names. A nil Registry knows no work.
	Registry Registry
	// EncodeError maps an error returned by a work to its wire form. It must
	// not return nil for a non-nil error. Nil means the default
	// {Type: fmt.Sprintf("%T", err), Message: err.Error()}.
	EncodeError func(err error) *wire.Error
	// GoexitError is the error of a work that called runtime.Goexit,
	// passed through EncodeError (nil: a plain error saying so). The
	// executor's own sentinel goes here, so errors.Is matches it across
	// processes as it does in-process.
	GoexitError error
	// MaxFrame is the frame limit of the connection (0: wire.DefaultMaxFrame).
	// A result that would not fit in MaxFrame-4096 bytes is replaced by an
	// Error with Code wire.CodeTooLarge.
	MaxFrame int
	// MaxWorks is the capacity reported in Hello (0: unlimited). It also
	// bounds the slots a Run asks for (wire.Run.Slots; slots.go).
	MaxWorks int
	// WorkerID names this worker in Hello, Heartbeat, Results and Bye.
	WorkerID string
	// Labels are reported in Hello.
	Labels map[string]string
	// Heartbeat is the interval of the Heartbeats Serve sends (0: none,
	// and no Draining announcement when the worker leaves).
	Heartbeat time.Duration
	// AcceptWindow is how long a leaving worker still runs new jobs after
	// announcing that it drains, for executors that sent them before they
	// saw the announcement (Serve). 0: refused at once, as by a process
	// child, whose one executor sent the Shutdown itself.
	AcceptWindow time.Duration
	// DrainTimeout bounds how long a leaving worker waits for its running
	// jobs before it cancels them (Serve). 0: no bound, as for a process
	// child, whose parent kills it after its own kill grace.
	DrainTimeout time.Duration
	// DoneLeaves makes the end of Serve's ctx a clean leave (a cluster
	// worker's SIGTERM) rather than a kill (ServeConn's ctx).
	DoneLeaves bool
	// Emit receives every finished job. It is called from the goroutine of
	// the job's last item (or from Run for a job that cannot start), so it
	// must not block for long. Serve sets it to its Link's Result.
	Emit func(replyTo string, r wire.Result)
	// Started receives the id of every job sent ahead of a free slot
	// (wire.Job.Ahead) as it starts, on arrival or after being held for
	// a slot, before its result is handed to Emit; never for a job
	// answered without running. Called as Emit is. Serve sets it to its
	// Link's Started; nil: not reported.
	Started func(replyTo string, id uint64)
	// Extract puts the values a job's header carries (wire.Job.Header: the
	// executor's propagated ctx values) into the job's ctx before its work
	// runs; it returns the ctx to use. It is called only for jobs whose
	// header is not empty, with the job's own ctx (deadline included). A
	// panic in it fails the job's items with a panic error. Nil: headers are
	// ignored.
	Extract func(ctx context.Context, header map[string]string) context.Context
	// BaseContext is the parent of every job's context: jobs see its values
	// and its cancellation (0 cost when it cannot be cancelled). Nil means
	// context.Background(). Serve uses its ctx without cancellation and
	// cancels the jobs itself when ctx ends, which keeps a cancel
	// registration off the per-job path.
	BaseContext context.Context
}

// jobKey identifies a running job. Ids are unique per executor, and ReplyTo
// names the executor (cluster) or is empty (process).
type jobKey struct {
	replyTo string
	id      uint64
}

// Host runs jobs for one worker. Its methods are safe for concurrent use.
type Host struct {
	cfg      Config
	base     context.Context
	baseEnds bool // base can end (a held job's ctx needs a watch)
	limit    int  // largest encoded result (wire.ResultBound) that fits a frame
	encode   func(error) *wire.Error
	// runners run the jobs: a goroutine that ran one parks for the next,
	// so a job does not pay for a new goroutine nor grow a new stack
	// (a work that decodes its argument needs more than a fresh one has).
	runners *gopool.Pool

	mu       sync.Mutex
	jobs     map[uint64]*job // by id; jobs sharing an id are chained (job.sameKey)
	running  int             // jobs registered: started or held
	draining bool
	slots    map[string]*slots // per executor (ReplyTo) whose Runs set Slots; nil until one does
	idle     chan struct{}     // closed when running drops to 0; nil until someone waits
	paces    map[string]*pace  // per work name, once an Inline exists (inline.go)
}

// New returns a Host with cfg. Emit must be set before the first Run.
func New(cfg Config) *Host {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	h := &Host{
		cfg:    cfg,
		base:   cfg.BaseContext,
		limit:  wire.PayloadLimit(cfg.MaxFrame),
		encode: cfg.EncodeError,
		jobs:   make(map[uint64]*job),
	}
	h.runners = gopool.New(gopool.DefaultIdle)
	if h.base == nil {
		h.base = context.Background()
	}
	h.baseEnds = h.base.Done() != nil
	if h.encode == nil {
		h.encode = defaultEncodeError
	}
	if h.cfg.GoexitError == nil {
		h.cfg.GoexitError = errors.New("aplex: work called runtime.Goexit")
	}
	return h
}

// Close ends the goroutines parked for jobs; those still running a job end
// when it returns. Serve closes its Host when it returns.
func (h *Host) Close() { h.runners.Close() }

// Hello returns the handshake message describing this worker.
func (h *Host) Hello() *wire.Hello {
	var names []string
	if h.cfg.Registry != nil {
		names = h.cfg.Registry.Names()
	}
	return &wire.Hello{
		Version:  wire.Version,
		WorkerID: h.cfg.WorkerID,
		PID:      os.Getpid(),
		MaxWorks: h.cfg.MaxWorks,
		Works:    names,
		Labels:   h.cfg.Labels,
	}
}

// Load returns the number of jobs running now (held jobs not counted).
func (h *Host) Load() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running - h.heldLocked()
}

// Drain makes the Host refuse new jobs: from now on Run answers every job at
// once with an Error of Code wire.CodeShutdown, and so are the jobs held for
// a slot (wire.Run.Slots), which never started. Running jobs carry on.
func (h *Host) Drain() {
	h.mu.Lock()
	h.draining = true
	held := h.takeHeldLocked()
	h.mu.Unlock()
	for _, j := range held {
		h.answerHeld(j, shuttingDown())
	}
}

// Cancel cancels the contexts of the jobs named by c. Unknown ids (jobs that
// already finished) are ignored; the result of a cancelled job is still
// emitted once its items return.
// A held job (slots.go) is answered at once, without running.
func (h *Host) Cancel(c *wire.Cancel) {
	var held []*job
	h.mu.Lock()
	for _, id := range c.IDs {
		for j := h.jobs[id]; j != nil; j = j.sameKey {
			if j.key.replyTo == c.ReplyTo {
				held = h.cancelLocked(j, held)
			}
		}
	}
	h.mu.Unlock()
	h.answerCancelled(held)
}

// CancelAll cancels the context of every running job, and answers every
// held one. Jobs started later are not affected (call Drain first to refuse
// them).
func (h *Host) CancelAll() {
	var held []*job
	h.mu.Lock()
	for _, head := range h.jobs {
		for j := head; j != nil; j = j.sameKey {
			held = h.cancelLocked(j, held)
		}
	}
	h.mu.Unlock()
	h.answerCancelled(held)
}

// closedChan is returned by idleChan when the host is already idle.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// idleChan returns a channel closed once no job runs.
func (h *Host) idleChan() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running == 0 {
		return closedChan
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	return h.idle
}
