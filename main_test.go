package aplex_test

import (
	"os"
	"testing"

	"github.com/aplex-go/aplex"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// In a worker process started by a process executor, Main serves works
	// and never returns; in the test process it returns at once.
	aplex.Main()
	// Race-instrumented worker processes otherwise sleep 1s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	goleak.VerifyTestMain(m)
}
