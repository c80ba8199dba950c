package engine

import (
	"fmt"
	"math"
	"time"
)

// CallOption configures one Submit or Map call.
type CallOption func(*callConfig) error

type callConfig struct {
	chunkSize int
	chunkSet  bool
	timeout   time.Duration
	deadline  time.Duration
	meta      any
	window    int
	retries   int
	progress  func(Progress) // OnProgress
	mapOnly   string         // name of a Map-only option given
	remote    string         // name of a process-and-cluster option given
	// extra holds meta and deadline for the call's tasks (task.x), and
	// their executor once bound (bindTo); nil when neither is set: the
	// tasks then share their executor's (Executor.extra).
	extra *taskExtra
}

func buildCallConfig(opts []CallOption, forMap bool) (callConfig, error) {
	cc := callConfig{chunkSize: 1}
	for i, o := range opts {
		if o == nil {
			return cc, fmt.Errorf("aplex: call option %d is nil", i)
		}
		if err := o(&cc); err != nil {
			return cc, err
		}
	}
	if !forMap && cc.mapOnly != "" {
		return cc, fmt.Errorf("aplex: %s applies to Map and MapUnordered only", cc.mapOnly)
	}
	if cc.meta != nil || cc.deadline != 0 {
		cc.extra = &taskExtra{meta: cc.meta, deadline: cc.deadline}
	}
	return cc, nil
}

// bindTo refuses the options that do not apply to ex's kind, and points
// the call's taskExtra, if it has one, at ex: Submit and Map call it once
// they know the executor, before any task is made.
func (cc *callConfig) bindTo(ex *Executor) error {
	if k := ex.c.cfg.kind; cc.remote != "" && k == kindThread {
		return fmt.Errorf("aplex: %s applies to process and cluster executors only, not to a %s executor: a goroutine worker never dies, so there is nothing to send again", cc.remote, k)
	}
	if cc.extra != nil {
		cc.extra.ex = ex
	}
	return nil
}

// ChunkSize makes Map send n inputs to one worker in one dispatch (one
// message for process and cluster workers), where they run concurrently. A
// chunk counts as one work against a worker's capacity. Default 1.
//
// n is an upper bound, not an amount reserved: a chunk's memory grows with
// the inputs that really arrive, so a huge n (even math.MaxInt) costs
// nothing up front. A chunk is sent before it is full when the input has
// ended, or when it has produced nothing for 5ms: a slow input gets smaller
// chunks, never a result held back for inputs that have not come.
func ChunkSize(n int) CallOption {
	return func(c *callConfig) error {
		if n < 1 {
			return fmt.Errorf("aplex: ChunkSize(%d): must be at least 1", n)
		}
		c.chunkSize, c.chunkSet = n, true
		c.mapOnly = "ChunkSize"
		return nil
	}
}

// Timeout bounds a whole Map, measured from the call to Map: when it passes,
// the iteration yields an error matching context.DeadlineExceeded and every
// remaining work is cancelled.
func Timeout(d time.Duration) CallOption {
	return func(c *callConfig) error {
		if d <= 0 {
			return fmt.Errorf("aplex: Timeout(%v): must be positive", d)
		}
		c.timeout = d
		c.mapOnly = "Timeout"
		return nil
	}
}

// Window bounds how many chunks a Map keeps in flight: submitted and not
// yet yielded. The default is min(pool size × MaxWorksPerWorker, 4096)
// chunks, from the executor's options (WithPoolSize, default
// runtime.NumCPU(); WithMaxWorksPerWorker, default 300), whatever the
// number of workers alive. Inputs are read no further ahead of the results
// than Window full chunks. The window bounds the work in flight, not the
// latency: results are yielded as soon as they are due, whether the window
// is full or not. n is a bound, not an amount reserved, so a huge n costs
// nothing up front.
func Window(n int) CallOption {
	return func(c *callConfig) error {
		if n < 1 {
			return fmt.Errorf("aplex: Window(%d): must be at least 1", n)
		}
		c.window = n
		c.mapOnly = "Window"
		return nil
	}
}

// Meta passes a value to the load balancer for this call, e.g. the key that
// Affinity keeps on one worker.
func Meta(v any) CallOption {
	return func(c *callConfig) error {
		c.meta = v
		return nil
	}
}

// Deadline gives each work of the call its own deadline, d after it starts
// running: its ctx ends then, or at the caller's ctx deadline if that comes
// first (ctx.Deadline reports the earlier one, on every kind of worker). In
// a process or cluster worker a work that ignores it is killed with its
// worker once the kill grace has passed too. A deadline past the year 2262
// (math.MaxInt64) is that year's: no deadline, in practice.
func Deadline(d time.Duration) CallOption {
	return func(c *callConfig) error {
		if d <= 0 {
			return fmt.Errorf("aplex: Deadline(%v): must be positive", d)
		}
		c.deadline = d
		return nil
	}
}

// Retry marks the works of the call idempotent: when their worker dies (a
// process crash, a cluster worker's lost heartbeat) they are sent again, up
// to n more times, instead of failing with a *WorkerError. Delivery becomes
// at-least-once. Process and cluster executors only: Submit and Map on a
// thread executor refuse it, since a goroutine worker never dies. n is at
// most 32767.
func Retry(n int) CallOption {
	return func(c *callConfig) error {
		if n < 0 || n > maxRetries {
			return fmt.Errorf("aplex: Retry(%d): must be between 0 and %d", n, maxRetries)
		}
		c.retries, c.remote = n, "Retry"
		return nil
	}
}

// maxRetries bounds Retry's n: a task keeps its resends left in an int16.
const maxRetries = math.MaxInt16
