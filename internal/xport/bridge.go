package xport

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/aplex-go/aplex/internal/host"
)

// The bridge lets transport packages of this module (cluster) build
// executors and options without the root package exporting its internals.
// The root package sets these variables in its init; a transport package
// imports the root package, so they are set before it can use them.
var (
	// NewOption returns an aplex.Option (as any) that records a transport
	// setting: set is called with the transport's settings map while options
	// are applied; name is the option's name for errors. Such options are
	// accepted only by executors of kind.
	NewOption func(kind, name string, set func(ext map[string]any) error) any
	// NewExecutor builds an *aplex.Executor (as any) of kind from opts
	// (aplex.Options as any), with the transport newTransport returns.
	NewExecutor func(kind string, opts []any, newTransport func(Config) (Transport, error)) (any, error)
	// HostConfig returns a worker host configuration serving this binary's
	// registered works, with the error encoder that keeps registered
	// sentinels: the worker side of a transport starts from it. It runs the
	// binary's worker init (aplex.RegisterWorkerInit), if any, with base
	// and the worker's aplex.WorkerInfo: id (a slot, a local cluster
	// worker's index, or -1), and a cluster worker's workerID and labels;
	// the context the init returns (base without one) becomes the
	// configuration's BaseContext. An init error is returned.
	HostConfig func(base context.Context, id int, workerID string, labels map[string]string) (host.Config, error)
	// ServeRole, set by a transport package's init, lets aplex.Main serve a
	// worker role it does not know itself (e.g. "cluster"): Main calls it
	// when the environment names that role, then exits with its status.
	ServeRole = map[string]func() int{}
)

// Config is what a transport learns from the executor's options.
type Config struct {
	PoolSize          int            // WithPoolSize, if given (0: not given)
	MaxWorksPerWorker int            // WithMaxWorksPerWorker
	StartTimeout      time.Duration  // WithStartTimeout
	HeartbeatTimeout  time.Duration  // WithHeartbeatTimeout: a worker silent this long is lost
	Output            io.Writer      // WithWorkerOutput: output of the worker processes the transport starts (nil: not given)
	Env               []string       // WithWorkerEnv: "KEY=value" entries for the worker processes it starts
	Ext               map[string]any // settings recorded by the transport's own options
	Logger            *slog.Logger
}
