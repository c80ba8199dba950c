package proc

import "time"

// pollMemory kills workers whose resident memory exceeds MemoryLimit. One
// goroutine polls every worker: GOMEMLIMIT only makes the child's GC try
// harder, it cannot stop a work that keeps its memory live.
func (t *Transport) pollMemory() {
	tick := time.NewTicker(memoryPoll)
	defer tick.Stop()
	limit := t.cfg.MemoryLimit
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		for _, w := range t.live() {
			if rss, ok := readRSS(w.pid); ok && rss > limit {
				w.Kill(&MemoryLimitError{Limit: limit, RSS: rss})
			}
		}
	}
}
