package aplex_test

import (
	"testing"

	"github.com/aplex-go/aplex"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// In a worker process started by a process executor, Main serves works
	// and never returns; in the test process it returns at once.
	aplex.Main()
	goleak.VerifyTestMain(m)
}
