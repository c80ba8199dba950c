package engine

import (
	"context"
	"fmt"
	"strconv"
)

// NewThreadExecutor returns an executor whose workers are goroutine shards
// in this process: each runs up to MaxWorksPerWorker works at once, each
// work on a goroutine of its own while it runs. Goroutines are reused: one
// that has run a work runs the next queued one, or waits parked for the
// next dispatched one, so a pool of short works costs less per work than
// a goroutine per work. Parked goroutines are never more than the works
// the executor ran at once; those spare for a second end, and Shutdown
// ends them all. Options: WithPoolSize, WithMaxWorksPerWorker, WithQueueSize,
// WithLoadBalancer, WithWorkerInit, WithKillGrace, WithLogger.
//
// The registered worker init (RegisterWorkerInit) runs once per worker
// slot, as it does once per worker process on the other kinds, with
// WorkerInfo{ID: slot}; WithWorkerInit, if given, then runs on the context
// it returned, so a work's ctx carries the values of both. An error or a
// panic from either makes NewThreadExecutor fail.
func NewThreadExecutor(opts ...Option) (*Executor, error) {
	cfg, err := buildConfig(kindThread, opts)
	if err != nil {
		return nil, err
	}
	c := newCore(cfg)
	for i := range cfg.poolSize {
		w := &worker{slot: i, name: threadName(i), cap: cfg.maxWorksPerWorker, ctx: context.Background(), stats: c.statsFor(i)}
		w.stats.name = w.name
		ctx, err := threadWorkerInit(c.baseCtx, cfg, WorkerInfo{ID: i})
		if err != nil {
			c.baseCancel()
			return nil, err
		}
		if ctx != c.baseCtx {
			w.ctx = ctx
		}
		c.addWorkerLocked(w)
		c.observeWorker(WorkerJoined, w, "", nil)
	}
	return newExecutor(c), nil
}

// threadName names goroutine worker i in Stats, after the pattern of
// process workers ("proc-N"), so every worker has a name.
func threadName(i int) string { return "thread-" + strconv.Itoa(i) }

// threadWorkerInit runs the registered worker init, then WithWorkerInit,
// for one goroutine worker, and returns the context its works take their
// values from (base when neither is set).
func threadWorkerInit(base context.Context, cfg config, info WorkerInfo) (context.Context, error) {
	ctx, err := runWorkerInit(base, info)
	if err != nil {
		return nil, fmt.Errorf("aplex: %w", err)
	}
	if cfg.workerInit == nil {
		return ctx, nil
	}
	next, err := callInit(ctx, cfg.workerInit, info)
	if err != nil {
		return nil, fmt.Errorf("aplex: WithWorkerInit failed for worker %d: %w", info.ID, err)
	}
	if next == nil {
		return ctx, nil
	}
	return next, nil
}
