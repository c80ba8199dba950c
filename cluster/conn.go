package cluster

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Connection defaults for both sides. A NATS restart or failover must not
// end an executor or a worker: they reconnect without limit, quickly, and
// the protocol above resynchronises (see doc.go). Pings every few seconds
// notice a dead server whose TCP connection stays open.
const (
	reconnectWait   = 250 * time.Millisecond
	reconnectJitter = 100 * time.Millisecond
	pingInterval    = 5 * time.Second
	maxPingsOut     = 3
	defaultPayload  = 1 << 20 // NATS' default max_payload, if the server sent none
)

// dial connects to urls with this package's defaults, then the user's
// options (which win). reconnected is called after each reconnect and
// closed when the connection is closed for good; either may be nil.
func dial(urls []string, name string, user []nats.Option, reconnected, closed func()) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, time.Second),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOut),
		rawDial(),
	}
	if reconnected != nil {
		opts = append(opts, nats.ReconnectHandler(func(*nats.Conn) { reconnected() }))
	}
	if closed != nil {
		opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { closed() }))
	}
	opts = append(opts, user...)
	if len(urls) == 0 {
		urls = []string{nats.DefaultURL}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("aplex: cluster: connect to NATS at %s: %w", redactURLs(urls), err)
	}
	return nc, nil
}

// redactURLs joins urls for an error message or a log line without their
// secrets: the user information (a token, or user and password, such as
// cluster.URL puts there for the embedded server) and a pool key after
// '#'.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		s, _, _ = strings.Cut(s, "#")
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			s = u.String()
		} else if err != nil {
			s = "(unparsable URL)"
		}
		out[i] = s
	}
	return strings.Join(out, ",")
}

// maxPayload is the largest message the connection may publish.
func maxPayload(nc *nats.Conn) int {
	if n := nc.MaxPayload(); n > 0 {
		return int(n)
	}
	return defaultPayload
}

// credentialEnv extracts the user/password and token of NATS options, for
// local worker processes that must authenticate like their executor.
// Credentials files, nkeys and TLS settings cannot be read back from a
// nats.Option; aplex.WithWorkerEnv passes those (APLEX_CLUSTER_CREDS, …).
func credentialEnv(opts []nats.Option) []string {
	var o nats.Options
	for _, f := range opts {
		_ = f(&o) // a throwaway struct: only the fields below are read
	}
	var env []string
	if o.User != "" {
		env = append(env, envUser+"="+o.User, envPassword+"="+o.Password)
	}
	if o.Token != "" {
		env = append(env, envToken+"="+o.Token)
	}
	return env
}
