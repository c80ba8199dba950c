package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// eofGrace bounds how long ServeConn waits for cancelled jobs once its input
// is gone: the executor is not listening any more, and the process is about
// to exit, so a work that ignores its ctx must not keep it alive.
const eofGrace = time.Second

// event is what ServeConn's reader goroutine reports to the main loop.
type event struct {
	shutdown bool  // a Shutdown frame, already applied to the host
	err      error // io.EOF: the executor closed the stream; else fatal
}

// ServeConn serves one executor over a byte stream: it sends Hello, then
// reads Run, Cancel and Shutdown frames from r and writes Results,
// Heartbeat and Bye frames to w through a link.Writer, which batches every
// result finished at that moment into one Results frame and flushes only
// when it has nothing left to write. cfg.Emit is replaced.
//
// ServeConn returns
//   - nil when r reaches EOF (the executor is gone): it cancels every job and
//     waits up to a second for them;
//   - nil after Shutdown{Graceful: true}: it refuses new jobs (answering them
//     with CodeShutdown), keeps honouring Cancel, waits for the running jobs,
//     then sends Bye;
//   - nil after Shutdown{Graceful: false}: the same, but it cancels the
//     running jobs first;
//   - ctx.Err() when ctx ends: like a non-graceful shutdown;
//   - an error on a malformed frame, an unexpected message or a write error
//     (after cancelling the jobs and waiting up to a second).
//
// Its reader goroutine is stopped by closing r, so r should be an io.Closer
// (an *os.File, a net.Conn, an *io.PipeReader); ServeConn closes it before
// returning. It leaves no goroutine behind, except the items of works that
// ignored their cancelled ctx for longer than the grace above.
func ServeConn(ctx context.Context, cfg Config, r io.Reader, w io.Writer) error {
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = wire.DefaultMaxFrame
	}
	failed := make(chan error, 1)
	out := link.New(link.Pipe(w, cfg.MaxFrame), link.Config[link.Subject]{
		WorkerID: cfg.WorkerID,
		OnError:  func(err error) { failed <- err },
	})
	cfg.Emit = func(_ string, r wire.Result) { out.Result(link.Peer, r) }
	if cfg.BaseContext == nil {
		cfg.BaseContext = context.WithoutCancel(ctx)
	}
	h := New(cfg)
	out.Send(link.Peer, h.Hello())
	out.Start()

	events := make(chan event)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go readLoop(h, wire.NewReader(r, cfg.MaxFrame), events, stop, readerDone)

	var tick <-chan time.Time
	if cfg.Heartbeat > 0 {
		t := time.NewTicker(cfg.Heartbeat)
		defer t.Stop()
		tick = t.C
	}

	var (
		idle    <-chan struct{} // set once draining: closed when no job runs
		ctxDone = ctx.Done()
		bye     bool
		result  error
	)
loop:
	for {
		select {
		case ev := <-events:
			if ev.shutdown { // readLoop drained (and cancelled) already
				idle = h.idleChan()
				continue
			}
			// The stream is gone or broken: nobody will read a Bye.
			h.Drain()
			h.CancelAll()
			waitIdle(h, eofGrace)
			if !errors.Is(ev.err, io.EOF) {
				result = ev.err
			}
			break loop
		case <-idle:
			bye = true
			break loop
		case err := <-failed:
			h.Drain()
			h.CancelAll()
			waitIdle(h, eofGrace)
			result = fmt.Errorf("aplex worker: write: %w", err)
			break loop
		case <-ctxDone:
			ctxDone = nil
			result = ctx.Err()
			h.Drain()
			h.CancelAll()
			idle = h.idleChan()
		case <-tick:
			out.Send(link.Peer, &wire.Heartbeat{
				WorkerID: cfg.WorkerID,
				Load:     h.Load(),
				MaxWorks: cfg.MaxWorks,
				Draining: h.Draining(),
			})
		}
	}

	close(stop)
	if c, ok := r.(io.Closer); ok {
		c.Close() // unblocks the reader goroutine
	}
	<-readerDone
	if bye {
		out.Send(link.Peer, &wire.Bye{WorkerID: cfg.WorkerID})
	}
	out.Close()
	return result
}

// readLoop reads frames and applies Run and Cancel directly; Shutdown, EOF
// and errors go to the main loop.
func readLoop(h *Host, rd *wire.Reader, events chan<- event, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	report := func(ev event) bool {
		select {
		case events <- ev:
			return true
		case <-stop:
			return false
		}
	}
	for {
		m, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("aplex worker: read: %w", err)
			}
			report(event{err: err})
			return
		}
		switch m := m.(type) {
		case *wire.Run:
			h.Run(m)
		case *wire.Cancel:
			h.Cancel(m)
		case *wire.Shutdown:
			// Drain here, before reading on, so that a Run right behind the
			// Shutdown is refused rather than started.
			h.Drain()
			if !m.Graceful {
				h.CancelAll()
			}
			if !report(event{shutdown: true}) {
				return
			}
		default:
			report(event{err: fmt.Errorf("aplex worker: %w: unexpected %v message from the executor", wire.ErrMalformed, m.Kind())})
			return
		}
	}
}

// waitIdle waits until no job runs, at most d.
func waitIdle(h *Host, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-h.idleChan():
	case <-t.C:
	}
}
