//go:build !linux

package proc

import "os/exec"

// forker starts children directly: only Linux ties a child's Pdeathsig to
// the thread that forked it.
type forker struct{}

func newForker() *forker                  { return &forker{} }
func (*forker) start(cmd *exec.Cmd) error { return cmd.Start() }
func (*forker) stop()                     {}
