package engine

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

	// A chunk of one (Map's default) keeps its item here: no slices to
	// allocate, no fan-out.
	arg1 [1]A
	val1 [1]R
	err1 [1]error

	// The Map's completion callback is kept here, not in a node of its
	// own (ordered Map: on the head chunk only, when the loop waits for it;
	// set on the loop's goroutine, so the loop may read it).
	onDone callback
}

// remoteChunk is a chunk for remote workers: the job it sends (and, for a
// chunk of one, its encoded argument's slice) shares its allocation, as
// remoteCall's does for Submit.
type remoteChunk[A, R any] struct {
	chunk[A, R]
	rj remoteJob
}

// newChunk returns an empty chunk for up to size inputs, with room for
// hint of them (inputs at hand, or that the reader's ring can hold), and
// with its remoteJob for remote workers. Its room grows with the inputs
// that really arrive: ChunkSize is a bound, not an amount to allocate.
func newChunk[A, R any](w *Work[A, R], size, hint int, remote bool) *chunk[A, R] {
	var ch *chunk[A, R]
	if remote {
		rc := &remoteChunk[A, R]{chunk: chunk[A, R]{work: w}}
		rc.t.setRemoteJob(&rc.rj)
		ch = &rc.chunk
	} else {
		ch = &chunk[A, R]{work: w}
	}
	if size == 1 {
		ch.args = ch.arg1[:0]
	} else {
		ch.args = make([]A, 0, min(size, max(hint, 64)))
	}
	return ch
}

// results returns where n outcomes go: the inline arrays for one.
func (ch *chunk[A, R]) results(n int) ([]R, []error) {
	if n == 1 {
		return ch.val1[:], ch.err1[:]
	}
	return make([]R, n), make([]error, n)
}

func (ch *chunk[A, R]) runLocal(ctx context.Context, t *task) {
	n := len(ch.args)
	vals, errs := ch.results(n)
	// Deferred, so that the chunk ends with its items' outcomes even when
	// an item calls runtime.Goexit in this goroutine.
	defer ch.complete(t, vals, errs)
	if n == 1 {
		ch.runItem(ctx, 0, vals, errs)
		return
	}
	// The items run concurrently, without a goroutine each while they are
	// quick (see internal/fanout).
	fanout.Run(n, func(i int) { ch.runItem(ctx, i, vals, errs) })
}

// runItem runs item i; an item that calls runtime.Goexit fails with
// ErrGoexit (its goroutine still ends, as Goexit demands).
func (ch *chunk[A, R]) runItem(ctx context.Context, i int, vals []R, errs []error) {
	returned := false
	defer func() {
		if !returned {
			errs[i] = ErrGoexit
		}
	}()
	vals[i], errs[i] = runProtected(ctx, ch.work.fn, ch.args[i])
	returned = true
}

// complete publishes the items' outcomes, unless the chunk was cancelled
// (by Cancel, or by the caller's ctx: see settleReturned).
func (ch *chunk[A, R]) complete(t *task, vals []R, errs []error) {
	if t.settleReturned() {
		ch.vals, ch.errs = vals, errs
		t.finish(nil, false)
	}
}

func (ch *chunk[A, R]) name() string { return ch.work.describe() }

// itemErr returns the first input's error of a chunk that ended, for its
// observer (itemFailer).
func (ch *chunk[A, R]) itemErr() error {
	for _, err := range ch.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (ch *chunk[A, R]) deliver(t *task, items []wire.Outcome) {
	n := len(ch.args)
	if len(items) != n {
		ch.fail(t, fmt.Errorf("%w: worker returned %d outcomes for a chunk of %d", ErrEncoding, len(items), n))
		return
	}
	if !t.settleReturned() {
		return // cancelled meanwhile, or the caller's ctx ended
	}
	vals, errs := ch.results(n)
	for i, o := range items {
		errs[i] = decodeOutcomeInto(o, &vals[i])
	}
	ch.vals, ch.errs = vals, errs
	t.finish(nil, false)
}

func (ch *chunk[A, R]) fail(t *task, err error) {
	if t.settle() {
		t.finish(err, false)
	}
}
