package cluster_test

// The parity test: one table of behaviours, run on goroutine, process and
// cluster executors, must give the same outcome on every kind. It lives in
// the cluster package because only here can one test binary build all
// three (this binary is also the process and cluster worker).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/testutil"
)

// parityValue is a value that must round-trip unchanged.
type parityValue struct {
	N     int
	S     string
	F     []float64
	M     map[string]int
	T     time.Time
	Inner *parityValue
	Path  string         // bytes that are not UTF-8, as a file name may hold
	Doc   map[string]any // a JSON-like payload, its nested maps included
}

var (
	parityEcho = aplex.Register("parity.echo", func(_ context.Context, v parityValue) (parityValue, error) { return v, nil })
	parityErr  = aplex.Register("parity.err", func(_ context.Context, kind string) (int, error) {
		switch kind {
		case "sentinel":
			return 0, fmt.Errorf("wrapped: %w", errSentinel)
		case "eof":
			return 0, fmt.Errorf("reading: %w", io.EOF)
		case "notexist":
			_, err := os.Open("/nonexistent/aplex/parity")
			return 0, err
		case "typed":
			return 0, fmt.Errorf("charging: %w", &clusterQuotaError{User: "bob", Limit: 7})
		case "panic":
			panic("parity boom")
		case "goexit":
			runtime.Goexit()
		}
		return 0, nil
	})
	// parityWait writes marker (if any), then waits for its ctx to end and
	// reports how it ended.
	parityWait = aplex.Register("parity.wait", func(ctx context.Context, marker string) (int, error) {
		if marker != "" {
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				return 0, err
			}
		}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	// paritySleep returns x after ms milliseconds, whatever its ctx says.
	paritySleep = aplex.Register("parity.sleep", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})
	// parityInit reports that the registered worker init ran (startup_test.go).
	parityInit = aplex.Register("parity.init", func(ctx context.Context, _ int) (bool, error) {
		_, ok := ctx.Value(infoKey{}).(aplex.WorkerInfo)
		return ok, nil
	})
)

// parityKinds builds one executor of each kind, pool 1 and capacity 1, so
// that queueing is observable, with a kill grace of two seconds; extra
// options come after those.
func parityKinds(t *testing.T, extra ...aplex.Option) map[string]func(t *testing.T) *aplex.Executor {
	common := append([]aplex.Option{aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1), aplex.WithKillGrace(2 * time.Second)}, extra...)
	return map[string]func(t *testing.T) *aplex.Executor{
		"thread": func(t *testing.T) *aplex.Executor {
			ex, err := aplex.NewThreadExecutor(common...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ex.Close() })
			return ex
		},
		"process": func(t *testing.T) *aplex.Executor {
			ex, err := aplex.NewProcessExecutor(append(common, aplex.WithWorkerOutput(newTestLog(t)))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ex.Close() })
			return ex
		},
		"cluster": func(t *testing.T) *aplex.Executor {
			ex, err := cluster.NewExecutor(append(common, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ex.Close() })
			return ex
		},
	}
}

// parityCase is one behaviour: it returns a short description of what it
// saw, which must be want on every kind.
type parityCase struct {
	name string
	want string
	run  func(t *testing.T, ex *aplex.Executor) string
}

// outcome describes err by the checks a user would make.
func outcome(err error, checks ...any) string {
	if err == nil {
		return "ok"
	}
	var parts []string
	for i := 0; i+1 < len(checks); i += 2 {
		name := checks[i].(string)
		switch target := checks[i+1].(type) {
		case error:
			if errors.Is(err, target) {
				parts = append(parts, name)
			}
		case func(error) bool:
			if target(err) {
				parts = append(parts, name)
			}
		}
	}
	if len(parts) == 0 {
		return "unexpected: " + err.Error()
	}
	return strings.Join(parts, "+")
}

