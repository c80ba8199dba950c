package proc

import (
	"os"
	"syscall"
	"unsafe"
)

// fSetPipeSz is F_SETPIPE_SZ from <fcntl.h> (not in package syscall).
const fSetPipeSz = 1031

// pipeSize is the kernel buffer asked for each pipe: the default cap
// (/proc/sys/fs/pipe-max-size), which lifts bulk throughput by a third.
const pipeSize = 1 << 20

// setPipeSize enlarges f's pipe buffer. Failure is harmless (the default 64
// KiB works), so it is ignored. It goes through SyscallConn because
// File.Fd would switch the descriptor to blocking mode.
func setPipeSize(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}

// unread returns how many bytes wait in f's pipe (FIONREAD), 0 if unknown.
func unread(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	var n int32
	rc.Control(func(fd uintptr) {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
			n = 0
		}
	})
	return int(n)
}
