package bench

import (
	"golang.org/x/sync/errgroup"
)

func errgroupImpl() Impl {
	return Impl{Name: "errgroup", Kind: KindPeer, New: func(s Shape) (Runner, error) {
		return errgroupRunner{s.Total()}, nil
	}}
}

// errgroupRunner runs each batch in an errgroup.Group with SetLimit; tasks
// write their results into the slice, as errgroup's users do.
type errgroupRunner struct{ limit int }

func (r errgroupRunner) Run(t Task, args, out []int) error {
	var g errgroup.Group
	g.SetLimit(r.limit)
	for i, a := range args {
		g.Go(func() error { out[i] = t.Fn(a); return nil })
	}
	return g.Wait()
}

func (errgroupRunner) Close() {}
