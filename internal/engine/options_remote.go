package engine

import (
	"fmt"
	"io"
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
