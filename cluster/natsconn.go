package cluster

import (
	"log/slog"

	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/wire"
)

// The cluster's side of the one link (internal/link): the Conn over NATS.
// It lives here so that only this package imports NATS.

// natsLink returns a link.Conn that publishes to subjects through sc
// (sealing each message with the pool key, if the pool has one), in
// messages of at most max bytes (NATS' max payload less the seal's
// overhead).
//
// A failed publish (the connection is closed, or its reconnect buffer is
// full) is logged at debug level and is not an error: the cluster protocol
// resends what a disconnection lost (see the cluster package's doc). Flush
// does nothing: NATS' own flusher goroutine writes a burst of publishes to
// the socket at once, and a round trip to the server (nats.Conn.Flush)
// would only add latency.
func natsLink(sc *sealConn, max int, log *slog.Logger) link.Conn {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &natsConn{sc: sc, max: max, log: log}
}

type natsConn struct {
	sc  *sealConn // seals with the pool key, if there is one
	max int
	log *slog.Logger
	buf []byte // encoding buffer, reused: Publish copies
}

func (c *natsConn) Max() int     { return c.max }
func (c *natsConn) Flush() error { return nil }

// Write publishes m to subject; a failure is logged, not returned (see
// natsLink).
func (c *natsConn) Write(subject string, m wire.Msg) error {
	var err error
	c.buf, err = wire.AppendMsg(c.buf[:0], m)
	if err == nil {
		err = c.sc.Publish(subject, c.buf)
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
