package bench

import "sync"

// floorImpls returns the in-process floors: what a pool costs at the least.
func floorImpls() []Impl {
	return []Impl{
		{Name: "go+wg", Kind: KindFloor, Unbounded: true, New: func(Shape) (Runner, error) { return goWG{}, nil }},
		{Name: "go+wg+sem", Kind: KindFloor, New: func(s Shape) (Runner, error) { return goSem{n: s.Total()}, nil }},
		{Name: "chan-pool", Kind: KindFloor, New: func(s Shape) (Runner, error) { return newChanPool(s.Total()), nil }},
		{Name: "futures-pool", Kind: KindFloor, New: func(s Shape) (Runner, error) { return newFuturePool(s.Total()), nil }},
	}
}

// goWG starts one goroutine per task with sync.WaitGroup.Go; each writes
// its result into its own slot.
type goWG struct{}

func (goWG) Run(t Task, args, out []int) error {
	var wg sync.WaitGroup
	for i, a := range args {
		wg.Go(func() { out[i] = t.Fn(a) })
	}
	wg.Wait()
	return nil
}

func (goWG) Close() {}

// goSem is goWG bounded by a channel semaphore of n tokens.
type goSem struct{ n int }

func (g goSem) Run(t Task, args, out []int) error {
	sem := make(chan struct{}, g.n)
	var wg sync.WaitGroup
	for i, a := range args {
		sem <- struct{}{}
		wg.Go(func() { out[i] = t.Fn(a); <-sem })
	}
	wg.Wait()
	return nil
}

func (goSem) Close() {}

// chanJob is one task for a chanPool worker; it travels by value, so a
// task costs no allocation.
type chanJob struct {
	fn  func(int) int
	arg int
	dst *int
	wg  *sync.WaitGroup
}

// chanPool is a fixed set of worker goroutines reading jobs from one
// channel: the cheapest way to run many small tasks.
type chanPool struct {
	jobs chan chanJob
	done sync.WaitGroup
}

func newChanPool(workers int) *chanPool {
	p := &chanPool{jobs: make(chan chanJob, workers)}
	for range workers {
		p.done.Go(func() {
			for j := range p.jobs {
				*j.dst = j.fn(j.arg)
				j.wg.Done()
			}
		})
	}
	return p
}

func (p *chanPool) Run(t Task, args, out []int) error {
	var wg sync.WaitGroup
	wg.Add(len(args))
	for i, a := range args {
		p.jobs <- chanJob{fn: t.Fn, arg: a, dst: &out[i], wg: &wg}
	}
	wg.Wait()
	return nil
}

func (p *chanPool) Close() {
	close(p.jobs)
	p.done.Wait()
}

// ChunkedMap is the floor of a chunked map: workers goroutines take chunks
// of chunk indices from a channel and write fn of each input into out.
func ChunkedMap(workers, chunk int, fn func(int) int, in, out []int) {
	starts := make(chan int, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for s := range starts {
				for i := s; i < min(s+chunk, len(in)); i++ {
					out[i] = fn(in[i])
				}
			}
		})
	}
	for s := 0; s < len(in); s += chunk {
		starts <- s
	}
	close(starts)
	wg.Wait()
}
