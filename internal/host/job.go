package host

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aplex-go/aplex/internal/fanout"
	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/lazyctx"
	"github.com/aplex-go/aplex/internal/wire"
)

// job is one running wire.Job. Its items write their own slot of items and
// the last one to finish emits the result, so a job costs one allocation
// of its own (its ctx is a view of it: jobctx.go), one map entry and one
// goroutine (a single item's, or the chunk's, which fans slow items out to
// goroutines of their own).
type job struct {
	h   *Host
	key jobKey
	// ctx is the ctx its work runs with: the job's own (jobctx.go), or
	// what a propagator's Extract made of it.
	ctx context.Context
	// The job's own ctx: a lazy ctx (internal/lazyctx) whose state is lc,
	// guarded by mu.
	mu      sync.Mutex
	lc      lazyctx.State
	handler Handler
	args    [][]byte
	items   []wire.Outcome
	pending atomic.Int32
	one     [1]wire.Outcome // items of a single-item job: saves an allocation
	// sameKey links jobs that share an id: those of executors whose ids
	// meet (a cluster worker serves several, each counting its own), and a
	// duplicate id of one executor (which breaks the protocol but must not
	// make the first job unreachable). Cancel walks the chain for its
	// executor's, CancelAll all of it. Guarded by Host.mu.
	sameKey *job
	// How quick the work was last time, for a link's reader that runs
	// quick jobs itself (inline.go); nil without one.
	pace *pace
	// Slots (slots.go): slot is its executor's, nil without a bound; held
	// is true while the job waits in slot's queue (both guarded by
	// Host.mu); unwatch stops the watch on a held job's ctx (nil without
	// one). endsAlone: the ctx can end without the host cancelling it (a
	// deadline, a base or an extracted ctx that can end), so a held job
	// needs that watch.
	slot      *slots
	held      bool
	endsAlone bool
	unwatch   func() bool
	// ahead: the executor sent the job ahead of a free slot (wire.Job.Ahead),
	// so its start is reported (Config.Started); limit is its Deadline(d)
	// counted from that start (wire.Job.Limit), 0 if none or already in
	// its deadline (a job that was not sent ahead).
	ahead bool
	limit time.Duration
	// chain: the job runs on a runner goroutine, which takes the next
	// held job (next) when this one ends, instead of handing it off.
	chain bool
	next  *job
}

// Run starts every job of run, or holds it for a slot (run.Slots), and
// returns at once. The arguments' byte slices must stay valid until each
// job's result is emitted.
func (h *Host) Run(run *wire.Run) {
	for i := range run.Jobs {
		if j := h.start(run, &run.Jobs[i]); j != nil {
			h.runners.Go(j)
		}
	}
}

// Run runs the job on a goroutine of Host.runners (see run), and returns
// the job chained after it, if any, for that goroutine to run next.
func (j *job) Run() gopool.Task {
	j.chain = true
	j.run()
	if j.next == nil {
		return nil // not a nil *job in a non-nil Task
	}
	return j.next
}

// run runs the job's items: a single item in the calling goroutine, a
// chunk's items concurrently, without a goroutine each while they are
// quick (see internal/fanout). With a pace (a process child's reader runs
// quick jobs itself, inline.go), it records how long a single item took,
// so that a work found quick runs in the reader next time; a chunk's items
// are not measured, since chunks never run in the reader.
func (j *job) run() {
	if len(j.args) > 1 {
		fanout.Run(len(j.args), j.runItem)
		return
	}
	if j.pace == nil {
		j.runItem(0)
		return
	}
	t0 := time.Now()
	j.runItem(0)
	j.pace.observe(time.Since(t0))
}

