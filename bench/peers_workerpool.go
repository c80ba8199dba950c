package bench

import (
	"sync"

	"github.com/gammazero/workerpool"
)

func workerpoolImpl() Impl {
	return Impl{Name: "workerpool", Kind: KindPeer, New: func(s Shape) (Runner, error) {
		return workerpoolRunner{workerpool.New(s.Total())}, nil
	}}
}

// workerpoolRunner submits closures to a gammazero/workerpool (no results:
// a slice and a WaitGroup, as its users do).
type workerpoolRunner struct{ p *workerpool.WorkerPool }

func (r workerpoolRunner) Run(t Task, args, out []int) error {
	var wg sync.WaitGroup
	wg.Add(len(args))
	for i, a := range args {
		r.p.Submit(func() { out[i] = t.Fn(a); wg.Done() })
	}
	wg.Wait()
	return nil
}

func (r workerpoolRunner) Close() { r.p.StopWait() }
