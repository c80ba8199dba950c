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

// MaxHeader bounds a Job's header (HeaderBound): enough for a trace
// context and W3C baggage (at most 8 KiB) many times over, yet small beside
// a message, which every job of a Map carries again.
const MaxHeader = 64 << 10

// JobBound bounds the encoded size of j inside a Run.
func JobBound(j *Job) int {
	n := 5*MaxVarint + len(j.Name) + HeaderBound(j.Header)
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
