package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/aplex-go/aplex/internal/xport"
)

// This file is the observer hook (WithObserver) and the core's log lines
// for worker events. Every call site in the core is one line, guarded by a
// nil check: an executor without an observer pays that check and nothing
// else (no clock reads, no allocation).

// Observer sees an executor's works and workers, for metrics, traces and
// logs (see the packages otelaplex and promaplex). Give one to an executor
// with WithObserver.
//
// Events are small structs passed by value, so fields can be added later
// without breaking an Observer; a new kind of event may be added too, so
// switch on Kind with a default case that ignores what it does not know.
//
// What an Observer may do: its methods are called synchronously, on the
// executor's own paths (the submitting goroutine, a worker's goroutine, a
// transport's reader), and WorkStarted and every WorkerEvent are called
// while the executor holds its lock. So they must return quickly and must
// not block (update counters, start or end a span, hand a value to a
// channel with room); they must not call the executor they observe, nor
// anything that waits for it (Submit, Map, Stats, Shutdown, Close, a
// Future's Get or Cancel of its works): that deadlocks. Work that may
// block belongs on a goroutine of the observer's own. Methods are called
// concurrently, from many goroutines: an Observer must be safe for
// concurrent use. It must not panic: a panic is not recovered, and one
// raised under the lock leaves the executor locked.
type Observer interface {
	// ObserveWork is called for each event of a work (a Submit, or one
	// dispatch of a Map chunk). For a WorkQueued event, ctx is the
	// caller's ctx (the Map's, for a chunk) and ObserveWork returns the
	// ctx of the work's later events: return ctx itself, or a ctx derived
	// from it with values only (context.WithValue, trace.ContextWithSpan),
	// never one that drops ctx or adds cancellation. The executor also
	// uses the returned ctx for the values of the work: a work on a
	// goroutine worker reads them from its ctx, and the propagators
	// (RegisterPropagator) inject them for process and cluster works, so a
	// span the observer starts is the parent of the spans the work starts.
	// For the other events, ctx is the one WorkQueued returned, and the
	// result is ignored.
	ObserveWork(ctx context.Context, e WorkEvent) context.Context
	// ObserveWorker is called when a worker joins the pool, is lost, is
	// replaced or is recycled.
	ObserveWorker(e WorkerEvent)
}

// WorkEventKind says what happened to a work.
type WorkEventKind int

// The events of a work, in their order: WorkQueued once, WorkStarted once
// per dispatch to a worker (again after its worker was lost, with Retry;
// with WithPrefetch a work its worker holds for a slot counts as started
// when the worker says it started it; should that word be lost in a
// cluster's NATS outage, a success reports it as the result arrives, a
// failure does not), and WorkFinished once, also for a work that never
// started (cancelled while queued, or refused by Submit after WorkQueued:
// ErrClosed, ErrFull).
const (
	WorkQueued WorkEventKind = iota + 1
	WorkStarted
	WorkFinished
)

func (k WorkEventKind) String() string {
	switch k {
	case WorkQueued:
		return "queued"
	case WorkStarted:
		return "started"
	case WorkFinished:
		return "finished"
	}
	return fmt.Sprintf("WorkEventKind(%d)", int(k))
}

// Outcome is how a work ended (WorkEvent.Outcome).
type Outcome int

// The outcomes of a work.
const (
	// OutcomeOK: the work, or every input of a Map chunk, succeeded.
	OutcomeOK Outcome = iota + 1
	// OutcomeFailed: the work returned an error or panicked, its worker
	// was lost, or an input of a Map chunk failed.
	OutcomeFailed
	// OutcomeCancelled: Future.Cancel, the caller's ctx, or a shutdown
	// ended it.
	OutcomeCancelled
	// OutcomeRejected: Submit or Map refused it after its WorkQueued
	// event (ErrClosed, ErrFull, a full queue's wait that ctx ended); it
	// never started.
	OutcomeRejected
)

// String returns "ok", "error", "cancelled" or "rejected": the outcome as
// a metric label.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeFailed:
		return "error"
	case OutcomeCancelled:
		return "cancelled"
	case OutcomeRejected:
		return "rejected"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// WorkEvent describes an event of a work to an Observer. Which fields are
