package seal

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aplex-go/aplex/internal/wire"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func pair(t testing.TB, exKeys, wkKeys [][]byte) (ex, wk *Box) {
	t.Helper()
	ex, err := New(Config{Keys: exKeys, Pool: "p", ID: "ex1", Role: Executor})
	if err != nil {
		t.Fatal(err)
	}
	wk, err = New(Config{Keys: wkKeys, Pool: "p", ID: "w1", Role: Worker})
	if err != nil {
		t.Fatal(err)
	}
	return ex, wk
}

func mustSeal(t testing.TB, b *Box, subject string, to Epoch, plain string) []byte {
	t.Helper()
	m, err := b.Seal(nil, subject, to, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMagicIsNoWireVersion(t *testing.T) {
	if Magic == wire.Version {
		t.Fatalf("seal.Magic %#x equals wire.Version: sealed and clear messages would be confused", Magic)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	ex, wk := pair(t, [][]byte{key(1)}, [][]byte{key(1)})
	// Direct to the worker, and broadcast from it.
	m := mustSeal(t, ex, "aplex.p.w.w1", wk.Epoch(), "run")
	if bytes.Contains(m, []byte("run")) {
		t.Fatal("plaintext visible in the sealed message")
	}
	plain, p, err := wk.Open("aplex.p.w.w1", m, true)
	if err != nil || string(plain) != "run" || p.ID != "ex1" || p.Epoch != ex.Epoch() {
		t.Fatalf("Open = %q, %+v, %v", plain, p, err)
	}
	m = mustSeal(t, wk, "aplex.p.hello", Epoch{}, "hello")
	plain, p, err = ex.Open("aplex.p.hello", m, false)
	if err != nil || string(plain) != "hello" || p.ID != "w1" {
		t.Fatalf("Open = %q, %+v, %v", plain, p, err)
	}
	if got := ex.EpochOf("w1"); got != wk.Epoch() {
		t.Fatalf("EpochOf(w1) = %x, want %x", got, wk.Epoch())
	}
	if s := wk.Stats(); s.Opened != 1 || s.Dropped() != 0 {
		t.Fatalf("worker stats %+v", s)
	}
}

// TestOpenDrops is the table of everything a receiver must drop, each with
// its counter.
func TestOpenDrops(t *testing.T) {
	const subj = "aplex.p.w.w1"
	cases := []struct {
		name string
		// msg returns the message to open after whatever it sent first.
		msg    func(t *testing.T, ex, wk *Box) []byte
		subj   string
		direct bool
		want   error
		count  func(Stats) uint64
	}{
		{"unsealed", func(t *testing.T, ex, wk *Box) []byte { return []byte{wire.Version, 1, 2, 3} },
			subj, true, ErrUnsealed, func(s Stats) uint64 { return s.Unsealed }},
		{"empty", func(t *testing.T, ex, wk *Box) []byte { return nil },
			subj, true, ErrUnsealed, func(s Stats) uint64 { return s.Unsealed }},
		{"truncated header", func(t *testing.T, ex, wk *Box) []byte {
			return mustSeal(t, ex, subj, wk.Epoch(), "x")[:20]
		}, subj, true, ErrTruncated, func(s Stats) uint64 { return s.Truncated }},
		{"truncated below the tag", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), "xyz")
			return m[:len(m)-5]
		}, subj, true, ErrTruncated, func(s Stats) uint64 { return s.Truncated }},
		{"truncated ciphertext", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), strings.Repeat("x", 64))
			return m[:len(m)-5]
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"flipped ciphertext bit", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), "xyz")
			m[len(m)-17] ^= 1
			return m
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"forged sender id", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), "xyz")
			m[hdrFixed] = 'X' // "ex1" → "Xx1"
			return m
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"forged sequence", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), "xyz")
			m[44] ^= 0x80
			return m
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"moved to another subject", func(t *testing.T, ex, wk *Box) []byte {
			return mustSeal(t, ex, "aplex.p.w.w2", wk.Epoch(), "xyz")
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"addressed to another process", func(t *testing.T, ex, wk *Box) []byte {
			return mustSeal(t, ex, subj, Epoch{1}, "xyz")
		}, subj, true, ErrMisaddressed, func(s Stats) uint64 { return s.Misaddressed }},
		{"direct on a broadcast subject", func(t *testing.T, ex, wk *Box) []byte {
			return mustSeal(t, ex, "aplex.p.discover", wk.Epoch(), "xyz")
		}, "aplex.p.discover", false, ErrMisaddressed, func(s Stats) uint64 { return s.Misaddressed }},
		{"replayed", func(t *testing.T, ex, wk *Box) []byte {
			m := mustSeal(t, ex, subj, wk.Epoch(), "xyz")
			if _, _, err := wk.Open(subj, bytes.Clone(m), true); err != nil {
				t.Fatal(err)
			}
			return m
		}, subj, true, ErrReplayed, func(s Stats) uint64 { return s.Replayed }},
		{"beyond the window", func(t *testing.T, ex, wk *Box) []byte {
			old := mustSeal(t, ex, subj, wk.Epoch(), "old")
			for range Window {
				ex.seq.Add(1)
			}
			if _, _, err := wk.Open(subj, mustSeal(t, ex, subj, wk.Epoch(), "new"), true); err != nil {
				t.Fatal(err)
			}
			return old
		}, subj, true, ErrReplayed, func(s Stats) uint64 { return s.Replayed }},
		{"other key", func(t *testing.T, ex, wk *Box) []byte {
			other, err := New(Config{Keys: [][]byte{key(2)}, Pool: "p", ID: "ex1", Role: Executor})
			if err != nil {
				t.Fatal(err)
			}
			return mustSeal(t, other, subj, wk.Epoch(), "xyz")
		}, subj, true, ErrUnknownKey, func(s Stats) uint64 { return s.UnknownKey }},
		{"other pool", func(t *testing.T, ex, wk *Box) []byte {
			other, err := New(Config{Keys: [][]byte{key(1)}, Pool: "q", ID: "ex1", Role: Executor})
			if err != nil {
				t.Fatal(err)
			}
			return mustSeal(t, other, subj, wk.Epoch(), "xyz")
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"reflected from the same side", func(t *testing.T, ex, wk *Box) []byte {
			// Another worker's message is never opened by a worker.
			w2, err := New(Config{Keys: [][]byte{key(1)}, Pool: "p", ID: "w2", Role: Worker})
			if err != nil {
				t.Fatal(err)
			}
			return mustSeal(t, w2, subj, wk.Epoch(), "xyz")
		}, subj, true, ErrForged, func(s Stats) uint64 { return s.Forged }},
		{"earlier process of the sender", func(t *testing.T, ex, wk *Box) []byte {
			old := mustSeal(t, ex, "aplex.p.discover", Epoch{}, "old")
			ex2, err := New(Config{Keys: [][]byte{key(1)}, Pool: "p", ID: "ex1", Role: Executor})
			if err != nil {
				t.Fatal(err)
			}
			ex2.epoch[7]++ // started later, whatever the clock's resolution
			ex2.seal, _ = senderAEAD(mustDerive(t, key(1), "p", Executor), ex2.epoch, "ex1")
			if _, _, err := wk.Open("aplex.p.discover", mustSeal(t, ex2, "aplex.p.discover", Epoch{}, "new"), false); err != nil {
				t.Fatal(err)
			}
			return old
		}, "aplex.p.discover", false, ErrStale, func(s Stats) uint64 { return s.Stale }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ex, wk := pair(t, [][]byte{key(1)}, [][]byte{key(1)})
			m := c.msg(t, ex, wk)
			before := c.count(wk.Stats())
			plain, p, err := wk.Open(c.subj, m, c.direct)
			if !errors.Is(err, c.want) || plain != nil || p != nil {
				t.Fatalf("Open = %q, %v, %v; want error %v", plain, p, err, c.want)
			}
			if got := c.count(wk.Stats()); got != before+1 {
				t.Fatalf("counter %d → %d, want +1 (stats %+v)", before, got, wk.Stats())
			}
		})
	}
}

func mustDerive(t *testing.T, k []byte, pool string, r Role) dirKey {
	d, err := derive(k, pool, r)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOpenReorderedWithinWindow: concurrent publishers may reorder a
// sender's messages on one subject; each is accepted exactly once.
func TestOpenReorderedWithinWindow(t *testing.T) {
	ex, wk := pair(t, [][]byte{key(1)}, [][]byte{key(1)})
	const subj = "aplex.p.w.w1"
	var ms [][]byte
	for i := range 100 {
		ms = append(ms, mustSeal(t, ex, subj, wk.Epoch(), strings.Repeat("x", i)))
	}
	for i := len(ms) - 1; i >= 0; i-- { // newest first
		if _, _, err := wk.Open(subj, bytes.Clone(ms[i]), true); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i := range ms {
		if _, _, err := wk.Open(subj, bytes.Clone(ms[i]), true); !errors.Is(err, ErrReplayed) {
			t.Fatalf("replay of message %d: %v", i, err)
		}
	}
}

// TestKeyRotation: each phase of a change-over opens the other phases'
// messages; a process that dropped the old key no longer opens it.
func TestKeyRotation(t *testing.T) {
	old, neu := key(1), key(2)
	phases := []struct {
		name string
		keys [][]byte
	}{
		{"old", [][]byte{old}},
		{"old+accept new", [][]byte{old, neu}},
		{"new+accept old", [][]byte{neu, old}},
		{"new", [][]byte{neu}},
	}
	for i, a := range phases {
		for j, b := range phases {
			// Neighbouring phases (a fleet is in at most two at once) interoperate.
			if j < i-1 || j > i+1 {
				continue
			}
			t.Run(a.name+"→"+b.name, func(t *testing.T) {
				ex, wk := pair(t, a.keys, b.keys)
				m := mustSeal(t, ex, "aplex.p.w.w1", wk.Epoch(), "run")
				if _, _, err := wk.Open("aplex.p.w.w1", m, true); err != nil {
					t.Fatalf("worker in phase %q cannot open executor in phase %q: %v", b.name, a.name, err)
				}
				m = mustSeal(t, wk, "aplex.p.hello", Epoch{}, "hello")
				if _, _, err := ex.Open("aplex.p.hello", m, false); err != nil {
					t.Fatalf("executor in phase %q cannot open worker in phase %q: %v", a.name, b.name, err)
				}
			})
		}
	}
	ex, wk := pair(t, [][]byte{old}, [][]byte{neu})
	if _, _, err := wk.Open("aplex.p.w.w1", mustSeal(t, ex, "aplex.p.w.w1", wk.Epoch(), "x"), true); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key opened after rotation: %v", err)
	}
}

func TestKeyValidation(t *testing.T) {
	cases := []struct {
		name string
		key  []byte
		want string
	}{
		{"short", make([]byte, 16), "32 random bytes, got 16"},
		{"long", make([]byte, 33), "got 33"},
		{"nil", nil, "got 0"},
		{"zero", make([]byte, 32), "all zero"},
		{"good", key(7), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckKey(c.key)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("CheckKey = %v, want %q", err, c.want)
			}
			_, err = New(Config{Keys: [][]byte{c.key}, Pool: "p", ID: "x"})
			if (c.want == "") != (err == nil) {
				t.Fatalf("New = %v", err)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	k := NewKey()
	cases := []struct {
		name, text string
		ok         bool
	}{
		{"hex", FormatKey(k), true},
		{"hex with newline", FormatKey(k) + "\n", true},
		{"base64", "  " + b64(k) + " ", true},
		{"short hex", FormatKey(k)[:62], false},
		{"garbage", "not a key!", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseKey(c.text)
			if c.ok && (err != nil || !bytes.Equal(got, k)) || !c.ok && err == nil {
				t.Fatalf("ParseKey(%q) = %x, %v", c.text, got, err)
			}
		})
	}
}

func TestSealChecks(t *testing.T) {
	ex, _ := pair(t, [][]byte{key(1)}, [][]byte{key(1)})
	if _, err := ex.Seal(nil, "", Epoch{}, nil); err == nil {
		t.Fatal("empty subject sealed")
	}
	if _, err := ex.Seal(nil, strings.Repeat("s", maxSubj+1), Epoch{}, nil); err == nil {
		t.Fatal("overlong subject sealed")
	}
	if _, err := New(Config{Keys: [][]byte{key(1)}, Pool: "p", ID: strings.Repeat("i", 256)}); err == nil {
		t.Fatal("overlong id accepted")
	}
	if _, err := New(Config{Pool: "p", ID: "i"}); err == nil {
		t.Fatal("no key accepted")
	}
	m := mustSeal(t, ex, strings.Repeat("s", maxSubj), Epoch{}, "x")
	if over := len(m) - 1; over > MaxOverhead {
		t.Fatalf("overhead %d > MaxOverhead %d", over, MaxOverhead)
	}
}

// TestSealConcurrent: senders sealing from several goroutines at once
// (the executor's sender, its control messages, a worker's work
// goroutines) never reuse a sequence number, and every message opens
// once, in whatever order it arrives within the window.
func TestSealConcurrent(t *testing.T) {
	ex, wk := pair(t, [][]byte{key(1)}, [][]byte{key(1)})
	const subj = "aplex.p.w.w1"
	out := make(chan []byte, 800)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				m, err := ex.Seal(nil, subj, wk.Epoch(), []byte{byte(g), byte(i)})
				if err != nil {
					t.Error(err)
					return
				}
				out <- m
			}
		})
	}
	wg.Wait()
	close(out)
	var all [][]byte
	for m := range out {
		all = append(all, m)
	}
	for i, m := range all {
		if _, _, err := wk.Open(subj, bytes.Clone(m), true); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for i, m := range all {
		if _, _, err := wk.Open(subj, m, true); !errors.Is(err, ErrReplayed) {
			t.Fatalf("replay of message %d: %v", i, err)
		}
	}
}
