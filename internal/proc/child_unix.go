//go:build unix

package proc

import (
	"fmt"
	"os"
	"syscall"
)

// childFile wraps an inherited pipe end for the netpoller: non-blocking, so
// that closing it unblocks a pending read, and close-on-exec, so that a
// program a work starts does not inherit it and keep the parent's reader
// from seeing EOF when this worker dies.
func childFile(fd int, name string) (*os.File, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("aplex: worker fd %d is not usable (was this process started by an aplex executor?): %w", fd, err)
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}
