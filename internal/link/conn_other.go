//go:build !unix

package link

import (
	"io"
	"syscall"
)

// rawConn returns nil: reads and writes without blocking are Unix only.
func rawConn(any) syscall.RawConn { return nil }

func (o *pipeOut) writeNow([]byte) (int, error) { return 0, nil }
func (o *pipeOut) writeAll([]byte) (int, error) { return 0, nil }

// PipeReader returns r: raw reads are Unix only.
func PipeReader(r io.Reader) io.Reader { return r }

// PipeWriter returns w: raw writes are Unix only.
func PipeWriter(w io.Writer) io.Writer { return w }
