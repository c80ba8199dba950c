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
package link

import (
	"io"

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
func Pipe(w io.Writer, max int) Conn {
	if max <= 0 {
		max = wire.DefaultMaxFrame
	}
	return &pipeConn{w: wire.NewWriter(w, max), max: max}
}

type pipeConn struct {
	w   *wire.Writer
	max int
}

func (p *pipeConn) Max() int                         { return p.max }
func (p *pipeConn) Write(_ string, m wire.Msg) error { return p.w.Write(m) }
func (p *pipeConn) Flush() error                     { return p.w.Flush() }
