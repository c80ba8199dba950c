package aplex_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyTheClusterPackageImportsNATS: a program that uses goroutine or
// process executors links no NATS code (a regression: the one link's NATS
// connection once sat in internal/link, which process workers import).
func TestOnlyTheClusterPackageImportsNATS(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/aplex-go/aplex").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "nats-io") {
			t.Errorf("package aplex depends on %s", pkg)
		}
	}
}
