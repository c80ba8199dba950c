package aplex_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"go.uber.org/goleak"
)

func TestShutdownDrains(t *testing.T) {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2), aplex.WithMaxWorksPerWorker(2))
	if err != nil {
		t.Fatal(err)
	}
	var fs []*aplex.Future[int]
	for range 10 { // 4 run, 6 queue
		fs = append(fs, mustSubmit(t, ex, sleepMs, 10))
	}
	if err := ex.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, f := range fs {
		select {
		case <-f.Done():
			if v, err := f.Get(ctxT(t)); v != 10 || err != nil {
				t.Fatalf("drained work: %d, %v", v, err)
			}
		default:
			t.Fatal("Shutdown returned with a work not finished")
		}
	}
	if _, err := aplex.Submit(ctxT(t), ex, sleepMs, 1); !errors.Is(err, aplex.ErrClosed) {
		t.Fatalf("Submit after Shutdown: %v", err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestShutdownCancelsWhenCtxEnds(t *testing.T) {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithMaxWorksPerWorker(1))
	if err != nil {
		t.Fatal(err)
	}
	running := mustSubmit(t, ex, sleepMs, 60_000)
	queued := mustSubmit(t, ex, sleepMs, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ex.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the ctx's error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Shutdown took too long")
	}
	for _, f := range []*aplex.Future[int]{running, queued} {
		_, err := f.Get(ctxT(t))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, aplex.ErrClosed) || !f.Cancelled() {
			t.Fatalf("future after forced shutdown: %v", err)
		}
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestShutdownIsIdempotentAndConcurrent(t *testing.T) {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(2))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		mustSubmit(t, ex, sleepMs, 20)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				err = ex.Close()
			} else {
				err = ex.Shutdown(context.Background())
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if err := ex.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestShutdownReportsWorksThatIgnoreCtx(t *testing.T) {
	ex, err := aplex.NewThreadExecutor(aplex.WithPoolSize(1), aplex.WithKillGrace(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	release, started := make(chan struct{}), make(chan struct{})
	stubborn := aplex.Fn(func(context.Context, int) (int, error) { close(started); <-release; return 0, nil })
	f := mustSubmit(t, ex, stubborn, 0)
	<-started
	err = ex.Close()
	close(release)
	if err == nil || !errors.Is(f.Err(), context.Canceled) {
		t.Fatalf("Close: %v; future: %v", err, f.Err())
	}
	waitFor(t, "stubborn work to return", func() bool { return ex.Stats().Running == 0 })
}

// TestShutdownInOnDoneDoesNotHang: OnDone's doc forbids shutting the
// executor down from a completion callback, but a program that does so
// must not hang. Here the future fails as its process worker is lost, so
// the callback runs in the reader's report of the loss, and the process
// executor's Close waited for ever for that reader. (A work that returns,
// on every kind: TestParityOfShutdownInOnDoneOnEveryKind, in the cluster
// package.)
func TestShutdownInOnDoneDoesNotHang(t *testing.T) {
	ex, err := aplex.NewProcessExecutor(aplex.WithPoolSize(1), aplex.WithKillGrace(100*time.Millisecond), aplex.WithWorkerOutput(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	mustSubmit(t, ex, pCrash, "exit").OnDone(func(int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		returned <- ex.Shutdown(ctx)
	})
	select {
	case err := <-returned:
		if err == nil || !strings.Contains(err.Error(), "completion callback") {
			t.Errorf("Shutdown in OnDone: %v; want an error naming the completion callback", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown called in OnDone hangs")
	}
}
