package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startRawDialServer starts a NATS server on 127.0.0.1 for the raw dialer's
// tests, shut down at the end of the test; with tc, clients must use TLS.
func startRawDialServer(t *testing.T, tc ...*tls.Config) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true}
	if len(tc) > 0 {
		opts.TLSConfig, opts.TLSTimeout = tc[0], 5
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// TestDialMakesRawConnections checks that the package's connections are
// dialed by rawDialer, whose reads and writes are raw system calls on
// Linux, and that requests go through them both ways.
func TestDialMakesRawConnections(t *testing.T) {
	srv := startRawDialServer(t)
	counted := &countingDialer{}
	nc, err := dial([]string{srv.ClientURL()}, "raw-dial", []nats.Option{wrapDialer(counted)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if counted.conns == 0 {
		t.Fatal("the package's dialer was not used")
	}
	for _, c := range counted.made {
		rc, ok := c.(*rawNetConn)
		if !ok {
			t.Fatalf("dialed a %T, want a *rawNetConn", c)
		}
		if raw := rc.r != net.Conn(rc.Conn); raw != (runtime.GOOS != "windows") {
			t.Errorf("raw reads on %s: %v", runtime.GOOS, raw)
		}
	}
	sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for i := range 100 {
		msg := make([]byte, 1+i*1000) // up to 99 kB: writes the socket takes in parts
		msg[0] = byte(i)
		reply, err := nc.Request("echo", msg, 5*time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if len(reply.Data) != len(msg) || reply.Data[0] != byte(i) {
			t.Fatalf("request %d: reply of %d bytes, want %d", i, len(reply.Data), len(msg))
		}
	}
}

// TestRawConnectionsCarryTLS checks that TLS, which nats.go puts on top of
// the dialed connection, works over a raw one.
func TestRawConnectionsCarryTLS(t *testing.T) {
	cert, roots := selfSignedCert(t)
	srv := startRawDialServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	counted := &countingDialer{}
	url := fmt.Sprintf("tls://%s", srv.Addr())
	nc, err := dial([]string{url}, "raw-tls", []nats.Option{nats.Secure(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), wrapDialer(counted)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if counted.conns == 0 {
		t.Fatal("the package's dialer was not used")
	}
	if _, ok := counted.made[0].(*rawNetConn); !ok {
		t.Fatalf("dialed a %T, want a *rawNetConn", counted.made[0])
	}
	sub, err := nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	msg := make([]byte, 64<<10)
	msg[len(msg)-1] = 7
	reply, err := nc.Request("echo", msg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply.Data) != len(msg) || reply.Data[len(msg)-1] != 7 {
		t.Fatalf("reply of %d bytes, want %d", len(reply.Data), len(msg))
	}
}

// selfSignedCert returns a certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// TestUsersCustomDialerWins checks that a CustomDialer among the user's
// options replaces the package's.
func TestUsersCustomDialerWins(t *testing.T) {
	srv := startRawDialServer(t)
	var user userDialer
	nc, err := dial([]string{srv.ClientURL()}, "user-dial", []nats.Option{nats.SetCustomDialer(&user)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if user.conns == 0 {
		t.Fatal("the user's CustomDialer was not used")
	}
}

// TestRawConnEndsAtItsDeadline checks that a raw read waiting for data
// ends at the connection's read deadline with a timeout, as nats.go's
// handshake expects of a net.Conn, and that reads and writes of a closed
// connection fail with net.ErrClosed, as the connection's own do.
func TestRawConnEndsAtItsDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := rawDialer{&nats.Options{Timeout: 5 * time.Second}}.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if peer := <-accepted; peer != nil {
		defer peer.Close()
	}
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read of a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write to a closed connection: %v, want net.ErrClosed", err)
	}
}

// countingDialer records the connections the package's own dialer makes.
type countingDialer struct {
	conns int
	made  []net.Conn
}

// wrapDialer is an option, after the package's, that wraps its dialer to
// record what it dials.
func wrapDialer(c *countingDialer) nats.Option {
	return func(o *nats.Options) error {
		inner := o.CustomDialer
		o.CustomDialer = dialFunc(func(network, address string) (net.Conn, error) {
			conn, err := inner.Dial(network, address)
			if err == nil {
				c.conns++
				c.made = append(c.made, conn)
			}
			return conn, err
		})
		return nil
	}
}

type dialFunc func(network, address string) (net.Conn, error)

func (f dialFunc) Dial(network, address string) (net.Conn, error) { return f(network, address) }

// userDialer is a user's plain dialer, counting its connections.
type userDialer struct{ conns int }

func (d *userDialer) Dial(network, address string) (net.Conn, error) {
	d.conns++
	return net.Dial(network, address)
}
