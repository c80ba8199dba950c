package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
)

// Message encoding.
//
// A message is
//
//	version:byte | kind:byte | body
//
// and bodies are built from these primitives:
//
//	uint    unsigned varint (encoding/binary)
//	int     signed zig-zag varint (encoding/binary)
//	byte    one raw byte
//	bool    one byte, 0 or 1; anything else is malformed
//	str     uint length, then that many bytes (UTF-8 is not checked)
//	bytes   uint length, then that many bytes
//	dur     int nanoseconds (a time.Duration)
//	list(T) uint count, then count × T
//	map     uint count, then count × (str key, str value), keys sorted
//
// Bodies by kind:
//
//	Hello      version:byte workerID:str pid:int maxWorks:int works:list(str) labels:map
//	Run        replyTo:str resend:bool slots:uint jobs:list(job)
//	Cancel     replyTo:str ids:list(uint)
//	Results    workerID:str results:list(id:uint items:list(outcome))
//	Heartbeat  workerID:str load:int maxWorks:int draining:bool killed:bool
//	Shutdown   graceful:bool
//	Bye        workerID:str seen:list(replyTo:str id:uint)   (replyTo sorted, each once)
//	Started    workerID:str ids:list(uint)
//
//	job        id:uint name:str timeout:dur limit:dur ahead:bool header:map args:list(bytes)
//	outcome    flags:byte value:bytes [error if flags&1]   (other flag bits: malformed)
//	error      type:str message:str sentinels:list(str) types:list(name:str value:bytes)
//	           panic:bool stack:str code:byte
//
// The encoder computes the exact size first and grows the destination once,
// so encoding costs one allocation at most (none with a large enough dst).

// Marshal encodes m as version | kind | body, without a length prefix. This
// is the form carried as a NATS message body; streams use Writer instead.
//
// Marshal fails for a nil message, a type this package does not define, and
// a value Unmarshal would reject (a Run's Slots above 2³¹−1, a Job's
// negative Limit), so that a bad value fails at its sender rather than as a
// malformed message at its peer.
func Marshal(m Msg) ([]byte, error) {
	n, err := msgSize(m)
	if err != nil {
		return nil, err
	}
	return appendMsg(make([]byte, 0, n), m), nil
}

// AppendMsg appends the encoding of m (as produced by Marshal) to dst and
// returns the extended slice. It grows dst at most once. On error dst is
// returned unchanged.
func AppendMsg(dst []byte, m Msg) ([]byte, error) {
	n, err := msgSize(m)
	if err != nil {
		return dst, err
	}
	return appendMsg(slices.Grow(dst, n), m), nil
}

var errNilMsg = errors.New("wire: cannot encode a nil message")

// msgSize returns the exact encoded size of m including the version and
// kind bytes. It is the single place that rejects messages the encoder cannot
// handle, so appendMsg may assume a valid message.
func msgSize(m Msg) (int, error) {
	n := 2
	switch m := m.(type) {
	case *Run:
		if m == nil {
			return 0, errNilMsg
		}
		s, err := sizeRun(m)
		if err != nil {
			return 0, err
		}
		n += s
	case *Results:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeResults(m)
	case *Cancel:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeString(m.ReplyTo) + sizeIDs(m.IDs)
	case *Started:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeString(m.WorkerID) + sizeIDs(m.IDs)
	case *Heartbeat:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeString(m.WorkerID) + sizeVarint(int64(m.Load)) +
			sizeVarint(int64(m.MaxWorks)) + 2 + sizeSeen(m.Seen)
	case *Hello:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeHello(m)
	case *Shutdown:
		if m == nil {
			return 0, errNilMsg
		}
		n++
	case *Bye:
		if m == nil {
			return 0, errNilMsg
		}
		n += sizeString(m.WorkerID) + sizeSeen(m.Seen)
	case nil:
		return 0, errNilMsg
	default:
		return 0, fmt.Errorf("wire: cannot encode message of type %T", m)
	}
	return n, nil
}

