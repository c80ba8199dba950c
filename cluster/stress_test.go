package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/stresstest"
)

// TestStressEveryWorkEnds runs the shared stress mix (internal/stresstest)
// on a cluster executor of local workers with WithPrefetch, resized as it
// runs, once to the end and once cut short by a graceful Shutdown under
// load: every future ends, each work's observer events come in order, the
// executor counts nothing left, and Shutdown returns nil (or, under load,
// its ctx's error). It found a killed local worker restarted with
// back-off (TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce) and a
// Shutdown that reported a replacement still starting as killed
// (TestShutdownAsALocalWorkerIsReplacedReturnsNil).
func TestStressEveryWorkEnds(t *testing.T) {
	for _, within := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run(fmt.Sprintf("ShutdownWithin=%v", within), func(t *testing.T) {
			tr := &stresstest.Tracker{}
			// Not newExecutor: its clean-up's Shutdown returns what the one
			// under load returned, which may be its ctx's error.
			ex, err := cluster.NewExecutor(cluster.SpawnLocalWorkers(2), aplex.WithMaxWorksPerWorker(3), aplex.WithPrefetch(3),
				aplex.WithKillGrace(500*time.Millisecond), aplex.WithObserver(tr), aplex.WithWorkerOutput(newTestLog(t)))
			if err != nil {
				t.Fatal(err)
			}
			counts := stresstest.Run(t, ex, tr, stresstest.Config{
				Submitters: 3, Mappers: 2, For: time.Second, Settle: time.Minute, Seed: 1, ShutdownWithin: within,
				Sizes: []int{1, 2, 3}, Retry: true, Stubborn: 300, StubbornFor: 2 * time.Second,
			})
			t.Logf("%v", counts)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ex.Shutdown(ctx); err != nil && within == 0 {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
