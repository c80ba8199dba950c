//go:build unix

package link

import (
	"io"
	"os"
	"syscall"
)

// A process worker's pipes are read and written with raw system calls (on
// Linux: rawcall_linux.go; other systems make the same calls through the
// syscall package's bookkeeping).
//
// Their ends are non-blocking (os.Pipe's are; a process child makes its
// inherited ends so), so a read or a write never blocks: it takes what is
// there, or fails with EAGAIN and the goroutine waits on the netpoller.
// The runtime's bookkeeping around a system call that may block
// (entersyscall, exitsyscall), which lets another thread take the
// goroutine's P, buys nothing then, and it costs more than itself:
// entering a system call wakes the runtime's monitor thread (sysmon) from
// the deep sleep it takes while every P is idle, and a woken sysmon polls
// every 20 µs for a millisecond and more before it backs off. A worker
// idle between bursts of works (each wave of a fan-out) paid that once a
// burst in each process. On a VM, where a thread's sleep and wake-up costs
// 10-25 µs of CPU, raw calls took 40 % off a process fan-out's system time
// and 20-30 % off its CPU per work (README, "Why it is cheap").
//
// The raw calls are invisible to the race detector, like any system call
// made with syscall.RawSyscall: it does not see the kernel fill a read's
// buffer. The buffers are the link's own (bufio's, the writer's).

// PipeReader returns a reader of r that reads with raw system calls when r
// is a file in non-blocking mode (a process worker's pipe end), and r
// itself otherwise. Reads and Close behave as r's: a read that waits is
// ended by closing r, with r's error.
func PipeReader(r io.Reader) io.Reader {
	f, ok := r.(interface {
		io.Reader
		syscall.Conn
	})
	if !ok {
		return r
	}
	rc := rawConn(f)
	if rc == nil {
		return r
	}
	pr := &pipeReader{f: f, rc: rc}
	pr.read = pr.readRaw // bound once: a closure per Read would allocate
	return pr
}

// PipeWriter returns a writer of w that writes with raw system calls when w
// is a file in non-blocking mode, as a pipe Conn does, and w itself
// otherwise. Each Write writes p whole, waiting while the pipe is full.
func PipeWriter(w io.Writer) io.Writer {
	rc := rawConn(w)
	if rc == nil {
		return w
	}
	return &pipeOut{w: w, rc: rc}
}

// pipeReader is PipeReader's reader; one goroutine reads at a time.
type pipeReader struct {
	f  io.Reader // the file, for the error a closed one reports
	rc syscall.RawConn

	// Read's call, bound once, and its argument and results.
	read func(fd uintptr) bool
	p    []byte
	n    int
	err  error
}

func (r *pipeReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p = p
	err := r.rc.Read(r.read)
	n, rerr := r.n, r.err
	r.p, r.n, r.err = nil, 0, nil
	switch {
	case err != nil:
		return 0, closedErr(r.f.Read, err)
	case rerr != nil:
		return n, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readRaw is Read's system call, for RawConn.Read: false (wait for the
// pipe to be readable, then call again) on EAGAIN.
func (r *pipeReader) readRaw(fd uintptr) bool {
	for {
		n, errno := sysRead(fd, r.p)
		switch errno {
		case 0:
			r.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.err = &os.PathError{Op: "read", Path: "pipe", Err: errno}
			return true
		}
	}
}

// writeNow writes what the stream takes of p at once, without waiting.
func (o *pipeOut) writeNow(p []byte) (int, error) { return o.writeRaw(p, false) }

// writeAll writes p whole to the stream, waiting on the poller while the
// pipe is full, as a blocking write does.
func (o *pipeOut) writeAll(p []byte) (int, error) { return o.writeRaw(p, true) }

// writeRaw is writeNow (wait false: what the pipe takes until it is full)
// and writeAll (wait true: all of p).
func (o *pipeOut) writeRaw(p []byte, wait bool) (int, error) {
	if o.write == nil {
		o.write = o.writeCalls // bound once: a closure per call would allocate
	}
	o.p, o.n, o.wait = p, 0, wait
	err := o.rc.Write(o.write)
	n, errno := o.n, o.errno
	o.p, o.n, o.errno = nil, 0, 0
	switch {
	case err != nil:
		return n, closedErr(o.w.Write, err)
	case errno != 0:
		return n, &os.PathError{Op: "write", Path: "pipe", Err: errno}
	}
	return n, nil
}

// writeCalls is writeRaw's system calls, for RawConn.Write: true once p
// is written or a call failed; on a full pipe, false (wait for room, then
// call again) with wait set, else true.
func (o *pipeOut) writeCalls(fd uintptr) bool {
	for o.n < len(o.p) {
		n, errno := sysWrite(fd, o.p[o.n:])
		switch errno {
		case 0:
			o.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return !o.wait
		default:
			o.errno = errno
			return true
		}
	}
	return true
}

// closedErr returns the error of a file's RawConn call (err): the file
// reports it closed in its own words (os.ErrClosed in a *PathError; a
// connection, net.ErrClosed in a *OpError) when asked to move zero bytes,
// which RawConn does not. call is the file's Read or Write.
func closedErr(call func([]byte) (int, error), err error) error {
	if _, ferr := call(nil); ferr != nil {
		return ferr
	}
	return err
}