// set depends on Kind, as their comments say.
type WorkEvent struct {
	Kind WorkEventKind
	// Executor is the executor's kind: "thread", "process" or "cluster".
	Executor string
	// Work is the work's registered name (for an Fn work, its function's
	// name): a bounded set, fit for a metric label.
	Work string
	// Items is the number of inputs: 1 for Submit, the chunk's size for
	// a Map chunk.
	Items int
	// Worker, Slot and PID name the worker (WorkStarted, WorkFinished of
	// a work that started): as WorkerStats.Name, ID and PID.
	Worker string
	Slot   int
	PID    int
	// Attempt counts the work's dispatches: 1 at its first WorkStarted,
	// 2 when it is sent again after its worker was lost (Retry), …; 0 in
	// WorkQueued and for a work that never started.
	Attempt int
	// Outcome and Err (WorkFinished): how it ended, and its error (for a
	// Map chunk whose inputs failed, the first input's error).
	Outcome Outcome
	Err     error
	// QueueWait (WorkStarted, WorkFinished) is the time from WorkQueued to
	// its last start (to its end, for a work that never started); RunTime
	// (WorkFinished) from its last start to its end.
	QueueWait, RunTime time.Duration
}

// WorkerEventKind says what happened to a worker.
type WorkerEventKind int

// The events of a worker.
const (
	// WorkerJoined: a worker joined the pool (a goroutine worker when the
	// executor is built; a process or cluster worker after its handshake).
	WorkerJoined WorkerEventKind = iota + 1
	// WorkerLost: a worker died or went silent (Reason says how); its
	// works fail with a *WorkerError or are sent again (Retry).
	WorkerLost
	// WorkerRestarted: a new worker joined in the slot of one that was
	// lost or recycled (reported instead of WorkerJoined).
	WorkerRestarted
	// WorkerRecycled: a worker leaves the pool on purpose
	// (WithRecycleAfter, WithWorkerMemoryLimit, a cluster worker
	// draining); it finishes its works and is replaced.
	WorkerRecycled
)

func (k WorkerEventKind) String() string {
	switch k {
	case WorkerJoined:
		return "joined"
	case WorkerLost:
		return "lost"
	case WorkerRestarted:
		return "restarted"
	case WorkerRecycled:
		return "recycled"
	}
	return fmt.Sprintf("WorkerEventKind(%d)", int(k))
}

// WorkerEvent describes an event of a worker to an Observer.
type WorkerEvent struct {
	Kind WorkerEventKind
	// Executor is the executor's kind: "thread", "process" or "cluster".
	Executor string
	// Worker, Slot and PID name the worker, as WorkerStats.Name, ID and
	// PID do.
	Worker string
	Slot   int
	PID    int
	// Reason and Err (WorkerLost): why it was lost, as *WorkerError's
	// fields say it.
	Reason string
	Err    error
}

// WithObserver makes the executor report its works and workers to o; see
// Observer for what o may do. Every kind of executor takes it. Given more
// than once, every observer sees every event, in the order of the options,
// and each WorkQueued gets the ctx the previous one returned (so traces
// and metrics combine: WithObserver(otelaplex.Observer()),
// WithObserver(promaplex.New("name"))). Without it, the hooks cost a nil
// check.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("aplex: WithObserver(nil): need an Observer")
		}
		if v := reflect.ValueOf(o); v.Kind() == reflect.Pointer && v.IsNil() {
			return fmt.Errorf("aplex: WithObserver: a nil %T", o)
		}
		switch prev := c.observer.(type) {
		case nil:
			c.observer = o
		case observers:
			c.observer = append(prev[:len(prev):len(prev)], o)
		default:
			c.observer = observers{prev, o}
		}
		return nil
	}
}

// observers is the Observer of several WithObserver options.
type observers []Observer

func (os observers) ObserveWork(ctx context.Context, e WorkEvent) context.Context {
	for _, o := range os {
		if next := o.ObserveWork(ctx, e); next != nil && e.Kind == WorkQueued {
			ctx = next
		}
	}
	return ctx
}

func (os observers) ObserveWorker(e WorkerEvent) {
	for _, o := range os {
		o.ObserveWorker(e)
	}
}

// taskObs is what a task keeps for its observer, allocated only when the
// executor has one.
type taskObs struct {
	ctx    context.Context // what WorkQueued returned
	items  int
	queued time.Time
	// mu orders a work's WorkStarted before its WorkFinished and guards
	// the fields below: a remote work's start may be heard (Started) as
	// a Cancel ends its future, on another goroutine, without core.mu.
	mu      sync.Mutex
	ended   bool // WorkFinished reported: no WorkStarted after it
	started time.Time
	worker  string
	slot    int
	pid     int
	attempt int
}

// observedExtra is an observed task's taskExtra and taskObs, in one
// allocation.
type observedExtra struct {
	taskExtra
	obs taskObs
}

// observeQueued reports t (initialised) queued and returns the ctx for its
// values: the one the observer returned, or parent without an observer.
// Small enough to inline: without an observer it is a nil check.
func (c *core) observeQueued(t *task, parent context.Context, items int) context.Context {
	if c.obs == nil {
		return parent
	}
	return c.queued(t, parent, items)
}

