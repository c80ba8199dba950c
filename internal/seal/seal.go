// Package seal authenticates and encrypts the messages of one cluster pool
// under a pool key, so that a NATS server (or anyone who can reach it) that
// does not hold the key can neither read a message, nor forge one, nor
// replay one to a process that has seen it, nor replay an old process's
// messages to anyone who knows its successor.
//
// # Construction
//
// Each pool key K derives, with HKDF-SHA256, one key per pool and per
// direction: executors seal with the executors-to-workers key and open with
// the workers-to-executors key, workers the other way round, so a message
// can never be reflected back to a process of the side that sent it. Each
// sending process (a Box) has a random epoch and a 64-bit sequence number;
// its messages are sealed with AES-256-GCM under a sub-key derived from the
// direction key, its epoch and its sender id, with the sequence number as
// the nonce, which is therefore never reused under one key.
//
// The clear header of a sealed message is authenticated (it is the AEAD's
// additional data):
//
//	0      magic (0xA7, never a wire.Version)
//	1..5   key id (4 bytes derived from the key: rotation picks the key)
//	5..21  sender epoch: start time (unix ns) and 8 random bytes
//	21..37 recipient epoch: the one process a direct message is for, zero
//	       on broadcast subjects
//	37..45 sequence number, from 1
//	45     len(sender id)
//	46..48 len(subject)
//	48..   sender id, subject, then the ciphertext and its 16-byte tag
//
// A receiver drops (and counts) a message that is not sealed, sealed with
// a key it does not hold, truncated, forged (the tag does not verify, the
// subject is not the one it arrived on), replayed or older than its replay
// window on that subject, from an older epoch of a sender id than the
// newest it has met (a replay of a process that restarted), or addressed
// to another process. What passes was sent by a holder of the pool key,
// under the sender id it names, once.
//
// What a pool key cannot do: every holder of the key can seal under any
// sender id, so a stolen key (a compromised worker machine) still lets its
// holder claim another worker's id. The sender id binds results to the
// worker a job was sent to against everyone else.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// KeySize is the length of a pool key: 32 random bytes.
const KeySize = 32

// Magic is the first byte of a sealed message. It differs from every
// wire.Version, so a peer without a key recognises a sealed message, and a
// peer with a key an unsealed one.
const Magic byte = 0xA7

const (
	hdrFixed  = 48
	tagSize   = 16
	maxID     = 255
	maxSubj   = 512
	epochSize = 16
	// Window is how far behind the newest sequence number seen on a
	// subject a message may arrive (reordered by concurrent publishers)
	// and still be accepted once.
	Window = 1024
	// maxPeers bounds the senders a Box remembers; the least recently
	// heard is forgotten first. Only holders of the key add senders.
	maxPeers = 1 << 14
)

// MaxOverhead bounds what sealing adds to a message of a sender whose id
// is at most 255 bytes, on a subject of at most 512 bytes.
const MaxOverhead = hdrFixed + maxID + maxSubj + tagSize

// Errors of Open, one per reason a message is dropped.
var (
	ErrUnsealed     = errors.New("seal: message is not sealed")
	ErrUnknownKey   = errors.New("seal: message is sealed with a key this process does not hold")
	ErrTruncated    = errors.New("seal: message is truncated")
	ErrForged       = errors.New("seal: message does not authenticate")
	ErrReplayed     = errors.New("seal: message was seen before, or is older than the replay window")
	ErrStale        = errors.New("seal: message is from an earlier process of its sender")
	ErrMisaddressed = errors.New("seal: message is addressed to another process")
)

// Role says which side of the pool a Box speaks for.
type Role byte

const (
	// Executor seals Runs, Cancels, Shutdowns and discover requests, and
	// opens what workers send.
	Executor Role = iota
	// Worker seals Hellos, Heartbeats, Byes and Results, and opens what
	// executors send.
	Worker
)

// Epoch identifies one process (one Box): its start time, then random
// bytes. A later epoch of the same sender id supersedes earlier ones.
type Epoch [epochSize]byte

// IsZero reports whether e is the zero epoch (a broadcast recipient).
func (e Epoch) IsZero() bool { return e == Epoch{} }

// newer reports whether e started after o (ties broken by the random
// bytes, so two epochs are never equal in rank).
func (e Epoch) newer(o Epoch) bool {
	for i := range e {
		if e[i] != o[i] {
			return e[i] > o[i]
		}
	}
	return false
}

// Peer is a sender a Box has opened messages from.
type Peer struct {
	ID    string
	Epoch Epoch
}

// Stats counts what a Box opened and dropped, by reason.
type Stats struct {
	Opened, Sealed                          uint64
	Unsealed, UnknownKey, Truncated, Forged uint64
	Replayed, Stale, Misaddressed           uint64
}

