//go:build unix

package link

import "syscall"

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

func fcntl(fd uintptr, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
