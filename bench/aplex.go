package bench

import (
	"context"
	"slices"

	"github.com/aplex-go/aplex"
)

func aplexThreadImpl() Impl {
	return Impl{Name: "aplex-thread", Kind: KindAplex, New: func(s Shape) (Runner, error) {
		ex, err := NewThreadExecutor(s)
		if err != nil {
			return nil, err
		}
		return aplexRunner{ex: ex}, nil
	}}
}

// aplexThreadWaitImpl is aplex-thread collecting a batch as the peers'
// runners do, with one wait for the whole of it (Wait(AllCompleted)),
// then a Get per future, each ended. Beside aplex-thread's loop of Gets,
// it shows what that loop costs: a Get that finds its future running
// parks, and is woken as it ends, ahead of the works that would end the
// next ones. Shown in the fan-out only; the targets judge aplex-thread.
func aplexThreadWaitImpl() Impl {
	return Impl{Name: "aplex-thread-wait", Kind: KindAplex, New: func(s Shape) (Runner, error) {
		ex, err := NewThreadExecutor(s)
		if err != nil {
			return nil, err
		}
		return aplexRunner{ex: ex, waitAll: true}, nil
	}}
}

func aplexProcessImpl() Impl { return processImpl("aplex-process", nil) }

// aplexProcessPrefetchImpl is aplex-process with WithPrefetch(PerWorker):
// each worker process is sent up to as many works again as it runs, and
// starts the next the moment one ends.
func aplexProcessPrefetchImpl() Impl {
	return processImpl("aplex-process-prefetch", func(s Shape) []aplex.Option {
		return []aplex.Option{aplex.WithPrefetch(s.PerWorker)}
	})
}

// processImpl is an aplex process executor of the shape, with the options
// opts gives for it (nil: none).
func processImpl(name string, opts func(Shape) []aplex.Option) Impl {
	return Impl{Name: name, Kind: KindAplex, New: func(s Shape) (Runner, error) {
		var extra []aplex.Option
		if opts != nil {
			extra = opts(s)
		}
		ex, err := NewProcessExecutor(s, extra...)
		if err != nil {
			return nil, err
		}
		return aplexRunner{ex: ex}, nil
	}}
}

// NewThreadExecutor returns an aplex goroutine executor of shape s.
func NewThreadExecutor(s Shape) (*aplex.Executor, error) {
	return aplex.NewThreadExecutor(aplex.WithPoolSize(s.Workers), aplex.WithMaxWorksPerWorker(s.PerWorker))
}

// NewProcessExecutor returns an aplex process executor of shape s: Workers
// child processes (this binary re-executed), PerWorker works each, and
// the options given.
func NewProcessExecutor(s Shape, opts ...aplex.Option) (*aplex.Executor, error) {
	return aplex.NewProcessExecutor(append([]aplex.Option{aplex.WithPoolSize(s.Workers), aplex.WithMaxWorksPerWorker(s.PerWorker)}, opts...)...)
}

// aplexRunner submits every work, keeping the futures, then gets each
// (with waitAll, once all have ended).
type aplexRunner struct {
	ex      *aplex.Executor
	waitAll bool
}

func (r aplexRunner) Run(t Task, args, out []int) error {
	return submitAll(context.Background(), r.ex, t.Work, args, out, r.waitAll)
}

func (r aplexRunner) Close() { _ = r.ex.Close() }

// SubmitAll submits w for every argument, keeping the futures, then gets
// each result into out.
func SubmitAll(ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], args, out []int) error {
	return submitAll(ctx, ex, w, args, out, false)
}

// submitAll is SubmitAll, waiting for every future to end before the
// first Get if waitAll is set.
func submitAll(ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], args, out []int, waitAll bool) error {
	fs := make([]*aplex.Future[int], len(args))
	for i, a := range args {
		f, err := aplex.Submit(ctx, ex, w, a)
		if err != nil {
			return err
		}
		fs[i] = f
	}
	if waitAll {
		all := make([]aplex.Awaitable, len(fs))
		for i, f := range fs {
			all[i] = f
		}
		if _, _, err := aplex.Wait(ctx, aplex.AllCompleted, all...); err != nil {
			return err
		}
	}
	for i, f := range fs {
		v, err := f.Get(ctx)
		if err != nil {
			return err
		}
		out[i] = v
	}
	return nil
}

// Window submits one work per argument with at most inflight works
// pending: once the window is full it waits for the oldest before
// submitting the next, as a client streaming requests would.
func Window(ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], args []int, inflight int) error {
	ring := make([]*aplex.Future[int], inflight)
	for i, a := range args {
		if f := ring[i%inflight]; f != nil {
			if _, err := f.Get(ctx); err != nil {
				return err
			}
		}
		f, err := aplex.Submit(ctx, ex, w, a)
		if err != nil {
			return err
		}
		ring[i%inflight] = f
	}
	for _, f := range ring {
		if f != nil {
			if _, err := f.Get(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// MapAll runs w over args with aplex.Map and the given chunk size, writing
// the results into out.
func MapAll(ctx context.Context, ex *aplex.Executor, w *aplex.Work[int, int], args, out []int, chunk int) error {
	i := 0
	for v, err := range aplex.Map(ctx, ex, w, slices.Values(args), aplex.ChunkSize(chunk)) {
		if err != nil {
			return err
		}
		out[i] = v
		i++
	}
	return nil
}
