package bench

import (
	"sync"

	"github.com/panjf2000/ants/v2"
)

func antsImpl() Impl {
	return Impl{Name: "ants", Kind: KindPeer, New: func(s Shape) (Runner, error) {
		p, err := ants.NewPool(s.Total())
		if err != nil {
			return nil, err
		}
		return antsRunner{p}, nil
	}}
}

// antsRunner submits closures to an ants pool (ants has no results: its
// users write into a slice and wait on a WaitGroup).
type antsRunner struct{ p *ants.Pool }

func (r antsRunner) Run(t Task, args, out []int) error {
	var wg sync.WaitGroup
	wg.Add(len(args))
	for i, a := range args {
		if err := r.p.Submit(func() { out[i] = t.Fn(a); wg.Done() }); err != nil {
			return err
		}
	}
	wg.Wait()
	return nil
}

func (r antsRunner) Close() { r.p.Release() }
