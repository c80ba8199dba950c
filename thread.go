package aplex

import (
	"context"
	"fmt"
)

// NewThreadExecutor returns an executor whose workers are goroutine shards
// in this process: each runs up to MaxWorksPerWorker works at once, each
// work in its own goroutine, so the cost per work stays close to a raw
// goroutine's. Options: WithPoolSize, WithMaxWorksPerWorker, WithQueueSize,
// WithLoadBalancer, WithWorkerInit, WithKillGrace.
func NewThreadExecutor(opts ...Option) (*Executor, error) {
	cfg, err := buildConfig(kindThread, opts)
	if err != nil {
		return nil, err
	}
	c := newCore(cfg)
	for i := range cfg.poolSize {
		w := &worker{slot: i, cap: cfg.maxWorksPerWorker, ctx: context.Background(), stats: c.statsFor(i)}
		if cfg.workerInit != nil {
			ctx, err := cfg.workerInit(c.baseCtx, WorkerInfo{ID: i})
			if err != nil {
				c.baseCancel()
				return nil, fmt.Errorf("aplex: WithWorkerInit failed for worker %d: %w", i, err)
			}
			if ctx != nil {
				w.ctx = ctx
			}
		}
		c.addWorkerLocked(w)
	}
	return newExecutor(c), nil
}
