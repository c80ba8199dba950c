package engine

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex/internal/fanout"
	"github.com/aplex-go/aplex/internal/gopool"
	"github.com/aplex-go/aplex/internal/wire"
)

// chunk is one Map dispatch: n inputs of the same work sent to one worker
// together, run concurrently there, and answered together.
type chunk[A, R any] struct {
	t    task
	work *Work[A, R]
	args []A
	many *chunkOutcomes[R] // a chunk of more than one's outcomes, once published

	// A chunk of one (Map's default) keeps its item and outcome here: no
	// slices to allocate, no fan-out, and an allocation of 256 bytes for
	// an int work rather than 320.
	arg1 [1]A
	val1 [1]R
	err1 [1]error

	// The Map's completion callback is kept here, not in a node of its
	// own (ordered Map: on the head chunk only, when the loop waits for it;
	// set on the loop's goroutine, so the loop may read it).
	onDone callback
}

// chunkOutcomes are the outcomes of a chunk of more than one item.
type chunkOutcomes[R any] struct {
	vals []R
	errs []error
}

// outcomes returns the chunk's items' outcomes, once published (complete,
// deliver): a chunk that ended without them (failed, cancelled) has none
// to read.
func (ch *chunk[A, R]) outcomes() ([]R, []error) {
	switch {
	case ch.many != nil:
		return ch.many.vals, ch.many.errs
	case len(ch.args) == 1:
		return ch.val1[:], ch.err1[:]
	}
	return nil, nil
}

// publish keeps the outcomes results returned, before the task finishes.
func (ch *chunk[A, R]) publish(vals []R, errs []error) {
	if len(vals) != 1 {
		ch.many = &chunkOutcomes[R]{vals, errs}
	}
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

// Run runs the chunk in the calling goroutine (see beginLocal); its items
// recover their own panics (runItem).
func (ch *chunk[A, R]) Run() gopool.Task {
	t := &ch.t
	wc, run := beginLocal(t)
	if !run {
		return endLocal(t, nil)
	}
	returned := false
	defer exitedLocal(t, &returned)
	ch.runLocal(wc, t)
	returned = true
	return endLocal(t, wc)
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
		ch.publish(vals, errs)
		t.finish(nil, false)
	}
}

func (ch *chunk[A, R]) name() string { return ch.work.describe() }

// itemErr returns the first input's error of a chunk that ended, for its
// observer (itemFailer).
func (ch *chunk[A, R]) itemErr() error {
	_, errs := ch.outcomes()
	for _, err := range errs {
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
	ch.publish(vals, errs)
	t.finish(nil, false)
}

func (ch *chunk[A, R]) fail(t *task, err error) {
	if t.settle() {
		t.finish(err, false)
	}
}
