package aplex

import "slices"

// Stats is a snapshot of an executor's activity.
type Stats struct {
	// Workers holds one entry per worker slot, in slot order.
	Workers []WorkerStats
	// Queued is the number of works waiting for a free slot.
	Queued int
	// Running is the number of works holding a worker slot.
	Running int
	// Completed, Failed and Cancelled total the outcomes of dispatched
	// works; Cancelled also counts works cancelled while queued.
	Completed, Failed, Cancelled uint64
	// Restarts counts worker processes replaced after a crash or recycling.
	Restarts uint64
}

// WorkerStats describes one worker slot.
type WorkerStats struct {
	ID                           int // the slot
	PID                          int // the current process, for process workers
	Workload                     int // works it holds now
	Completed, Failed, Cancelled uint64
}

// Stats returns a snapshot of the executor's counters.
func (ex *Executor) Stats() Stats {
	if ex == nil || ex.c == nil {
		return Stats{}
	}
	c := ex.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Stats{Queued: c.queue.len(), Running: int(c.running.Load()), Restarts: c.restarts.Load()}
	loads := map[int]int{}
	for _, w := range c.allWorkersLocked() {
		loads[w.slot] += int(w.load.Load())
	}
	for slot, st := range c.slots {
		ws := WorkerStats{
			ID: slot, PID: int(st.pid.Load()), Workload: loads[slot],
			Completed: st.completed.Load(), Failed: st.failed.Load(), Cancelled: st.cancelled.Load(),
		}
		s.Completed += ws.Completed
		s.Failed += ws.Failed
		s.Cancelled += ws.Cancelled
		s.Workers = append(s.Workers, ws)
	}
	s.Cancelled += c.queueCancelled.Load()
	slices.SortFunc(s.Workers, func(a, b WorkerStats) int { return a.ID - b.ID })
	return s
}