// Dropped is the number of messages dropped for any reason.
func (s Stats) Dropped() uint64 {
	return s.Unsealed + s.UnknownKey + s.Truncated + s.Forged + s.Replayed + s.Stale + s.Misaddressed
}

// Config sets up a Box.
type Config struct {
	// Keys are the pool keys, KeySize bytes each: Keys[0] seals, and
	// messages sealed with any of them open (a key rotation).
	Keys [][]byte
	// Pool is the pool name: keys are derived per pool.
	Pool string
	// ID is this process's sender id (worker id or executor id), at most
	// 255 bytes.
	ID string
	// Role is the side this process speaks for.
	Role Role
}

// Box seals this process's messages and opens its peers'. It is safe for
// concurrent use.
type Box struct {
	id    string
	epoch Epoch
	seq   atomic.Uint64
	seal  cipher.AEAD // this sender's sub-key under Keys[0]
	keyID [4]byte     // of Keys[0]
	open  []dirKey    // every key, in the receiving direction

	mu     sync.Mutex
	peers  map[string][]*peer // by sender id: its processes (epochs) and keys
	npeers int
	newest map[string]Epoch // per sender id, its newest epoch met
	clock  uint64           // recency stamp of peers

	opened, sealed, unsealed, unknownKey, truncated, forged,
	replayed, stale, misaddressed atomic.Uint64
}

type dirKey struct {
	id  [4]byte
	prk []byte
}

type peer struct {
	Peer
	key     int // index into Box.open
	aead    cipher.AEAD
	windows map[string]*window // per subject
	used    uint64
}

// CheckKey reports why key cannot be a pool key.
func CheckKey(key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("a pool key is %d random bytes, got %d (make one with cluster.NewPoolKey, or `openssl rand -hex 32`)", KeySize, len(key))
	}
	if subtle.ConstantTimeCompare(key, make([]byte, KeySize)) == 1 {
		return errors.New("the pool key is all zero bytes: use random bytes (cluster.NewPoolKey, or `openssl rand -hex 32`)")
	}
	return nil
}

// NewKey returns a random pool key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails (crypto/rand, Go ≥ 1.24)
	return k
}

// FormatKey returns key as text for APLEX_CLUSTER_KEY: 64 hex digits.
func FormatKey(key []byte) string { return hex.EncodeToString(key) }

// ParseKey reads a pool key written as 64 hex digits (FormatKey, `openssl
// rand -hex 32`) or as base64 (standard or URL alphabet, padded or not),
// surrounding space ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty pool key")
	}
	var key []byte
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			key = k
		}
	}
	if key == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err := enc.DecodeString(s); err == nil {
				key = k
				break
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("pool key of %d characters is neither 64 hex digits nor base64", len(s))
	}
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

const salt = "aplex seal v1"

// derive returns the direction key and key id of key for pool.
func derive(key []byte, pool string, dir Role) (dirKey, error) {
	var d dirKey
	info := "pool " + pool + "; from executors"
	if dir == Worker {
		info = "pool " + pool + "; from workers"
	}
	prk, err := hkdf.Key(sha256.New, key, []byte(salt), info, 32)
	if err != nil {
		return d, err
	}
	id, err := hkdf.Key(sha256.New, key, []byte(salt), "key id", 4)
	if err != nil {
		return d, err
	}
	d.prk = prk
	copy(d.id[:], id)
	return d, nil
}

// senderAEAD returns the AEAD of sender id in epoch under d.
func senderAEAD(d dirKey, epoch Epoch, id string) (cipher.AEAD, error) {
	info := make([]byte, 0, len("sender ")+epochSize+len(id))
	info = append(info, "sender "...)
	info = append(info, epoch[:]...)
	info = append(info, id...)
	k, err := hkdf.Expand(sha256.New, d.prk, string(info), 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// New returns a Box with a fresh epoch.
func New(c Config) (*Box, error) {
	if len(c.Keys) == 0 {
		return nil, errors.New("seal: no key")
	}
	if c.ID == "" || len(c.ID) > maxID {
		return nil, fmt.Errorf("seal: sender id of %d bytes: want 1 to %d", len(c.ID), maxID)
	}
	other := Worker
	if c.Role == Worker {
		other = Executor
	}
	b := &Box{id: c.ID, peers: map[string][]*peer{}, newest: map[string]Epoch{}}
	binary.BigEndian.PutUint64(b.epoch[:8], uint64(time.Now().UnixNano()))
	rand.Read(b.epoch[8:])
	for i, k := range c.Keys {
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i, err)
		}
		if i == 0 {
			d, err := derive(k, c.Pool, c.Role)
			if err != nil {
				return nil, err
			}
			if b.seal, err = senderAEAD(d, b.epoch, c.ID); err != nil {
				return nil, err
			}
			b.keyID = d.id
		}
		d, err := derive(k, c.Pool, other)
		if err != nil {
			return nil, err
		}
		b.open = append(b.open, d)
	}
	return b, nil
}

