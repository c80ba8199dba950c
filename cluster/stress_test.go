package cluster_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/stresstest"
)

// TestStressEveryWorkEnds runs the shared stress mix (internal/stresstest)
// on a cluster executor of local workers with WithPrefetch, resized as it
// runs: once to the end, once cut short by a graceful Shutdown under load,
// and once through a NATS server restart (its own server, down 300ms); and
// once with its local workers sized by WithAutoscale(0, 3) instead:
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
		name      string
		within    time.Duration // Config.ShutdownWithin
		restart   bool          // restart the NATS server midway
		autoscale bool          // WithAutoscale(0, 3) sizes the local workers, rather than Resize
	}{
		{"to the end", 0, false, false},
		{"Shutdown under load", 500 * time.Millisecond, false, false},
		{"NATS restart", 0, true, false},
		{"autoscaled from no local worker", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []aplex.Option{aplex.WithMaxWorksPerWorker(3), aplex.WithPrefetch(3),
				aplex.WithKillGrace(500 * time.Millisecond), aplex.WithWorkerOutput(newTestLog(t))}
			sizes := []int{1, 2, 3}
			if tc.autoscale {
				opts, sizes = append(opts, aplex.WithAutoscale(0, 3, 60*time.Millisecond)), nil
			} else {
				opts = append(opts, cluster.SpawnLocalWorkers(2))
			}
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
				Sizes: sizes, Retry: true, Stubborn: 300, StubbornFor: 2 * time.Second,
			})
			s := ex.Stats()
			t.Logf("%v; scale-ups %d, scale-downs %d", counts, s.ScaleUps, s.ScaleDowns)
			if tc.autoscale && s.ScaleUps == 0 {
				t.Errorf("the autoscaler started no local worker under the mix")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ex.Shutdown(ctx); err != nil && tc.within == 0 {
				t.Errorf("Shutdown: %v", err)
			}
		})
	}
}

// TestStressSharedWorkersThroughAnOutage runs the stress mix on two
// executors at once, sharing two remote workers that no supervisor
// restarts, through a NATS server restart (down 300ms, shorter than the
// heartbeat timeout), with no work ignoring its deadline: the outage must
// cost nothing but delay, so no future may fail with a *WorkerError and
// both workers must still be there. Before, a kill timer that fired as a
// worker was heard again but had not yet resynchronised (its answers lost
// in the outage come back only with the resend) killed a healthy worker;
// with both gone the executors' works waited for good
// (TestWorkerHeardAgainIsReachableOnlyOnceResynchronised).
func TestStressSharedWorkersThroughAnOutage(t *testing.T) {
	srv := newRestartableServer(t)
	workers := []*proc{spawnWorker(t, srv.url, "shared", "w0"), spawnWorker(t, srv.url, "shared", "w1")}
	exs := make([]*aplex.Executor, 2)
	trs := make([]*stresstest.Tracker, 2)
	for i := range exs {
		trs[i] = &stresstest.Tracker{}
		// The heartbeat timeout outlasts the outage as the executors see
		// it: the NATS client retries a lost server after 2s.
		exs[i] = newExecutor(t, cluster.WithURL(srv.url), cluster.WithPool("shared"), aplex.WithPoolSize(2),
			aplex.WithPrefetch(3), aplex.WithKillGrace(500*time.Millisecond), aplex.WithHeartbeatTimeout(4*time.Second),
			aplex.WithObserver(trs[i]))
	}
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		// Once the executors have run works (bounded, should they never).
		for deadline := time.Now().Add(30 * time.Second); exs[0].Stats().Completed < 200 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		srv.stop()
		time.Sleep(300 * time.Millisecond) // the outage itself
		srv.start()
	}()
	t.Cleanup(func() { <-restarted }) // before the server's own clean-up
	var wg sync.WaitGroup
	for i, ex := range exs {
		wg.Go(func() {
			counts := stresstest.Run(t, ex, trs[i], stresstest.Config{
				Submitters: 3, Mappers: 2, For: 1500 * time.Millisecond, Settle: time.Minute, Seed: uint64(i + 1),
			})
			t.Logf("executor %d: %v", i, counts)
			for outcome, n := range counts {
				if strings.Contains(outcome, "worker error") {
					t.Errorf("executor %d: %d futures or Maps ended %q: an outage shorter than the heartbeat timeout must cost only delay", i, n, outcome)
				}
			}
		})
	}
	wg.Wait()
	for i, w := range workers {
		select {
		case <-w.done:
			t.Errorf("worker w%d exited: killed by an outage", i)
		default:
		}
	}
}
