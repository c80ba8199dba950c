package cluster

import (
	"io"
	"net"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/link"
)

// rawDial is the NATS option that dials TCP connections whose reads and
// writes are raw system calls (link.PipeReader and link.PipeWriter), for
// the reason a process worker's pipes are (internal/link/rawio_unix.go): a
// socket is non-blocking, and entering a system call the usual way wakes
// the runtime's monitor thread at the start of every burst of messages, in
// every executor and worker process, which then polls every 20 µs for a
// millisecond. Measured in the bench suite (3 local worker processes,
// 3 interleaved pairs): a round trip 148-174 µs against 197-236 µs
// unsealed, Map ChunkSize(100) 2.25-2.31 M works/s against 1.79-2.26 M.
//
// Everything else is nats.go's: the dialer it would use (Options.Dialer,
// with the connection timeout), TLS and websockets on top of the
// connection, deadlines through it. A CustomDialer among the user's
// options, which come after this one, replaces it. An in-process
// connection (the embedded server) dials nothing.
func rawDial() nats.Option {
	return func(o *nats.Options) error {
		o.CustomDialer = rawDialer{o}
		return nil
	}
}

// rawDialer dials as nats.go would, then wraps the connection.
type rawDialer struct{ o *nats.Options }

func (d rawDialer) Dial(network, address string) (net.Conn, error) {
	var nd net.Dialer
	if d.o.Dialer != nil { // set by nats.Connect, or by the user
		nd = *d.o.Dialer
	} else {
		nd.Timeout = d.o.Timeout
	}
	if d.o.AllowMultipathTCP != nil {
		nd.SetMultipathTCP(*d.o.AllowMultipathTCP)
	}
	c, err := nd.Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &rawNetConn{Conn: c, r: link.PipeReader(c), w: link.PipeWriter(c)}, nil
}

// rawNetConn is a net.Conn whose Read and Write are raw system calls (on
// Linux; see link.PipeReader); the rest is the TCP connection's.
type rawNetConn struct {
	net.Conn
	r io.Reader
	w io.Writer
}

func (c *rawNetConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *rawNetConn) Write(p []byte) (int, error) { return c.w.Write(p) }
