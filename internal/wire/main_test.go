package wire

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind; the pipe tests
// start writers that must all finish.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
