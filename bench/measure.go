package bench

import (
	"runtime"
	"sync"
	"time"
)

// MemPeak is the memory seen by a MemSampler, above its baseline.
type MemPeak struct {
	// Live is HeapInuse+StackInuse right after a garbage collection taken
	// by Live: what the works in flight then really hold. LiveStack is its
	// StackInuse part.
	Live, LiveStack uint64
	// InUse is the peak of HeapInuse+StackInuse above the baseline: the
	// heap objects and goroutine stacks alive at once.
	InUse uint64
	// Sys is the peak of Sys above the baseline: what the runtime got from
	// the OS. It never shrinks, so it is meaningful only in a fresh process.
	Sys uint64
}

// MemSampler samples runtime.ReadMemStats every period until Stop.
type MemSampler struct {
	baseInUse, baseStack, baseSys uint64
	mu                            sync.Mutex
	peak                          MemPeak
	stop                          chan struct{}
	wg                            sync.WaitGroup
}

// StartMemSampler collects garbage, records the baseline and starts
// sampling.
func StartMemSampler(period time.Duration) *MemSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &MemSampler{baseInUse: ms.HeapInuse + ms.StackInuse, baseStack: ms.StackInuse, baseSys: ms.Sys, stop: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	})
	return s
}

func (s *MemSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := ms.HeapInuse + ms.StackInuse; v > s.baseInUse {
		s.peak.InUse = max(s.peak.InUse, v-s.baseInUse)
	}
	if ms.Sys > s.baseSys {
		s.peak.Sys = max(s.peak.Sys, ms.Sys-s.baseSys)
	}
}

// Live collects garbage and records what is left in use (MemPeak.Live);
// call it when every work is in flight.
func (s *MemSampler) Live() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := ms.HeapInuse + ms.StackInuse; v > s.baseInUse {
		s.peak.Live = v - s.baseInUse
	}
	if ms.StackInuse > s.baseStack {
		s.peak.LiveStack = ms.StackInuse - s.baseStack
	}
}

// Stop stops sampling and returns the figures.
func (s *MemSampler) Stop() MemPeak {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
