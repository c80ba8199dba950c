//go:build !linux

package proc

import (
	"os"
	"os/exec"
)

// setPipeSize does nothing: F_SETPIPE_SZ is Linux-only.
func setPipeSize(*os.File) {}

// setProcAttr does nothing: without Pdeathsig a child notices its parent's
// death by EOF on fd 3.
func setProcAttr(*exec.Cmd) {}
