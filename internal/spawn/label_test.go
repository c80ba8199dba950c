package spawn

import (
	"strings"
	"sync"
	"testing"

	"github.com/aplex-go/aplex/internal/testutil"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("y", maxLine+10)
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"lines", []string{"a\nb\n"}, "P a\nP b\n"},
		{"split line", []string{"he", "llo\nwor", "ld\n"}, "P hello\nP world\n"},
		{"unterminated", []string{"x\ntail"}, "P x\nP tail\n"},
		{"empty lines", []string{"\n\n"}, "P \nP \n"},
		// An unterminated run past maxLine is forwarded rather than held.
		{"long line", []string{long, "z\n"}, "P " + long + "\nP z\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.Buffer
			l := NewLineWriter(&out, new(sync.Mutex), "aplex worker", 3)
			l.SetPID(42)
			for _, w := range tt.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			l.Flush()
			want := strings.ReplaceAll(tt.want, "P ", "[aplex worker 3 pid 42] ")
			if got := out.String(); got != want {
				if len(got) > 200 {
					t.Errorf("got %d bytes %q…, want %d bytes %q…", len(got), got[:80], len(want), want[:80])
				} else {
					t.Errorf("got %q\nwant %q", got, want)
				}
			}
		})
	}
}
