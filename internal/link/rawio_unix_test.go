//go:build unix

package link

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newPipe returns both ends of an os.Pipe (non-blocking, as a process
// worker's), closed at the end of the test.
func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// TestPipeReaderUsesRawCallsOnlyOnNonBlockingFiles checks which readers
// PipeReader wraps: a non-blocking pipe end, not a blocking file nor a
// reader that is no file.
func TestPipeReaderUsesRawCallsOnlyOnNonBlockingFiles(t *testing.T) {
	r, _ := newPipe(t)
	if _, ok := PipeReader(r).(*pipeReader); !ok {
		t.Errorf("PipeReader(os.Pipe's end) = %T, want *pipeReader", PipeReader(r))
	}
	f, err := os.CreateTemp(t.TempDir(), "blocking")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := PipeReader(f); got != io.Reader(f) {
		t.Errorf("PipeReader(a regular file) = %T, want the file itself", got)
	}
	sr := strings.NewReader("x")
	if got := PipeReader(sr); got != io.Reader(sr) {
		t.Errorf("PipeReader(a strings.Reader) = %T, want it unchanged", got)
	}
}

// TestRawPipeCarriesBytesInOrder writes more than a pipe holds through a
// pipe Conn's raw writes while a PipeReader reads: both sides wait on the
// poller (EAGAIN) and every byte arrives, in order, then io.EOF.
func TestRawPipeCarriesBytesInOrder(t *testing.T) {
	r, w := newPipe(t)
	out := &pipeOut{w: w, rc: rawConn(w)}
	if out.rc == nil {
		t.Fatal("os.Pipe's write end is not usable for raw writes")
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, past the 64 KiB pipe
	errc := make(chan error, 1)
	go func() {
		n, err := out.writeBlocking(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		errc <- errors.Join(err, w.Close())
	}()
	got, err := io.ReadAll(PipeReader(r))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written in order", len(got), len(want))
	}
}

// TestPipeReaderEndsAsTheFileDoes checks that a read waiting on an empty
// pipe ends as the file's own would: at its read deadline with
// os.ErrDeadlineExceeded (how a waiting Get is interrupted), and once the
// file is closed with os.ErrClosed (how a worker's reader is stopped).
func TestPipeReaderEndsAsTheFileDoes(t *testing.T) {
	r, _ := newPipe(t)
	pr := PipeReader(r)
	buf := make([]byte, 16)

	if err := r.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := pr.Read(buf)
		done <- err
	}()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// Whether the read was waiting or had not started, it ends closed.
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read of a closed pipe: %v, want os.ErrClosed", err)
	}
}

// TestRawWritesFailAsTheFileDoes checks a raw write's errors: a closed
// file's is os.ErrClosed, a pipe whose reader is gone EPIPE (and the
// process survives the SIGPIPE), as with the file's own Write.
func TestRawWritesFailAsTheFileDoes(t *testing.T) {
	r, w := newPipe(t)
	out := &pipeOut{w: w, rc: rawConn(w)}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.writeBlocking([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write to a pipe with no reader: %v, want EPIPE", err)
	}
	if n, err := out.writeNow([]byte("x")); err == nil || n != 0 {
		t.Errorf("writeNow to a pipe with no reader: %d, %v; want an error", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := out.writeBlocking([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write to a closed file: %v, want os.ErrClosed", err)
	}
}

// TestRawCallsTakeEmptyBuffers checks that the raw calls, like the file's
// own, accept an empty buffer (no system call, no panic on &p[0]).
func TestRawCallsTakeEmptyBuffers(t *testing.T) {
	r, w := newPipe(t)
	out := &pipeOut{w: w, rc: rawConn(w)}
	if n, err := out.writeNow(nil); n != 0 || err != nil {
		t.Errorf("writeNow(nil) = %d, %v; want 0, nil", n, err)
	}
	if n, err := out.writeBlocking(nil); n != 0 || err != nil {
		t.Errorf("writeBlocking(nil) = %d, %v; want 0, nil", n, err)
	}
	if n, err := PipeReader(r).Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}
