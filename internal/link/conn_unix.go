//go:build unix

package link

import (
	"os"
	"syscall"
)

// rawConn returns f's raw connection when it can be read and written
// without blocking: a non-blocking file (os.Pipe's ends are); nil
// otherwise.
func rawConn(f any) syscall.RawConn {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	nonblocking := false
	if err := rc.Control(func(fd uintptr) {
		flags, err := fcntl(fd, syscall.F_GETFL)
		nonblocking = err == nil && flags&syscall.O_NONBLOCK != 0
	}); err != nil || !nonblocking {
		return nil
	}
	return rc
}

// writeNow writes what the stream takes of p at once, without waiting.
func (o *pipeOut) writeNow(p []byte) (int, error) {
	if o.write == nil {
		o.write = o.writeRaw // bound once: a closure per call would allocate
	}
	o.p = p
	err := o.rc.Write(o.write)
	n, werr := o.n, o.werr
	o.p, o.werr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, &os.PathError{Op: "write", Path: "pipe", Err: werr}
	}
	return n, nil
}

// writeRaw is writeNow's system call, for RawConn.Write: it is done
// whatever happened, so the caller never waits for the pipe.
func (o *pipeOut) writeRaw(fd uintptr) bool {
	for {
		n, errno := sysWrite(fd, o.p)
		switch errno {
		case 0:
			o.n, o.werr = n, nil
			return true
		case syscall.EINTR:
			continue
		}
		o.n, o.werr = 0, errno
		return true
	}
}

func fcntl(fd uintptr, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
