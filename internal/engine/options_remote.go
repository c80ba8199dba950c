package engine

import (
	"fmt"
	"io"
	"math"
	"time"
)

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

// WithWorkerCommand sets the worker binary and its arguments (default: the
// running binary, re-executed with no arguments) of the worker processes
// this executor starts: process workers, and a cluster executor's local
// workers (cluster.SpawnLocalWorkers). The binary must call aplex.Main
// first thing in main and register the same works. Process and cluster
// executors only; a cluster executor needs SpawnLocalWorkers for it.
func WithWorkerCommand(path string, args ...string) Option {
	return remoteOption("WithWorkerCommand", func(c *config) error {
		if path == "" {
			return fmt.Errorf("aplex: WithWorkerCommand: empty path")
		}
		c.command, c.commandArgs = path, args
		return nil
	})
}

// WithWorkerMemoryLimit limits the memory of each worker process this
// executor starts (process workers, and a cluster executor's local
// workers): the child runs with GOMEMLIMIT set to bytes (a soft limit its
// garbage collector aims for), and a worker whose resident memory exceeds
// bytes (read every 100ms) is killed and replaced; the works it held fail
// with a *WorkerError saying so (or are retried, with Retry). Linux only:
// elsewhere the executor's constructor refuses it. Process and cluster
// executors only; a cluster executor needs cluster.SpawnLocalWorkers for
// it.
func WithWorkerMemoryLimit(bytes int64) Option {
	return remoteOption("WithWorkerMemoryLimit", func(c *config) error {
		if bytes < 1<<20 {
			return fmt.Errorf("aplex: WithWorkerMemoryLimit(%d): want at least 1 MiB", bytes)
		}
		c.memoryLimit = bytes
		return nil
	})
}

// WithRecycleAfter replaces a worker process after it has been given n works
// (like Python's max_tasks_per_child): it gets no new work, finishes what it
// holds, and exits, while a fresh process takes its slot. The bound is hard,
// bursts included: no process runs more than n works (a Map chunk counts as
// one). On a cluster executor it applies to the local workers
// (cluster.SpawnLocalWorkers), counting this executor's works: the fresh
// process starts once the old one has left (it takes the same worker id).
// Process and cluster executors only.
func WithRecycleAfter(n int) Option {
	return remoteOption("WithRecycleAfter", func(c *config) error {
		if n < 1 {
			return fmt.Errorf("aplex: WithRecycleAfter(%d): must be at least 1", n)
		}
		c.recycleAfter = n
		return nil
	})
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

// WithPrefetch sends each worker (a worker process, a cluster worker) up to
// n works beyond its WithMaxWorksPerWorker slots. The worker holds them, in
// the order sent, and starts each the moment one of its works ends,
// instead of waiting for this process to hear of the result and send the
// next one: a round trip (a pipe's, or NATS') and its wake-ups less
// between a worker's works, which is what keeps a pool of short works
// (milliseconds) busy. Default 0: a worker is sent only as many works as
// it runs.
//
// What changes for a work sent ahead of a free slot:
//
//   - it starts as any work does: its Deadline(d) counts from its start
//     on the worker, not from its sending, and WorkStarted fires then
//     (the worker reports it); Stats.Running and WorkerStats.Workload
//     count it from its sending, Stats.Prefetched until it starts;
//   - it runs on that worker, even if another becomes idle first (as with
//     any prefetch, a worker busy with long works holds its prefetched ones
//     back; keep n small, or 0, for works of very unequal length);
//   - cancelled, or past its caller's deadline, before it started, it
//     ends at once without running; at a graceful Shutdown or a worker's
//     recycling it goes to another worker, as a work refused by a
//     draining worker does;
//   - if its worker dies, it fails (or is retried with Retry) as the
//     worker's running works do: the executor cannot tell whether it
//     started.
func WithPrefetch(n int) Option {
	return remoteOption("WithPrefetch", func(c *config) error {
		if n < 0 {
			return fmt.Errorf("aplex: WithPrefetch(%d): must not be negative", n)
		}
		if n > math.MaxInt32 {
			return fmt.Errorf("aplex: WithPrefetch(%d): at most %d", n, math.MaxInt32)
		}
		c.prefetch = n
		return nil
	})
}
