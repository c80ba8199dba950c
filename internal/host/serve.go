package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// ServeConn serves one executor over a byte stream: it runs Serve over a
// Link that reads Run, Cancel and Shutdown frames from r and writes Hello,
// Results, Heartbeat and Bye frames to w through a link.Writer, which
// batches every result finished at that moment into one Results frame and
// flushes only when it has nothing left to write. The configuration of a process
// child: no accept window, no drain timeout, ctx ending kills. Jobs of one
// item whose work returned within 50 µs last time run in the reader itself
// and their results are written by it, with no goroutine hand-off (see
// inline.go); a Cancel or Shutdown behind such a job that blocks is read
// within about two milliseconds.
//
// ServeConn returns
//   - nil when r reaches EOF (the executor is gone): it cancels every job and
//     waits up to a second for them;
//   - nil after Shutdown{Graceful: true}: it refuses new jobs (answering them
//     with CodeShutdown), keeps honouring Cancel, waits for the running jobs,
//     then sends Bye;
//   - nil after Shutdown{Graceful: false}: it refuses new jobs, cancels the
//     running ones, waits up to a second for them, then sends Bye;
//   - ctx.Err() when ctx ends: like Shutdown{Graceful: false};
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
	cfg.AcceptWindow, cfg.DrainTimeout, cfg.DoneLeaves = 0, 0, false
	l := &streamLink{
		r:          r,
		rd:         wire.NewReader(link.PipeReader(r), cfg.MaxFrame),
		readerDone: make(chan struct{}),
	}
	l.out = link.New(link.Pipe(w, cfg.MaxFrame), link.Config[link.Subject]{
		WorkerID: cfg.WorkerID,
		OnError:  func(err error) { l.in.Gone(fmt.Errorf("aplex worker: write: %w", err)) },
	})
	err := Serve(ctx, cfg, l)
	if errors.Is(err, ErrKilled) {
		err = nil // the executor asked for it: a clean end for a process child
	}
	return err
}

// streamLink is the Link of a process child: frames over a byte stream to
// its one executor, written by a link.Writer.
type streamLink struct {
	r          io.Reader
	rd         *wire.Reader
	out        *link.Writer[link.Subject]
	in         *Inbox // set by Open, before the writer starts
	inline     *Inline
	readerDone chan struct{}
}

// Open queues the Hello first, so that it precedes every result, then
// starts the writer (whose failure is the link's Gone) and the reader.
func (l *streamLink) Open(hello *wire.Hello, in *Inbox) error {
	l.in = in
	// The results of the jobs the reader runs are held back until they
	// return (or the watch hands the reading on), then written by the
	// reader itself: a burst of quick jobs leaves in one write, and a lone
	// one without waking the writer's goroutine.
	l.inline = in.h.NewInline(func() { l.read(in) }, l.out.Hold, l.out.Release)
	l.out.Send(link.Peer, hello)
	l.out.Start()
	go l.read(in)
	return nil
}

// Result queues a finished job for the writer.
func (l *streamLink) Result(_ string, r wire.Result) { l.out.Result(link.Peer, r) }

// Started queues the start of a job sent ahead for the writer.
func (l *streamLink) Started(_ string, id uint64) { l.out.Started(link.Peer, id) }

// Heartbeat queues hb for the writer.
func (l *streamLink) Heartbeat(hb *wire.Heartbeat) { l.out.Send(link.Peer, hb) }

// Killed does nothing: the one executor that killed the worker still
// reads the cancelled jobs' results.
func (l *streamLink) Killed() {}

// Close stops the reader by closing r, then writes what is queued (and
// bye) and waits for the writer.
func (l *streamLink) Close(bye *wire.Bye) {
	if c, ok := l.r.(io.Closer); ok {
		c.Close() // unblocks the reader goroutine
	}
	<-l.readerDone
	l.inline.Stop()
	if bye != nil {
		l.out.Send(link.Peer, bye)
	}
	l.out.Close()
}

// read reads frames and hands them to in; the end of the stream and any
// error end it. It runs the jobs of quick works itself (Inline); when one
// holds it up, the watch hands the reading on to a new goroutine, and this
// one ends when the job returns.
func (l *streamLink) read(in *Inbox) {
	handedOff := false
	defer func() {
		if !handedOff {
			close(l.readerDone)
		}
	}()
	for {
		m, err := l.rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("aplex worker: read: %w", err)
			}
			in.Gone(err)
			return
		}
		switch m := m.(type) {
		case *wire.Run:
			// Until Run returns, a work that calls runtime.Goexit ends
			// this goroutine, and Run hands the reading on.
			handedOff = true
			if !l.inline.Run(m) {
				return
			}
			handedOff = false
		case *wire.Cancel:
			in.Cancel(m)
		case *wire.Shutdown:
			in.Shutdown(m)
		default:
			in.Gone(fmt.Errorf("aplex worker: %w: unexpected %v message from the executor", wire.ErrMalformed, m.Kind()))
			return
		}
	}
}
