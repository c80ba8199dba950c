//go:build unix

package link

import (
	"io"
	"os"
	"syscall"
)

// rawConn returns w's raw connection when it can be written without
// blocking: a non-blocking file (os.Pipe's ends are); nil otherwise.
func rawConn(w io.Writer) syscall.RawConn {
	sc, ok := w.(syscall.Conn)
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
func writeNow(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // done, whatever happened: never wait
			}
		}
	})
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

func fcntl(fd uintptr, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