func parityCases() []parityCase {
	ctx := context.Background()
	return []parityCase{
		{"value round trip", "ok", func(t *testing.T, ex *aplex.Executor) string {
			in := parityValue{N: 42, S: "héllo", F: []float64{1.5, -2}, M: map[string]int{"a": 1},
				T: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Inner: &parityValue{N: 7},
				Path: "caf\xe9.txt", Doc: map[string]any{"repo": map[string]any{"name": "aplex"}}}
			out, err := get(t, submit(t, ex, parityEcho, in))
			if err != nil {
				return outcome(err)
			}
			if out.N != in.N || out.S != in.S || len(out.F) != 2 || out.M["a"] != 1 || !out.T.Equal(in.T) || out.Inner == nil || out.Inner.N != 7 || out.Path != in.Path {
				return fmt.Sprintf("changed: %+v", out)
			}
			if repo, ok := out.Doc["repo"].(map[string]any); !ok || repo["name"] != "aplex" {
				return fmt.Sprintf("changed Doc: %#v", out.Doc)
			}
			return "ok"
		}},
		{"registered sentinel", "is", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "sentinel"))
			return outcome(err, "is", errSentinel)
		}},
		{"standard sentinels", "eof", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "eof"))
			return outcome(err, "eof", io.EOF)
		}},
		{"os.ErrNotExist", "notexist", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "notexist"))
			return outcome(err, "notexist", os.ErrNotExist)
		}},
		{"registered error type", "as bob/7", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "typed"))
			var qe *clusterQuotaError
			if errors.As(err, &qe) {
				return fmt.Sprintf("as %s/%d", qe.User, qe.Limit)
			}
			return outcome(err)
		}},
		{"panic", "panic", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "panic"))
			return outcome(err, "panic", func(err error) bool {
				var pe *aplex.PanicError
				return errors.As(err, &pe) && fmt.Sprint(pe.Value) == "parity boom"
			})
		}},
		{"Goexit", "goexit", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityErr, "goexit"))
			return outcome(err, "goexit", aplex.ErrGoexit)
		}},
		{"per-work Deadline", "deadline", func(t *testing.T, ex *aplex.Executor) string {
			_, err := get(t, submit(t, ex, parityWait, "", aplex.Deadline(50*time.Millisecond)))
			return outcome(err, "deadline", context.DeadlineExceeded)
		}},
		{"cancel while running", "true canceled", func(t *testing.T, ex *aplex.Executor) string {
			marker := filepath.Join(t.TempDir(), "started")
			f := submit(t, ex, parityWait, marker)
			waitFor(t, 20*time.Second, "the work to start", func() bool { _, err := os.Stat(marker); return err == nil })
			ok := f.Cancel()
			_, err := get(t, f)
			return fmt.Sprint(ok, " ", outcome(err, "canceled", context.Canceled))
		}},
		{"cancel while queued", "true canceled never-started", func(t *testing.T, ex *aplex.Executor) string {
			dir := t.TempDir()
			running := submit(t, ex, parityWait, filepath.Join(dir, "running"))
			defer running.Cancel()
			waitFor(t, 20*time.Second, "the first work to start", func() bool {
				_, err := os.Stat(filepath.Join(dir, "running"))
				return err == nil
			})
			queued := submit(t, ex, parityWait, filepath.Join(dir, "queued"))
			ok := queued.Cancel()
			_, err := get(t, queued)
			running.Cancel()
			get(t, running)
			started := "never-started"
			if _, err := os.Stat(filepath.Join(dir, "queued")); err == nil {
				started = "started"
			}
			return fmt.Sprint(ok, " ", outcome(err, "canceled", context.Canceled), " ", started)
		}},
		{"worker init", "ok true", func(t *testing.T, ex *aplex.Executor) string {
			ok, err := get(t, submit(t, ex, parityInit, 0))
			return fmt.Sprint(outcome(err), " ", ok)
		}},
		{"caller's deadline and values in the work", "deadline+req-parity", func(t *testing.T, ex *aplex.Executor) string {
			useRequestIDs(t)
			want := time.Now().Add(time.Minute)
			cctx, cancel := context.WithDeadline(context.WithValue(ctx, testutil.RequestIDKey{}, "req-parity"), want)
			defer cancel()
			f, err := aplex.Submit(cctx, ex, ctxSeenWork, 0)
			if err != nil {
				return outcome(err)
			}
			seen, err := get(t, f)
			if err != nil {
				return outcome(err)
			}
			got := "no-deadline"
			// The deadline travels as time left, so it may shift by the trip.
			if d := time.Duration(seen.Deadline - want.UnixNano()); seen.HasDeadline && d <= time.Second && d >= -5*time.Second {
				got = "deadline"
			}
			return got + "+" + seen.RequestID
		}},
		{"value returned past the caller's deadline", "deadline", func(t *testing.T, ex *aplex.Executor) string {
			marker := filepath.Join(t.TempDir(), "late")
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			f, err := aplex.Submit(cctx, ex, pastDeadline, marker)
			if err != nil {
				return outcome(err)
			}
			<-cctx.Done()
			if err := os.WriteFile(marker, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = get(t, f)
			return outcome(err, "deadline", context.DeadlineExceeded)
		}},
		{"caller ctx cancels the work", "canceled", func(t *testing.T, ex *aplex.Executor) string {
			marker := filepath.Join(t.TempDir(), "started")
			cctx, cancel := context.WithCancel(ctx)
			f, err := aplex.Submit(cctx, ex, parityWait, marker)
			if err != nil {
				cancel()
				return outcome(err)
			}
			waitFor(t, 20*time.Second, "the work to start", func() bool { _, err := os.Stat(marker); return err == nil })
			cancel()
			_, err = get(t, f)
			return outcome(err, "canceled", context.Canceled)
		}},
	}
}

