package aplex

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/aplex-go/aplex/internal/wire"
)

// maxWindow caps Map's default window, so a huge pool does not read
// millions of inputs ahead.
const maxWindow = 4096

// Map runs w over inputs on ex and yields the results in input order.
//
// Inputs are read lazily, no more than a window of chunks ahead of the
// results (Window, default the pool's capacity), so an endless or huge
// sequence runs in constant memory. ChunkSize(n) sends n inputs to one
// worker in one dispatch, where they run concurrently. Timeout(d) bounds the
// whole Map from this call. The first error (a work's, a timeout, ctx's) is
// yielded last: every remaining work is then cancelled, as it is when the
// loop breaks early. Bad arguments are yielded as the only error.
func Map[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return mapSeq(ctx, ex, w, inputs, opts, true)
}

// MapUnordered is Map yielding results in completion order (by chunk; the
// items of one chunk keep their order).
func MapUnordered[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts ...CallOption) iter.Seq2[R, error] {
	return mapSeq(ctx, ex, w, inputs, opts, false)
}

func mapSeq[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], inputs iter.Seq[A], opts []CallOption, ordered bool) iter.Seq2[R, error] {
	cc, err := buildCallConfig(opts, true)
	switch {
	case err != nil:
	case ctx == nil:
		err = errors.New("aplex: Map: nil context")
	case inputs == nil:
		err = errors.New("aplex: Map: nil inputs")
	default:
		err = w.check(ex)
	}
	var deadline time.Time
	if cc.timeout > 0 {
		deadline = time.Now().Add(cc.timeout) // from the call, not the first iteration
	}
	return func(yield func(R, error) bool) {
		if err != nil {
			var zero R
			yield(zero, err)
			return
		}
		m := &mapRun[A, R]{ex: ex, w: w, cc: cc, ordered: ordered, yield: yield}
		m.window = cc.window
		if m.window == 0 {
			m.window = min(max(ex.c.cfg.poolSize*ex.c.cfg.maxWorksPerWorker, 1), maxWindow)
		}
		var cancel context.CancelFunc
		if deadline.IsZero() {
			m.ctx, cancel = context.WithCancel(ctx)
		} else {
			m.ctx, cancel = context.WithDeadline(ctx, deadline)
		}
		m.parent = ctx
		defer cancel()
		defer m.cancelPending()
		if !ordered {
			m.doneCh = make(chan *chunk[A, R], m.window)
		}
		m.run(inputs)
	}
}

type mapRun[A, R any] struct {
	parent  context.Context
	ctx     context.Context
	ex      *Executor
	w       *Work[A, R]
	cc      callConfig
	ordered bool
	window  int
	yield   func(R, error) bool

	pending []*chunk[A, R] // ordered: in input order
	head    int
	doneCh  chan *chunk[A, R] // unordered: in completion order
	flying  int
}

func (m *mapRun[A, R]) run(inputs iter.Seq[A]) {
	size := m.cc.chunkSize
	var ch *chunk[A, R]
	for a := range inputs {
		if ch == nil {
			ch = newChunk(m.w, size)
		}
		ch.args = append(ch.args, a)
		if len(ch.args) < size {
			continue
		}
		if !m.submit(ch) {
			return
		}
		ch = nil
		for m.flying >= m.window {
			if !m.next() {
				return
			}
		}
	}
	if ch != nil && !m.submit(ch) {
		return
	}
	for m.flying > 0 {
		if !m.next() {
			return
		}
	}
}

// submit dispatches one chunk; false (after yielding the error) if it fails.
func (m *mapRun[A, R]) submit(ch *chunk[A, R]) bool {
	c := m.ex.c
	args := ch.args
	ch.t.init(m.ex, ch, m.ctx, &m.cc)
	if c.remote() {
		enc := make([][]byte, len(args))
		for i, a := range args {
			b, err := c.encodeArg(a)
			if err != nil {
				return m.fail(err)
			}
			enc[i] = b
		}
		ch.t.rj = &remoteJob{job: wire.Job{Name: m.w.name, Args: enc}}
	}
	if err := c.submit(m.ctx, &ch.t, true); err != nil {
		return m.fail(m.ctxErr(err))
	}
	m.flying++
	if m.ordered {
		m.pending = append(m.pending, ch)
	} else {
		ch.t.onDone(func() { m.doneCh <- ch })
	}
	return true
}

// next waits for the next chunk and yields its items; false to stop.
func (m *mapRun[A, R]) next() bool {
	var ch *chunk[A, R]
	if m.ordered {
		ch = m.pending[m.head]
		if !ch.t.finished() {
			select {
			case <-ch.t.doneChan():
			case <-m.ctx.Done():
				return m.fail(m.ctxErr(m.ctx.Err()))
			}
		}
		m.pending[m.head] = nil
		m.head++
		if m.head > len(m.pending)/2 && m.head > 64 { // keep the slice from growing forever
			m.pending = append(m.pending[:0], m.pending[m.head:]...)
			m.head = 0
		}
	} else {
		select {
		case ch = <-m.doneCh:
		case <-m.ctx.Done():
			return m.fail(m.ctxErr(m.ctx.Err()))
		}
	}
	m.flying--
	if ch.t.err != nil {
		return m.fail(m.ctxErr(ch.t.err))
	}
	for i := range ch.vals {
		if ch.errs[i] != nil {
			return m.fail(ch.errs[i])
		}
		if !m.yield(ch.vals[i], nil) {
			return false
		}
	}
	return true
}

// ctxErr explains a failure caused by the Map's own deadline.
func (m *mapRun[A, R]) ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && m.parent.Err() == nil && m.cc.timeout > 0 {
		return fmt.Errorf("aplex: Map timed out after %v: %w", m.cc.timeout, context.DeadlineExceeded)
	}
	return err
}

func (m *mapRun[A, R]) fail(err error) bool {
	var zero R
	m.yield(zero, err)
	return false
}

// cancelPending cancels every chunk not yet yielded.
func (m *mapRun[A, R]) cancelPending() {
	if m.ordered {
		for _, ch := range m.pending[m.head:] {
			ch.t.cancel(errCanceled)
		}
		return
	}
	// Unordered chunks are tracked by the executor only; the Map's ctx,
	// cancelled right after this, cancels the running ones, and queued ones
	// see it too.
}