// Epoch is this process's epoch: peers address direct messages to it.
func (b *Box) Epoch() Epoch { return b.epoch }

// ID is this process's sender id.
func (b *Box) ID() string { return b.id }

// Stats returns the counters.
func (b *Box) Stats() Stats {
	return Stats{
		Opened: b.opened.Load(), Sealed: b.sealed.Load(),
		Unsealed: b.unsealed.Load(), UnknownKey: b.unknownKey.Load(), Truncated: b.truncated.Load(),
		Forged: b.forged.Load(), Replayed: b.replayed.Load(), Stale: b.stale.Load(), Misaddressed: b.misaddressed.Load(),
	}
}

// Seal appends to dst the sealed form of plain, to be published on
// subject, for the process of epoch to (zero on a broadcast subject).
func (b *Box) Seal(dst []byte, subject string, to Epoch, plain []byte) ([]byte, error) {
	if len(subject) == 0 || len(subject) > maxSubj {
		return dst, fmt.Errorf("seal: subject of %d bytes: want 1 to %d", len(subject), maxSubj)
	}
	seq := b.seq.Add(1)
	start := len(dst)
	need := hdrFixed + len(b.id) + len(subject) + len(plain) + tagSize
	if cap(dst)-start < need {
		grown := make([]byte, start, start+need)
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, Magic)
	dst = append(dst, b.keyID[:]...)
	dst = append(dst, b.epoch[:]...)
	dst = append(dst, to[:]...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = append(dst, byte(len(b.id)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(subject)))
	dst = append(dst, b.id...)
	dst = append(dst, subject...)
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], seq)
	dst = b.seal.Seal(dst, nonce[:], plain, dst[start:])
	b.sealed.Add(1)
	return dst, nil
}

// header is a parsed clear header.
type header struct {
	keyID   [4]byte
	epoch   Epoch
	to      Epoch
	seq     uint64
	id      []byte
	subject []byte
	n       int // header length
}

func parse(data []byte) (header, error) {
	var h header
	if len(data) == 0 || data[0] != Magic {
		return h, ErrUnsealed
	}
	if len(data) < hdrFixed+tagSize {
		return h, ErrTruncated
	}
	copy(h.keyID[:], data[1:5])
	copy(h.epoch[:], data[5:21])
	copy(h.to[:], data[21:37])
	h.seq = binary.BigEndian.Uint64(data[37:45])
	idLen := int(data[45])
	subjLen := int(binary.BigEndian.Uint16(data[46:48]))
	h.n = hdrFixed + idLen + subjLen
	if len(data) < h.n+tagSize {
		return h, ErrTruncated
	}
	if idLen == 0 || subjLen == 0 || h.seq == 0 {
		return h, ErrForged // no Box seals these
	}
	h.id = data[hdrFixed : hdrFixed+idLen]
	h.subject = data[hdrFixed+idLen : h.n]
	return h, nil
}

// Open checks and decrypts data, a message that arrived on subject, in
// place, and returns the plaintext (aliasing data) and its sender. direct
// says the subject is this process's own (its inbox or worker subject):
// the message must be addressed to its epoch; on a broadcast subject it
// must be addressed to no one. A message that fails any check is counted
// and returned with the error naming the reason.
func (b *Box) Open(subject string, data []byte, direct bool) ([]byte, *Peer, error) {
	p, plain, err := b.open1(subject, data, direct)
	if err != nil {
		b.count(err)
		return nil, nil, err
	}
	b.opened.Add(1)
	return plain, p, nil
}

func (b *Box) count(err error) {
	switch err {
	case ErrUnsealed:
		b.unsealed.Add(1)
	case ErrUnknownKey:
		b.unknownKey.Add(1)
	case ErrTruncated:
		b.truncated.Add(1)
	case ErrReplayed:
		b.replayed.Add(1)
	case ErrStale:
		b.stale.Add(1)
	case ErrMisaddressed:
		b.misaddressed.Add(1)
	default:
		b.forged.Add(1)
	}
}

func (b *Box) open1(subject string, data []byte, direct bool) (*Peer, []byte, error) {
	h, err := parse(data)
	if err != nil {
		return nil, nil, err
	}
	ki := -1
	for i := range b.open {
		if b.open[i].id == h.keyID {
			ki = i
			break
		}
	}
	if ki < 0 {
		return nil, nil, ErrUnknownKey
	}
	if string(h.subject) != subject {
		return nil, nil, ErrForged // moved to another subject
	}
	if direct && h.to != b.epoch || !direct && !h.to.IsZero() {
		return nil, nil, ErrMisaddressed
	}
	b.mu.Lock()
	p := b.peer(ki, &h)
	if err := b.admissible(p, &h, subject); err != nil {
		b.mu.Unlock()
		return nil, nil, err
	}
	b.mu.Unlock()
	var aead cipher.AEAD
	if p != nil {
		aead = p.aead
	} else if aead, err = senderAEAD(b.open[ki], h.epoch, string(h.id)); err != nil {
		return nil, nil, err
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], h.seq)
	ct := data[h.n:]
	plain, err := aead.Open(ct[:0], nonce[:], ct, data[:h.n])
	if err != nil {
		return nil, nil, ErrForged
	}
	// Authentic: record it, unless a concurrent Open of the same message
	// got there first.
	b.mu.Lock()
	defer b.mu.Unlock()
	if p == nil {
		p = b.peer(ki, &h)
		if p == nil {
			p = &peer{Peer: Peer{ID: string(h.id), Epoch: h.epoch}, key: ki, aead: aead, windows: map[string]*window{}}
			b.addPeer(p)
		}
	}
	if err := b.admissible(p, &h, subject); err != nil {
		return nil, nil, err
	}
	if n, ok := b.newest[p.ID]; !ok || h.epoch.newer(n) {
		b.setNewest(p.ID, h.epoch)
	}
	w := p.windows[subject]
	if w == nil {
		if len(p.windows) >= 64 {
			clear(p.windows) // a peer uses a handful of subjects to one process
		}
		w = &window{}
		p.windows[subject] = w
	}
	w.mark(h.seq)
	b.clock++
	p.used = b.clock
	return &p.Peer, plain, nil
}

// admissible checks, under b.mu, that a message of p (nil: not met yet)
// with header h is not stale and not replayed.
func (b *Box) admissible(p *peer, h *header, subject string) error {
	if n, ok := b.newest[string(h.id)]; ok && n.newer(h.epoch) {
		return ErrStale
	}
	if p != nil {
		if w := p.windows[subject]; w != nil && !w.fresh(h.seq) {
			return ErrReplayed
		}
	}
	return nil
}

// peer returns the peer that sealed a message with header h under key
// ki, nil if none; b.mu is held.
func (b *Box) peer(ki int, h *header) *peer {
	for _, q := range b.peers[string(h.id)] {
		if q.key == ki && q.Epoch == h.epoch {
			return q
		}
	}
	return nil
}

// addPeer remembers p, forgetting the least recently heard peer if there
// are too many; b.mu is held.
func (b *Box) addPeer(p *peer) {
	if b.npeers >= maxPeers {
		var old *peer
		for _, qs := range b.peers {
			for _, q := range qs {
				if old == nil || q.used < old.used {
					old = q
				}
			}
		}
		qs := b.peers[old.ID]
		i := slices.Index(qs, old)
		qs = slices.Delete(qs, i, i+1)
		if len(qs) == 0 {
			delete(b.peers, old.ID)
		} else {
			b.peers[old.ID] = qs
		}
		b.npeers--
	}
	b.peers[p.ID] = append(b.peers[p.ID], p)
	b.npeers++
}

func (b *Box) setNewest(id string, e Epoch) {
	if _, ok := b.newest[id]; !ok && len(b.newest) >= maxPeers {
		for k := range b.newest { // forget one at random
			delete(b.newest, k)
			break
		}
	}
	b.newest[id] = e
}

// EpochOf returns the newest epoch met of sender id, zero if none: where
// a direct message to it must be addressed.
func (b *Box) EpochOf(id string) Epoch {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newest[id]
}

// window is a sliding replay window over sequence numbers: the highest
// seen and a bitmap of the Window below it.
type window struct {
	top  uint64
	bits [Window / 64]uint64
}

// fresh reports whether seq has not been seen and is within the window.
func (w *window) fresh(seq uint64) bool {
	if seq > w.top {
		return true
	}
	if w.top-seq >= Window {
		return false
	}
	i := seq % Window
	return w.bits[i/64]&(1<<(i%64)) == 0
}

// mark records seq, which fresh accepted.
func (w *window) mark(seq uint64) {
	if seq > w.top {
		if seq-w.top >= Window {
			w.bits = [Window / 64]uint64{}
		} else {
			for s := w.top + 1; s < seq; s++ {
				i := s % Window
				w.bits[i/64] &^= 1 << (i % 64)
			}
		}
		w.top = seq
	}
	i := seq % Window
	w.bits[i/64] |= 1 << (i % 64)
}
