package aplex

import (
	"context"
	"fmt"
	"os"

	"github.com/aplex-go/aplex/internal/proc"
	"github.com/aplex-go/aplex/internal/xport"
)

// Main turns a re-executed binary into a worker. Call it first thing in
// main (and in TestMain, before m.Run): in the parent it returns at once; in
// a worker process started by NewProcessExecutor (or a cluster worker
// started with the cluster package's environment) it serves this binary's
// registered works and never returns.
func Main() {
	role := os.Getenv(proc.EnvRole)
	if role == "" {
		return
	}
	if proc.IsChild() {
		slot, _ := proc.ChildSlot()
		cfg, err := hostConfig(context.Background(), slot, "", nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "aplex worker: %v\n", err)
			os.Exit(2)
		}
		if err := proc.ServeChild(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "aplex worker: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	if serve := xport.ServeRole[role]; serve != nil {
		os.Exit(serve())
	}
	fmt.Fprintf(os.Stderr, "aplex worker: unknown role %s=%q (is the package that serves it, e.g. aplex/cluster, linked into this binary?)\n", proc.EnvRole, role)
	os.Exit(2)
}

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
// WithWorkerOutput, WithRecycleAfter, WithWorkerMemoryLimit,
// WithStartTimeout and WithHeartbeatTimeout (a worker that cannot run, e.g.
// stopped, is killed and replaced once silent that long). It returns once every worker completed its handshake,
// or an error (a binary that does not call Main is reported, not waited on).
func NewProcessExecutor(opts ...Option) (*Executor, error) {
	cfg, err := buildConfig(kindProcess, opts)
	if err != nil {
		return nil, err
	}
	tr, err := proc.New(proc.Config{
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
