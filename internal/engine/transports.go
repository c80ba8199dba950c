package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/aplex-go/aplex/internal/host"
	"github.com/aplex-go/aplex/internal/xport"
)

// This file is what transport packages of this module (cluster) use to
// build executors, options and worker hosts. It is not part of the aplex
// façade (internal/facadegen skips it): users reach these through the
// transport package's own API.

// TransportOption returns an Option that records a setting of a transport
// package's own kind (cluster). set runs on the transport's settings, of
// type S, which NewClusterExecutor hands to the transport; an executor of
// another kind refuses the option, naming it.
func TransportOption[S any](kind, name string, set func(*S) error) Option {
	return func(c *config) error {
		if c.extKind != "" && c.extKind != kind {
			return fmt.Errorf("aplex: %s cannot be mixed with %s options", name, c.extKind)
		}
		c.extKind = kind
		c.extNames = append(c.extNames, name)
		if c.kind.String() != kind {
			return nil // buildConfig refuses it, naming it, with the other misplaced options
		}
		s, ok := c.ext.(*S)
		if !ok {
			s = new(S)
			c.ext = s
		}
		return set(s)
	}
}

// NewClusterExecutor builds a cluster executor from opts with the transport
// newTransport returns; settings holds what the cluster package's own
// options (TransportOption) recorded.
func NewClusterExecutor[S any](opts []Option, newTransport func(xc xport.Config, settings *S) (xport.Transport, error)) (*Executor, error) {
	cfg, err := buildConfig(kindCluster, opts)
	if err != nil {
		return nil, err
	}
	settings, ok := cfg.ext.(*S)
	if !ok {
		settings = new(S)
	}
	xc := xport.Config{
		MaxWorksPerWorker: cfg.maxWorksPerWorker,
		Slots:             cfg.runSlots(),
		StartTimeout:      cfg.startTimeout,
		HeartbeatTimeout:  cfg.heartbeatTimeout,
		KillGrace:         cfg.killGrace,
		Logger:            cfg.logger,
		Output:            cfg.output,
		Env:               cfg.env,
		Command:           cfg.command,
		CommandArgs:       cfg.commandArgs,
		MemoryLimit:       cfg.memoryLimit,
		RecycleAfter:      cfg.recycleAfter,
		Autoscale:         cfg.autoscale.max > 0,
		AutoscaleMin:      cfg.autoscale.min,
	}
	if cfg.poolSizeSet {
		xc.PoolSize = cfg.poolSize
	}
	tr, err := newTransport(xc, settings)
	if err != nil {
		return nil, err
	}
	return startRemote(cfg, tr)
}

// HostConfig returns a worker host configuration serving this binary's
// registered works, with the error encoder that keeps registered
// sentinels: the worker side of a transport starts from it. It runs the
// binary's worker init (RegisterWorkerInit), if any, with base and the
// worker's WorkerInfo: id (a slot, a local cluster worker's index, or -1),
// and a cluster worker's workerID and labels; the context the init returns
// (base without one) becomes the configuration's BaseContext. An init
// error is returned.
func HostConfig(base context.Context, id int, workerID string, labels map[string]string) (host.Config, error) {
	return hostConfig(base, id, workerID, labels)
}

// roles maps worker roles that Main does not serve itself (e.g. "cluster")
// to the function that serves them; see RegisterRole.
var roles sync.Map // string → func() int

// RegisterRole lets Main serve the worker role name (the value of
// APLEX_WORKER_ROLE): Main calls serve when the environment names it, then
// exits with its status. A transport package registers its role in its
// init, so a binary that links the package can be started as its worker.
func RegisterRole(name string, serve func() int) {
	roles.Store(name, serve)
}
