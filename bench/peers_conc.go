package bench

import (
	"github.com/sourcegraph/conc/iter"
	"github.com/sourcegraph/conc/pool"
)

func concImpl() Impl {
	return Impl{Name: "conc", Kind: KindPeer, New: func(s Shape) (Runner, error) {
		return concRunner{s.Total()}, nil
	}}
}

// concRunner uses a conc ResultPool, scoped to one batch as conc intends:
// Wait returns every result (in completion order in conc v0.3.0).
type concRunner struct{ limit int }

func (r concRunner) Run(t Task, args, out []int) error {
	p := pool.NewWithResults[int]().WithMaxGoroutines(r.limit)
	for _, a := range args {
		p.Go(func() int { return t.Fn(a) })
	}
	copy(out, p.Wait())
	return nil
}

func (concRunner) Close() {}

// ConcMap maps fn over in with conc's iter.Map (GOMAXPROCS goroutines),
// conc's equivalent of aplex.Map.
func ConcMap(fn func(int) int, in, out []int) {
	copy(out, iter.Map(in, func(a *int) int { return fn(*a) }))
}
