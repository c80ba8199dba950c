package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embeddedReady bounds the wait for the embedded server to accept
// connections (it is ready in about a millisecond).
const embeddedReady = 10 * time.Second

// startEmbedded starts the development server an executor uses when it is
// given no URL: in this process, on 127.0.0.1 and a random free port, so
// that local workers (and workers started by hand on this machine, given
// cluster.URL) can join, logging nothing and leaving the process's signals
// alone. Only local processes can reach it, but those may belong to any
// user: a client must present token, generated per executor, and an
// anonymous one is refused.
func startEmbedded(token string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		NoLog:         true,
		NoSigs:        true,
		Authorization: token,
	})
	if err != nil {
		return nil, fmt.Errorf("aplex: cluster: embedded NATS server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(embeddedReady) {
		stopEmbedded(s)
		return nil, errors.New("aplex: cluster: embedded NATS server did not become ready")
	}
	return s, nil
}

// stopEmbedded shuts s down and waits until its goroutines are gone.
func stopEmbedded(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}
