package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/engine"
	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/xport"
)

// execConfig is what the cluster options record (engine.TransportOption);
// the engine hands it to newTransport.
type execConfig struct {
	urls     []string
	natsOpts []nats.Option
	conn     *nats.Conn
	pool     string
	local    int
	localSet bool // SpawnLocalWorkers was given, maybe with 0: Resize adds local workers
	// localLabels gives local worker i its labels (LocalWorkerLabels).
	localLabels func(i int) map[string]string
	key         []byte   // WithPoolKey; generated for the embedded server
	accepted    [][]byte // WithAcceptedPoolKeys
	generated   bool     // key was made here: URL carries it
}

// kindName is the executor kind the cluster options belong to.
const kindName = "cluster"

// option wraps a cluster setting as an aplex.Option, so the engine
// validates it with the other options and refuses it, naming it, for
// thread and process executors.
func option(name string, set func(c *execConfig) error) aplex.Option {
	return engine.TransportOption(kindName, name, set)
}

// WithURL connects the executor to the NATS server(s) at urls (e.g.
// "nats://nats-1:4222"; several URLs name one cluster and the client fails
// over between them). Without WithURL or WithConn the executor starts an
// embedded server on 127.0.0.1 instead.
func WithURL(urls ...string) aplex.Option {
	return option("WithURL", func(c *execConfig) error {
		for _, u := range urls {
			if strings.TrimSpace(u) == "" {
				return fmt.Errorf("aplex: cluster.WithURL: empty URL")
			}
		}
		if len(urls) == 0 {
			return fmt.Errorf("aplex: cluster.WithURL: no URL")
		}
		c.urls = append(c.urls, urls...)
		return nil
	})
}

// WithNATSOptions passes options to the NATS client: authentication
// (nats.UserInfo, nats.Token, nats.UserCredentials, nats.Nkey), TLS
// (nats.Secure, nats.RootCAs, nats.ClientCert), a connection name,
// reconnect tuning. They are applied after this package's defaults
// (unlimited reconnects every 250ms), so they win.
func WithNATSOptions(opts ...nats.Option) aplex.Option {
	return option("WithNATSOptions", func(c *execConfig) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("aplex: cluster.WithNATSOptions: option %d is nil", i)
			}
		}
		c.natsOpts = append(c.natsOpts, opts...)
		return nil
	})
}

// WithConn makes the executor use an existing connection instead of
// dialling its own. The executor subscribes on it and unsubscribes at
// Shutdown, but never closes it. It cannot be combined with WithURL or
// WithNATSOptions.
func WithConn(nc *nats.Conn) aplex.Option {
	return option("WithConn", func(c *execConfig) error {
		if nc == nil {
			return fmt.Errorf("aplex: cluster.WithConn(nil): need a connection")
		}
		c.conn = nc
		return nil
	})
}

// WithPool selects the pool: the executor uses only workers serving the
// same pool name (Serve's ServePool, env APLEX_CLUSTER_POOL). Every subject
// sits under aplex.<pool>, so pools share one NATS without crosstalk.
// Default "default".
func WithPool(name string) aplex.Option {
	return option("WithPool", func(c *execConfig) error {
		if err := checkToken("pool name", name); err != nil {
			return fmt.Errorf("aplex: cluster.WithPool: %w", err)
		}
		c.pool = name
		return nil
	})
}

// SpawnLocalWorkers starts n worker processes of this binary (or of
// aplex.WithWorkerCommand's) on this machine against the executor's NATS
// server, so one machine runs the whole distributed path. The binary must
// call aplex.Main first thing in main.
// NewExecutor returns once they have joined; a local worker that dies is
// restarted (its works fail with a *aplex.WorkerError, or are retried);
// Shutdown stops and reaps them. Their output goes to stderr (or
// aplex.WithWorkerOutput), each line prefixed "[aplex cluster worker N pid
// P] ", aplex.WithWorkerEnv adds to their environment, and
// aplex.WithWorkerMemoryLimit kills and replaces one whose resident memory
// goes over it.
// Worker N, 0 … n-1, sees N as aplex.WorkerInfo.ID in its worker init
// (aplex.RegisterWorkerInit), across restarts; workers started otherwise
// see -1. N is also its slot, in aplex.WorkerStats.ID and the balancer's
// aplex.Workers.ID, whatever the order the workers join in (workers
// started otherwise take the slots from n on); its id, in
// aplex.WorkerStats.Name, is "<executor id>-N". LocalWorkerLabels gives
// them labels.
//
// Executor.Resize(ctx, n) changes the number of local workers, and only
// those: it adds local workers in the lowest slots aplex.Stats does not
// list, or retires the highest local ones, which finish their works, say
// Bye and exit (see aplex.Executor.Resize). A local worker added in slot
// N is worker N as above: its WorkerInfo.ID, output prefix, id and
// labels(N) say N. n may be 0; SpawnLocalWorkers(0) starts none, but lets
// WithWorkerOutput, WithWorkerEnv, WithWorkerCommand, WithRecycleAfter,
// WithWorkerMemoryLimit and LocalWorkerLabels apply to the local workers
// Resize adds.
func SpawnLocalWorkers(n int) aplex.Option {
	return option("SpawnLocalWorkers", func(c *execConfig) error {
		if n < 0 {
			return fmt.Errorf("aplex: cluster.SpawnLocalWorkers(%d): must not be negative", n)
		}
		if n > aplex.MaxPoolSize {
			return fmt.Errorf("aplex: cluster.SpawnLocalWorkers(%d): at most %d workers (aplex.MaxPoolSize)", n, aplex.MaxPoolSize)
		}
		c.local, c.localSet = n, true
		return nil
	})
}

