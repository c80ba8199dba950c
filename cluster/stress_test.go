package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/stresstest"
)

// TestStressEveryWorkEnds runs the shared stress mix (internal/stresstest)
// on a cluster executor of local workers with WithPrefetch, resized as it
// runs: once to the end, once cut short by a graceful Shutdown under load,
// and once through a NATS server restart (its own server, down 300ms):
// every future and Map ends, each work's observer events come in order,
// the executor counts nothing left, and Shutdown returns nil (or, under
// load, its ctx's error). It found a killed local worker restarted with
// back-off (TestLocalWorkerKilledByItsExecutorIsReplacedAtOnce), a
// Shutdown that reported a replacement still starting as killed
// (TestShutdownAsALocalWorkerIsReplacedReturnsNil), a kill lost in the
// outage that left the pool without workers for good
// (TestKillLostInAnOutageIsSentAgain), and successes without their
// WorkStarted (engine: TestSuccessOfAWorkWhoseStartWasLostReportsItsStart).
func TestStressEveryWorkEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		within  time.Duration // Config.ShutdownWithin
		restart bool          // restart the NATS server midway
	}{
		{"to the end", 0, false},
		{"Shutdown under load", 500 * time.Millisecond, false},
		{"NATS restart", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []aplex.Option{cluster.SpawnLocalWorkers(2), aplex.WithMaxWorksPerWorker(3), aplex.WithPrefetch(3),
				aplex.WithKillGrace(500 * time.Millisecond), aplex.WithWorkerOutput(newTestLog(t))}
			var srv *restartableServer
			if tc.restart {
				srv = newRestartableServer(t)
				opts = append(opts, cluster.WithURL(srv.url), aplex.WithHeartbeatTimeout(2*time.Second))
			}
			tr := &stresstest.Tracker{}
			// Not newExecutor: its clean-up's Shutdown returns what the one
			// under load returned, which may be its ctx's error.
			ex, err := cluster.NewExecutor(append(opts, aplex.WithObserver(tr))...)
			if err != nil {
				t.Fatal(err)
			}
			restarted := make(chan struct{})
			t.Cleanup(func() { <-restarted }) // before the server's own clean-up
			if srv != nil {
				go func() {
					defer close(restarted)
					// Midway: once the pool has run works (bounded, should
					// it never), the outage.
					for deadline := time.Now().Add(30 * time.Second); ex.Stats().Completed < 200 && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
					srv.stop()
					time.Sleep(300 * time.Millisecond) // the outage itself
					srv.start()
				}()
			} else {
				close(restarted)
			}
			t.Cleanup(func() { ex.Close() }) // should the test end early; before the server goes
			counts := stresstest.Run(t, ex, tr, stresstest.Config{
				Submitters: 3, Mappers: 2, For: 1500 * time.Millisecond, Settle: time.Minute, Seed: 1, ShutdownWithin: tc.within,
				Sizes: []int{1, 2, 3}, Retry: true, Stubborn: 300, StubbornFor: 2 * time.Second,
			})
			t.Logf("%v", counts)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ex.Shutdown(ctx); err != nil && tc.within == 0 {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}
