package engine

import (
	"fmt"
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

// WithPrefetch sends each worker process up to n works beyond its
// WithMaxWorksPerWorker slots. The process holds them, in the order sent,
// and starts each the moment one of its works ends, instead of waiting for
// this process to hear of the result and send the next one: a pipe's round
// trip and two wake-ups less between a worker's works, which is what
// keeps a pool of short works (milliseconds) busy. Default 0: a worker is
// sent only as many works as it runs.
//
// What changes for a work sent ahead of a free slot:
//
//   - it counts as started when it is sent: WorkStarted fires then,
//     Stats.Running and WorkerStats.Workload count it, and a Deadline(d)
//     counts from then (its time held included);
//   - it runs on that worker, even if another becomes idle first (as with
//     any prefetch, a worker busy with long works holds its prefetched ones
//     back; keep n small, or 0, for works of very unequal length);
//   - cancelled, or past its deadline, before it started, it ends at once
//     without running; at a graceful Shutdown or a worker's recycling it
//     goes to another worker, as a work refused by a draining worker does;
//   - if its worker dies, it fails (or is retried with Retry) as the
//     worker's running works do: the executor cannot tell whether it
//     started.
func WithPrefetch(n int) Option {
	return processOption("WithPrefetch", func(c *config) error {
		if n < 0 {
			return fmt.Errorf("aplex: WithPrefetch(%d): must not be negative", n)
		}
		c.prefetch = n
		return nil
	})
}
