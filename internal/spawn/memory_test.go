package spawn

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestWatchMemoryKillsWhatIsOverTheLimit: the one memory watch of process
// workers and local cluster workers reads each process's resident memory
// and kills those over the limit, naming both figures, and ends with its
// ctx. This test process is the one watched: it is far above 1 MiB.
func TestWatchMemoryKillsWhatIsOverTheLimit(t *testing.T) {
	if !MemorySupported {
		if _, ok := ReadRSS(os.Getpid()); ok {
			t.Fatal("ReadRSS answers where MemorySupported says it cannot")
		}
		return
	}
	for _, tc := range []struct {
		name  string
		limit int64
		kill  bool
	}{
		{"over", 1 << 20, true},
		{"under", 1 << 50, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			killed := make(chan *MemoryLimitError, 1)
			polls := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				WatchMemory(ctx, tc.limit, func() []Watched {
					if polls++; polls == 3 {
						cancel() // three polls are enough: the watch ends after this one
					}
					return []Watched{{PID: os.Getpid(), Kill: func(err *MemoryLimitError) {
						select {
						case killed <- err:
						default:
						}
					}}}
				})
			}()
			<-done
			cancel()
			select {
			case err := <-killed:
				if !tc.kill {
					t.Fatalf("killed under the limit: %v", err)
				}
				if err.Limit != tc.limit || err.RSS <= tc.limit || !strings.Contains(err.Error(), "memory limit 1 MiB exceeded (RSS ") {
					t.Errorf("kill reason %+v: %q", *err, err)
				}
			default:
				if tc.kill {
					t.Fatal("not killed over the limit")
				}
			}
		})
	}
}