// appendMsg appends the encoding of m, which msgSize has accepted.
func appendMsg(b []byte, m Msg) []byte {
	b = append(b, Version, byte(m.Kind()))
	switch m := m.(type) {
	case *Run:
		return appendRun(b, m)
	case *Results:
		return appendResults(b, m)
	case *Cancel:
		return appendIDs(appendString(b, m.ReplyTo), m.IDs)
	case *Started:
		return appendIDs(appendString(b, m.WorkerID), m.IDs)
	case *Heartbeat:
		b = appendString(b, m.WorkerID)
		b = binary.AppendVarint(b, int64(m.Load))
		b = binary.AppendVarint(b, int64(m.MaxWorks))
		b = appendBool(b, m.Draining)
		return appendSeen(appendBool(b, m.Killed), m.Seen)
	case *Hello:
		return appendHello(b, m)
	case *Shutdown:
		return appendBool(b, m.Graceful)
	case *Bye:
		return appendSeen(appendString(b, m.WorkerID), m.Seen)
	}
	panic("wire: appendMsg called with a message msgSize rejects")
}

// sizeRun returns the size of m's body, or an error for a value the decoder
// rejects (see Marshal).
func sizeRun(m *Run) (int, error) {
	if m.Slots > math.MaxInt32 {
		return 0, fmt.Errorf("wire: cannot encode a Run with Slots %d, above 2³¹−1", m.Slots)
	}
	n := sizeString(m.ReplyTo) + 1 + sizeUvarint(uint64(max(m.Slots, 0))) + sizeUvarint(uint64(len(m.Jobs)))
	for i := range m.Jobs {
		j := &m.Jobs[i]
		if j.Limit < 0 {
			return 0, fmt.Errorf("wire: cannot encode job %d with a negative Limit %v", j.ID, j.Limit)
		}
		n += sizeUvarint(j.ID) + sizeString(j.Name) + sizeVarint(int64(j.Timeout)) +
			sizeVarint(int64(j.Limit)) + 1 + sizeStringMap(j.Header) + sizeUvarint(uint64(len(j.Args)))
		for _, a := range j.Args {
			n += sizeBytes(a)
		}
	}
	return n, nil
}

func appendRun(b []byte, m *Run) []byte {
	b = appendString(b, m.ReplyTo)
	b = appendBool(b, m.Resend)
	b = appendUvarint(b, uint64(max(m.Slots, 0)))
	b = appendUvarint(b, uint64(len(m.Jobs)))
	for i := range m.Jobs {
		j := &m.Jobs[i]
		b = appendUvarint(b, j.ID)
		b = appendString(b, j.Name)
		b = binary.AppendVarint(b, int64(j.Timeout))
		b = binary.AppendVarint(b, int64(j.Limit))
		b = appendBool(b, j.Ahead)
		b = appendStringMap(b, j.Header)
		b = appendUvarint(b, uint64(len(j.Args)))
		for _, a := range j.Args {
			b = appendBytes(b, a)
		}
	}
	return b
}

func sizeResults(m *Results) int {
	n := sizeString(m.WorkerID) + sizeUvarint(uint64(len(m.Results)))
	for i := range m.Results {
		r := &m.Results[i]
		n += sizeUvarint(r.ID) + sizeUvarint(uint64(len(r.Items)))
		for k := range r.Items {
			o := &r.Items[k]
			n += 1 + sizeBytes(o.Value)
			if o.Err != nil {
				n += sizeError(o.Err)
			}
		}
	}
	return n
}

// Outcome flag bits.
const flagErr = 1

func appendResults(b []byte, m *Results) []byte {
	b = appendString(b, m.WorkerID)
	b = appendUvarint(b, uint64(len(m.Results)))
	for i := range m.Results {
		r := &m.Results[i]
		b = appendUvarint(b, r.ID)
		b = appendUvarint(b, uint64(len(r.Items)))
		for k := range r.Items {
			o := &r.Items[k]
			// Value and Err are encoded independently rather than as
			// alternatives so that any Outcome round-trips unchanged.
			if o.Err != nil {
				b = append(b, flagErr)
				b = appendBytes(b, o.Value)
				b = appendError(b, o.Err)
			} else {
				b = append(b, 0)
				b = appendBytes(b, o.Value)
			}
		}
	}
	return b
}

