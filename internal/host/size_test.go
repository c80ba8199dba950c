package host

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aplex-go/aplex/internal/wire"
)

// TestFitResultCutsAHugeErrorFirst: an item whose error's message or stack
// is too big for the result keeps the start of its text, cut at a rune,
// its type and its sentinels; an item too big for another reason becomes
// CodeTooLarge, as before.
func TestFitResultCutsAHugeErrorFirst(t *testing.T) {
	big := strings.Repeat("é", 1<<20) // two bytes a rune: a cut can fall inside one
	items := []wire.Outcome{
		{Err: &wire.Error{Type: "*errors.errorString", Message: big, Stack: big, Sentinels: []string{"io.EOF"}}},
		{Value: make([]byte, 3<<20)},
		{Value: []byte{1}},
	}
	const limit = 1 << 20
	fitResult(items, limit)
	e := items[0].Err
	if e == nil || e.Code == wire.CodeTooLarge {
		t.Fatalf("the error became %+v; want it cut", e)
	}
	for _, s := range []string{e.Message, e.Stack} {
		if len(s) > maxErrorText+64 || !strings.HasPrefix(s, "éé") || !strings.HasSuffix(s, "bytes cut]") || !utf8.ValidString(s) {
			t.Errorf("cut text: %d bytes, %q…%q", len(s), s[:8], s[len(s)-24:])
		}
	}
	if e.Type != "*errors.errorString" || len(e.Sentinels) != 1 {
		t.Errorf("the cut error lost its type or sentinels: %+v", e)
	}
	if e := items[1].Err; e == nil || e.Code != wire.CodeTooLarge {
		t.Errorf("the big value: %+v; want CodeTooLarge", items[1])
	}
	if items[2].Err != nil {
		t.Errorf("the small value was touched: %+v", items[2])
	}
}
