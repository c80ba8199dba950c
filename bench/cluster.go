package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// The cluster workload's raw NATS floor: the cluster executor's local
// workers (this binary re-executed) also answer plain NATS requests on
// echoSubject when clusterEchoEnv holds the server's URL, so the raw
// request/reply is measured between the very same processes as the
// executor's round trip.
const (
	clusterEchoEnv = "APLEX_BENCH_CLUSTER_ECHO_URL"
	echoSubject    = "bench.echo"
)

// ClusterWorkers is how many local worker processes the cluster workload's
// executors run (the cluster target's "3 local workers").
const ClusterWorkers = 3

// ServeClusterEcho starts answering raw NATS requests when this process is
// a cluster worker started by NewClusterExecutor with the echo on. Call it
// from TestMain before aplex.Main, which never returns in a worker; it
// returns at once either way.
func ServeClusterEcho() {
	url := os.Getenv(clusterEchoEnv)
	if url == "" {
		return
	}
	nc, err := nats.Connect(url, nats.Name("aplex bench echo"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench echo:", err)
		return
	}
	// A queue group: of the workers, one answers each request. The
	// connection lives as long as the worker process.
	if _, err := nc.QueueSubscribe(echoSubject, "echo", func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		fmt.Fprintln(os.Stderr, "bench echo:", err)
		return
	}
	if err := nc.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "bench echo:", err)
	}
}

// NATSServer is a NATS server in this process laid out as the cluster
// executor's embedded default: on 127.0.0.1 and a random port, logging
// nothing, leaving signals alone. Clients in this process reach it
// in-process (no socket), as the default executor reaches its own;
// worker processes connect over TCP loopback.
type NATSServer struct{ srv *server.Server }

// StartNATS starts a NATSServer and waits until it accepts connections.
func StartNATS() (*NATSServer, error) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("bench: NATS server not ready")
	}
	return &NATSServer{srv}, nil
}

// URL returns the server's TCP URL, for worker processes.
func (s *NATSServer) URL() string { return s.srv.ClientURL() }

// Close shuts the server down and waits until it has.
func (s *NATSServer) Close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// connect returns an in-process connection to the server.
func (s *NATSServer) connect(opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(s.URL(), append([]nats.Option{nats.InProcessServer(s.srv)}, opts...)...)
}

// NewClusterExecutor returns a cluster executor on s with ClusterWorkers
// local workers, reached in-process as the embedded default does: its own
// pool, unsealed, or sealed with a fresh pool key. With echo its workers
// also answer RawNATS's requests. It returns once every worker has run a
// no-op, so start-up stays out of the timings.
func NewClusterExecutor(s *NATSServer, sealed, echo bool) (*aplex.Executor, error) {
	pool := "bench-unsealed"
	opts := []aplex.Option{
		cluster.WithURL(s.URL()),
		cluster.WithNATSOptions(nats.InProcessServer(s.srv)),
		cluster.SpawnLocalWorkers(ClusterWorkers),
	}
	if sealed {
		pool = "bench-sealed"
		opts = append(opts, cluster.WithPoolKey(cluster.NewPoolKey()))
	}
	opts = append(opts, cluster.WithPool(pool))
	if echo {
		opts = append(opts, aplex.WithWorkerEnv(clusterEchoEnv+"="+s.URL()))
	}
	return warmCluster(cluster.NewExecutor(opts...))
}

// NewEmbeddedClusterExecutor returns the cluster executor of the default
// set-up: its embedded NATS server, sealed with the key it generates, and
// ClusterWorkers local workers, warmed up like NewClusterExecutor's.
func NewEmbeddedClusterExecutor() (*aplex.Executor, error) {
	return warmCluster(cluster.NewExecutor(cluster.SpawnLocalWorkers(ClusterWorkers)))
}

// warmCluster runs a few no-ops per worker on ex (NewExecutor returns once
// the local workers have joined; this also warms their connections).
func warmCluster(ex *aplex.Executor, err error) (*aplex.Executor, error) {
	if err != nil {
		return nil, err
	}
	n := 4 * ClusterWorkers
	if err := SubmitAll(context.Background(), ex, Noop.Work, Args(n), make([]int, n)); err != nil {
		ex.Close()
		return nil, err
	}
	return ex, nil
}

// RawNATS is the cluster floor's client: plain NATS request/reply from
// this process, in-process to the server, to the echo of a
// NewClusterExecutor's workers (over TCP loopback).
type RawNATS struct{ nc *nats.Conn }

// DialRawNATS connects to s and waits until the echo answers.
func DialRawNATS(s *NATSServer) (*RawNATS, error) {
	nc, err := s.connect(nats.Name("aplex bench raw client"))
	if err != nil {
		return nil, err
	}
	r := &RawNATS{nc}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := nc.Request(echoSubject, nil, 200*time.Millisecond)
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			nc.Close()
			return nil, fmt.Errorf("bench: no NATS echo: %w", err)
		}
	}
}

// RoundTrips sends n requests of 8 bytes one at a time, each waiting for
// its reply.
func (r *RawNATS) RoundTrips(n int) error {
	payload := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for range n {
		if _, err := r.nc.Request(echoSubject, payload, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the connection.
func (r *RawNATS) Close() { r.nc.Close() }
