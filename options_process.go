package aplex

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// processOption marks an option as valid for process executors only.
func processOption(name string, apply func(*config) error) Option {
	return func(c *config) error {
		c.processOnly = append(c.processOnly, name)
		return apply(c)
	}
}

// WithWorkerCommand sets the worker binary and its arguments (default: the
// running binary, re-executed with no arguments). The binary must call
// aplex.Main first thing in main and register the same works.
func WithWorkerCommand(path string, args ...string) Option {
	return processOption("WithWorkerCommand", func(c *config) error {
		if path == "" {
			return fmt.Errorf("aplex: WithWorkerCommand: empty path")
		}
		c.command, c.commandArgs = path, args
		return nil
	})
}

// remoteOption marks an option as valid for process and cluster executors
// only: it configures workers in other processes.
func remoteOption(name string, apply func(*config) error) Option {
	return func(c *config) error {
		c.remoteOnly = append(c.remoteOnly, name)
		return apply(c)
	}
}

// WithWorkerEnv adds "KEY=value" entries to the environment of the worker
// processes this executor starts: process workers, and a cluster
// executor's local workers (cluster.SpawnLocalWorkers), e.g.
// APLEX_CLUSTER_CREDS=/path/user.creds when the executor authenticates
// with a credentials file (user/password and token authentication are
// passed on automatically). Process and cluster executors only; a cluster
// executor refuses it without local workers, which it would not reach.
func WithWorkerEnv(env ...string) Option {
	return remoteOption("WithWorkerEnv", func(c *config) error {
		for _, kv := range env {
			if len(kv) == 0 || kv[0] == '=' || !containsByte(kv, '=') {
				return fmt.Errorf("aplex: WithWorkerEnv(%q): want KEY=value", kv)
			}
		}
		c.env = append(c.env, env...)
		return nil
	})
}

func containsByte(s string, b byte) bool {
	for i := range len(s) {
		if s[i] == b {
			return true
		}
	}
	return false
}

// WithWorkerOutput sets where the stdout and stderr of the worker processes
// this executor starts go (process workers, and a cluster executor's local
// workers), each line labelled with its worker (default: this process's
// stderr). Process and cluster executors only; a cluster executor refuses
// it without local workers, whose output it would not see.
func WithWorkerOutput(w io.Writer) Option {
	return remoteOption("WithWorkerOutput", func(c *config) error {
		if w == nil {
			return fmt.Errorf("aplex: WithWorkerOutput(nil): use io.Discard to drop the output")
		}
		c.output = w
		return nil
	})
}

// WithRecycleAfter replaces a worker process after it has been given n works
// (like Python's max_tasks_per_child): it gets no new work, finishes what it
// holds, and exits, while a fresh process takes its slot. The bound is hard,
// bursts included: no process runs more than n works (a Map chunk counts as
// one).
func WithRecycleAfter(n int) Option {
	return processOption("WithRecycleAfter", func(c *config) error {
		if n < 1 {
			return fmt.Errorf("aplex: WithRecycleAfter(%d): must be at least 1", n)
		}
		c.recycleAfter = n
		return nil
	})
}

// WithWorkerMemoryLimit limits each worker process's memory: the child runs
// with GOMEMLIMIT set to bytes (a soft limit its garbage collector aims
// for), and a worker whose resident memory exceeds bytes is killed and
// replaced; the works it held fail with a *WorkerError saying so.
func WithWorkerMemoryLimit(bytes int64) Option {
	return processOption("WithWorkerMemoryLimit", func(c *config) error {
		if bytes < 1<<20 {
			return fmt.Errorf("aplex: WithWorkerMemoryLimit(%d): want at least 1 MiB", bytes)
		}
		c.memoryLimit = bytes
		return nil
	})
}

// WithStartTimeout bounds how long a new worker may take to start and
// complete its handshake (default 10s): a worker process, or for a cluster
// executor the workers it waits for. Process and cluster executors only.
func WithStartTimeout(d time.Duration) Option {
	return remoteOption("WithStartTimeout", func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("aplex: WithStartTimeout(%v): must be positive", d)
		}
		c.startTimeout = d
		return nil
	})
}

// WithHeartbeatTimeout sets how long a process or cluster worker may stay
// silent (no heartbeat, no result) before the executor counts it lost
// (default 3s): a frozen worker (stopped, stuck in the kernel, partitioned
// away) is killed where it can be and replaced, and the works it held fail
// with a *WorkerError, or are sent again when marked Retry. Workers beat
// several times per timeout, so only a worker that cannot run at all is
// lost. Process and cluster executors only.
func WithHeartbeatTimeout(d time.Duration) Option {
	return remoteOption("WithHeartbeatTimeout", func(c *config) error {
		if d < minHeartbeatTimeout {
			return fmt.Errorf("aplex: WithHeartbeatTimeout(%v): want at least %v", d, minHeartbeatTimeout)
		}
		c.heartbeatTimeout = d
		return nil
	})
}

// WithLogger sets where the executor's rare log lines go. Every kind logs:
// a thread executor the works still ignoring their ctx a kill grace after
// Shutdown or Close cancelled them (also in the error they return, which a
// deferred Close or the cleanup of a dropped executor discards); process
// and cluster executors a worker that failed to restart, a cluster worker
// of another protocol version. Default: discarded.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("aplex: WithLogger(nil): need a logger")
		}
		c.logger = l
		return nil
	}
}
