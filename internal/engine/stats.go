package engine

import (
	"maps"
	"slices"
)

// Stats is a snapshot of an executor's activity.
type Stats struct {
	// Workers holds one entry per worker slot, in slot order. A slot that
	// Resize removed leaves it once its worker has left.
	Workers []WorkerStats
	// Size is the number of workers the executor keeps (WithPoolSize, then
	// Resize or the autoscaler), counting one being restarted. For a
	// cluster executor it is its local workers (cluster.SpawnLocalWorkers,
	// then Resize) plus the remote workers serving it now (joined and not
	// draining), which join and leave on their own.
	Size int
	// ScaleUps and ScaleDowns count the workers the autoscaler
	// (WithAutoscale) added and retired.
	ScaleUps, ScaleDowns uint64
	// Queued is the number of works waiting for a free slot, or, on a
	// goroutine executor, for the runner being woken to hand them out
	// (microseconds: see Submit).
	Queued int
	// Running is the number of works holding a worker slot, counting
	// those sent to a worker ahead of a free slot (WithPrefetch).
	Running int
	// Prefetched is how many of those Running works were sent ahead of a
	// free slot (WithPrefetch) and have not started on their worker yet,
	// as far as the executor has heard: held there, or just sent.
	Prefetched int
	// Completed, Failed and Cancelled total the outcomes of dispatched
	// works, on removed slots too; Cancelled also counts works cancelled
	// while queued.
	Completed, Failed, Cancelled uint64
	// Restarts counts worker processes replaced after a crash or recycling.
	Restarts uint64
}

// WorkerStats describes one worker slot.
type WorkerStats struct {
	// ID is the slot: the balancer's Workers.ID, and the N of a worker
	// process's output prefix "[aplex worker N pid P]" or a local cluster
	// worker's "[aplex cluster worker N pid P]". A replacement keeps it.
	ID int
	// Name names the slot's latest worker: "thread-N" for a goroutine
	// worker, "proc-N" for a worker process (as *WorkerError.Worker names
	// it), and the worker id for a cluster worker (cluster.WorkerID,
	// cluster.ServeWorkerID; a local worker's is "<executor id>-N").
	Name string
	// Labels are a cluster worker's labels (cluster.ServeLabels,
	// APLEX_CLUSTER_LABELS, cluster.LocalWorkerLabels); nil for other
	// workers and for cluster workers without labels. The map is the
	// snapshot's own copy.
	Labels map[string]string
	// PID is the slot's current (or last) process: a process worker's, a
	// cluster worker's as it announced it; 0 for goroutine workers.
	PID                          int
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
	defer c.unlock()
	s := Stats{
		Size: c.sizeLocked(), Queued: c.queue.len(), Running: int(c.running.Load()), Prefetched: c.prefetched,
		Restarts: c.restarts.Load(),
		ScaleUps: c.scaleUps.Load(), ScaleDowns: c.scaleDowns.Load(),
		Completed: c.goneCompleted, Failed: c.goneFailed, Cancelled: c.goneCancelled,
	}
	loads := map[int]int{}
	for _, w := range c.allWorkersLocked() {
		loads[w.slot] += int(w.load.Load())
	}
	for slot, st := range c.slots {
		ws := WorkerStats{
			ID: slot, Name: st.name, Labels: maps.Clone(st.labels), PID: int(st.pid.Load()), Workload: loads[slot],
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
