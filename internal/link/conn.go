// Package link is the one batching writer of aplex. Every side that sends
// protocol messages uses it: the process executor to its children (Run,
// Cancel, Shutdown), a process child to its executor (Results and control
// messages), the cluster executor to its workers (Run, Cancel) and a
// cluster worker to its executors (Results).
//
// A Writer queues what its callers hand it and writes from one goroutine
// over a Conn: a framed pipe or a NATS connection. It merges what is
// queued into as few messages as fit the size budget of internal/wire,
// keeps each destination's order (a Cancel follows its Run), and flushes
// only when nothing is left to write: a burst costs one system call, a lone
// message goes out at once.
package link

import (
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/wire"
)

// Conn carries a Writer's messages: it is where they become bytes on their
// way out, so it is where sealing plugs in. A sealed NATS link encrypts and
// authenticates the bytes wire.AppendMsg produced in natsConn.Write before
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

// NATS returns a Conn that publishes to subjects on nc, in messages of at
// most max bytes (NATS' max payload).
//
// A failed publish (the connection is closed, or its reconnect buffer is
// full) is logged at debug level and is not an error: the cluster protocol
// resends what a disconnection lost (see the cluster package's doc). Flush
// does nothing: NATS' own flusher goroutine writes a burst of publishes to
// the socket at once, and a round trip to the server (nats.Conn.Flush)
// would only add latency.
func NATS(nc *nats.Conn, max int, log *slog.Logger) Conn {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &natsConn{nc: nc, max: max, log: log}
}

type natsConn struct {
	nc  *nats.Conn
	max int
	log *slog.Logger
	buf []byte // encoding buffer, reused: Publish copies
}

func (c *natsConn) Max() int     { return c.max }
func (c *natsConn) Flush() error { return nil }

// Write publishes m to subject; a failure is logged, not returned (see
// NATS).
func (c *natsConn) Write(subject string, m wire.Msg) error {
	var err error
	c.buf, err = wire.AppendMsg(c.buf[:0], m)
	if err == nil {
		err = c.nc.Publish(subject, c.buf)
	}
	if err != nil {
		c.log.Debug("aplex cluster: publish", "to", subject, "kind", m.Kind().String(), "items", items(m), "err", err)
	}
	if cap(c.buf) > 4<<20 {
		c.buf = nil // do not pin a large message's buffer
	}
	return nil
}

// items counts what a batch message carries, for the log.
func items(m wire.Msg) int {
	switch m := m.(type) {
	case *wire.Run:
		return len(m.Jobs)
	case *wire.Cancel:
		return len(m.IDs)
	case *wire.Results:
		return len(m.Results)
	}
	return 1
}
