package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"time"
)

// Option configures an executor. Options are checked when the executor is
// built; a bad one makes the constructor return an error naming it.
type Option func(*config) error

// executorKind says which constructor is in use; some options apply to
// some kinds only.
type executorKind int

// DefaultHeartbeatTimeout is how long a process or cluster worker may stay
// silent before it is counted lost (WithHeartbeatTimeout).
const DefaultHeartbeatTimeout = 3 * time.Second

// minHeartbeatTimeout keeps the liveness check meaningful: below it, a busy
// machine's scheduling delays would pass for dead workers.
const minHeartbeatTimeout = 50 * time.Millisecond

const (
	kindThread executorKind = iota
	kindProcess
	kindCluster
)

func (k executorKind) String() string {
	return [...]string{"thread", "process", "cluster"}[k]
}

type config struct {
	kind              executorKind
	poolSize          int
	maxWorksPerWorker int
	queueSize         int // 0: unbounded
	balancer          LoadBalancer
	workerInit        func(context.Context, WorkerInfo) (context.Context, error)
	killGrace         time.Duration
	observer          Observer // WithObserver; nil: none

	// process executors
	remoteOnly   []string // names of process-or-cluster options given
	logger       *slog.Logger
	command      string
	commandArgs  []string
	env          []string
	output       io.Writer
	recycleAfter int
	prefetch     int // WithPrefetch: works a remote worker holds beyond its slots
	memoryLimit  int64
	startTimeout time.Duration
	// heartbeatTimeout: a process or cluster worker silent this long is lost.
	heartbeatTimeout time.Duration

	autoscale autoscaleConfig // WithAutoscale; max 0: off

	// transport packages' own options (cluster), through internal/xport
	poolSizeSet bool
	extKind     string
	extNames    []string
	ext         any // the transport's settings, a *S of TransportOption[S]
}

func defaultConfig(kind executorKind) config {
	return config{
		kind:              kind,
		poolSize:          runtime.NumCPU(),
		maxWorksPerWorker: 300,
		killGrace:         5 * time.Second,
		startTimeout:      10 * time.Second,
		heartbeatTimeout:  DefaultHeartbeatTimeout,
	}
}

func buildConfig(kind executorKind, opts []Option) (config, error) {
	cfg := defaultConfig(kind)
	for i, o := range opts {
		if o == nil {
			return cfg, fmt.Errorf("aplex: option %d is nil", i)
		}
		if err := o(&cfg); err != nil {
			return cfg, err
		}
	}
	if kind == kindThread && len(cfg.remoteOnly) > 0 {
		return cfg, fmt.Errorf("aplex: %s applies to process and cluster executors only, not to a %s executor", cfg.remoteOnly[0], kind)
	}
	if cfg.extKind != "" && cfg.extKind != kind.String() {
		return cfg, fmt.Errorf("aplex: %s applies to %s executors only, not to a %s executor", cfg.extNames[0], cfg.extKind, kind)
	}
	if a := cfg.autoscale; a.max > 0 {
		switch {
		case cfg.poolSizeSet:
			return cfg, fmt.Errorf("aplex: WithPoolSize and WithAutoscale do not combine: the autoscaler sizes the pool")
		case kind == kindProcess && a.min < 1:
			return cfg, fmt.Errorf("aplex: WithAutoscale(%d, %d, %v): min must be at least 1 for a process executor", a.min, a.max, a.idle)
		case kind == kindProcess:
			cfg.poolSize = a.min
		}
	}
	if cfg.prefetch > 0 && cfg.maxWorksPerWorker > math.MaxInt32 {
		// The slots travel in a Run (wire.Run.Slots), as 32 bits.
		return cfg, fmt.Errorf("aplex: WithPrefetch needs WithMaxWorksPerWorker at most %d, not %d", math.MaxInt32, cfg.maxWorksPerWorker)
	}
	if kind != kindThread && cfg.workerInit != nil {
		return cfg, fmt.Errorf("aplex: WithWorkerInit applies to in-process (thread) executors only; a %s worker runs in another process: use aplex.RegisterWorkerInit", kind)
	}
	return cfg, nil
}

// maxKillGrace caps WithKillGrace: a century, which is as good as never.
const maxKillGrace = 100 * 365 * 24 * time.Hour

