package wire

// Size bounds: upper bounds of the encoded size of a message's parts, with
// every length and integer counted as a full varint. They are cheap to
// compute and let the senders of both transports split batches under a
// frame or payload limit without encoding anything twice.

// MaxVarint is the most bytes one varint takes.
const MaxVarint = 10

// EnvelopeBound bounds a message's fixed part (frame header, version, kind,
// counts) beside the items counted with the functions below.
const EnvelopeBound = 64

// The size budget. Every message, a frame on a process pipe or a NATS
// payload, is at most limit bytes (the transport's MaxMessage). Two rules
// keep every message under it, and they are the only size rules of aplex:
//
//   - PayloadLimit bounds one job's payload (its encoded argument with its
//     header, or its encoded result). The executor refuses a bigger
//     argument at Submit (ErrTooLarge) and the worker host turns a bigger
//     result into CodeTooLarge outcomes, so one job always fits a message
//     beside its envelope.
//   - BatchBudget bounds what one batch message carries: the link merges
//     queued jobs (JobBound), results (ResultBound), or cancelled or started
//     ids (MaxVarint each) into one Run, Results, Cancel or Started while
//     their sum fits.
//
// The bounds over-count, so a batch that fits its budget always encodes
// under the limit: nothing is encoded twice to find out.

// Headroom is what PayloadLimit keeps free beside a job's payload for its
// envelope: the work's name, ids, timeout, limit, flag and counts of the
// job, and the batch envelope with its ReplyTo or WorkerID. 4 KiB leaves
// room for names and ids of any reasonable length.
const Headroom = 4096

// PayloadLimit is the largest payload (encoded argument and header, or
// encoded result) of one job in messages of at most limit bytes (limit ≤ 0:
// DefaultMaxFrame).
func PayloadLimit(limit int) int {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	return max(limit-Headroom, 1)
}

// BatchBudget is the room for items (the sum of their JobBound or
// ResultBound, or MaxVarint per cancelled or started id) in one Run, Cancel,
// Results or Started message of at most limit bytes (limit ≤ 0: DefaultMaxFrame) whose envelope
// carries name (its ReplyTo or WorkerID, "" if none).
func BatchBudget(limit int, name string) int {
	if limit <= 0 {
		limit = DefaultMaxFrame
	}
	return limit - EnvelopeBound - MaxVarint - len(name)
}

// MaxHeader bounds a Job's header (HeaderBound): enough for a trace
// context and W3C baggage (at most 8 KiB) many times over, yet small beside
// a message, which every job of a Map carries again.
const MaxHeader = 64 << 10

// JobBound bounds the encoded size of j inside a Run: six varints (id, name
// length, timeout, limit, header count, args count), the ahead byte, and
// its name, header and arguments.
func JobBound(j *Job) int {
	n := 6*MaxVarint + 1 + len(j.Name) + HeaderBound(j.Header)
	for _, a := range j.Args {
		n += MaxVarint + len(a)
	}
	return n
}

// HeaderBound bounds the encoded size of a Job's header entries (its count
// is in JobBound): 0 for an empty header.
func HeaderBound(h map[string]string) int {
	n := 0
	for k, v := range h {
		n += 2*MaxVarint + len(k) + len(v)
	}
	return n
}

// ErrorBound bounds the encoded size of e.
func ErrorBound(e *Error) int {
	n := 5*MaxVarint + 2 + len(e.Type) + len(e.Message) + len(e.Stack)
	for _, s := range e.Sentinels {
		n += MaxVarint + len(s)
	}
	n += MaxVarint
	for _, tv := range e.Types {
		n += 2*MaxVarint + len(tv.Name) + len(tv.Value)
	}
	return n
}

// OutcomeBound bounds the encoded size of o.
func OutcomeBound(o *Outcome) int {
	n := 1 + MaxVarint + len(o.Value)
	if o.Err != nil {
		n += ErrorBound(o.Err)
	}
	return n
}

// ResultBound bounds the encoded size of r inside a Results message.
func ResultBound(r *Result) int {
	n := 2 * MaxVarint
	for i := range r.Items {
		n += OutcomeBound(&r.Items[i])
	}
	return n
}
