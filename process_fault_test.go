package aplex_test

// Regression tests for the process-worker defects found by fault injection
// (issue 8): cyclic values, a worker that closes its request pipe, a hard
// RecycleAfter bound, frozen workers, sentinels carried by panics, and
// shutdown of -race children.

import (
	"context"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
)

// TestShutdownUnderRaceReportsNoErrorWhenAllFinished: a -race worker binary
// sleeps 1s at exit by default; a graceful Shutdown whose works all
// finished must not report the kill grace running out.
func TestShutdownUnderRaceReportsNoErrorWhenAllFinished(t *testing.T) {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(2), aplex.WithKillGrace(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*aplex.Future[int]
	for i := range 6 {
		fs = append(fs, mustSubmit(t, ex, pDouble, i))
	}
	for i, f := range fs {
		if v := mustGet(t, f); v != 2*i {
			t.Fatalf("double(%d) = %d", i, v)
		}
	}
	start := time.Now()
	if err := ex.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after every work finished: %v (after %v)", err, time.Since(start))
	}
}
