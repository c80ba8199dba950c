package bench

import (
	"sync"
	"sync/atomic"
)

// futurePool is a bare futures executor, the floor of aplex's goroutine
// executor in the fan-out: a pool whose Submit returns a future to Get
// later, as aplex's does, with nothing else. A Submit is one allocation
// (the future); works beyond the limit wait in a FIFO under one mutex; a
// goroutine that finishes a work takes the next queued one itself and,
// when there is none, parks on an unbuffered hand-off channel for the next
// Submit; a Get that finds its future running parks on a pooled channel
// that the work's end signals. No ctx, no cancellation, no errors or
// panics caught, no balancing between workers, no counters: what aplex's
// goroutine executor costs above it in the fan-out is what its engine
// adds. (With no-op works it costs more than aplex: every Submit with
// room hands its work to a goroutine, where aplex's runners pass a burst
// on among themselves.)
type futurePool struct {
	limit   int
	handoff chan *future // to a parked goroutine; nil retires it
	done    sync.WaitGroup

	mu         sync.Mutex
	head, tail *future // queued
	running    int     // goroutines running a work
	parked     int     // goroutines parked on handoff, or about to
	closed     bool
}

// future is one submitted work and its result.
type future struct {
	fn    func(int) int
	arg   int
	val   int
	ended atomic.Bool
	next  *future // in the queue

	mu     sync.Mutex    // guards waiter against the end
	waiter chan struct{} // a parked Get's, capacity 1
}

// getWakes are the channels parked Gets wait on, reused.
var getWakes = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

func newFuturePool(limit int) *futurePool {
	return &futurePool{limit: limit, handoff: make(chan *future)}
}

// submit starts fn(arg) at once if fewer than limit works run, else queues
// it, and returns its future.
func (p *futurePool) submit(fn func(int) int, arg int) *future {
	f := &future{fn: fn, arg: arg}
	p.mu.Lock()
	switch {
	case p.running == p.limit:
		if p.tail == nil {
			p.head = f
		} else {
			p.tail.next = f
		}
		p.tail = f
		p.mu.Unlock()
	case p.parked > 0:
		p.running++
		p.parked--
		p.mu.Unlock()
		p.handoff <- f // a goroutine counted in parked receives it
	default:
		p.running++
		p.mu.Unlock()
		p.done.Add(1)
		go p.loop(f)
	}
	return f
}

// loop runs f, then the queued works, then parks for the next hand-off.
func (p *futurePool) loop(f *future) {
	defer p.done.Done()
	for f != nil {
		f.end(f.fn(f.arg))
		p.mu.Lock()
		if f = p.head; f != nil {
			p.head = f.next
			if p.head == nil {
				p.tail = nil
			}
			p.mu.Unlock()
			continue
		}
		p.running--
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.parked++
		p.mu.Unlock()
		f = <-p.handoff
	}
}

// end publishes the result and wakes a parked Get.
func (f *future) end(v int) {
	f.val = v
	f.mu.Lock()
	f.ended.Store(true)
	w := f.waiter
	f.mu.Unlock()
	if w != nil {
		w <- struct{}{}
	}
}

// get waits for the result.
func (f *future) get() int {
	if f.ended.Load() {
		return f.val
	}
	w := getWakes.Get().(chan struct{})
	f.mu.Lock()
	if f.ended.Load() {
		f.mu.Unlock()
		getWakes.Put(w)
		return f.val
	}
	f.waiter = w
	f.mu.Unlock()
	<-w
	getWakes.Put(w)
	return f.val
}

// Run submits every work, keeping the futures, then gets each.
func (p *futurePool) Run(t Task, args, out []int) error {
	fs := make([]*future, len(args))
	for i, a := range args {
		fs[i] = p.submit(t.Fn, a)
	}
	for i, f := range fs {
		out[i] = f.get()
	}
	return nil
}

// Close retires the parked goroutines and waits for every goroutine to
// end; the others see closed as their work ends.
func (p *futurePool) Close() {
	p.mu.Lock()
	p.closed = true
	n := p.parked
	p.parked = 0
	p.mu.Unlock()
	for range n {
		p.handoff <- nil
	}
	p.done.Wait()
}
