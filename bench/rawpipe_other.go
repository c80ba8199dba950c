//go:build !linux

package bench

import (
	"io"
	"os"
)

// rawPipe returns f: raw system calls are made on Linux only, so elsewhere
// the raw floor is the plain one.
func rawPipe(f *os.File) io.ReadWriter { return f }

// serveRawPipeEcho is servePipeEcho over fds 3 and 4.
func serveRawPipeEcho() error {
	return servePipeEcho(os.NewFile(3, "in"), os.NewFile(4, "out"))
}
