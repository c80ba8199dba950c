package engine

import (
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
// propagator that panics) and after Shutdown (ErrClosed).
//
// Cost, measured on a 2 vCPU machine (the bench module's report,
// 2026-11-30, medians of 5 interleaved runs): a no-op work submitted, then
// collected, on a thread executor at its default capacity takes 0.82 µs
// (±35 %: the machine changed speed), 1 allocation of 224 bytes, where a
// goroutine per work behind a semaphore takes 1.07 µs in the same runs
// (0.44-0.57 µs and 0.41-0.43 µs on the machine's fast spells); one work
// at a time, Submit then Get, takes about 1 µs, beside busy goroutines too;
// on a process executor one round trip takes 58 µs (±9 %) and 6
// allocations (a raw pipe ping-pong with the same child: 40 µs; go-plugin's
// net/rpc: 199 µs), and works submitted then collected run at 372 k
// works/s.
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
			err = built.checkKind(ex.c.cfg.kind)
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
		c.t.rj = &rc.rj
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
		b, err := ex.c.encodeArg(arg, h)
		if err != nil {
			return nil, ex.c.rejected(&c.t, err)
		}
		rc.args[0] = b
		rc.rj.job = wire.Job{Name: w.name, Header: h, Args: rc.args[:]}
	}
	if err := ex.c.submit(ctx, &c.t, wait); err != nil {
		return nil, ex.c.rejected(&c.t, err)
	}
	return &c.Future, nil
}

// encodeArg encodes an argument for a remote worker and checks its size,
// with the header h of propagated values sent along, before anything is
// sent (rule 10).
func (c *core) encodeArg(arg any, h map[string]string) ([]byte, error) {
	b, err := wire.MarshalValue(arg)
	if err != nil {
		return nil, fmt.Errorf("%w: argument of type %T: %v", ErrEncoding, arg, err)
	}
	if len(b) > c.maxMsg {
		return nil, fmt.Errorf("%w: argument is %d bytes encoded; the limit is %d", ErrTooLarge, len(b), c.maxMsg)
	}
	if len(h) > 0 {
		if n := wire.HeaderBound(h); len(b)+n > c.maxMsg {
			return nil, fmt.Errorf("%w: argument is %d bytes encoded and the header of propagated ctx values %d; the limit is %d", ErrTooLarge, len(b), n, c.maxMsg)
		}
	}
	return b, nil
}
