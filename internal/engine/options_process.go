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
