package engine

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func TestGCDuringShutdownDoesNotCloseTheExecutor(t *testing.T) {
	ex, err := NewThreadExecutor(WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	c := ex.c
	started, release := make(chan struct{}), make(chan struct{})
	w := Fn(func(ctx context.Context, _ int) (int, error) {
		close(started)
		select {
		case <-release:
			return 42, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := Submit(ctx, ex, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	shut := make(chan error, 1)
	go func() { shut <- ex.Shutdown(context.Background()) }() // the last use of ex
	for !c.stopping.Load() {
		runtime.Gosched()
	}
	for range 3 {
		runtime.GC()
	}
	close(release)
	if v, err := f.Get(ctx); v != 42 || err != nil {
		t.Fatalf("work during a graceful Shutdown and a GC: %v, %v", v, err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Shutdown did not return")
	}
}
