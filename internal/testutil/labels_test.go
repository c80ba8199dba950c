package testutil

import (
	"context"
	"maps"
	"runtime/pprof"
	"testing"
)

func TestGoroutineLabels(t *testing.T) {
	if got := GoroutineLabels(); len(got) != 0 {
		t.Fatalf("unlabelled goroutine: labels %v", got)
	}
	want := map[string]string{"work": "a", "quoted": `x"y`}
	pprof.Do(context.Background(), pprof.Labels("work", "a", "quoted", `x"y`), func(context.Context) {
		if got := GoroutineLabels(); !maps.Equal(got, want) {
			t.Fatalf("labels %v, want %v", got, want)
		}
	})
}
