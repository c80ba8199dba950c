package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aplex-go/aplex/internal/wire"
)

// Submit schedules w(ctx', arg) on ex and returns its future. The work runs
// at once if a worker has room; otherwise it waits in the executor's FIFO
// queue and starts in submission order. (On a goroutine executor, "at
// once" means as soon as the goroutine being woken for an earlier work
// starts, if one is: it hands the next queued work out before it runs its
// own, so a burst is handed out from goroutine to goroutine.) With a bounded queue
// (WithQueueSize) that is full, Submit waits for room until ctx ends. ctx
// is also the parent of the work's ctx, on every kind of worker: the work
// sees its deadline (sent to other processes as the time left), and its
// values, which reach other processes through the propagators registered
// with RegisterPropagator. When ctx ends before the work returns, the work's
// ctx is cancelled and the future ends cancelled with ctx.Err(), whatever
// the work returns.
//
// Submit returns an error, and no future, for bad input (nil executor, work
// or ctx; an Fn work on a process executor; an argument that cannot be
// encoded or is too large, alone or with the header of propagated values; a
// propagator that panics), after Shutdown (ErrClosed), when ctx has ended
// already (ctx.Err(): nothing is queued or run), and while no worker can
// be started and none is alive (a *WorkerError saying why).
//
// Cost, measured on a 2 vCPU machine (the bench module's report,
// 2026-12-01, medians of 5 interleaved runs): a no-op work submitted, then
// collected, on a thread executor at its default capacity takes 0.30 µs
// (±3 %), 1 allocation (176 bytes for an int work then; 128 since), where a goroutine per
// work behind a semaphore takes 0.94 µs in the same runs (a slow spell of
// the machine; 0.39 µs in a fast one) and workerpool 0.60 µs; one work at
// a time, Submit then Get, takes about 0.75 µs, beside busy goroutines
// too; on a process executor one round trip takes 36.8 µs (±42 %) and 6
// allocations (a raw pipe ping-pong with the same child and the same
// system calls: 28.5 µs; go-plugin's net/rpc: 169 µs), and works
// submitted then collected run at 588 k works/s with 2 allocations each, as
// many under a ctx that can end or has a deadline: the works submitted
// under one ctx share one watch on it.
func Submit[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], arg A, opts ...CallOption) (*Future[R], error) {
	return submit(ctx, ex, w, arg, opts, true)
}

// TrySubmit is Submit that never waits: with a full bounded queue it returns
// ErrFull at once.
func TrySubmit[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], arg A, opts ...CallOption) (*Future[R], error) {
	return submit(ctx, ex, w, arg, opts, false)
}

var defaultCall = callConfig{chunkSize: 1}

func submit[A, R any](ctx context.Context, ex *Executor, w *Work[A, R], arg A, opts []CallOption, wait bool) (*Future[R], error) {
	if ctx == nil {
		return nil, errors.New("aplex: Submit: nil context")
	}
	if err := w.check(ex); err != nil {
		return nil, err
	}
	cc := &defaultCall
	if len(opts) > 0 {
		built, err := buildCallConfig(opts, false)
		if err == nil {
			err = built.bindTo(ex)
		}
		if err != nil {
			return nil, err
		}
		cc = &built
	}
	var c *call[A, R]
	var rc *remoteCall[A, R]
	if ex.c.be.wire() {
		rc = &remoteCall[A, R]{call: call[A, R]{work: w, arg: arg}}
		c = &rc.call
		c.t.setRemoteJob(&rc.rj)
	} else {
		c = &call[A, R]{work: w, arg: arg}
	}
	c.t.init(ex, c, ctx, cc)
	vctx := ex.c.observeQueued(&c.t, ctx, 1) // ctx without an observer
	if rc != nil {
		h, err := header(vctx)
		if err != nil {
			return nil, ex.c.rejected(&c.t, err)
		}
		b, err := encodeArg(ex.c, &c.arg, h)
		if err != nil {
			return nil, ex.c.rejected(&c.t, err)
		}
		rc.rj.arg1[0] = b
		rc.rj.job = wire.Job{Name: w.name, Header: h, Args: rc.rj.arg1[:]}
	}
	if err := ex.c.submit(ctx, &c.t, wait); err != nil {
		return nil, ex.c.rejected(&c.t, err)
	}
	return &c.Future, nil
}

// encodeArg encodes an argument for a remote worker and checks its size,
// with the header h of propagated values sent along, before anything is
// sent (rule 10). The argument is read through p, which points into the
// task, so that a common argument is not copied into an interface of its
// own (wire.EncodeValue).
func encodeArg[A any](c *core, p *A, h map[string]string) ([]byte, error) {
	b, err := wire.EncodeValue(p)
	if err != nil {
		return nil, argError(p, err)
	}
	if err := c.checkArgSize(len(b), h); err != nil {
		return nil, err
	}
	return b, nil
}

// encodeArgs encodes a Map chunk's arguments as encodeArg does, into one
// buffer: one allocation for the chunk instead of one or two per argument.
// Each returned slice is capped at its own end.
func encodeArgs[A any](c *core, args []A, h map[string]string) ([][]byte, error) {
	enc := make([][]byte, len(args))
	ends := make([]int, len(args))
	var buf bytes.Buffer
	buf.Grow(len(args) * 8)
	for i := range args {
		start := buf.Len()
		if err := wire.EncodeValueTo(&buf, &args[i]); err != nil {
			return nil, argError(&args[i], err)
		}
		if err := c.checkArgSize(buf.Len()-start, h); err != nil {
			return nil, err
		}
		ends[i] = buf.Len()
	}
	data, start := buf.Bytes(), 0
	for i, end := range ends {
		enc[i] = data[start:end:end]
		start = end
	}
	return enc, nil
}

// argError wraps an argument's encoding error.
func argError[A any](p *A, err error) error {
	return fmt.Errorf("%w: argument of type %T: %v", ErrEncoding, *p, err)
}

// checkArgSize checks an encoded argument of n bytes, and the header h of
// propagated values sent with it, against the message limit.
func (c *core) checkArgSize(n int, h map[string]string) error {
	if n > c.maxMsg {
		return fmt.Errorf("%w: argument is %d bytes encoded; the limit is %d", ErrTooLarge, n, c.maxMsg)
	}
	if len(h) > 0 {
		if hb := wire.HeaderBound(h); n+hb > c.maxMsg {
			return fmt.Errorf("%w: argument is %d bytes encoded and the header of propagated ctx values %d; the limit is %d", ErrTooLarge, n, hb, c.maxMsg)
		}
	}
	return nil
}
