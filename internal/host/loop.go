package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// cancelGrace bounds how long the serve loop waits for cancelled jobs
// before it returns anyway, whatever cancelled them (a kill, a drain
// timeout, a lost link, a process worker's ctx): a work that ignores its
// ctx must not keep the worker alive, and exiting the process is the only
// way to stop it. Both former loops waited one second here (the process
// child's "EOF grace", the cluster worker's "abandon wait").
const cancelGrace = time.Second

// ErrKilled is returned by Serve when an executor killed the worker with
// Shutdown{Graceful: false}: its running works were cancelled, and the
// process should exit, which is the only way to stop a work that ignores
// its ctx. cluster.ErrKilled is this error.
var ErrKilled = errors.New("aplex: worker killed by an executor")

// A Link carries the serve loop's traffic with its executors: one byte
// stream to one executor (a process child's pipes, ServeConn), or NATS
// subjects shared by every executor of a pool (a cluster worker). It owns
// the transport's features: framing or subjects, batching of results
// (its writer), a cluster worker's per-executor sessions and reply
// subjects, discover answers and re-announcements after a reconnect. The
// loop owns the worker's lifecycle (Serve's doc comment).
type Link interface {
	// Open announces the worker with hello and starts handing what its
	// executors send to in, one message at a time, in the order sent (a
	// Cancel never overtakes its Run). An error ends Serve before it
	// served anything.
	Open(hello *wire.Hello, in *Inbox) error
	// Result sends a finished job to the executor replyTo names. It is the
	// host's Emit: called from work goroutines, it must not block for
	// long, and it may be called after Close (a work that ignored its
	// cancelled ctx), when it drops r.
	Result(replyTo string, r wire.Result)
	// Started tells the executor replyTo names that its job id, sent
	// ahead of a free slot, has started (wire.Started). It is the host's
	// Config.Started, called as Result is; a Started queued before a
	// Result goes out before it.
	Started(replyTo string, id uint64)
	// Heartbeat tells every executor the worker is alive, how loaded, and
	// whether it still takes work. The first one with Draining set is the
	// worker's announcement that it leaves. Called by the loop goroutine.
	Heartbeat(hb *wire.Heartbeat)
	// Killed is called when the worker is killed, before its jobs
	// are cancelled and before a heartbeat says Killed. A link shared by
	// several executors drops every result from then on: the others learn
	// from that heartbeat that their jobs will not be answered and fail
	// them with a worker error (which a retry may resend), rather than
	// with a cancellation nobody asked for.
	Killed()
	// Close ends the link. With a non-nil bye it first writes every result
	// handed to Result so far, then bye, and makes sure they left the
	// process (bounded); with nil (the link is gone) it writes what it
	// can. It stops handing messages to the Inbox; one handed while it
	// closes finds the host draining, which refuses its jobs.
	Close(bye *wire.Bye)
}

// Inbox is where a Link hands what executors send. Run and Cancel apply
// at once, on the link's goroutine; Shutdown and Gone are also passed to
// the loop, without blocking the link. Each event counts once: the loop
// acts on the first leave, kill and gone only.
type Inbox struct {
	h        *Host
	link     Link
	drainNow bool // no accept window: a graceful Shutdown refuses new jobs at once

	leave, kill chan struct{} // capacity 1
	gone        chan error    // capacity 1: the first Gone's error
}

// Run starts the jobs of r (a draining host refuses them with CodeShutdown).
func (in *Inbox) Run(r *wire.Run) { in.h.Run(r) }

// Cancel cancels the jobs c names.
func (in *Inbox) Cancel(c *wire.Cancel) { in.h.Cancel(c) }

// Shutdown applies an executor's Shutdown. What must not wait for the loop
// happens here, on the link's goroutine, so that a Run right behind the
// Shutdown is refused rather than started: a kill refuses and cancels at
// once, and so does a graceful Shutdown's refusal when there is no accept
// window.
func (in *Inbox) Shutdown(s *wire.Shutdown) {
	if s.Graceful {
		if in.drainNow {
			in.h.Drain()
		}
		post(in.leave, struct{}{})
		return
	}
	in.link.Killed()
	in.h.Drain()
	in.h.CancelAll()
	post(in.kill, struct{}{})
}

