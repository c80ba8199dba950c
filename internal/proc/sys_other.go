//go:build !linux

package proc

import (
	"os"
)

// setPipeSize does nothing: F_SETPIPE_SZ is Linux-only.
func setPipeSize(*os.File) {}