func sizeError(e *Error) int {
	n := sizeString(e.Type) + sizeString(e.Message) + sizeUvarint(uint64(len(e.Sentinels))) +
		1 + sizeString(e.Stack) + 1
	for _, s := range e.Sentinels {
		n += sizeString(s)
	}
	n += sizeUvarint(uint64(len(e.Types)))
	for _, tv := range e.Types {
		n += sizeString(tv.Name) + sizeBytes(tv.Value)
	}
	return n
}

func appendError(b []byte, e *Error) []byte {
	b = appendString(b, e.Type)
	b = appendString(b, e.Message)
	b = appendUvarint(b, uint64(len(e.Sentinels)))
	for _, s := range e.Sentinels {
		b = appendString(b, s)
	}
	b = appendUvarint(b, uint64(len(e.Types)))
	for _, tv := range e.Types {
		b = appendString(b, tv.Name)
		b = appendBytes(b, tv.Value)
	}
	b = appendBool(b, e.Panic)
	b = appendString(b, e.Stack)
	return append(b, byte(e.Code))
}

func sizeHello(m *Hello) int {
	n := 1 + sizeString(m.WorkerID) + sizeVarint(int64(m.PID)) + sizeVarint(int64(m.MaxWorks)) +
		sizeUvarint(uint64(len(m.Works))) + sizeStringMap(m.Labels)
	for _, w := range m.Works {
		n += sizeString(w)
	}
	return n
}

func appendHello(b []byte, m *Hello) []byte {
	b = append(b, m.Version)
	b = appendString(b, m.WorkerID)
	b = binary.AppendVarint(b, int64(m.PID))
	b = binary.AppendVarint(b, int64(m.MaxWorks))
	b = appendUvarint(b, uint64(len(m.Works)))
	for _, w := range m.Works {
		b = appendString(b, w)
	}
	return appendStringMap(b, m.Labels)
}

// sizeIDs and appendIDs encode a list of job ids (Cancel, Started).
func sizeIDs(ids []uint64) int {
	n := sizeUvarint(uint64(len(ids)))
	for _, id := range ids {
		n += sizeUvarint(id)
	}
	return n
}

func appendIDs(b []byte, ids []uint64) []byte {
	b = appendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendUvarint(b, id)
	}
	return b
}

func sizeSeen(m map[string]uint64) int {
	n := sizeUvarint(uint64(len(m)))
	for k, id := range m {
		n += sizeString(k) + sizeUvarint(id)
	}
	return n
}

// appendSeen writes a Bye's or a Heartbeat's Seen in key order, as appendStringMap does.
func appendSeen(b []byte, m map[string]uint64) []byte {
	b = appendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendString(b, k)
		b = appendUvarint(b, m[k])
	}
	return b
}

func sizeStringMap(m map[string]string) int {
	n := sizeUvarint(uint64(len(m)))
	for k, v := range m {
		n += sizeString(k) + sizeString(v)
	}
	return n
}

// appendStringMap writes m in key order, so that equal messages encode to
// equal bytes. The keys of a small map (a job's header: a trace context, a
// request id) are sorted on the stack.
func appendStringMap(b []byte, m map[string]string) []byte {
	b = appendUvarint(b, uint64(len(m)))
	if len(m) == 0 {
		return b
	}
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

func sizeUvarint(x uint64) int {
	if x < 0x80 {
		return 1 // most lengths, counts and small ids
	}
	return (bits.Len64(x) + 6) / 7
}

func sizeVarint(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return sizeUvarint(ux)
}

func sizeString(s string) int { return sizeUvarint(uint64(len(s))) + len(s) }

func sizeBytes(p []byte) int { return sizeUvarint(uint64(len(p))) + len(p) }

// appendUvarint special-cases one-byte values, which are almost all lengths
// and counts, to keep them inlined.
func appendUvarint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	return binary.AppendUvarint(b, x)
}

func appendString(b []byte, s string) []byte {
	return append(appendUvarint(b, uint64(len(s))), s...)
}

func appendBytes(b []byte, p []byte) []byte {
	return append(appendUvarint(b, uint64(len(p))), p...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
