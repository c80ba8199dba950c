package main

import (
	"bytes"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestFacadeIsGenerated fails when the aplex façade (facade.go in the
// module's root) is not what the engine generates: run go generate there.
func TestFacadeIsGenerated(t *testing.T) {
	want, err := generate("../engine")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../facade.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("facade.go is stale: run go generate in the module's root")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
