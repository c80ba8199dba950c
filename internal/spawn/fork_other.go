//go:build !linux

package spawn

import "os/exec"

// Forker starts children directly: only Linux ties a child's Pdeathsig to
// the thread that forked it.
type Forker struct{}

// NewForker returns a Forker.
func NewForker() *Forker { return &Forker{} }

// Start runs cmd.Start, with ChildEnv's additions to its environment.
func (*Forker) Start(cmd *exec.Cmd) error {
	prepare(cmd)
	return cmd.Start()
}

// Stop does nothing.
func (*Forker) Stop() {}
