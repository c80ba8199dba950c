package wire

import (
	"encoding/binary"
	"math"
	"time"
)

// Minimum encoded sizes of list elements. Before allocating a slice of n
// elements the decoder checks that the remaining input could hold n of them,
// which bounds every allocation by a constant multiple of len(b).
const (
	minJobSize        = 7 // id, name length, timeout, limit, ahead, header count, args count
	minResultSize     = 2 // id, items count
	minOutcomeSize    = 2 // flags, value length
	minStringSize     = 1 // length
	minTypedValueSize = 2 // two lengths
	minLabelSize      = 2 // key length, value length

	maxMapHint = 64 // initial size hint cap for string maps; see stringMap
)

// Unmarshal decodes a message produced by Marshal and returns one of *Hello,
// *Run, *Cancel, *Results, *Heartbeat, *Shutdown, *Bye or *Started.
//
// A version byte other than Version yields an error wrapping ErrVersion;
// anything else that is not exactly one valid message (unknown kind,
// truncation, trailing bytes, impossible counts, bools other than 0 or 1,
// values out of range) yields an error wrapping ErrMalformed. Allocation is
// bounded by a small multiple of len(b) whatever the input.
//
// Decoded byte payloads (Job.Args items and Outcome.Value) alias b, with
// their capacity clipped so that appending to one cannot overwrite the rest
// of b; the caller must not modify b while they are in use. Strings are
// copied. Empty byte payloads, lists and maps decode as nil.
func Unmarshal(b []byte) (Msg, error) {
	if len(b) == 0 {
		return nil, malformed("empty message")
	}
	if b[0] != Version {
		return nil, errBadVersion(b[0])
	}
	if len(b) < 2 {
		return nil, malformed("missing kind")
	}
	d := decoder{b: b, off: 2}
	var m Msg
	switch k := Kind(b[1]); k {
	case KindRun:
		m = d.run()
	case KindResult:
		m = d.results()
	case KindCancel:
		m = &Cancel{ReplyTo: d.string(), IDs: d.ids()}
	case KindStarted:
		m = &Started{WorkerID: d.string(), IDs: d.ids()}
	case KindHeartbeat:
		m = d.heartbeat()
	case KindHello:
		m = d.hello()
	case KindShutdown:
		m = &Shutdown{Graceful: d.bool()}
	case KindBye:
		m = &Bye{WorkerID: d.string(), Seen: d.seen()}
	default:
		return nil, malformed("unknown kind %d", byte(k))
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(d.b) {
		return nil, malformed("%d trailing bytes after %v", d.rest(), m.Kind())
	}
	return m, nil
}

// decoder reads primitives from b starting at off. Its error is sticky: the
// first failure is recorded, off jumps to the end so that every later read
// fails fast and yields zero values, and the caller checks err once at the
// end. Loops also stop early on error, so a failed decode does no more work
// than a successful one.
//
// The position is an index rather than a shrinking slice because advancing
// an int needs no GC write barrier, which matters when decoding large
// batches while the collector runs.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) rest() int { return len(d.b) - d.off }

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.off = len(d.b)
}

// truncated records a read past the end of the input.
func (d *decoder) truncated() {
	if d.err == nil {
		d.fail(malformed("truncated at byte %d of %d", d.off, len(d.b)))
	}
}

func (d *decoder) byte() byte {
	if d.off >= len(d.b) {
		d.truncated()
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail(malformed("invalid bool at byte %d", d.off-1))
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.off < len(d.b) {
		if c := d.b[d.off]; c < 0x80 {
			d.off++
			return uint64(c)
		}
	}
	return d.uvarintSlow()
}

func (d *decoder) uvarintSlow() uint64 {
	x, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.truncated()
		} else {
			d.fail(malformed("varint overflows 64 bits at byte %d", d.off))
		}
		return 0
	}
	d.off += n
	return x
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// int reads a varint that must fit an int on this platform.
func (d *decoder) int() int {
	x := d.varint()
	if int64(int(x)) != x {
		d.fail(malformed("integer %d overflows int at byte %d", x, d.off))
		return 0
	}
	return int(x)
}

