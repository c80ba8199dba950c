package bench

import (
	"github.com/alitto/pond/v2"
)

func pondImpl() Impl {
	return Impl{Name: "pond", Kind: KindPeer, New: func(s Shape) (Runner, error) {
		return pondRunner{pond.NewResultPool[int](s.Total())}, nil
	}}
}

// pondRunner submits to a pond result pool and waits on each result
// future, pond's own way of getting results back.
type pondRunner struct{ p pond.ResultPool[int] }

func (r pondRunner) Run(t Task, args, out []int) error {
	tasks := make([]pond.ResultTask[int], len(args))
	for i, a := range args {
		tasks[i] = r.p.Submit(func() int { return t.Fn(a) })
	}
	for i, task := range tasks {
		v, err := task.Wait()
		if err != nil {
			return err
		}
		out[i] = v
	}
	return nil
}

func (r pondRunner) Close() { r.p.StopAndWait() }

// PondGroup runs fn over in with a pond task group, the pond way of mapping
// a slice: its Wait returns the results in input order.
func PondGroup(p pond.ResultPool[int], fn func(int) int, in, out []int) error {
	g := p.NewGroup()
	for _, a := range in {
		g.Submit(func() int { return fn(a) })
	}
	res, err := g.Wait()
	copy(out, res)
	return err
}