// LocalWorkerLabels gives each local worker of SpawnLocalWorkers labels,
// as cluster.ServeLabels or APLEX_CLUSTER_LABELS give a worker started on
// its own: labels(i) are local worker i's (nil: none), for i = 0 … n-1
// and for each slot i Resize adds a local worker in (an error then fails
// that Resize).
// They show in aplex.WorkerStats.Labels, in the balancer's view
// (aplex.Workers.Label), and in the worker's aplex.WorkerInfo, so one
// machine can try out label routing. A label key must be non-empty without
// ',' or '=', a value without ','. They replace an APLEX_CLUSTER_LABELS
// given with aplex.WithWorkerEnv.
func LocalWorkerLabels(labels func(i int) map[string]string) aplex.Option {
	return option("LocalWorkerLabels", func(c *execConfig) error {
		if labels == nil {
			return fmt.Errorf("aplex: cluster.LocalWorkerLabels(nil): need a function")
		}
		c.localLabels = labels
		return nil
	})
}

// labelsEnv encodes labels as APLEX_CLUSTER_LABELS' value, "k=v,k2=v2"
// in key order, refusing what that encoding cannot carry.
func labelsEnv(labels map[string]string) (string, error) {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if k == "" || strings.ContainsAny(k, ",=") || strings.Contains(v, ",") {
			return "", fmt.Errorf("label %q=%q: a key must be non-empty without ',' or '=', a value without ','", k, v)
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + v)
	}
	return b.String(), nil
}

// check reports conflicting settings and fills in defaults. xc carries the
// core options the transport applies itself.
func (c *execConfig) check(xc xport.Config) error {
	if xc.Autoscale {
		if c.localSet {
			return fmt.Errorf("aplex: cluster.SpawnLocalWorkers and WithAutoscale do not combine: the autoscaler starts min local workers and sizes them")
		}
		c.local, c.localSet = xc.AutoscaleMin, true
	}
	if !c.localSet && xc.Output != nil {
		return fmt.Errorf("aplex: WithWorkerOutput applies to a cluster executor's local workers only: add cluster.SpawnLocalWorkers (the output of other cluster workers stays on their machines)")
	}
	if !c.localSet && len(xc.Env) > 0 {
		return fmt.Errorf("aplex: WithWorkerEnv applies to a cluster executor's local workers only: add cluster.SpawnLocalWorkers (other cluster workers have their own environment)")
	}
	if !c.localSet && xc.Command != "" {
		return fmt.Errorf("aplex: WithWorkerCommand applies to a cluster executor's local workers only: add cluster.SpawnLocalWorkers (other cluster workers are started where they run)")
	}
	if !c.localSet && xc.RecycleAfter > 0 {
		return fmt.Errorf("aplex: WithRecycleAfter applies to a cluster executor's local workers only: add cluster.SpawnLocalWorkers (other cluster workers are replaced where they run)")
	}
	if !c.localSet && xc.MemoryLimit > 0 {
		return fmt.Errorf("aplex: WithWorkerMemoryLimit applies to a cluster executor's local workers only: add cluster.SpawnLocalWorkers (limit other cluster workers where they run, with GOMEMLIMIT and the system's own limits)")
	}
	if xc.MemoryLimit > 0 && !spawn.MemorySupported {
		return errors.New("aplex: WithWorkerMemoryLimit is not supported on this system (it reads the workers' resident memory on Linux only)")
	}
	if !c.localSet && c.localLabels != nil {
		return fmt.Errorf("aplex: cluster.LocalWorkerLabels applies to local workers only: add cluster.SpawnLocalWorkers (other cluster workers set their own with cluster.ServeLabels or APLEX_CLUSTER_LABELS)")
	}
	if c.conn != nil && (len(c.urls) > 0 || len(c.natsOpts) > 0) {
		return fmt.Errorf("aplex: cluster.WithConn cannot be combined with WithURL or WithNATSOptions: the connection is already configured")
	}
	if c.pool == "" {
		c.pool = DefaultPool
	}
	if c.key == nil && len(c.accepted) > 0 {
		return fmt.Errorf("aplex: cluster.WithAcceptedPoolKeys needs cluster.WithPoolKey: the executor seals with that key, and accepts these too")
	}
	return nil
}
