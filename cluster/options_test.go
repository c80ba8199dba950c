package cluster_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// kinds are the executor kinds, built with one worker each plus extra.
var kinds = []struct {
	name string
	new  func(t *testing.T, extra ...aplex.Option) (*aplex.Executor, error)
}{
	{"thread", func(_ *testing.T, extra ...aplex.Option) (*aplex.Executor, error) {
		return aplex.NewThreadExecutor(append([]aplex.Option{aplex.WithPoolSize(1)}, extra...)...)
	}},
	{"process", func(_ *testing.T, extra ...aplex.Option) (*aplex.Executor, error) {
		return aplex.NewProcessExecutor(append([]aplex.Option{aplex.WithPoolSize(1)}, extra...)...)
	}},
	{"cluster", func(_ *testing.T, extra ...aplex.Option) (*aplex.Executor, error) {
		return cluster.NewExecutor(append([]aplex.Option{cluster.SpawnLocalWorkers(1)}, extra...)...)
	}},
}

// TestOptionKinds: some options were silently ignored by kinds they do
// not apply to (WithLogger by thread executors), and the cluster package
// had its own WithWorkerOutput and WithWorkerEnv that the aplex ones did
// not replace. Every executor option is now either applied by a kind or
// refused with an error naming the option and the kinds it applies to.
func TestOptionKinds(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opt     aplex.Option
		name    string
		applies []string // kinds that accept it
		refusal string   // what the error of the other kinds says
	}{
		{aplex.WithPoolSize(1), "WithPoolSize", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithMaxWorksPerWorker(5), "WithMaxWorksPerWorker", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithQueueSize(5), "WithQueueSize", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithLoadBalancer(aplex.Average()), "WithLoadBalancer", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithKillGrace(time.Second), "WithKillGrace", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithLogger(slog.New(slog.DiscardHandler)), "WithLogger", []string{"thread", "process", "cluster"}, ""},
		{aplex.WithWorkerInit(func(ctx context.Context, _ aplex.WorkerInfo) (context.Context, error) { return ctx, nil }),
			"WithWorkerInit", []string{"thread"}, "applies to in-process (thread) executors only"},
		{aplex.WithWorkerOutput(io.Discard), "WithWorkerOutput", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithWorkerEnv("APLEX_TEST_UNUSED=1"), "WithWorkerEnv", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithStartTimeout(10 * time.Second), "WithStartTimeout", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithHeartbeatTimeout(3 * time.Second), "WithHeartbeatTimeout", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithWorkerCommand(self), "WithWorkerCommand", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithRecycleAfter(100), "WithRecycleAfter", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{aplex.WithWorkerMemoryLimit(1 << 30), "WithWorkerMemoryLimit", []string{"process", "cluster"}, "applies to process and cluster executors only"},
		{cluster.WithPool("default"), "WithPool", []string{"cluster"}, "applies to cluster executors only"},
		{cluster.SpawnLocalWorkers(1), "SpawnLocalWorkers", []string{"cluster"}, "applies to cluster executors only"},
		{cluster.WithNATSOptions(), "WithNATSOptions", []string{"cluster"}, "applies to cluster executors only"},
		{cluster.WithPoolKey(testPoolKey), "WithPoolKey", []string{"cluster"}, "applies to cluster executors only"},
	} {
		for _, k := range kinds {
			t.Run(tc.name+"/"+k.name, func(t *testing.T) {
				applies := slices.Contains(tc.applies, k.name)
				ex, err := k.new(t, tc.opt)
				if err == nil {
					defer func() {
						if err := ex.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					}()
				}
				switch {
				case applies && err != nil:
					t.Fatalf("a %s executor refused %s: %v", k.name, tc.name, err)
				case !applies && err == nil:
					t.Fatalf("a %s executor accepted %s", k.name, tc.name)
				case !applies && (!strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.refusal)):
					t.Fatalf("a %s executor refused %s with %q: want the option and %q named", k.name, tc.name, err, tc.refusal)
				}
			})
		}
	}
}

// TestCallOptionKinds: Retry was silently ignored by thread executors
// (a goroutine worker never dies, so there is nothing to send again).
// Submit and Map now refuse it there, naming it and the kinds it applies
// to; every other call option applies to every kind.
func TestCallOptionKinds(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ex, err := k.new(t, aplex.WithWorkerOutput(newTestLog(t)))
			if k.name == "thread" {
				ex, err = k.new(t)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ex.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			for _, tc := range []struct {
				name    string
				opt     aplex.CallOption
				applies bool
			}{
				{"Retry", aplex.Retry(1), k.name != "thread"},
				{"Retry", aplex.Retry(0), k.name != "thread"},
				{"Deadline", aplex.Deadline(time.Minute), true},
				{"Meta", aplex.Meta("key"), true},
			} {
				const refusal = "Retry applies to process and cluster executors only, not to a thread executor"
				f, err := aplex.Submit(context.Background(), ex, square, 3, tc.opt)
				if tc.applies {
					if err != nil {
						t.Fatalf("Submit with %s: %v", tc.name, err)
					}
					if v, err := get(t, f); v != 9 || err != nil {
						t.Fatalf("Submit with %s: %v, %v", tc.name, v, err)
					}
				} else if err == nil || !strings.Contains(err.Error(), refusal) {
					t.Fatalf("Submit with %s on a %s executor: %v, want %q", tc.name, k.name, err, refusal)
				}
				var mapErr error
				n := 0
				for v, err := range aplex.Map(context.Background(), ex, square, slices.Values([]int{1, 2}), tc.opt) {
					if err != nil {
						mapErr = err
						break
					}
					n += v
				}
				if tc.applies && (mapErr != nil || n != 5) {
					t.Fatalf("Map with %s: sum %d, %v", tc.name, n, mapErr)
				}
				if !tc.applies && (mapErr == nil || !strings.Contains(mapErr.Error(), refusal)) {
					t.Fatalf("Map with %s on a %s executor: %v, want %q", tc.name, k.name, mapErr, refusal)
				}
			}
		})
	}
}

// TestWorkerIDOfANilCtxIsEmpty: WorkerID(nil) panicked with a nil
// dereference in the caller's goroutine; a nil ctx is outside any worker.
func TestWorkerIDOfANilCtxIsEmpty(t *testing.T) {
	var nilCtx context.Context
	if id := cluster.WorkerID(nilCtx); id != "" {
		t.Errorf("WorkerID(nil) = %q, want \"\"", id)
	}
	if id := cluster.WorkerID(context.Background()); id != "" {
		t.Errorf("WorkerID(Background) = %q, want \"\"", id)
	}
}