func (c *core) queued(t *task, parent context.Context, items int) context.Context {
	x := &observedExtra{obs: taskObs{items: items, queued: time.Now()}}
	if t.x != nil {
		x.taskExtra = *t.x // the call's Meta and Deadline, a remote task's job
	}
	o := &x.obs
	x.ob = o
	t.x = &x.taskExtra
	ctx := c.obs.ObserveWork(parent, WorkEvent{Kind: WorkQueued, Executor: c.cfg.kind.String(), Work: t.r.name(), Items: items})
	if ctx == nil {
		ctx = parent
	}
	o.ctx = ctx
	return ctx
}

// observeStarted reports t dispatched to w, or heard to start there (a
// work sent ahead: startedLocked), unless its WorkFinished has been
// reported. Under core.mu; the call site checks t.ob() first. The event
// is reported under o.mu, which observeFinished takes before its own:
// observers do not call the executor, so they cannot take it again.
func (c *core) observeStarted(t *task, w *worker) {
	o := t.ob()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	o.started = time.Now()
	o.worker, o.slot, o.pid = w.name, w.slot, int(w.stats.pid.Load())
	o.attempt++
	c.obs.ObserveWork(o.ctx, WorkEvent{
		Kind: WorkStarted, Executor: c.cfg.kind.String(), Work: t.r.name(), Items: o.items,
		Worker: o.worker, Slot: o.slot, PID: o.pid, Attempt: o.attempt,
		QueueWait: o.started.Sub(o.queued),
	})
}

// itemFailer is a runner whose items may fail while the task succeeds (a
// Map chunk).
type itemFailer interface{ itemErr() error }

// observeFinished reports t ended with its outcome; rejected marks a work
// Submit refused after it was reported queued. The call site checks t.ob()
// first.
func (c *core) observeFinished(t *task, err error, cancelled, rejected bool) {
	o := t.ob()
	now := time.Now()
	e := WorkEvent{Kind: WorkFinished, Executor: c.cfg.kind.String(), Work: t.r.name(), Items: o.items, Err: err}
	switch {
	case rejected:
		e.Outcome = OutcomeRejected
	case cancelled:
		e.Outcome = OutcomeCancelled
	case err != nil:
		e.Outcome = OutcomeFailed
	default:
		e.Outcome = OutcomeOK
		if f, ok := t.r.(itemFailer); ok {
			if ie := f.itemErr(); ie != nil {
				e.Outcome, e.Err = OutcomeFailed, ie
			}
		}
	}
	o.mu.Lock()
	o.ended = true
	if o.attempt > 0 {
		e.Worker, e.Slot, e.PID, e.Attempt = o.worker, o.slot, o.pid, o.attempt
		e.QueueWait, e.RunTime = o.started.Sub(o.queued), now.Sub(o.started)
	} else {
		e.QueueWait = now.Sub(o.queued)
	}
	o.mu.Unlock()
	c.obs.ObserveWork(o.ctx, e)
}

// rejected reports a work that was reported queued and then refused, and
// returns err.
func (c *core) rejected(t *task, err error) error {
	if t.ob() != nil {
		c.observeFinished(t, err, false, true)
	}
	return err
}

// observeWorker reports a worker event.
func (c *core) observeWorker(kind WorkerEventKind, w *worker, reason string, err error) {
	if c.obs == nil {
		return
	}
	c.obs.ObserveWorker(WorkerEvent{
		Kind: kind, Executor: c.cfg.kind.String(), Worker: w.name, Slot: w.slot,
		PID: int(w.stats.pid.Load()), Reason: reason, Err: err,
	})
}

// lostReason says why a worker was lost, as *WorkerError.Reason does.
func lostReason(cause error) string {
	var r xport.Reasoner
	switch {
	case errors.As(cause, &r):
		return r.WorkerReason()
	case cause != nil:
		return cause.Error()
	}
	return "worker stopped"
}

// logWorker writes a worker's loss or replacement to the executor's
// logger (WithLogger), with the worker, slot, pid and reason as
// attributes. Called without core.mu: a handler may write to a file.
func (c *core) logWorker(level slog.Level, msg string, name string, slot, pid int, reason string) {
	l := c.cfg.logger
	if l == nil {
		return
	}
	attrs := []slog.Attr{slog.String("executor", c.cfg.kind.String()), slog.String("worker", name), slog.Int("slot", slot), slog.Int("pid", pid)}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	l.LogAttrs(context.Background(), level, msg, attrs...)
}
