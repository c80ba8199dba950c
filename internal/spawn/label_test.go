package spawn

import (
	"strings"
	"sync"
	"testing"
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
			var out safeBuffer
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

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
