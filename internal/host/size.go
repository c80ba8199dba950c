package host

import (
	"fmt"
	"unicode/utf8"

	"github.com/aplex-go/aplex/internal/wire"
)

// fitResult replaces the largest items of a job by CodeTooLarge errors until
// the whole result fits in limit bytes, so a chunk whose items are each small
// enough but together too big still reaches the executor (as errors) rather
// than breaking the frame. An error whose message or stack is the bulk of
// it is cut first (cutText): a work's error (or panic) with a text bigger
// than a message failed as CodeTooLarge, its text and identity lost
// (TestAHugeErrorMessageCrossesCut).
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
		if e := items[big].Err; e != nil && (len(e.Message) > maxErrorText || len(e.Stack) > maxErrorText) {
			// An error too big for the result keeps its start, its type and
			// its identity (sentinels, typed values): the caller of a
			// goroutine worker would have had all of it.
			c := *e // EncodeError may return a shared value
			c.Message, c.Stack = cutText(c.Message), cutText(c.Stack)
			items[big].Err = &c
		} else {
			items[big] = wire.Outcome{Err: tooLarge(bigSize, limit)}
		}
		total += wire.OutcomeBound(&items[big]) - bigSize
	}
}

// maxErrorText is what fitResult leaves of an error's message or stack
// when the result is too big.
const maxErrorText = 64 << 10

// cutText returns s, or its first maxErrorText bytes (cut at a rune's
// start) and a note of how much was cut.
func cutText(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	n := maxErrorText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s… [%d bytes cut]", s[:n], len(s)-n)
}
