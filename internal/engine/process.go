package engine

import (
	"github.com/aplex-go/aplex/internal/proc"
)

// NewProcessExecutor returns an executor whose workers are child processes
// running this binary (or WithWorkerCommand's), which must call Main first
// thing in main. A crash, os.Exit, runaway loop or leak in a work costs one
// worker process, never the caller: the works it held fail with a
// *WorkerError and a fresh process takes its place. Cancelling a work
// cancels its ctx in the child; a work that ignores it past WithKillGrace
// has its worker killed and replaced.
//
// Only works made with Register run here, and their arguments and results
// cross the process boundary as CBOR. Besides every thread-executor option
// except WithWorkerInit, it takes WithWorkerCommand, WithWorkerEnv,
// WithWorkerOutput, WithRecycleAfter, WithPrefetch, WithWorkerMemoryLimit,
// WithStartTimeout and WithHeartbeatTimeout (a worker that cannot run, e.g.
// stopped, is killed and replaced once silent that long). It returns once every worker completed its handshake,
// or an error (a binary that does not call Main is reported, not waited on).
//
// Cost, measured on a 2 vCPU machine (the bench module's report,
// 2026-12-01, medians of 5 interleaved runs): a no-op round trip through
// Submit and Get takes 36.8 µs (±42 %) and 6 allocations (a raw pipe
// ping-pong with the same child and the same system calls: 28.5 µs;
// go-plugin's net/rpc: 169 µs): the Get reads its worker's pipe itself and
// the Submit writes its job itself, with no goroutine hand-off; the default
// pool of 2 workers runs 588 k no-op works/s submitted then collected, 390 k
// with Map and 2.77 M with Map and ChunkSize(100). Ship
// works of a millisecond or more, or chunk them. Process workers need
// Linux or another Unix; see the package doc for what differs outside
// Linux.
func NewProcessExecutor(opts ...Option) (*Executor, error) {
	cfg, err := buildConfig(kindProcess, opts)
	if err != nil {
		return nil, err
	}
	tr, err := proc.New(proc.Config{
		Slots:        cfg.runSlots(),
		Size:         cfg.poolSize,
		Path:         cfg.command,
		Args:         cfg.commandArgs,
		Env:          cfg.env,
		Output:       cfg.output,
		RecycleAfter: cfg.recycleAfter,
		MemoryLimit:  cfg.memoryLimit,
		StartTimeout: cfg.startTimeout,
		Logger:       cfg.logger,

		HeartbeatTimeout: cfg.heartbeatTimeout,
	})
	if err != nil {
		return nil, err
	}
	return startRemote(cfg, tr)
}
