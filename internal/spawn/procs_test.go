package spawn

import (
	"runtime"
	"testing"
)

func TestMaxProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, c := range []struct{ cores, workers, want int }{
		{2, 4, 1},  // the bench module's fan-out: 4 processes on 2 vCPUs
		{2, 3, 2},  // twice the share, rounded up
		{2, 2, 2},  // no more processes than cores: every P kept
		{2, 1, 2},  // one worker: all of them
		{8, 8, 8},  // the default pool (one per core): unchanged
		{8, 12, 2}, // twice the share, rounded up
		{8, 17, 1}, // never below one
		{1, 4, 1},
		{4, 0, 4}, // no workers yet: all of them
	} {
		runtime.GOMAXPROCS(c.cores)
		if got := MaxProcs(c.workers); got != c.want {
			t.Errorf("%d cores, %d workers: GOMAXPROCS %d, want %d", c.cores, c.workers, got, c.want)
		}
	}
}

func TestMaxProcsEnv(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // two cores, whatever the machine
	p := runtime.GOMAXPROCS(0)
	over := 2*p + 1
	if got := MaxProcsEnv([]string{"A=1", "GOMAXPROCS=3"}, over); got != "" {
		t.Errorf("with GOMAXPROCS set: %q, want none", got)
	}
	if got, want := MaxProcsEnv([]string{"A=1"}, over), "GOMAXPROCS=1"; got != want {
		t.Errorf("%d workers on %d cores: %q, want %q", over, p, got, want)
	}
	if got := MaxProcsEnv([]string{"A=1"}, p); got != "" {
		t.Errorf("%d workers on %d cores: %q, want none (the runtime's default)", p, p, got)
	}
	if got := MaxProcsEnv([]string{"A=1"}, 3); got != "" {
		t.Errorf("3 workers on 2 cores: %q, want none (twice the share is both cores)", got)
	}
}
