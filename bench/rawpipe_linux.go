package bench

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawPipe reads and writes f, a pipe end in non-blocking mode, with raw
// system calls (no runtime bookkeeping around them), waiting on the
// netpoller while the pipe is empty or full.
func rawPipe(f *os.File) io.ReadWriter {
	rc, err := f.SyscallConn()
	if err != nil {
		panic(err) // an *os.File from os.Pipe or os.NewFile always has one
	}
	return &rawFile{rc: rc}
}

type rawFile struct{ rc syscall.RawConn }

func (r *rawFile) Read(p []byte) (n int, err error) {
	if len(p) == 0 {
		return 0, nil
	}
	var errno syscall.Errno
	if err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = rawCall(syscall.SYS_READ, fd, p)
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawFile) Write(p []byte) (n int, err error) {
	var errno syscall.Errno
	if err := r.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			var k int
			k, errno = rawCall(syscall.SYS_WRITE, fd, p[n:])
			switch errno {
			case 0:
				n += k
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				return true
			}
		}
		return true
	}); err != nil {
		return n, err
	}
	if errno != 0 && errno != syscall.EAGAIN {
		return n, errno
	}
	return n, nil
}

func rawCall(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// serveRawPipeEcho is the raw floor's child: servePipeEcho over fds 3 and
// 4 made non-blocking, with raw system calls.
func serveRawPipeEcho() error {
	for _, fd := range []int{3, 4} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return err
		}
	}
	return servePipeEcho(rawPipe(os.NewFile(3, "in")), rawPipe(os.NewFile(4, "out")))
}
