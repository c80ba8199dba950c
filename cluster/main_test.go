package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// The test binary is its own cluster worker: local workers and the
// workers the tests start re-execute it with APLEX_WORKER_ROLE=cluster,
// and aplex.Main serves instead of running the tests.
func TestMain(m *testing.M) {
	if url := os.Getenv(echoEnv); url != "" {
		// A benchmark's worker also answers raw NATS requests, so the raw
		// round trip is measured between the very same two processes.
		go serveEcho(url)
	}
	aplex.Main()
	// Under -race a worker sleeps a second at exit (GORACE atexit_sleep_ms
	// defaults to 1000), which would make every clean stop slow.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	goleak.VerifyTestMain(m)
}

// errSentinel is registered, so errors.Is survives the trip back.
var errSentinel = aplex.RegisterError(errors.New("cluster test sentinel"))

// errObserved is what cluster.block returns once its ctx is cancelled.
var errObserved = aplex.RegisterError(errors.New("cluster test: work saw its ctx cancelled"))

// cancelled records, in a worker process, the keys of block works that saw
// their ctx end; cluster.observed reads it back.
var cancelled sync.Map

// Test works, registered at package level so worker processes (this
// binary re-executed) register them too.
var (
	square = aplex.Register("cluster.square", func(_ context.Context, x int) (int, error) { return x * x, nil })
	noop   = aplex.Register("cluster.noop", func(_ context.Context, x int) (int, error) { return x, nil })
	fail   = aplex.Register("cluster.fail", func(_ context.Context, msg string) (int, error) {
		return 0, fmt.Errorf("failing on %s: %w", msg, errSentinel)
	})
	boom = aplex.Register("cluster.panic", func(_ context.Context, msg string) (int, error) { panic(msg) })
	// whoami sleeps d (or until cancelled) and names the worker it ran on.
	whoami = aplex.Register("cluster.whoami", func(ctx context.Context, d time.Duration) (string, error) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return fmt.Sprintf("%s/%d", cluster.WorkerID(ctx), os.Getpid()), nil
	})
	block = aplex.Register("cluster.block", func(ctx context.Context, key string) (int, error) {
		<-ctx.Done()
		cancelled.Store(key, true)
		return 0, errObserved
	})
	observed = aplex.Register("cluster.observed", func(_ context.Context, key string) (bool, error) {
		_, ok := cancelled.Load(key)
		return ok, nil
	})
	bigResult = aplex.Register("cluster.big", func(_ context.Context, n int) ([]byte, error) { return make([]byte, n), nil })
	huge      = aplex.Register("cluster.huge-arg", func(_ context.Context, b []byte) (int, error) { return len(b), nil })
	// parentOnly is registered only in the test process, not in workers:
	// workers must answer it with ErrNotRegistered.
	parentOnly = registerInParent("cluster.parent-only", func(_ context.Context, x int) (int, error) { return x, nil })
)

func registerInParent[A, R any](name string, fn func(context.Context, A) (R, error)) *aplex.Work[A, R] {
	if os.Getenv("APLEX_WORKER_ROLE") != "" {
		return nil
	}
	return aplex.Register(name, fn)
}

// worker returns the worker id part of whoami's answer.
func worker(who string) string {
	id, _, _ := strings.Cut(who, "/")
	return id
}
