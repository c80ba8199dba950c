// Package link is the one batching writer of aplex. Every side that sends
// protocol messages uses it: the process executor to its children (Run,
// Cancel, Shutdown), a process child to its executor (Results and control
// messages), the cluster executor to its workers (Run, Cancel) and a
// cluster worker to its executors (Results).
//
// A Writer queues what its callers hand it and writes from one goroutine
// over a Conn: a framed pipe (Pipe), or a NATS connection (the cluster
// package's natsConn, kept there so that only the cluster package imports
// NATS). It merges what is
// queued into as few messages as fit the size budget of internal/wire,
// keeps each destination's order (a Cancel follows its Run), and flushes
// only when nothing is left to write: a burst costs one system call, a lone
// message goes out at once.
//
// A pipe is written, and read (PipeReader), with raw system calls: its ends
// are non-blocking, and the runtime's bookkeeping for a call that may block
// wakes its monitor thread at the start of every burst (rawio_unix.go).
package link

import (
	"io"
	"syscall"

	"github.com/aplex-go/aplex/internal/wire"
)

// Conn carries a Writer's messages: it is where they become bytes on their
// way out, so it is where sealing plugs in. A sealed NATS link encrypts and
// authenticates the bytes wire.AppendMsg produced in the cluster's natsConn.Write before
// Publish (and the subscriber opens them before wire.Unmarshal); the Writer
// above needs no change. The cluster's few unbatched publishes (Hello,
// Heartbeat, Bye, a Shutdown) do not pass through a Writer and must be
// sealed the same way.
//
// A Conn is used by one goroutine at a time (the Writer's).
type Conn interface {
	// Max is the largest message it carries, in bytes.
	Max() int
	// Write buffers m for the destination subject ("" on a pipe). An
	// error is fatal: the Writer stops and reports it.
	Write(subject string, m wire.Msg) error
	// Flush pushes out what Write buffered. The Writer calls it only when
	// its queue is empty.
	Flush() error
}

// Pipe returns a Conn over a byte stream (a process worker's pipe): frames
// of at most max bytes (max ≤ 0: wire.DefaultMaxFrame), buffered until
// Flush. Its first error is final: the other end is gone.
//
// Over an *os.File in non-blocking mode (what os.Pipe returns, and what a
// process child makes of its inherited ends) it can also write without
// blocking its caller, which Writer.Release uses: what the pipe does not
// take at once is kept, and goes out first at the next blocking write.
func Pipe(w io.Writer, max int) Conn {
	if max <= 0 {
		max = wire.DefaultMaxFrame
	}
	out := &pipeOut{w: w}
	out.rc = rawConn(w)
	return &pipeConn{out: out, w: wire.NewWriter(out, max), max: max}
}

type pipeConn struct {
	out *pipeOut
	w   *wire.Writer
	max int
}

func (p *pipeConn) Max() int                         { return p.max }
func (p *pipeConn) Write(_ string, m wire.Msg) error { return p.w.Write(m) }

// Flush pushes out what Write buffered; outside try mode it also writes
// what a try left behind, blocking until the pipe takes it.
func (p *pipeConn) Flush() error {
	if err := p.w.Flush(); err != nil {
		return err
	}
	if p.out.try {
		return nil
	}
	return p.out.drain()
}

// tryStart puts the Conn in try mode, if it can write without blocking:
// until tryEnd, writes to the stream never block.
func (p *pipeConn) tryStart() bool {
	if p.out.rc == nil {
		return false
	}
	p.out.try = true
	return true
}

// tryEnd ends try mode and reports whether the stream took everything.
func (p *pipeConn) tryEnd() (drained bool) {
	p.out.try = false
	return len(p.out.rest) == 0
}

// tryConn is a Conn that can write without blocking (Pipe's).
type tryConn interface {
	tryStart() bool
	tryEnd() (drained bool)
}

// pipeOut is the byte stream under a pipe Conn's buffer. In try mode a
// write puts into the stream what it takes at once and keeps the rest,
// which every later write sends first, so the bytes stay in order.
type pipeOut struct {
	w    io.Writer
	rc   syscall.RawConn // nil: no non-blocking writes
	try  bool
	rest []byte // what a try could not write

	// writeRaw's system calls, bound once, and their arguments and
	// results (rawio_unix.go).
	write func(fd uintptr) bool
	p     []byte
	wait  bool
	n     int
	errno syscall.Errno
}

// writeBlocking writes p whole, waiting while the pipe is full: with raw
// system calls on a non-blocking file (rawio_unix.go), else with w's Write.
func (o *pipeOut) writeBlocking(p []byte) (int, error) {
	if o.rc != nil && len(p) > 0 {
		return o.writeAll(p)
	}
	return o.w.Write(p)
}

func (o *pipeOut) Write(p []byte) (int, error) {
	if !o.try {
		if err := o.drain(); err != nil {
			return 0, err
		}
		return o.writeBlocking(p)
	}
	n := 0
	if len(o.rest) == 0 {
		var err error
		if n, err = o.writeNow(p); err != nil {
			return n, err
		}
	}
	o.rest = append(o.rest, p[n:]...)
	return len(p), nil
}

// drain writes what a try left behind, blocking.
func (o *pipeOut) drain() error {
	if len(o.rest) == 0 {
		return nil
	}
	_, err := o.writeBlocking(o.rest)
	if cap(o.rest) > 64<<10 {
		o.rest = nil // a big Map chunk: do not pin its copy
	} else {
		o.rest = o.rest[:0]
	}
	return err
}
