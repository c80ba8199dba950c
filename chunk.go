package aplex

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex/internal/fanout"
	"github.com/aplex-go/aplex/internal/wire"
)

// chunk is one Map dispatch: n inputs of the same work sent to one worker
// together, run concurrently there, and answered together.
type chunk[A, R any] struct {
	t    task
	work *Work[A, R]
	args []A
	vals []R
	errs []error
}

func (ch *chunk[A, R]) runLocal(ctx context.Context, t *task) {
	n := len(ch.args)
	vals, errs := make([]R, n), make([]error, n)
	// The items run concurrently, without a goroutine each while they are
	// quick (see internal/fanout).
	fanout.Run(n, func(i int) { vals[i], errs[i] = runProtected(ctx, ch.work.fn, ch.args[i]) })
	if t.settle() {
		ch.vals, ch.errs = vals, errs
		t.finish(nil, false)
	}
}

func (ch *chunk[A, R]) deliver(t *task, items []wire.Outcome) {
	n := len(ch.args)
	if len(items) != n {
		ch.fail(t, fmt.Errorf("%w: worker returned %d outcomes for a chunk of %d", ErrEncoding, len(items), n))
		return
	}
	vals, errs := make([]R, n), make([]error, n)
	for i, o := range items {
		vals[i], errs[i] = decodeOutcome[R](o)
	}
	if t.settle() {
		ch.vals, ch.errs = vals, errs
		t.finish(nil, false)
	}
}

func (ch *chunk[A, R]) fail(t *task, err error) {
	if t.settle() {
		t.finish(err, false)
	}
}
