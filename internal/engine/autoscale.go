package engine

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// autoscaleConfig is WithAutoscale's setting.
type autoscaleConfig struct {
	min, max int
	idle     time.Duration
}

// backlogWait is how long works must have been waiting in the queue, as
// the autoscaler's checks see it, before it adds a worker: long enough that a burst the pool absorbs in a
// moment starts no process, short next to a process's start-up.
const backlogWait = 20 * time.Millisecond

// WithAutoscale makes a process executor follow its load between min and
// max workers: it starts with min; while works wait in the queue it adds a
// worker, up to max; and it retires a worker that has been idle for idle,
// down to min. On a cluster executor it sizes the local workers the same
// way (cluster.SpawnLocalWorkers, which it replaces: it starts min), and
// min may be 0: local workers then only join the remote ones while works
// wait, as burst capacity on the executor's machine. Remote workers are
// never counted, started or stopped by it. Stats shows the current Size
// (for a cluster executor, the local workers plus the remote ones serving
// it) and counts ScaleUps and ScaleDowns. Process and cluster executors
// only.
//
// Scaling does not thrash; the hysteresis is in time and in steps:
//   - a worker is added only once works have waited in the queue for 20ms,
//     and one at a time: the next only after the previous one joined and
//     the backlog is still there;
//   - a worker is retired only after idle with no work at all, one per
//     check (every idle/4), and never within idle of the last scale-up.
//
// Retiring removes the highest idle slot, and growing takes the lowest
// free one, so Affinity moves as few keys as its consistent hashing
// allows. WithPoolSize and Resize do not combine with it.
func WithAutoscale(min, max int, idle time.Duration) Option {
	return remoteOption("WithAutoscale", func(c *config) error {
		switch {
		case min < 0:
			return fmt.Errorf("aplex: WithAutoscale(%d, %d, %v): min must be at least 0 (1 for a process executor)", min, max, idle)
		case max < min || max < 1:
			return fmt.Errorf("aplex: WithAutoscale(%d, %d, %v): max must be at least min, and at least 1", min, max, idle)
		case max > MaxPoolSize:
			return fmt.Errorf("aplex: WithAutoscale(%d, %d, %v): max must be at most %d workers (for more works at once, raise WithMaxWorksPerWorker)", min, max, idle, MaxPoolSize)
		case idle <= 0:
			return fmt.Errorf("aplex: WithAutoscale(%d, %d, %v): idle must be positive", min, max, idle)
		}
		c.autoscale = autoscaleConfig{min: min, max: max, idle: idle}
		return nil
	})
}

// autoscaler adds and retires workers for WithAutoscale; it runs until the
// executor closes.
type autoscaler struct {
	c        *core
	cfg      autoscaleConfig
	lastUp   time.Time
	backlog  time.Time            // when a check first saw works waiting; zero: none waiting
	observed map[int]slotActivity // per slot, what the last check saw
}

// slotActivity is what a check saw of a slot: its outcome count and since
// when it has been seen idle.
type slotActivity struct {
	ended     uint64
	idleSince time.Time
}

// startAutoscaler runs the autoscaler if the executor has one.
func (c *core) startAutoscaler() {
	if c.cfg.autoscale.max == 0 {
		return
	}
	a := &autoscaler{c: c, cfg: c.cfg.autoscale, observed: map[int]slotActivity{}}
	go a.run()
}

func (a *autoscaler) run() {
	period := min(max(a.cfg.idle/4, time.Millisecond), time.Second)
	tick := time.NewTicker(min(period, backlogWait))
	defer tick.Stop()
	lastDown := time.Now()
	for {
		select {
		case <-a.c.closed:
			return
		case now := <-tick.C:
			if a.grow(now) {
				continue
			}
			if now.Sub(lastDown) >= period {
				lastDown = now
				a.shrink(now)
			}
		}
	}
}

// grow adds one worker if works have waited long enough and the pool is
// below max; it returns once the worker joined.
func (a *autoscaler) grow(now time.Time) bool {
	c := a.c
	c.mu.Lock()
	queued := c.queue.len() > 0
	size := int(c.size.Load())
	c.unlock()
	switch {
	case !queued:
		a.backlog = time.Time{}
		return false
	case a.backlog.IsZero():
		a.backlog = now
	}
	if now.Sub(a.backlog) < backlogWait || size >= a.cfg.max {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.startTimeout)
	defer cancel()
	if err := c.resize(ctx, size+1); err != nil {
		if c.cfg.logger != nil {
			c.cfg.logger.Warn("aplex: autoscale: cannot add a worker", "err", err)
		}
		return false
	}
	c.scaleUps.Add(1)
	a.lastUp = time.Now()
	a.backlog = time.Time{} // the new worker gets its chance first
	return true
}

// shrink retires the highest slot that has been idle for idle, if the
// pool is above min and did not grow within idle.
func (a *autoscaler) shrink(now time.Time) {
	c := a.c
	if now.Sub(a.lastUp) < a.cfg.idle {
		return
	}
	c.mu.Lock()
	live := c.liveSlotsLocked()
	loads := map[int]int{}
	for _, w := range c.allWorkersLocked() {
		loads[w.slot] += int(w.load.Load())
	}
	victim := -1
	for _, slot := range live {
		st := c.slots[slot]
		ended := st.completed.Load() + st.failed.Load() + st.cancelled.Load()
		seen, ok := a.observed[slot]
		if !ok || seen.ended != ended || loads[slot] > 0 {
			seen = slotActivity{ended: ended, idleSince: now}
		}
		a.observed[slot] = seen
		if now.Sub(seen.idleSince) >= a.cfg.idle {
			victim = slot // the highest, as live is sorted
		}
	}
	for slot := range a.observed {
		if !slices.Contains(live, slot) {
			delete(a.observed, slot)
		}
	}
	c.unlock()
	if victim < 0 || len(live) <= a.cfg.min {
		return
	}
	if err := c.removeSlot(context.Background(), victim); err == nil {
		c.scaleDowns.Add(1)
		delete(a.observed, victim)
	}
}
