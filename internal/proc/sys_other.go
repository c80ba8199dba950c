//go:build !linux

package proc

import (
	"os"
)

// setPipeSize does nothing: F_SETPIPE_SZ is Linux-only.
func setPipeSize(*os.File) {}

// unread returns 0: how many bytes wait in a pipe is not asked here.
func unread(*os.File) int { return 0 }