// start registers one job and returns it, or answers it at once when it
// cannot run, or holds it for a slot (slots.go), and returns nil.
func (h *Host) start(run *wire.Run, wj *wire.Job) *job {
	replyTo := run.ReplyTo
	var handler Handler
	ok := false
	if h.cfg.Registry != nil {
		handler, ok = h.cfg.Registry.Lookup(wj.Name)
	}
	if !ok {
		h.refuse(replyTo, wj, &wire.Error{
			Code:    wire.CodeUnknownWork,
			Message: fmt.Sprintf("aplex: work %q is not registered in this worker", wj.Name),
		})
		return nil
	}
	if len(wj.Args) == 0 {
		h.cfg.Emit(replyTo, wire.Result{ID: wj.ID, Items: []wire.Outcome{}})
		return nil
	}

	j := &job{h: h, key: jobKey{replyTo, wj.ID}, handler: handler, args: wj.Args, ahead: wj.Ahead}
	// The time left, from now: no clock is shared with the executor. A
	// Deadline(d) counts from the job's start: that is now, unless the
	// job was sent ahead of a free slot and may be held (began).
	timeout := wj.Timeout
	if wj.Limit > 0 {
		if wj.Ahead {
			j.limit = wj.Limit
		} else if timeout == 0 || wj.Limit < timeout {
			timeout = wj.Limit
		}
	}
	if timeout != 0 {
		j.lc.SetDeadline(lazyctx.DeadlineIn(timeout))
	}
	j.ctx = (*jobCtx)(j)
	j.endsAlone = wj.Timeout != 0 || h.baseEnds // a held job's Limit has not begun
	if len(wj.Header) > 0 && h.cfg.Extract != nil {
		ctx, perr := h.extract(j.ctx, wj.Header)
		if perr != nil {
			j.cancel()
			h.refuse(replyTo, wj, perr)
			return nil
		}
		// A propagator may add a deadline or a cancel of its own: then
		// its ctx's Done is not the one the host cancels (nor nil, the
		// Done of a ctx that never ends).
		if !j.endsAlone && ctx != j.ctx {
			if d := ctx.Done(); d != nil && d != j.ctx.Done() {
				j.endsAlone = true
			}
		}
		j.ctx = ctx
	}
	if len(wj.Args) == 1 {
		j.items = j.one[:]
	} else {
		j.items = make([]wire.Outcome, len(wj.Args))
	}
	j.pending.Store(int32(len(wj.Args)))

	h.mu.Lock()
	if h.draining {
		h.mu.Unlock()
		j.cancel()
		h.refuse(replyTo, wj, shuttingDown())
		return nil
	}
	// The map is keyed by id alone (an integer key hashes in a fraction
	// of the string and id pair's time); a job whose id another has, of
	// another executor or a duplicate (a protocol violation), is chained
	// to it: both run, both stay cancellable, finish unlinks only itself.
	j.sameKey = h.jobs[j.key.id]
	if h.paces != nil {
		j.pace = h.paces[wj.Name]
		if j.pace == nil {
			j.pace = new(pace)
			h.paces[wj.Name] = j.pace
		}
	}
	h.jobs[j.key.id] = j
	h.running++
	now := h.admitLocked(j, run.Slots)
	h.mu.Unlock()
	if !now {
		return nil
	}
	j.began()
	return j
}

// began starts the clock of a job sent ahead of a free slot, as it takes
// one: its Deadline(d) counts from now, and its executor is told it has
// started (before its result: both go out through the same link, in the
// order emitted).
func (j *job) began() {
	if !j.ahead {
		return
	}
	if j.limit > 0 {
		lazyctx.Tighten((*jobOwner)(j), lazyctx.DeadlineIn(j.limit))
	}
	if j.h.cfg.Started != nil {
		j.h.cfg.Started(j.key.replyTo, j.key.id)
	}
}

// extract runs Config.Extract, turning a panic into the error of the job.
func (h *Host) extract(ctx context.Context, header map[string]string) (out context.Context, perr *wire.Error) {
	defer func() {
		if v := recover(); v != nil {
			out, perr = nil, &wire.Error{
				Panic:   true,
				Message: fmt.Sprintf("aplex: propagator Extract panicked: %v", v),
				Type:    fmt.Sprintf("%T", v),
				Stack:   string(debug.Stack()),
			}
		}
	}()
	if out = h.cfg.Extract(ctx, header); out == nil {
		out = ctx
	}
	return out, nil
}

// shuttingDown is the error of a job a draining host refuses, on arrival
// or held for a slot: it never ran, so the executor runs it elsewhere.
func shuttingDown() *wire.Error {
	return &wire.Error{Code: wire.CodeShutdown, Message: "aplex: worker is shutting down"}
}

// refuse emits a result whose every item fails with e.
func (h *Host) refuse(replyTo string, wj *wire.Job, e *wire.Error) {
	h.cfg.Emit(replyTo, wire.Failed(wj.ID, len(wj.Args), e))
}

