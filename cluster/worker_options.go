package cluster

import (
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults of the worker side.
const (
	// DefaultHeartbeat is how often a worker tells executors it is alive.
	DefaultHeartbeat = time.Second
	// DefaultMaxWorks is how many works a worker runs at once for each
	// executor, like aplex.WithMaxWorksPerWorker's default.
	DefaultMaxWorks = 300
	// DefaultDrainTimeout bounds how long a leaving worker waits for its
	// running works before it cancels them.
	DefaultDrainTimeout = 30 * time.Second
)

// ServeOption configures Serve.
type ServeOption func(*serveConfig) error

type serveConfig struct {
	urls         []string
	natsOpts     []nats.Option
	conn         *nats.Conn
	pool         string
	maxWorks     int
	labels       map[string]string
	heartbeat    time.Duration
	workerID     string
	drainTimeout time.Duration
	acceptWindow time.Duration // see acceptWindow in serve.go
	logger       *slog.Logger
	index        int      // WorkerInfo.ID for the worker init: -1, or a local worker's index
	key          []byte   // ServePoolKey, or the key in a URL's fragment
	accepted     [][]byte // ServeAcceptedPoolKeys
}

// ServeURL connects the worker to the NATS server(s) at urls (default
// nats://127.0.0.1:4222). A URL from cluster.URL carries the embedded
// server's token and, after '#', the pool key the executor generated
// ("nats://<token>@127.0.0.1:41873#aplex-key=<hex>"): the worker uses that
// key unless ServePoolKey gives one, and dials the URL without it.
func ServeURL(urls ...string) ServeOption {
	return func(c *serveConfig) error {
		if len(urls) == 0 {
			return fmt.Errorf("aplex: cluster.ServeURL: no URL")
		}
		for _, u := range urls {
			if strings.TrimSpace(u) == "" {
				return fmt.Errorf("aplex: cluster.ServeURL: empty URL")
			}
		}
		c.urls = append(c.urls, urls...)
		return nil
	}
}

// ServeNATSOptions passes options to the worker's NATS client
// (authentication, TLS, …), applied after this package's defaults.
func ServeNATSOptions(opts ...nats.Option) ServeOption {
	return func(c *serveConfig) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("aplex: cluster.ServeNATSOptions: option %d is nil", i)
			}
		}
		c.natsOpts = append(c.natsOpts, opts...)
		return nil
	}
}

// ServeConn makes the worker use an existing connection; Serve
// unsubscribes when it returns but does not close it. It cannot be
// combined with ServeURL or ServeNATSOptions.
func ServeConn(nc *nats.Conn) ServeOption {
	return func(c *serveConfig) error {
		if nc == nil {
			return fmt.Errorf("aplex: cluster.ServeConn(nil): need a connection")
		}
		c.conn = nc
		return nil
	}
}

// ServePool selects the pool the worker serves (default "default"); only
// executors of the same pool (cluster.WithPool) use it.
func ServePool(name string) ServeOption {
	return func(c *serveConfig) error {
		if err := checkToken("pool name", name); err != nil {
			return fmt.Errorf("aplex: cluster.ServePool: %w", err)
		}
		c.pool = name
		return nil
	}
}

// ServeMaxWorks sets how many works the worker announces it runs at once
// (default 300). Each executor keeps at most that many works, or its own
// aplex.WithMaxWorksPerWorker if lower, on the worker; several executors
// sharing a worker each get that capacity.
func ServeMaxWorks(n int) ServeOption {
	return func(c *serveConfig) error {
		if n < 1 {
			return fmt.Errorf("aplex: cluster.ServeMaxWorks(%d): need at least 1", n)
		}
		c.maxWorks = n
		return nil
	}
}

// ServeLabels attaches free-form labels (zone, hardware, …) to the worker's
// announcement, where executors receive them with its id and pid.
func ServeLabels(labels map[string]string) ServeOption {
	return func(c *serveConfig) error {
		c.labels = maps.Clone(labels)
		return nil
	}
}

