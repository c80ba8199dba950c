package host

import "github.com/aplex-go/aplex/internal/wire"

// Size estimates. They are upper bounds of the wire encoding (every length
// and integer counted as a full 10-byte varint), cheap to compute, and let
// the host keep results and batches under the frame limit without encoding
// twice.

const maxVarint = 10

// sizeError bounds the encoded size of e.
func sizeError(e *wire.Error) int {
	n := 5*maxVarint + 2 + len(e.Type) + len(e.Message) + len(e.Stack)
	for _, s := range e.Sentinels {
		n += maxVarint + len(s)
	}
	return n
}

// sizeOutcome bounds the encoded size of o.
func sizeOutcome(o *wire.Outcome) int {
	n := 1 + maxVarint + len(o.Value)
	if o.Err != nil {
		n += sizeError(o.Err)
	}
	return n
}

// sizeResult bounds the encoded size of r inside a Results message.
func sizeResult(r *wire.Result) int {
	n := 2 * maxVarint
	for i := range r.Items {
		n += sizeOutcome(&r.Items[i])
	}
	return n
}

// fitResult replaces the largest items of a job by CodeTooLarge errors until
// the whole result fits in limit bytes, so a chunk whose items are each small
// enough but together too big still reaches the executor (as errors) rather
// than breaking the frame.
func fitResult(items []wire.Outcome, limit int) {
	total := 2 * maxVarint
	for i := range items {
		total += sizeOutcome(&items[i])
	}
	for total > limit {
		big, bigSize := -1, 0
		for i := range items {
			if e := items[i].Err; e != nil && e.Code == wire.CodeTooLarge {
				continue
			}
			if s := sizeOutcome(&items[i]); s > bigSize {
				big, bigSize = i, s
			}
		}
		if big < 0 {
			return // only size errors left; they are tiny, nothing more to do
		}
		items[big] = wire.Outcome{Err: tooLarge(bigSize, limit)}
		total += sizeOutcome(&items[big]) - bigSize
	}
}