// runItem runs item i and, if it is the job's last, finishes the job. The
// deferred function also catches panics and runtime.Goexit in the work, so
// the job always finishes and the host survives.
func (j *job) runItem(i int) {
	returned, goexit := false, false
	defer func() {
		// Whatever the work did to its goroutine's labels, the goroutine
		// goes back to the worker's (the reader's next read, a parked
		// runner, the result's emission below).
		pprof.SetGoroutineLabels(j.h.base)
		if !returned {
			if v := recover(); v != nil {
				keys, types := j.h.panicChain(v)
				j.items[i].Err = &wire.Error{
					Panic:     true,
					Message:   fmt.Sprint(v),
					Type:      fmt.Sprintf("%T", v),
					Stack:     string(debug.Stack()),
					Sentinels: keys,
					Types:     types,
				}
			} else {
				goexit = true // this goroutine ends once the defers ran
				j.items[i].Err = j.h.encode(j.h.cfg.GoexitError)
			}
		}
		if j.pending.Add(-1) == 0 {
			if next := j.h.finish(j); next != nil {
				startHeld(next)
				if j.chain && len(j.args) == 1 && !goexit {
					j.next = next // Run runs it on this goroutine
				} else {
					j.h.runners.Go(next)
				}
			}
		}
	}()
	// The work runs with its ctx's pprof labels, on whichever goroutine
	// runs it (the link's reader, a reused runner, a chunk's): those of
	// the worker's base ctx and what Extract added.
	pprof.SetGoroutineLabels(j.ctx)
	v, err := j.handler(j.ctx, j.args[i])
	j.items[i] = j.h.outcome(j.ctx, v, err)
	returned = true
}

// outcome turns what a handler returned into an Outcome.
func (h *Host) outcome(ctx context.Context, v []byte, err error) wire.Outcome {
	if err == nil {
		if n := len(v); n > h.limit {
			return wire.Outcome{Err: tooLarge(n, h.limit)}
		}
		return wire.Outcome{Value: v}
	}
	e := h.encode(err)
	if e == nil {
		e = defaultEncodeError(err)
	}
	if e.Code == wire.CodeNone && ctx.Err() != nil {
		// The work gave up because its context ended: say why in a code the
		// executor can map to context.Canceled or DeadlineExceeded.
		code := wire.CodeNone
		switch {
		case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
			code = wire.CodeDeadline
		case errors.Is(err, context.Canceled):
			code = wire.CodeCanceled
		}
		if code != wire.CodeNone {
			c := *e // EncodeError may return a shared value
			c.Code = code
			e = &c
		}
	}
	return wire.Outcome{Err: e}
}

// finish emits j's result and removes it from the running set. The result
// is emitted first so that, when Wait sees the host idle, every result has
// already been handed to Emit (Serve sends Bye after them). It returns the
// held job that takes j's slot, if any, which the caller must start.
func (h *Host) finish(j *job) *job {
	j.cancel()
	fitResult(j.items, h.limit)
	h.cfg.Emit(j.key.replyTo, wire.Result{ID: j.key.id, Items: j.items})

	h.mu.Lock()
	h.unlinkLocked(j)
	h.doneLocked()
	next, ended := h.nextLocked(j)
	h.mu.Unlock()
	for _, e := range ended {
		h.answerEnded(e)
	}
	return next
}

// defaultEncodeError keeps an error's message and Go type name.
func defaultEncodeError(err error) *wire.Error {
	return &wire.Error{Type: fmt.Sprintf("%T", err), Message: err.Error()}
}

// tooLarge is the error of a result bigger than limit bytes.
func tooLarge(n, limit int) *wire.Error {
	return &wire.Error{
		Code:    wire.CodeTooLarge,
		Message: fmt.Sprintf("aplex: result of %d bytes exceeds the %d-byte message limit", n, limit),
	}
}

// panicChain returns the sentinel keys and registered typed values a panic
// value carries when it is an error, as EncodeError would report them had
// the work returned it: a panic(fmt.Errorf("…%w", ErrX)) keeps errors.Is,
// and a panic(&QuotaError{…}) errors.As, like a returned error. A panic
// inside the encoder (a user Is or MarshalCBOR method) only loses them.
func (h *Host) panicChain(v any) (keys []string, types []wire.TypedValue) {
	err, ok := v.(error)
	if !ok {
		return nil, nil
	}
	defer func() {
		if recover() != nil {
			keys, types = nil, nil
		}
	}()
	if e := h.encode(err); e != nil {
		return e.Sentinels, e.Types
	}
	return nil, nil
}

// unlinkLocked removes j from its id's chain.
func (h *Host) unlinkLocked(j *job) {
	head := h.jobs[j.key.id]
	if head == j {
		if j.sameKey == nil {
			delete(h.jobs, j.key.id)
		} else {
			h.jobs[j.key.id] = j.sameKey
		}
		return
	}
	for p := head; p != nil; p = p.sameKey {
		if p.sameKey == j {
			p.sameKey = j.sameKey
			return
		}
	}
}
