package aplex

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// The bridge to transport packages of this module (cluster); see
// internal/xport/bridge.go.
func init() {
	xport.NewOption = func(kind, name string, set func(map[string]any) error) any {
		return Option(func(c *config) error {
			if c.extKind != "" && c.extKind != kind {
				return fmt.Errorf("aplex: %s cannot be mixed with %s options", name, c.extKind)
			}
			c.extKind = kind
			c.extNames = append(c.extNames, name)
			if c.ext == nil {
				c.ext = map[string]any{}
			}
			return set(c.ext)
		})
	}
	xport.NewExecutor = func(kind string, opts []any, newTransport func(xport.Config) (xport.Transport, error)) (any, error) {
		aopts := make([]Option, len(opts))
		for i, o := range opts {
			opt, ok := o.(Option)
			if !ok && o != nil {
				return nil, fmt.Errorf("aplex: option %d is a %T, not an aplex.Option", i, o)
			}
			aopts[i] = opt
		}
		cfg, err := buildConfig(kindCluster, aopts)
		if err != nil {
			return nil, err
		}
		xc := xport.Config{
			MaxWorksPerWorker: cfg.maxWorksPerWorker,
			StartTimeout:      cfg.startTimeout,
			HeartbeatTimeout:  cfg.heartbeatTimeout,
			Logger:            cfg.logger,
			Output:            cfg.output,
			Env:               cfg.env,
			Ext:               cfg.ext,
		}
		if cfg.poolSizeSet {
			xc.PoolSize = cfg.poolSize
		}
		tr, err := newTransport(xc)
		if err != nil {
			return nil, err
		}
		return startRemote(cfg, tr)
	}
	xport.HostConfig = hostConfig
}

// hostConfig serves this binary's registered works in a worker process,
// after the worker init, if one is registered, with the values the caller's
// propagators sent in each work's ctx (RegisterPropagator). workerID and
// labels name a cluster worker ("" and nil for a process worker).
func hostConfig(base context.Context, id int, workerID string, labels map[string]string) (host.Config, error) {
	ctx, err := runWorkerInit(base, WorkerInfo{ID: id, WorkerID: workerID, Labels: maps.Clone(labels)})
	if err != nil {
		return host.Config{}, err
	}
	return host.Config{Registry: hostRegistry{}, EncodeError: encodeError, GoexitError: ErrGoexit, BaseContext: ctx,
		Extract: extractHeader}, nil
}

type hostRegistry struct{}

func (hostRegistry) Lookup(name string) (host.Handler, bool) {
	h, ok := registry.lookup(name)
	return host.Handler(h), ok
}

func (hostRegistry) Names() []string { return registry.names() }

// messageHeadroom is what a job's envelope may need beside its argument.
const messageHeadroom = 4096

// startSlack is how long past WithStartTimeout a transport's Start may
// take to report its own timeout (whose error says more than a cancelled
// ctx: the process transport's handshake timer starts after the fork) and
// clean up.
const startSlack = time.Second

// startRemote builds an executor over a remote transport and starts its
// workers; it is shared by process and cluster executors.
func startRemote(cfg config, tr xport.Transport) (*Executor, error) {
	c := newCore(cfg)
	c.tr = tr
	c.maxMsg = tr.MaxMessage() - messageHeadroom
	if c.maxMsg <= 0 {
		c.maxMsg = wire.DefaultMaxFrame - messageHeadroom
	}
	// WithStartTimeout is the bound (not plus the kill grace: that made a
	// 2s start timeout fail after 7s). Transports enforce it themselves,
	// with an error saying what they waited for; this ctx is a backstop a
	// moment later, which also leaves them that moment to clean up.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.startTimeout+startSlack)
	defer cancel()
	if err := tr.Start(ctx, c); err != nil {
		c.baseCancel()
		return nil, err
	}
	return newExecutor(c), nil
}