// ServeHeartbeat sets how often the worker sends heartbeats (default 1s).
// Keep it well under the executors' aplex.WithHeartbeatTimeout (default
// 3s): an executor drops a worker silent for that long.
func ServeHeartbeat(d time.Duration) ServeOption {
	return func(c *serveConfig) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("aplex: cluster.ServeHeartbeat(%v): want at least 10ms", d)
		}
		c.heartbeat = d
		return nil
	}
}

// ServeWorkerID sets the worker's id (default: host name, pid and a random
// suffix). Ids must be unique in a pool; a worker restarted with the same id
// keeps its place (balancer slot) in the executors.
func ServeWorkerID(id string) ServeOption {
	return func(c *serveConfig) error {
		if err := checkToken("worker id", id); err != nil {
			return fmt.Errorf("aplex: cluster.ServeWorkerID: %w", err)
		}
		c.workerID = id
		return nil
	}
}

// ServeDrainTimeout bounds how long a leaving worker waits for its running
// works (default 30s); then it cancels them and leaves a second later.
func ServeDrainTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) error {
		if d <= 0 {
			return fmt.Errorf("aplex: cluster.ServeDrainTimeout(%v): must be positive", d)
		}
		c.drainTimeout = d
		return nil
	}
}

// ServeLogger sets where the worker's log lines go: each retry of the first
// connection to NATS (Warn), and failed publishes of results and
// heartbeats during an outage (Debug), the connection made (Info). Default:
// discarded; the worker role of aplex.Main (APLEX_WORKER_ROLE=cluster)
// logs to stderr, at the level APLEX_LOG sets and in the format
// APLEX_LOG_FORMAT sets (text or json).
func ServeLogger(l *slog.Logger) ServeOption {
	return func(c *serveConfig) error {
		if l == nil {
			return fmt.Errorf("aplex: cluster.ServeLogger(nil): need a logger")
		}
		c.logger = l
		return nil
	}
}

// serveNoAcceptWindow makes a leaving worker refuse new works at once. A
// local worker leaves only when its own executor shuts down, which sends
// it nothing any more, so the window would only delay the shutdown.
func serveNoAcceptWindow() ServeOption {
	return func(c *serveConfig) error {
		c.acceptWindow = 0
		return nil
	}
}

// serveIndex gives a local worker its index among SpawnLocalWorkers, which
// its worker init sees as WorkerInfo.ID.
func serveIndex(i int) ServeOption {
	return func(c *serveConfig) error {
		c.index = i
		return nil
	}
}

// buildServeConfig applies opts over the defaults.
func buildServeConfig(opts []ServeOption) (serveConfig, error) {
	c := serveConfig{
		pool:         DefaultPool,
		maxWorks:     DefaultMaxWorks,
		heartbeat:    DefaultHeartbeat,
		drainTimeout: DefaultDrainTimeout,
		acceptWindow: acceptWindow,
		index:        -1, // a worker of the whole pool has no index of its own
	}
	for i, o := range opts {
		if o == nil {
			return c, fmt.Errorf("aplex: cluster.Serve: option %d is nil", i)
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	if c.conn != nil && (len(c.urls) > 0 || len(c.natsOpts) > 0) {
		return c, fmt.Errorf("aplex: cluster.ServeConn cannot be combined with ServeURL or ServeNATSOptions")
	}
	if c.workerID == "" {
		c.workerID = defaultWorkerID()
	}
	// A URL from cluster.URL may carry the pool key the executor made;
	// NATS dials the URL without it. An explicit ServePoolKey wins.
	for i, u := range c.urls {
		base, text := splitURLKey(u)
		if text == "" {
			continue
		}
		c.urls[i] = base
		if c.key == nil {
			key, accepted, err := parseKeys("the pool key in the URL", text)
			if err != nil {
				return c, fmt.Errorf("aplex: cluster.ServeURL: %w", err)
			}
			c.key, c.accepted = key, accepted
		}
	}
	if c.key == nil && len(c.accepted) > 0 {
		return c, fmt.Errorf("aplex: cluster.ServeAcceptedPoolKeys needs cluster.ServePoolKey: the worker seals with that key, and accepts these too")
	}
	return c, nil
}
