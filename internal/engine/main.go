package engine

import (
	"context"
	"fmt"
	"os"

	"github.com/aplex-go/aplex/internal/proc"
)

// Main turns a re-executed binary into a worker. Call it first thing in
// main (and in TestMain, before m.Run): in the parent it returns at once; in
// a worker process started by NewProcessExecutor (or a cluster worker
// started with the cluster package's environment) it serves this binary's
// registered works and never returns.
func Main() {
	role := os.Getenv(proc.EnvRole)
	if role == "" {
		return
	}
	if proc.IsChild() {
		slot, _ := proc.ChildSlot()
		cfg, err := hostConfig(context.Background(), slot, "", nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "aplex worker: %v\n", err)
			os.Exit(2)
		}
		if err := proc.ServeChild(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "aplex worker: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	if serve, ok := roles.Load(role); ok {
		os.Exit(serve.(func() int)())
	}
	fmt.Fprintf(os.Stderr, "aplex worker: unknown role %s=%q (is the package that serves it, e.g. aplex/cluster, linked into this binary?)\n", proc.EnvRole, role)
	os.Exit(2)
}