// length reads a byte-string length and checks it against the remaining
// input.
func (d *decoder) length() int {
	n := d.uvarint()
	if n > uint64(d.rest()) {
		d.fail(malformed("length %d exceeds the %d remaining bytes at byte %d", n, d.rest(), d.off))
		return 0
	}
	return int(n)
}

// count reads a list length and checks that the remaining input could hold
// that many elements of at least min bytes each, so that the caller may
// allocate n elements.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(d.rest()/min) {
		d.fail(malformed("count %d too large for the %d remaining bytes at byte %d", n, d.rest(), d.off))
		return 0
	}
	return int(n)
}

// bytes returns a length-prefixed byte string aliasing the input, with its
// capacity clipped. An empty string decodes as nil.
func (d *decoder) bytes() []byte {
	n := d.length()
	if n == 0 {
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

func (d *decoder) string() string {
	n := d.length()
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s
}

// stringReuse reads a string and returns prev instead of a new copy when
// they are equal. Batches usually carry the same work name in every job, so
// this saves an allocation per job; the comparison itself does not allocate.
func (d *decoder) stringReuse(prev string) string {
	n := d.length()
	p := d.b[d.off : d.off+n]
	d.off += n
	if string(p) == prev {
		return prev
	}
	return string(p)
}

// stringMap reads a map (Hello.Labels, Job.Header); what names its entries
// in errors. An empty map decodes as nil.
// seen reads a Bye's or a Heartbeat's Seen: a repeated executor is malformed, as a
// repeated map key is.
func (d *decoder) seen() map[string]uint64 {
	n := d.count(minLabelSize) // a key's length and an id, a byte each at least
	if n == 0 {
		return nil
	}
	m := make(map[string]uint64, min(n, maxMapHint))
	for range n {
		k := d.string()
		id := d.uvarint()
		if d.err != nil {
			break
		}
		if _, dup := m[k]; dup {
			d.fail(malformed("duplicate executor %q in a Seen", k))
			break
		}
		m[k] = id
	}
	return m
}

func (d *decoder) stringMap(what string) map[string]string {
	n := d.count(minLabelSize)
	if n == 0 {
		return nil
	}
	// The size hint is capped: a map costs far more per entry than the two
	// bytes an empty pair needs, and duplicates (rejected below) could make a
	// huge hint cheap to claim. Beyond the cap the map grows with the entries
	// actually inserted.
	m := make(map[string]string, min(n, maxMapHint))
	for range n {
		k := d.string()
		v := d.string()
		if d.err != nil {
			break
		}
		// Duplicate keys cannot come from Marshal; rejecting them keeps one
		// encoding per message and stops a peer from hiding an entry.
		if _, dup := m[k]; dup {
			d.fail(malformed("duplicate %s %q", what, k))
			break
		}
		m[k] = v
	}
	return m
}

// run1 and results1 hold a single-element batch and its one-element slices
// in one allocation. Single-job batches are the common, latency-sensitive
// case (one Submit, one result), so this saves two allocations on each.
type run1 struct {
	r    Run
	jobs [1]Job
	args [1][]byte
}

type results1 struct {
	r     Results
	res   [1]Result
	items [1]Outcome
}

func (d *decoder) run() *Run {
	replyTo := d.string()
	resend := d.bool()
	slots := d.uvarint()
	if slots > math.MaxInt32 {
		d.fail(malformed("slots %d out of range at byte %d", slots, d.off))
	}
	n := d.count(minJobSize)
	var m *Run
	// Jobs almost always carry one argument each, so their Args share one
	// backing array sized for that; a job with more gets its own.
	var slab [][]byte
	switch n {
	case 0:
		return &Run{ReplyTo: replyTo, Resend: resend, Slots: int(slots)}
	case 1:
		one := new(run1)
		m, slab = &one.r, one.args[:]
		m.Jobs = one.jobs[:]
	default:
		m = &Run{Jobs: make([]Job, n)}
		slab = make([][]byte, n)
	}
	m.ReplyTo, m.Resend, m.Slots = replyTo, resend, int(slots)
	var name string
	for i := range m.Jobs {
		j := &m.Jobs[i]
		j.ID = d.uvarint()
		j.Name = d.stringReuse(name)
		name = j.Name
		j.Timeout = time.Duration(d.varint())
		// A negative Limit cannot come from Marshal, and unlike a negative
		// Timeout it has no meaning: Deadline(d) is positive.
		if j.Limit = time.Duration(d.varint()); j.Limit < 0 {
			d.fail(malformed("negative limit %d at byte %d", j.Limit, d.off))
		}
		j.Ahead = d.bool()
		j.Header = d.stringMap("header key")
		na := d.count(1)
		if na > 0 {
			if na <= len(slab) {
				j.Args = slab[:na:na]
				slab = slab[na:]
			} else {
				j.Args = make([][]byte, na)
			}
			for k := range j.Args {
				j.Args[k] = d.bytes()
			}
		}
		if d.err != nil {
			break
		}
	}
	return m
}

func (d *decoder) results() *Results {
	workerID := d.string()
	n := d.count(minResultSize)
	var m *Results
	// As in run: one item per result is the common case.
	var slab []Outcome
	switch n {
	case 0:
		return &Results{WorkerID: workerID}
	case 1:
		one := new(results1)
		m, slab = &one.r, one.items[:]
		m.Results = one.res[:]
	default:
		m = &Results{Results: make([]Result, n)}
		slab = make([]Outcome, n)
	}
	m.WorkerID = workerID
	for i := range m.Results {
		r := &m.Results[i]
		r.ID = d.uvarint()
		ni := d.count(minOutcomeSize)
		if ni > 0 {
			if ni <= len(slab) {
				r.Items = slab[:ni:ni]
				slab = slab[ni:]
			} else {
				r.Items = make([]Outcome, ni)
			}
			for k := range r.Items {
				d.outcome(&r.Items[k])
				if d.err != nil {
					break
				}
			}
		}
		if d.err != nil {
			break
		}
	}
	return m
}

func (d *decoder) outcome(o *Outcome) {
	flags := d.byte()
	if flags&^flagErr != 0 {
		d.fail(malformed("invalid outcome flags %#x at byte %d", flags, d.off-1))
		return
	}
	o.Value = d.bytes()
	if flags&flagErr != 0 {
		o.Err = d.error()
	}
}

func (d *decoder) error() *Error {
	e := &Error{
		Type:    d.string(),
		Message: d.string(),
	}
	e.Sentinels = d.strings()
	e.Types = d.typedValues()
	e.Panic = d.bool()
	e.Stack = d.string()
	e.Code = ErrCode(d.byte())
	return e
}

func (d *decoder) typedValues() []TypedValue {
	n := d.count(minTypedValueSize)
	if n == 0 {
		return nil
	}
	tvs := make([]TypedValue, n)
	for i := range tvs {
		tvs[i] = TypedValue{Name: d.string(), Value: d.bytes()}
		if d.err != nil {
			break
		}
	}
	return tvs
}

func (d *decoder) strings() []string {
	n := d.count(minStringSize)
	if n == 0 {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = d.string()
		if d.err != nil {
			break
		}
	}
	return s
}

// ids reads a list of job ids (Cancel, Started). An empty list decodes as
// nil.
func (d *decoder) ids() []uint64 {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.uvarint()
		if d.err != nil {
			break
		}
	}
	return ids
}

func (d *decoder) heartbeat() *Heartbeat {
	return &Heartbeat{
		WorkerID: d.string(),
		Load:     d.int(),
		MaxWorks: d.int(),
		Draining: d.bool(),
		Killed:   d.bool(),
		Seen:     d.seen(),
	}
}

func (d *decoder) hello() *Hello {
	m := &Hello{
		Version:  d.byte(),
		WorkerID: d.string(),
		PID:      d.int(),
		MaxWorks: d.int(),
	}
	m.Works = d.strings()
	m.Labels = d.stringMap("label")
	return m
}