// Gone reports that the link's input ended (err wraps io.EOF: the executor
// closed it) or that the link broke (a malformed or unexpected message, a
// read or write error): nobody will read a Bye. The link hands nothing
// more to the Inbox after Gone.
func (in *Inbox) Gone(err error) { post(in.gone, err) }

// post sends v on a capacity-1 channel unless it holds one already.
func post[T any](c chan T, v T) {
	select {
	case c <- v:
	default:
	}
}

// state is where the serve loop is in a worker's life.
type state int

const (
	serving    state = iota // runs every job it is sent
	announced               // leaving: told executors it drains; still runs jobs (accept window)
	draining                // refuses new jobs; waits for the running ones, at most DrainTimeout
	cancelling              // running jobs cancelled; waits for them, at most cancelGrace
)

// Serve runs jobs for the executors behind link until the worker leaves,
// is killed, or loses the link. cfg.Emit is replaced by link.Result; a nil
// cfg.BaseContext becomes ctx without its cancellation.
//
// It is the one worker loop: process children (ServeConn, a byte stream)
// and cluster workers (NATS) differ only in their link and in cfg's
// AcceptWindow, DrainTimeout and DoneLeaves. Its states (serving,
// announced, draining, cancelling) and the events that move it:
//
//   - leave: Shutdown{Graceful: true}, or ctx ending when cfg.DoneLeaves.
//     The worker announces it leaves with a Draining heartbeat (only when
//     cfg.Heartbeat > 0: a link without heartbeats has no announcement),
//     so executors stop sending it work. It leaves serving only.
//   - announced: jobs still run for cfg.AcceptWindow, for executors that
//     sent a Run before they saw the announcement. Without a window the
//     worker passes straight to draining.
//   - draining: new jobs are refused, each answered with CodeShutdown
//     (the executor runs it elsewhere); Cancels are still honoured. Once
//     no job runs, the worker sends Bye after every result and Serve
//     returns nil. If jobs still run after cfg.DrainTimeout (0: no bound;
//     a process child's parent enforces its own kill grace) they are
//     cancelled and Serve will return an error saying so.
//   - kill: Shutdown{Graceful: false}, or ctx ending without
//     cfg.DoneLeaves. New jobs are refused, running ones cancelled, the
//     link told (Link.Killed), and the leave announced if it was not.
//     Serve returns ErrKilled, or ctx.Err() for a ctx.
//   - cancelling: the worker waits for the cancelled jobs, at most
//     cancelGrace; then it sends Bye (after the results, unless the link
//     dropped them) and returns, leaving behind only the goroutines of
//     works that ignore their ctx.
//   - gone: the link's input ended or the link broke. Nobody reads a Bye:
//     the worker refuses, cancels, waits at most cancelGrace and returns
//     nil for a clean end of input, else the link's error.
//
// In short:
//
//	serving ──leave──▶ announced ──AcceptWindow──▶ draining ──idle──▶ Bye
//	   │                  │                          │
//	   │                  │                          └─DrainTimeout─▶ cancelling
//	   └──────kill────────┴────────────kill──────────┴──────────────▶ cancelling
//	cancelling ──idle, or cancelGrace──▶ Bye
//	any state ──gone──▶ cancelling, and no Bye
//
// Heartbeats go out every cfg.Heartbeat (0: none) until Serve returns or
// the link is gone. Serve returns Link.Open's error if it fails.
func Serve(ctx context.Context, cfg Config, link Link) error {
	if cfg.BaseContext == nil {
		cfg.BaseContext = context.WithoutCancel(ctx)
	}
	cfg.Emit = link.Result
	cfg.Started = link.Started
	h := New(cfg)
	defer h.Close()
	in := &Inbox{h: h, link: link, drainNow: cfg.AcceptWindow <= 0,
		leave: make(chan struct{}, 1), kill: make(chan struct{}, 1), gone: make(chan error, 1)}
	if err := link.Open(h.Hello(), in); err != nil {
		return err
	}
	l := &loop{cfg: cfg, h: h, link: link, st: serving, bye: true}
	var tick <-chan time.Time
	if cfg.Heartbeat > 0 {
		t := time.NewTicker(cfg.Heartbeat)
		defer t.Stop()
		tick = t.C
	}
	ctxDone := ctx.Done()
	for !l.done {
		select {
		case <-in.leave:
			l.leave()
		case <-in.kill:
			l.kill(ErrKilled)
		case err := <-in.gone:
			l.gone(err)
		case <-ctxDone:
			ctxDone = nil
			if cfg.DoneLeaves {
				l.leave()
			} else {
				l.kill(ctx.Err())
			}
		case <-l.acceptEnd:
			l.drain()
		case <-l.drainEnd:
			l.drainEnd = nil
			if l.result == nil {
				l.result = fmt.Errorf("aplex: worker: works still running after the %v drain timeout were cancelled", cfg.DrainTimeout)
				l.timedOut = l.result
			}
			l.cancel()
		case <-l.graceEnd:
			l.done = true
		case <-l.idle:
			l.done = true
		case <-tick:
			if l.bye {
				l.beat()
			}
		}
	}
	var bye *wire.Bye
	if l.bye {
		bye = &wire.Bye{WorkerID: cfg.WorkerID}
	}
	link.Close(bye)
	return l.result
}