// MaxPoolSize bounds every pool's size (WithPoolSize, Resize,
// WithAutoscale's max, a cluster's local workers): a number of workers
// beyond it is a mistake (each goroutine worker is a shard with its own
// bookkeeping, each process worker a process), and making them one by one
// would hang the caller until memory ran out. A pool runs more works at
// once through WithMaxWorksPerWorker.
const MaxPoolSize = 1 << 14

// WithPoolSize sets the number of workers (default runtime.NumCPU()), 1 to
// MaxPoolSize.
func WithPoolSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("aplex: WithPoolSize(%d): need at least 1 worker", n)
		}
		if n > MaxPoolSize {
			return fmt.Errorf("aplex: WithPoolSize(%d): at most %d workers (for more works at once, raise WithMaxWorksPerWorker)", n, MaxPoolSize)
		}
		c.poolSize, c.poolSizeSet = n, true
		return nil
	}
}

// WithMaxWorksPerWorker sets how many works one worker runs at once
// (default 300). A Map chunk counts as one work.
func WithMaxWorksPerWorker(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("aplex: WithMaxWorksPerWorker(%d): need at least 1", n)
		}
		c.maxWorksPerWorker = n
		return nil
	}
}

// WithQueueSize bounds the queue of works waiting for a free worker slot
// (default 0: unbounded, as in the original). When it is full, Submit waits
// for room or for its ctx, and TrySubmit returns ErrFull.
func WithQueueSize(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("aplex: WithQueueSize(%d): must not be negative (0 means unbounded)", n)
		}
		c.queueSize = n
		return nil
	}
}

// WithLoadBalancer sets the load balancer (default RoundRobin()). Each
// executor needs its own balancer value: balancers keep state.
func WithLoadBalancer(lb LoadBalancer) Option {
	return func(c *config) error {
		if lb == nil {
			return fmt.Errorf("aplex: WithLoadBalancer(nil): need a balancer")
		}
		c.balancer = lb
		return nil
	}
}

// WithWorkerInit sets a per-worker set-up function, called once per worker
// when the executor starts. The context it returns is the parent of every
// work's ctx on that worker (for values; cancellation comes from the
// executor and the caller), so works read per-worker state from it. An
// error or a panic makes the constructor (or a Resize that adds the
// worker) fail. When a worker init is registered too (RegisterWorkerInit),
// it runs first and this one runs on the context it returned.
//
// Thread executors only: a closure cannot run in a worker process, so
// process and cluster executors refuse it. RegisterWorkerInit runs on
// every kind; code that may switch kinds should use it.
func WithWorkerInit(init func(ctx context.Context, w WorkerInfo) (context.Context, error)) Option {
	return func(c *config) error {
		if init == nil {
			return fmt.Errorf("aplex: WithWorkerInit(nil): need a function")
		}
		c.workerInit = init
		return nil
	}
}

// WithKillGrace sets how long a cancelled or timed-out work may ignore its
// ctx before its worker process is killed and replaced (default 5s). For
// thread executors it bounds how long Shutdown waits for works that ignore
// their ctx. A grace beyond a century counts as a century: never, in
// practice.
func WithKillGrace(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("aplex: WithKillGrace(%v): must be positive", d)
		}
		// A century already means never; capped, the grace leaves room
		// for what the kill timers add to it (the heartbeat timeout's
		// share, a work's deadline) without wrapping around.
		c.killGrace = min(d, maxKillGrace)
		return nil
	}
}

// WithLogger sets where the executor's rare log lines go. Every kind logs:
// a thread executor the works still ignoring their ctx a kill grace after
// Shutdown or Close cancelled them (also in the error they return, which a
// deferred Close or the cleanup of a dropped executor discards); process
// and cluster executors a worker lost (Warn: "aplex: worker lost") and
// one restarted in its slot (Info: "aplex: worker restarted"), each with
// the attributes executor, worker, slot, pid and (lost) reason, a worker
// that failed to restart, a cluster worker of another protocol version.
// Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("aplex: WithLogger(nil): need a logger")
		}
		c.logger = l
		return nil
	}
}

// runSlots is the Slots of every Run a remote executor sends (wire.Run):
// its workers' slots when it prefetches, else 0 (no bound: it sends no
// more than a worker runs).
func (c *config) runSlots() int {
	if c.prefetch > 0 {
		return c.maxWorksPerWorker
	}
	return 0
}
