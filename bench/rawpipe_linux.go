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
	r := &rawFile{rc: rc}
	r.read, r.write = r.readRaw, r.writeRaw // bound once: a closure per call would allocate
	return r
}

// rawFile is rawPipe's reader and writer; one goroutine reads and one
// writes at a time.
type rawFile struct {
	rc          syscall.RawConn
	read, write func(fd uintptr) bool

	rp, wp []byte
	rn, wn int
	rerr   syscall.Errno
	werr   syscall.Errno
}

func (r *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr = p, 0, 0
	err := r.rc.Read(r.read)
	n, errno := r.rn, r.rerr
	r.rp = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawFile) readRaw(fd uintptr) bool {
	for {
		r.rn, r.rerr = rawCall(syscall.SYS_READ, fd, r.rp)
		if r.rerr != syscall.EINTR {
			return r.rerr != syscall.EAGAIN
		}
	}
}

func (r *rawFile) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wp, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.write)
	n, errno := r.wn, r.werr
	r.wp = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, errno
	}
	return n, nil
}

func (r *rawFile) writeRaw(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, errno := rawCall(syscall.SYS_WRITE, fd, r.wp[r.wn:])
		switch errno {
		case 0:
			r.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = errno
			return true
		}
	}
	return true
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
