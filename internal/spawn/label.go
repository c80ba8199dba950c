package spawn

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
)

// maxLine bounds a buffered partial line: a child that prints megabytes
// without a newline has them forwarded in pieces rather than held.
const maxLine = 64 << 10

// LineWriter forwards one child's stdout and stderr to a shared output,
// each line prefixed "[<label> <slot> pid <pid>] ". exec.Cmd calls
// Write from one copying goroutine (stdout and stderr share the pipe
// because they are the same writer); Flush is called after cmd.Wait.
type LineWriter struct {
	out   io.Writer
	mu    *sync.Mutex // shared by all workers, so lines never interleave
	label string
	slot  int
	pid   atomic.Int64 // set after Start, while the copier may already run

	partial []byte // the current unterminated line
	buf     []byte // prefixed lines being forwarded
}

// NewLineWriter returns a writer labelling lines "[label slot pid P] "; mu
// is shared by every writer of out, so lines never interleave.
func NewLineWriter(out io.Writer, mu *sync.Mutex, label string, slot int) *LineWriter {
	return &LineWriter{out: out, mu: mu, label: label, slot: slot}
}

// Write forwards every complete line of p and keeps the rest. It never
// fails: an error here would break the child's stdout and kill it with
// SIGPIPE on its next print.
func (l *LineWriter) Write(p []byte) (int, error) {
	n := len(p)
	l.buf = l.buf[:0]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			if len(l.partial) >= maxLine {
				l.appendLine(l.partial, true)
				l.partial = l.partial[:0]
			}
			break
		}
		if len(l.partial) > 0 {
			l.partial = append(l.partial, p[:i+1]...)
			l.appendLine(l.partial, false)
			l.partial = l.partial[:0]
		} else {
			l.appendLine(p[:i+1], false)
		}
		p = p[i+1:]
	}
	l.emit()
	return n, nil
}

// Flush forwards an unterminated last line.
func (l *LineWriter) Flush() {
	if len(l.partial) == 0 {
		return
	}
	l.buf = l.buf[:0]
	l.appendLine(l.partial, true)
	l.partial = l.partial[:0]
	l.emit()
}

func (l *LineWriter) appendLine(line []byte, addNewline bool) {
	l.buf = append(l.buf, '[')
	l.buf = append(l.buf, l.label...)
	l.buf = append(l.buf, ' ')
	l.buf = strconv.AppendInt(l.buf, int64(l.slot), 10)
	l.buf = append(l.buf, " pid "...)
	l.buf = strconv.AppendInt(l.buf, l.pid.Load(), 10)
	l.buf = append(l.buf, "] "...)
	l.buf = append(l.buf, line...)
	if addNewline {
		l.buf = append(l.buf, '\n')
	}
}

func (l *LineWriter) emit() {
	if len(l.buf) == 0 {
		return
	}
	l.mu.Lock()
	l.out.Write(l.buf) // errors ignored: see Write
	l.mu.Unlock()
	if cap(l.buf) > 4*maxLine {
		l.buf = nil // do not pin a burst's buffer
	}
}

// SetPID records the child's pid once it has started.
func (l *LineWriter) SetPID(pid int) { l.pid.Store(int64(pid)) }
