package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"slices"
)

// Framing for byte streams (process worker pipes). A frame is
//
//	length:uint32 big-endian | message
//
// where message is the Marshal form (version | kind | body) and length
// counts only the message bytes.

const (
	// HeaderSize is the size of the frame length prefix in bytes.
	HeaderSize = 4

	// DefaultMaxFrame is the default limit on a frame's message size
	// (excluding the header). Any max argument ≤ 0 in this package means
	// DefaultMaxFrame.
	DefaultMaxFrame = 16 << 20

	// bufSize is the buffer size of Reader and Writer: large enough that a
	// batch of small frames costs one system call, small enough to keep per
	// connection memory modest.
	bufSize = 64 << 10
)

// frameLimit normalises a caller's max: ≤ 0 means the default, and the
// 32-bit length field caps it whatever the caller asked for.
func frameLimit(max int) int {
	if max <= 0 {
		return DefaultMaxFrame
	}
	if uint64(max) > math.MaxUint32 {
		return math.MaxUint32
	}
	return max
}

// Reader reads frames from a stream. It buffers its input, so nothing else
// should read the underlying reader once a Reader is in use. A Reader is not
// safe for concurrent use; goroutines that take turns reading (a process
// executor's reader and the callers waiting on its futures) must hand it
// over with a happens-before edge (a lock).
type Reader struct {
	br  *bufio.Reader
	max int
	hdr [HeaderSize]byte
	err error // sticky: set once the stream is no longer at a frame boundary

	// A frame in progress, kept across a read deadline (see Next).
	hdrN   int    // header bytes read
	inBody bool   // the header is whole and body is allocated
	body   []byte // the frame's message bytes
	bodyN  int    // body bytes read
}

// NewReader returns a Reader of frames from r whose messages may be at most
// max bytes long (max ≤ 0: DefaultMaxFrame).
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize), max: frameLimit(max)}
}

// Next reads and decodes the next frame.
//
// It returns io.EOF if the stream ends cleanly at a frame boundary and
// io.ErrUnexpectedEOF if it ends inside a frame. A frame whose header
// announces more than the limit yields an error wrapping ErrFrameTooLarge
// without reading or allocating the body. These errors and any error from
// the underlying reader leave the stream at an unknown position, so the
// Reader is then unusable: every later call returns the same error.
//
// The one exception is a read deadline (an error matching
// os.ErrDeadlineExceeded, as an *os.File or a net.Conn returns once its
// read deadline passed): Next returns it and keeps what it read of the
// frame, so that a later call, once the deadline is lifted, goes on from
// there. A deadline is how a goroutine reading the stream is made to stop
// and let another read (internal/proc).
//
// A frame that arrives whole but does not decode yields an error wrapping
// ErrMalformed or ErrVersion; that frame has been consumed and Next may be
// called again for the following one.
//
// Every frame body is read into a freshly allocated buffer of exactly its
// length (at most the limit), so byte payloads of the returned message,
// which alias that buffer, remain valid after later calls.
func (r *Reader) Next() (Msg, error) {
	if r.err != nil {
		return nil, r.err
	}
	for r.hdrN < HeaderSize {
		n, err := r.br.Read(r.hdr[r.hdrN:])
		r.hdrN += n
		if err != nil && r.hdrN < HeaderSize {
			if err == io.EOF && r.hdrN > 0 {
				err = io.ErrUnexpectedEOF // a partial header
			}
			// io.EOF with no byte read is exactly the clean end at a
			// frame boundary.
			return nil, r.fail(err)
		}
	}
	if !r.inBody {
		n := binary.BigEndian.Uint32(r.hdr[:])
		if uint64(n) > uint64(r.max) {
			r.err = errTooLarge(uint64(n), r.max)
			return nil, r.err
		}
		r.body, r.bodyN, r.inBody = make([]byte, n), 0, true
	}
	for r.bodyN < len(r.body) {
		n, err := r.br.Read(r.body[r.bodyN:])
		r.bodyN += n
		if err != nil && r.bodyN < len(r.body) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the header promised a body
			}
			return nil, r.fail(err)
		}
	}
	body := r.body
	r.hdrN, r.inBody, r.body = 0, false, nil
	return Unmarshal(body)
}

// fail returns err, making it sticky unless it is a read deadline.
func (r *Reader) fail(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		r.err = err
	}
	return err
}

// Writer writes frames to a stream through a buffer; call Flush to push
// them out. A Writer is not safe for concurrent use: callers that write
// from several goroutines must serialise Write and Flush themselves.
type Writer struct {
	bw      *bufio.Writer
	max     int
	scratch []byte // encoding buffer for frames that do not fit in bw's free space
}

// NewWriter returns a Writer of frames to w whose messages may be at most
// max bytes long (max ≤ 0: DefaultMaxFrame).
func NewWriter(w io.Writer, max int) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, bufSize), max: frameLimit(max)}
}

// Write encodes m as one frame into the buffer, writing to the underlying
// writer only when the buffer fills. If the message is longer than the limit
// it returns an error wrapping ErrFrameTooLarge and writes nothing, so the
// stream stays usable. Errors from the underlying writer are sticky, as with
// bufio.Writer.
func (w *Writer) Write(m Msg) error {
	n, err := msgSize(m)
	if err != nil {
		return err
	}
	if n > w.max {
		return errTooLarge(uint64(n), w.max)
	}
	size := HeaderSize + n
	var buf []byte
	fits := size <= w.bw.Available()
	if fits {
		// Encode straight into bufio's free space: no copy, no allocation.
		buf = w.bw.AvailableBuffer()
	} else {
		buf = slices.Grow(w.scratch[:0], size)
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = appendMsg(buf, m)
	_, err = w.bw.Write(buf)
	// Keep a scratch buffer for frames of up to the buffer size, which
	// recur; drop larger ones instead of pinning up to max bytes forever.
	if !fits && cap(buf) <= bufSize {
		w.scratch = buf[:0]
	}
	return err
}

// Flush writes any buffered frames to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }
