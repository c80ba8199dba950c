package wire

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type sample struct {
	name string
	msg  Msg
}

// samples returns messages of every kind, including the edge cases the
// encoding must preserve: empty and nil collections, zero and non-zero
// deadlines, nil and non-nil errors, extreme integers.
func samples() []sample {
	arg16 := []byte("0123456789abcdef")
	header := map[string]string{
		"traceparent":  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-request-id": "req-42", "": "empty-key", "empty-value": "",
	}
	fullErr := &Error{
		Type:      "*fs.PathError",
		Message:   "open /nope: no such file or directory",
		Sentinels: []string{"fs.ErrNotExist", "os.ErrNotExist"},
		Types: []TypedValue{
			{Name: "example.com/quota.*QuotaError", Value: []byte{0xa1, 0x65, 'L', 'i', 'm', 'i', 't', 0x18, 0x64}},
			{Name: "", Value: nil},
		},
		Panic: true,
		Stack: "goroutine 1 [running]:\nmain.main()\n",
		Code:  CodeBadArgument,
	}

	many := &Run{ReplyTo: "_INBOX.many"}
	for i := range 300 {
		j := Job{ID: uint64(i) * 977, Name: fmt.Sprintf("work-%d", i%3)}
		if i%7 == 0 {
			j.Timeout = time.Duration(i) * time.Millisecond
		}
		if i%11 == 0 {
			j.Header = map[string]string{"k": fmt.Sprint(i)}
		}
		if i%5 == 0 {
			j.Limit = time.Duration(i) * time.Second
		}
		j.Ahead = i%3 == 0
		// 0 to 3 arguments, so both the shared and the per-job Args
		// allocation paths are taken.
		for k := range i % 4 {
			j.Args = append(j.Args, bytes.Repeat([]byte{byte(k)}, i%40))
		}
		many.Jobs = append(many.Jobs, j)
	}
	manyRes := &Results{WorkerID: "w-many"}
	for i := range 200 {
		r := Result{ID: math.MaxUint64 - uint64(i)}
		for k := range i % 5 {
			o := Outcome{Value: bytes.Repeat([]byte{'v'}, k*10)}
			if k%2 == 1 {
				o.Err = &Error{Message: fmt.Sprint("err ", i, k), Code: ErrCode(k)}
			}
			r.Items = append(r.Items, o)
		}
		manyRes.Results = append(manyRes.Results, r)
	}

	manyStarted := &Started{WorkerID: "w-many"}
	for i := range 500 {
		manyStarted.IDs = append(manyStarted.IDs, uint64(i)*uint64(i)*1_000_003)
	}

	return []sample{
		{"hello/zero", &Hello{}},
		{"hello/full", &Hello{
			Version:  Version,
			WorkerID: "worker-7f3a",
			PID:      4242,
			MaxWorks: 16,
			Works:    []string{"resize", "sum", ""},
			Labels:   map[string]string{"zone": "eu-west", "gpu": "", "": "empty-key"},
		}},
		{"hello/empty-collections", &Hello{Works: []string{}, Labels: map[string]string{}}},
		{"hello/extreme-ints", &Hello{PID: math.MinInt64, MaxWorks: math.MaxInt64, Version: 255}},

		{"run/zero", &Run{}},
		{"run/empty-batch", &Run{ReplyTo: "_INBOX.abc", Jobs: []Job{}}},
		{"run/one", &Run{Jobs: []Job{{ID: 1, Name: "sum", Args: [][]byte{arg16}}}}},
		{"run/timeout", &Run{ReplyTo: "r", Jobs: []Job{{ID: 2, Name: "sum", Timeout: 1500 * time.Millisecond, Args: [][]byte{arg16}}}}},
		{"run/timeout-expired", &Run{Jobs: []Job{{ID: 3, Name: "x", Timeout: -1}}}},
		{"run/timeout-extremes", &Run{Jobs: []Job{{Timeout: math.MaxInt64}, {Timeout: math.MinInt64}, {Timeout: 1}}}},
		{"run/header", &Run{Jobs: []Job{{ID: 4, Name: "h", Timeout: time.Second, Header: header, Args: [][]byte{arg16}}}}},
		{"run/header-empty", &Run{Jobs: []Job{{ID: 5, Name: "h", Header: map[string]string{}, Args: [][]byte{arg16}}}}},
		{"run/header-large", &Run{Jobs: []Job{{ID: 6, Name: "h", Header: largeHeader()}}}},
		{"run/args", &Run{Jobs: []Job{{ID: math.MaxUint64, Name: "multi", Args: [][]byte{nil, {}, arg16, bytes.Repeat([]byte{0xff}, 300)}}}}},
		{"run/no-args", &Run{Jobs: []Job{{ID: 9, Name: "none"}, {ID: 10, Name: "none", Args: [][]byte{}}}}},
		{"run/resend", &Run{ReplyTo: "_INBOX.r", Resend: true, Jobs: []Job{{ID: 7, Name: "sum", Args: [][]byte{arg16}}, {ID: 9, Name: "sum", Args: [][]byte{arg16}}}}},
		{"run/resend-empty", &Run{ReplyTo: "_INBOX.r", Resend: true}},
		{"run/slots", &Run{Slots: 300, Jobs: []Job{{ID: 1, Name: "sum", Args: [][]byte{arg16}}}}},
		{"run/slots-largest", &Run{ReplyTo: "_INBOX.r", Slots: 1<<31 - 1}},
		{"run/limit", &Run{Jobs: []Job{{ID: 11, Name: "sum", Limit: 250 * time.Millisecond, Args: [][]byte{arg16}}}}},
		{"run/ahead", &Run{Slots: 2, Jobs: []Job{{ID: 12, Name: "sum", Ahead: true, Args: [][]byte{arg16}}}}},
		{"run/limit-ahead", &Run{ReplyTo: "_INBOX.r", Slots: 4, Jobs: []Job{
			{ID: 13, Name: "sum", Timeout: time.Second, Limit: 2 * time.Second, Ahead: true, Header: header, Args: [][]byte{arg16}},
			{ID: 14, Name: "sum", Timeout: -1, Limit: time.Millisecond, Args: [][]byte{arg16}},
			{ID: 15, Name: "sum", Ahead: true},
		}}},
		{"run/limit-extremes", &Run{Jobs: []Job{{Limit: math.MaxInt64}, {Limit: 1, Ahead: true}, {Limit: 0}}}},
		{"run/big-arg", &Run{Jobs: []Job{{ID: 1, Name: "big", Args: [][]byte{bytes.Repeat([]byte("big"), 100_000)}}}}},
		{"run/many", many},

		{"cancel/zero", &Cancel{}},
		{"cancel/empty", &Cancel{ReplyTo: "r", IDs: []uint64{}}},
		{"cancel/ids", &Cancel{ReplyTo: "_INBOX.x", IDs: []uint64{0, 1, 127, 128, 1 << 35, math.MaxUint64}}},

		{"results/zero", &Results{}},
		{"results/empty-batch", &Results{WorkerID: "w", Results: []Result{}}},
		{"results/outcomes", &Results{WorkerID: "w-1", Results: []Result{
			{ID: 1, Items: []Outcome{{Value: arg16}}},
			{ID: 2, Items: []Outcome{{Err: fullErr}}},
			{ID: 3, Items: []Outcome{{Value: arg16, Err: &Error{}}}},
			{ID: 4, Items: []Outcome{{}, {Value: []byte{}}, {Err: &Error{Sentinels: []string{}, Types: []TypedValue{}}}}},
			{ID: 5},
			{ID: 6, Items: []Outcome{}},
			{ID: 7, Items: []Outcome{{Err: &Error{Code: CodeShutdown}}, {Value: []byte{0xf6}}}},
		}}},
		{"results/many", manyRes},

		{"heartbeat/zero", &Heartbeat{}},
		{"heartbeat/full", &Heartbeat{WorkerID: "w-2", Load: 12, MaxWorks: 64, Draining: true}},
		{"heartbeat/killed", &Heartbeat{WorkerID: "w-2", Load: 3, MaxWorks: 64, Draining: true, Killed: true}},
		{"heartbeat/killed-seen", &Heartbeat{WorkerID: "w-2", Load: 3, MaxWorks: 64, Draining: true, Killed: true, Seen: map[string]uint64{"aplex.p.x1.inbox": 41, "aplex.p.x2.inbox": 0}}},
		{"heartbeat/negative", &Heartbeat{Load: -1, MaxWorks: math.MinInt32}},

		{"shutdown/abort", &Shutdown{}},
		{"shutdown/graceful", &Shutdown{Graceful: true}},

		{"bye/zero", &Bye{}},
		{"bye/id", &Bye{WorkerID: "worker-7f3a"}},
		{"bye/seen", &Bye{WorkerID: "worker-7f3a", Seen: map[string]uint64{"aplex.p.x.b": 1 << 40, "aplex.p.x.a": 7, "": 0}}},

		{"started/zero", &Started{}},
		{"started/empty", &Started{WorkerID: "w", IDs: []uint64{}}},
		{"started/one", &Started{IDs: []uint64{42}}},
		{"started/ids", &Started{WorkerID: "worker-7f3a", IDs: []uint64{3, 1, 127, 128, 1 << 35, math.MaxUint64, 0}}},
		{"started/many", manyStarted},
	}
}

// normalize returns a deep copy of m in the form Unmarshal produces: empty
// collections and byte strings become nil and deadlines become UTC values
// built from Unix nanoseconds.
func normalize(m Msg) Msg {
	bs := func(p []byte) []byte {
		if len(p) == 0 {
			return nil
		}
		return append([]byte(nil), p...)
	}
	strs := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return append([]string(nil), s...)
	}
	switch m := m.(type) {
	case *Hello:
		c := *m
		c.Works = strs(m.Works)
		c.Labels = nil
		if len(m.Labels) > 0 {
			c.Labels = make(map[string]string, len(m.Labels))
			for k, v := range m.Labels {
				c.Labels[k] = v
			}
		}
		return &c
	case *Run:
		c := &Run{ReplyTo: m.ReplyTo, Resend: m.Resend, Slots: m.Slots}
		for _, j := range m.Jobs {
			nj := Job{ID: j.ID, Name: j.Name, Timeout: j.Timeout, Limit: j.Limit, Ahead: j.Ahead}
			if len(j.Header) > 0 {
				nj.Header = maps.Clone(j.Header)
			}
			for _, a := range j.Args {
				nj.Args = append(nj.Args, bs(a))
			}
			c.Jobs = append(c.Jobs, nj)
		}
		return c
	case *Cancel:
		c := *m
		if len(m.IDs) == 0 {
			c.IDs = nil
		}
		return &c
	case *Started:
		c := *m
		if len(m.IDs) == 0 {
			c.IDs = nil
		}
		return &c
	case *Results:
		c := &Results{WorkerID: m.WorkerID}
		for _, r := range m.Results {
			nr := Result{ID: r.ID}
			for _, o := range r.Items {
				no := Outcome{Value: bs(o.Value)}
				if o.Err != nil {
					e := *o.Err
					e.Sentinels = strs(e.Sentinels)
					e.Types = nil
					for _, tv := range o.Err.Types {
						e.Types = append(e.Types, TypedValue{Name: tv.Name, Value: bs(tv.Value)})
					}
					no.Err = &e
				}
				nr.Items = append(nr.Items, no)
			}
			c.Results = append(c.Results, nr)
		}
		return c
	case *Heartbeat:
		c := *m
		return &c
	case *Shutdown:
		c := *m
		return &c
	case *Bye:
		c := *m
		return &c
	}
	panic(fmt.Sprintf("normalize: unexpected %T", m))
}

func TestRoundTrip(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b, err := Marshal(s.msg)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if n, _ := msgSize(s.msg); n != len(b) {
				t.Fatalf("msgSize = %d, encoded length %d", n, len(b))
			}
			if b[0] != Version || Kind(b[1]) != s.msg.Kind() {
				t.Fatalf("header = %d %d, want %d %d", b[0], b[1], Version, s.msg.Kind())
			}

			// AppendMsg must produce the same bytes after a prefix.
			prefix := []byte("prefix")
			a, err := AppendMsg(prefix[:len(prefix):len(prefix)], s.msg)
			if err != nil {
				t.Fatalf("AppendMsg: %v", err)
			}
			if !bytes.Equal(a[:len(prefix)], prefix) || !bytes.Equal(a[len(prefix):], b) {
				t.Fatalf("AppendMsg differs from Marshal")
			}

			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if want := normalize(s.msg); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v", got, want)
			}

			// Encoding the decoded message gives the same bytes: the
			// encoding is deterministic (labels are sorted).
			b2, err := Marshal(got)
			if err != nil {
				t.Fatalf("re-Marshal: %v", err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs")
			}
		})
	}
}

// largeHeader has more keys than appendStringMap sorts on the stack.
func largeHeader() map[string]string {
	h := map[string]string{}
	for i := range 20 {
		h[fmt.Sprintf("key-%02d", 19-i)] = strings.Repeat("v", i)
	}
	return h
}

// TestJobTimeoutIsADuration checks that a job's deadline crosses as the
// time left, unchanged, whatever its value: no clock is involved.
func TestJobTimeoutIsADuration(t *testing.T) {
	for _, d := range []time.Duration{0, 1, -1, time.Millisecond, 90 * time.Minute, -time.Hour, math.MaxInt64, math.MinInt64} {
		b, err := Marshal(&Run{Jobs: []Job{{Timeout: d}}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.(*Run).Jobs[0].Timeout; got != d {
			t.Fatalf("timeout %v came back as %v", d, got)
		}
	}
}

// TestJobHeaderRoundTrip checks the header's encoding: sorted keys (equal
// headers encode to equal bytes, whatever the map's order), and the bound
// used by the senders' size budget.
func TestJobHeaderRoundTrip(t *testing.T) {
	for _, h := range []map[string]string{nil, {"a": "1"}, {"b": "2", "a": "1", "c": ""}, largeHeader()} {
		j := Job{ID: 1, Name: "w", Header: h, Args: [][]byte{{0xf6}}}
		b, err := Marshal(&Run{Jobs: []Job{j}})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 { // map order varies between runs; the bytes must not
			b2, _ := Marshal(&Run{Jobs: []Job{{ID: 1, Name: "w", Header: maps.Clone(h), Args: [][]byte{{0xf6}}}}})
			if !bytes.Equal(b, b2) {
				t.Fatalf("header %v encodes in two ways", h)
			}
		}
		m, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got := m.(*Run).Jobs[0].Header
		if len(h) == 0 && got != nil || len(h) > 0 && !maps.Equal(got, h) {
			t.Fatalf("header %v came back as %v", h, got)
		}
		if n := len(b) - 2 - 4; n > JobBound(&j) { // version, kind; replyTo, resend, slots, jobs count
			t.Fatalf("job of %d bytes above its bound %d", n, JobBound(&j))
		}
	}
	if HeaderBound(nil) != 0 {
		t.Fatal("an empty header counts bytes")
	}
}

type fakeMsg struct{}

func (fakeMsg) Kind() Kind { return KindBye }

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  Msg
		want string
	}{
		{"nil", nil, "nil message"},
		{"typed-nil-run", (*Run)(nil), "nil message"},
		{"typed-nil-results", (*Results)(nil), "nil message"},
		{"typed-nil-hello", (*Hello)(nil), "nil message"},
		{"typed-nil-cancel", (*Cancel)(nil), "nil message"},
		{"typed-nil-heartbeat", (*Heartbeat)(nil), "nil message"},
		{"typed-nil-shutdown", (*Shutdown)(nil), "nil message"},
		{"typed-nil-bye", (*Bye)(nil), "nil message"},
		{"typed-nil-started", (*Started)(nil), "nil message"},
		{"foreign", fakeMsg{}, "wire.fakeMsg"},
		// Values Unmarshal rejects fail at the sender.
		{"negative-limit", &Run{Jobs: []Job{{ID: 1}, {ID: 7, Limit: -time.Nanosecond}}}, "job 7 with a negative Limit -1ns"},
		{"slots-range", &Run{Slots: 1 << 31}, "Slots 2147483648"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Marshal(tt.msg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal error = %v, want one containing %q", err, tt.want)
			}
			dst := []byte("keep")
			got, err := AppendMsg(dst, tt.msg)
			if err == nil || string(got) != "keep" {
				t.Fatalf("AppendMsg = %q, %v; want dst unchanged and an error", got, err)
			}
			var out bytes.Buffer
			w := NewWriter(&out, 0)
			if err := w.Write(tt.msg); err == nil {
				t.Fatal("Writer.Write succeeded")
			}
			if err := w.Flush(); err != nil || out.Len() != 0 {
				t.Fatalf("Writer wrote %d bytes for a bad message (%v)", out.Len(), err)
			}
		})
	}
}

func TestUnmarshalVersion(t *testing.T) {
	b, err := Marshal(&Bye{WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []byte{0, Version + 1, 255} {
		bad := append([]byte(nil), b...)
		bad[0] = v
		_, err := Unmarshal(bad)
		if !errors.Is(err, ErrVersion) {
			t.Fatalf("version %d: err = %v, want ErrVersion", v, err)
		}
		// The message names both versions.
		if !strings.Contains(err.Error(), fmt.Sprint(v)) || !strings.Contains(err.Error(), fmt.Sprint(Version)) {
			t.Fatalf("version %d: error %q does not name both versions", v, err)
		}
	}
	// The version is checked before anything else.
	if _, err := Unmarshal([]byte{Version + 1}); !errors.Is(err, ErrVersion) {
		t.Fatalf("lone wrong version byte: err = %v, want ErrVersion", err)
	}
}

// TestUnmarshalTruncated checks that every proper prefix of every valid
// encoding is rejected as malformed (and in particular does not panic).
func TestUnmarshalTruncated(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b, err := Marshal(s.msg)
			if err != nil {
				t.Fatal(err)
			}
			// Every prefix of small encodings; for large ones the first and
			// last few thousand (where the structure is) and a spread in
			// between, to keep the test fast.
			for n := 0; n < len(b); n++ {
				if n > 2048 && n < len(b)-2048 && n%97 != 0 {
					continue
				}
				// The three-index slice makes any read past the prefix
				// a bounds failure rather than a read of spare capacity.
				m, err := Unmarshal(b[:n:n])
				if !errors.Is(err, ErrMalformed) || m != nil {
					t.Fatalf("prefix %d/%d: got %v, %v; want nil, ErrMalformed", n, len(b), m, err)
				}
			}
		})
	}
}

func TestUnmarshalTrailing(t *testing.T) {
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b, err := Marshal(s.msg)
			if err != nil {
				t.Fatal(err)
			}
			for _, tail := range [][]byte{{0}, {1, 2, 3}} {
				_, err := Unmarshal(append(b, tail...))
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "trailing") {
					t.Fatalf("with %d trailing bytes: err = %v, want ErrMalformed (trailing)", len(tail), err)
				}
			}
		})
	}
}

func TestUnmarshalMalformed(t *testing.T) {
	v := Version
	tests := []struct {
		name string
		in   []byte
		want string // substring of the error
	}{
		{"empty", nil, "empty"},
		{"no-kind", []byte{v}, "missing kind"},
		{"kind-0", []byte{v, 0}, "unknown kind 0"},
		{"kind-9", []byte{v, 9, 0}, "unknown kind 9"},
		{"kind-255", []byte{v, 255}, "unknown kind 255"},
		{"bool-2", []byte{v, byte(KindShutdown), 2}, "invalid bool"},
		{"run-resend-bool", []byte{v, byte(KindRun), 0, 2, 0}, "invalid bool"},
		{"heartbeat-bool", []byte{v, byte(KindHeartbeat), 0, 0, 0, 7, 0}, "invalid bool"},
		{"heartbeat-killed-bool", []byte{v, byte(KindHeartbeat), 0, 0, 0, 1, 9, 0}, "invalid bool"},
		{"heartbeat-without-killed", []byte{v, byte(KindHeartbeat), 0, 0, 0, 1}, "truncated"},
		{"heartbeat-without-seen", []byte{v, byte(KindHeartbeat), 0, 0, 0, 1, 1}, "truncated"},
		{"heartbeat-seen-duplicate", []byte{v, byte(KindHeartbeat), 0, 0, 0, 1, 1, 2, 1, 'x', 1, 1, 'x', 2}, "duplicate executor"},
		{"bye-seen-twice", []byte{v, byte(KindBye), 1, 'w', 2, 1, 'x', 1, 1, 'x', 2}, "duplicate executor"},
		{"bye-seen-count", []byte{v, byte(KindBye), 1, 'w', 9, 1, 'x', 1}, "count"},
		{"bye-without-seen", []byte{v, byte(KindBye), 1, 'w'}, "truncated"},
		{"outcome-flags", []byte{v, byte(KindResult), 0, 1, 1, 1, 2, 0}, "invalid outcome flags"},
		{"string-length", []byte{v, byte(KindBye), 5, 'a', 'b'}, "length 5 exceeds"},
		{"string-length-huge", []byte{v, byte(KindBye), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "length"},
		{"varint-overflow", []byte{v, byte(KindCancel), 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflows"},
		{"varint-unterminated", []byte{v, byte(KindCancel), 0, 1, 0x80}, "truncated"},
		// A count of 2^40 jobs in a few bytes must be rejected before any
		// allocation is attempted.
		{"jobs-count", []byte{v, byte(KindRun), 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0, 0, 0}, "count"},
		// Two jobs need at least fourteen bytes; thirteen are left.
		{"jobs-count-tight", []byte{v, byte(KindRun), 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, "count 2"},
		{"ids-count", []byte{v, byte(KindCancel), 0, 3, 1, 2}, "count 3"},
		// Slots above 2³¹−1 (2³¹ here).
		{"slots-range", []byte{v, byte(KindRun), 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08, 0}, "slots 2147483648 out of range"},
		{"args-count", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 5, 0, 0}, "count 5"},
		// A job: id 1, name "", timeout 0, limit −1 (zig-zag 1), ...
		{"negative-limit", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0}, "negative limit -1"},
		{"negative-limit-min", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0}, "negative limit"},
		// ... limit 0, ahead 2.
		{"ahead-bool", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0, 2, 0, 0}, "invalid bool"},
		{"started-no-ids", []byte{v, byte(KindStarted), 0}, "truncated"},
		{"started-worker-id", []byte{v, byte(KindStarted), 3, 'w'}, "length 3 exceeds"},
		{"started-id-truncated", []byte{v, byte(KindStarted), 1, 'w', 1, 0x80}, "truncated"},
		{"started-ids-count", []byte{v, byte(KindStarted), 0, 3, 1, 2}, "count 3"},
		{"started-ids-count-huge", []byte{v, byte(KindStarted), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1, 2}, "count"},
		{"started-id-overflow", []byte{v, byte(KindStarted), 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflows"},
		{"items-count", []byte{v, byte(KindResult), 0, 1, 1, 9, 0, 0}, "count 9"},
		{"works-count", []byte{v, byte(KindHello), 1, 0, 0, 0, 4, 0, 0}, "count 4"},
		{"labels-count", []byte{v, byte(KindHello), 1, 0, 0, 0, 0, 2, 0, 0, 0}, "count 2"},
		{"sentinels-count", []byte{v, byte(KindResult), 0, 1, 1, 1, 1, 0, 0, 0, 3, 0}, "count 3"},
		{"duplicate-label", []byte{v, byte(KindHello), 1, 0, 0, 0, 0, 2, 1, 'k', 0, 1, 'k', 0}, "duplicate label"},
		// A job: id, name "", timeout, limit, ahead, header of 2 entries,
		// then 0 args.
		{"duplicate-header-key", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 1, 'k', 0, 1, 'k', 1, 'x', 0}, "duplicate header key"},
		{"header-count", []byte{v, byte(KindRun), 0, 0, 0, 1, 1, 0, 0, 0, 0, 9, 1, 'k', 0, 0}, "count 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Unmarshal(tt.in)
			if !errors.Is(err, ErrMalformed) || m != nil {
				t.Fatalf("got %v, %v; want nil, ErrMalformed", m, err)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestUnmarshalAllocBound checks that a hostile count cannot make the
// decoder allocate far more than its input: the largest possible job list
// for the input is allocated and the rest rejected.
func TestUnmarshalAllocBound(t *testing.T) {
	for _, in := range [][]byte{
		{Version, byte(KindRun), 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20},
		{Version, byte(KindCancel), 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20},
		{Version, byte(KindStarted), 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20},
	} {
		in = append(in, make([]byte, 4096)...)
		allocs := testing.AllocsPerRun(10, func() {
			if _, err := Unmarshal(in); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "count") {
				t.Fatalf("%v: err = %v", Kind(in[1]), err)
			}
		})
		// Only the error itself is allocated.
		if allocs > 10 {
			t.Fatalf("%v: %v allocations for a rejected count", Kind(in[1]), allocs)
		}
	}
}

func TestUnmarshalAliasing(t *testing.T) {
	b, err := Marshal(&Results{Results: []Result{{ID: 1, Items: []Outcome{{Value: []byte("abc")}, {Value: []byte("xyz")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	orig := append([]byte(nil), b...)
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	items := m.(*Results).Results[0].Items
	v := items[0].Value
	// The value aliases the input...
	if &v[0] != &b[bytes.Index(b, []byte("abc"))] {
		t.Fatalf("Value does not alias the input")
	}
	// ...but its capacity is clipped, so appending cannot clobber the
	// following bytes.
	if cap(v) != len(v) {
		t.Fatalf("cap(Value) = %d, want %d", cap(v), len(v))
	}
	_ = append(v, "!!!!!!!!"...)
	if !bytes.Equal(b, orig) {
		t.Fatalf("appending to a decoded value modified the input")
	}
	if string(items[1].Value) != "xyz" {
		t.Fatalf("second value = %q", items[1].Value)
	}
}

// TestUnmarshalStringsCopied checks that decoded strings do not share memory
// with the input, which the caller may reuse.
func TestUnmarshalStringsCopied(t *testing.T) {
	b, err := Marshal(&Run{ReplyTo: "reply", Jobs: []Job{{Name: "name"}, {Name: "name"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	r := m.(*Run)
	if r.ReplyTo != "reply" || r.Jobs[0].Name != "name" || r.Jobs[1].Name != "name" {
		t.Fatalf("strings changed with the input: %+v", r)
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindHello, "Hello"}, {KindRun, "Run"}, {KindCancel, "Cancel"}, {KindResult, "Results"},
		{KindHeartbeat, "Heartbeat"}, {KindShutdown, "Shutdown"}, {KindBye, "Bye"},
		{KindStarted, "Started"},
		{0, "Kind(0)"}, {9, "Kind(9)"}, {200, "Kind(200)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", byte(tt.k), got, tt.want)
		}
	}
}

func TestMarshalAllocs(t *testing.T) {
	m := &Run{Jobs: []Job{{ID: 1, Name: "sum", Args: [][]byte{[]byte("0123456789abcdef")}}}}
	if n := testing.AllocsPerRun(100, func() { _, _ = Marshal(m) }); n != 1 {
		t.Errorf("Marshal: %v allocations, want 1", n)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _, _ = AppendMsg(buf[:0], m) }); n != 0 {
		t.Errorf("AppendMsg into a large enough buffer: %v allocations, want 0", n)
	}
}

// TestEncodingGolden pins the byte layout of the version-4 additions, as
// PROTOCOL.md states it: a job's limit and ahead flag between its timeout
// and its header, and the Started body.
func TestEncodingGolden(t *testing.T) {
	tests := []struct {
		name string
		msg  Msg
		want []byte
	}{
		{"job", &Run{Slots: 3, Jobs: []Job{{ID: 1, Name: "w", Timeout: 1, Limit: 2, Ahead: true, Args: [][]byte{{0xf6}}}}},
			// replyTo "", resend, slots 3, 1 job: id 1, name "w", timeout 1
			// and limit 2 (zig-zag), ahead, no header, 1 arg.
			[]byte{Version, byte(KindRun), 0, 0, 3, 1, 1, 1, 'w', 2, 4, 1, 0, 1, 1, 0xf6}},
		{"job-no-limit", &Run{Jobs: []Job{{ID: 300, Timeout: -1}}},
			[]byte{Version, byte(KindRun), 0, 0, 0, 1, 0xac, 0x02, 0, 1, 0, 0, 0, 0}},
		{"started", &Started{WorkerID: "w", IDs: []uint64{1, 300}},
			[]byte{Version, byte(KindStarted), 1, 'w', 2, 1, 0xac, 0x02}},
		{"started-empty", &Started{}, []byte{Version, byte(KindStarted), 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, tt.want) {
				t.Fatalf("Marshal = % x, want % x", b, tt.want)
			}
		})
	}
}

// TestJobLimitIsADuration checks that a job's Limit crosses unchanged
// whatever its value, and Ahead with it.
func TestJobLimitIsADuration(t *testing.T) {
	for _, d := range []time.Duration{0, 1, time.Millisecond, 90 * time.Minute, math.MaxInt64} {
		for _, ahead := range []bool{false, true} {
			b, err := Marshal(&Run{Jobs: []Job{{Timeout: -d, Limit: d, Ahead: ahead}}})
			if err != nil {
				t.Fatal(err)
			}
			m, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if j := m.(*Run).Jobs[0]; j.Limit != d || j.Ahead != ahead || j.Timeout != -d {
				t.Fatalf("limit %v, ahead %v, timeout %v came back as %v, %v, %v", d, ahead, -d, j.Limit, j.Ahead, j.Timeout)
			}
		}
	}
}

// TestEveryKind checks that the samples, and so the round-trip, truncation
// and fuzz seeds built from them, cover every kind, and that the kind past
// the last is unknown.
func TestEveryKind(t *testing.T) {
	seen := map[Kind]bool{}
	for _, s := range samples() {
		seen[s.msg.Kind()] = true
	}
	for k := KindHello; k <= KindStarted; k++ {
		if !seen[k] {
			t.Errorf("no sample of %v", k)
		}
		if strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d has no name", byte(k))
		}
	}
	if _, err := Unmarshal([]byte{Version, byte(KindStarted + 1), 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kind %d: err = %v, want ErrMalformed", byte(KindStarted+1), err)
	}
}

// TestBatchBounds checks the size rules of bound.go against the encoder:
// a batch's envelope (frame header included) and the bounds of its items
// together are never below its encoded size, so a batch whose items fit
// BatchBudget(limit, name) always fits limit.
func TestBatchBounds(t *testing.T) {
	for _, s := range samples() {
		var name string
		items := 0
		switch m := s.msg.(type) {
		case *Run:
			name = m.ReplyTo
			for i := range m.Jobs {
				items += JobBound(&m.Jobs[i])
			}
		case *Results:
			name = m.WorkerID
			for i := range m.Results {
				items += ResultBound(&m.Results[i])
			}
		case *Cancel:
			name, items = m.ReplyTo, MaxVarint*len(m.IDs)
		case *Started:
			name, items = m.WorkerID, MaxVarint*len(m.IDs)
		default:
			continue
		}
		b, err := Marshal(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		if bound := EnvelopeBound + MaxVarint + len(name) + items; HeaderSize+len(b) > bound {
			t.Errorf("%s: %d bytes framed, above the bound %d", s.name, HeaderSize+len(b), bound)
		}
	}
}