// TestParityOnEveryKind runs the table on the three kinds of executor.
func TestParityOnEveryKind(t *testing.T) {
	if errInit != nil || regClusterQuota != nil {
		t.Fatal(errInit, regClusterQuota)
	}
	kinds := parityKinds(t)
	for _, kind := range []string{"thread", "process", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			ex := kinds[kind](t)
			for _, tc := range parityCases() {
				if got := tc.run(t, ex); got != tc.want {
					t.Errorf("%s on a %s executor: %s, want %s", tc.name, kind, got, tc.want)
				}
			}
		})
	}
}

// TestParityOfShutdownOnEveryKind: a graceful Shutdown drains queued and
// running works, and Close cancels them, the same on every kind.
func TestParityOfShutdownOnEveryKind(t *testing.T) {
	kinds := parityKinds(t)
	for _, kind := range []string{"thread", "process", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			ex := kinds[kind](t)
			var fs []*aplex.Future[int]
			for range 3 {
				fs = append(fs, submit(t, ex, paritySleep, 20))
			}
			if err := ex.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			for i, f := range fs {
				if v, err := get(t, f); v != 20 || err != nil {
					t.Errorf("drained work %d: %v, %v", i, v, err)
				}
			}
			if _, err := aplex.Submit(context.Background(), ex, paritySleep, 1); !errors.Is(err, aplex.ErrClosed) {
				t.Errorf("Submit after Shutdown: %v", err)
			}

			ex = kinds[kind](t)
			marker := filepath.Join(t.TempDir(), "started")
			running := submit(t, ex, parityWait, marker)
			queued := submit(t, ex, paritySleep, 1)
			waitFor(t, 20*time.Second, "the work to start", func() bool { _, err := os.Stat(marker); return err == nil })
			if err := ex.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			for name, f := range map[string]*aplex.Future[int]{"running": running, "queued": queued} {
				_, err := get(t, f)
				if !errors.Is(err, aplex.ErrClosed) || !errors.Is(err, context.Canceled) {
					t.Errorf("%s work after Close: %v", name, err)
				}
			}
		})
	}
}

// TestParityOfShutdownInOnDoneOnEveryKind: OnDone's doc forbids shutting
// the executor down from a completion callback, but a program that does so
// must not hang, and every kind says the same: Shutdown returns an error
// naming the callback it left running. The process executor's Close
// waited for ever for the reader goroutine running the callback, the
// cluster's for the NATS handler, whatever Shutdown's ctx; the goroutine
// executor blamed works that ignore their ctx. (A work failed by its
// worker's loss: TestShutdownInOnDoneDoesNotHang in the root package and
// TestShutdownInOnDoneOfALostWorkDoesNotHang here.)
func TestParityOfShutdownInOnDoneOnEveryKind(t *testing.T) {
	kinds := parityKinds(t, aplex.WithKillGrace(100*time.Millisecond))
	for _, kind := range []string{"thread", "process", "cluster"} {
		t.Run(kind, func(t *testing.T) {
			ex := kinds[kind](t)
			wait := shutDownOnDone(t, ex, submit(t, ex, paritySleep, 1))
			if msg := wait(); strings.Contains(msg, "ignore their ctx") {
				t.Errorf("Shutdown in OnDone on a %s executor blames works that ignore their ctx: %s", kind, msg)
			}
		})
	}
}
