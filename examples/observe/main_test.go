package main

import (
	"testing"
	"time"

	"github.com/aplex-go/aplex"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	aplex.Main() // the worker processes of the example's executors
	goleak.VerifyTestMain(m)
}

// TestRunEndsByItself runs the example, small: both executors start, the
// works run, /metrics answers, and run returns without being stopped.
func TestRunEndsByItself(t *testing.T) {
	done := make(chan error, 1)
	go func() { done <- run(40, 0) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the example did not end by itself")
	}
}
