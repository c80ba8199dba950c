package host

import "github.com/aplex-go/aplex/internal/wire"

// fitResult replaces the largest items of a job by CodeTooLarge errors until
// the whole result fits in limit bytes, so a chunk whose items are each small
// enough but together too big still reaches the executor (as errors) rather
// than breaking the frame.
func fitResult(items []wire.Outcome, limit int) {
	total := 2 * wire.MaxVarint
	for i := range items {
		total += wire.OutcomeBound(&items[i])
	}
	for total > limit {
		big, bigSize := -1, 0
		for i := range items {
			if e := items[i].Err; e != nil && e.Code == wire.CodeTooLarge {
				continue
			}
			if s := wire.OutcomeBound(&items[i]); s > bigSize {
				big, bigSize = i, s
			}
		}
		if big < 0 {
			return // only size errors left; they are tiny, nothing more to do
		}
		items[big] = wire.Outcome{Err: tooLarge(bigSize, limit)}
		total += wire.OutcomeBound(&items[big]) - bigSize
	}
}
