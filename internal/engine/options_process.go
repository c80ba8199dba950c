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
