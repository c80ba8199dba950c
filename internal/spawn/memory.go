package spawn

import (
	"context"
	"fmt"
	"time"
)

// MemoryPoll is how often WatchMemory reads the processes' resident memory.
const MemoryPoll = 100 * time.Millisecond

// MemoryLimitError is the kill reason of a worker process whose resident
// memory went over its limit (aplex.WithWorkerMemoryLimit), for process
// workers and a cluster executor's local workers alike.
type MemoryLimitError struct {
	Limit int64 // bytes
	RSS   int64 // bytes, as last measured
}

// Error reads "memory limit 64 MiB exceeded (RSS 80 MiB)".
func (e *MemoryLimitError) Error() string {
	return fmt.Sprintf("memory limit %s exceeded (RSS %s)", mib(e.Limit), mib(e.RSS))
}

// mib formats a byte count in MiB, keeping a fraction for small limits.
func mib(n int64) string {
	if n%(1<<20) == 0 || n >= 10<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Watched is a process WatchMemory polls, and what it does to it when its
// resident memory is over the limit.
type Watched struct {
	PID  int
	Kill func(*MemoryLimitError)
}

// WatchMemory kills, every MemoryPoll until ctx ends, the processes procs
// returns whose resident memory exceeds limit: GOMEMLIMIT (MemoryEnv) only
// makes a child's garbage collector try harder, it cannot stop a work that
// keeps its memory live. One goroutine polls every process of an
// executor. Kill may be called again for a process still over the limit
// at the next poll (a kill takes effect asynchronously): it must be
// idempotent.
func WatchMemory(ctx context.Context, limit int64, procs func() []Watched) {
	tick := time.NewTicker(MemoryPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, p := range procs() {
			if rss, ok := ReadRSS(p.PID); ok && rss > limit {
				p.Kill(&MemoryLimitError{Limit: limit, RSS: rss})
			}
		}
	}
}

// MemoryEnv is the environment entry that sets a child's soft memory
// limit to limit bytes.
func MemoryEnv(limit int64) string { return fmt.Sprintf("GOMEMLIMIT=%d", limit) }