// loop is Serve's state, used by its goroutine only.
type loop struct {
	cfg  Config
	h    *Host
	link Link
	st   state

	acceptEnd <-chan time.Time // announced: the accept window ends
	drainEnd  <-chan time.Time // draining: DrainTimeout passed
	graceEnd  <-chan time.Time // cancelling: cancelGrace passed
	idle      <-chan struct{}  // draining, cancelling: closed once no job runs

	result   error
	timedOut error // result, when set by the drain timeout (a kill overrides it)
	killed   bool  // an executor killed the worker: heartbeats say so
	bye      bool  // the link still carries messages: send Bye at the end
	done     bool
}

// gone: the link's input ended or it broke; nobody reads a Bye.
func (l *loop) gone(err error) {
	if !errors.Is(err, io.EOF) {
		l.result = err
	}
	l.bye = false
	l.cancel()
}

// leave starts a clean leave: announce, then accept window, then drain.
func (l *loop) leave() {
	if l.st != serving {
		return
	}
	l.announce()
	if l.cfg.AcceptWindow > 0 {
		l.acceptEnd = time.After(l.cfg.AcceptWindow)
		return
	}
	l.drain()
}

// announce tells executors the worker leaves: a Draining heartbeat.
func (l *loop) announce() {
	l.st = announced
	if l.cfg.Heartbeat > 0 && l.bye {
		l.beat()
	}
}

// drain refuses new jobs and waits for the running ones.
func (l *loop) drain() {
	l.acceptEnd = nil
	l.st = draining
	l.h.Drain()
	l.idle = l.h.idleChan()
	if l.cfg.DrainTimeout > 0 {
		l.drainEnd = time.After(l.cfg.DrainTimeout)
	}
}

// kill refuses and cancels everything (the Inbox did so already for a
// Shutdown) and tells the link, then waits out the grace.
func (l *loop) kill(reason error) {
	if l.result == nil || l.result == l.timedOut {
		l.result = reason
	}
	if reason == ErrKilled {
		l.killed = true
	} else { // a ctx: the Inbox has not told the link
		l.link.Killed()
	}
	// Told first: once a heartbeat says Killed, no result follows it.
	switch l.st {
	case serving:
		l.announce()
	default:
		if l.killed && l.cfg.Heartbeat > 0 && l.bye {
			l.beat() // the others stop waiting for its answers now
		}
	}
	l.cancel()
}

// cancel refuses new jobs, cancels the running ones and waits for them
// at most cancelGrace.
func (l *loop) cancel() {
	l.h.Drain()
	l.h.CancelAll()
	if l.st == cancelling {
		return
	}
	l.st = cancelling
	l.acceptEnd, l.drainEnd = nil, nil
	l.idle = l.h.idleChan()
	l.graceEnd = time.After(cancelGrace)
}

// beat sends a heartbeat.
func (l *loop) beat() {
	l.link.Heartbeat(&wire.Heartbeat{
		WorkerID: l.cfg.WorkerID,
		Load:     l.h.Load(),
		MaxWorks: l.cfg.MaxWorks,
		Draining: l.st != serving,
		Killed:   l.killed,
	})
}
