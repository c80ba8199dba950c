package cluster

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/wire"
)

// sealConn is the NATS connection as both sides of the pool use it: every
// publish goes through Publish or PublishRequest, every subscription
// through handler, and with a pool key those seal and open each message
// (internal/seal). Without a key it passes messages through unchanged.
//
// It belongs in the unified link's connection abstraction (internal/link):
// when the writers move there, the link's publish calls seal, and its
// subscriptions open, exactly as here.
type sealConn struct {
	nc     *nats.Conn
	box    *seal.Box // nil: the pool is unsealed
	subj   subjects
	log    *slog.Logger
	who    string // "aplex cluster" or "aplex cluster worker", for log lines
	worker string // a worker's id: it answers on its sub-subject of an executor inbox

	impersonated atomic.Uint64 // opened, but claiming another worker's id
	warned       [4]atomic.Bool
}

// Once-only warnings.
const (
	warnUnsealed = iota // an unsealed message on a sealed pool
	warnSealed          // a sealed message on an unsealed pool
	warnUnknownKey
	warnImpersonated
)

// newSealConn wraps nc for one process of the pool: worker is its worker
// id, "" for an executor.
func newSealConn(nc *nats.Conn, box *seal.Box, subj subjects, log *slog.Logger, who, worker string) *sealConn {
	return &sealConn{nc: nc, box: box, subj: subj, log: log, who: who, worker: worker}
}

// sealBufs recycles the buffers messages are sealed into (NATS copies a
// published message before Publish returns).
var sealBufs = sync.Pool{New: func() any { return new([]byte) }}

// recipient returns the epoch a message on subject is for: the newest
// process met with the id that ends a worker subject or an executor
// inbox, zero on the broadcast subjects.
func (c *sealConn) recipient(subject string) seal.Epoch {
	root := subjectRoot + "." + c.subj.pool + "."
	rest, ok := strings.CutPrefix(subject, root)
	if !ok {
		return seal.Epoch{}
	}
	if id, ok := strings.CutPrefix(rest, "w."); ok {
		return c.box.EpochOf(id)
	}
	if id, ok := strings.CutPrefix(rest, "x."); ok {
		id, _, _ = strings.Cut(id, ".") // x.<exid>.<wid>
		return c.box.EpochOf(id)
	}
	return seal.Epoch{}
}

// Publish sends data on subject, sealed if the pool has a key.
func (c *sealConn) Publish(subject string, data []byte) error {
	return c.PublishRequest(subject, "", data)
}

// PublishRequest sends data on subject with a reply subject, sealed if the
// pool has a key. The reply subject travels in clear; receivers check it
// against the sealed sender (onDiscover).
//
// A worker's message to an executor's inbox goes to the inbox's
// sub-subject of the worker's id (fromWorker), where the executor expects
// it.
func (c *sealConn) PublishRequest(subject, reply string, data []byte) error {
	if c.worker != "" && strings.HasPrefix(subject, subjectRoot+"."+c.subj.pool+".x.") {
		subject = fromWorker(subject, c.worker)
	}
	if c.box == nil {
		if reply == "" {
			return c.nc.Publish(subject, data)
		}
		return c.nc.PublishRequest(subject, reply, data)
	}
	bp := sealBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 {
			sealBufs.Put(bp) // do not pin a large message's buffer
		}
	}()
	b, err := c.box.Seal((*bp)[:0], subject, c.recipient(subject), data)
	*bp = b
	if err != nil {
		return err
	}
	if reply == "" {
		return c.nc.Publish(subject, b)
	}
	return c.nc.PublishRequest(subject, reply, b)
}

// overhead is what sealing adds to a message: the budgets of the writers
// and the largest message the core accepts shrink by it.
func (c *sealConn) overhead() int {
	if c.box == nil {
		return 0
	}
	return seal.MaxOverhead
}

// handler wraps h as a subscription handler: a message is opened (direct:
// the subject is this process's own, and the message must be addressed to
// this process) and h gets the plaintext and the sealed sender id, or ""
// on an unsealed pool. A message that does not open is dropped here, so no
// handler ever acts on it.
func (c *sealConn) handler(direct bool, h func(msg *nats.Msg, from string)) nats.MsgHandler {
	return func(msg *nats.Msg) {
		if c.box == nil {
			if len(msg.Data) > 0 && msg.Data[0] == seal.Magic {
				c.warnOnce(warnSealed, "a sealed message arrived but this process has no pool key, dropped: give it the pool's key (cluster.WithPoolKey, cluster.ServePoolKey, APLEX_CLUSTER_KEY)",
					"subject", msg.Subject)
				return
			}
			h(msg, "")
			return
		}
		plain, p, err := c.box.Open(msg.Subject, msg.Data, direct)
		switch err {
		case nil:
			msg.Data = plain
			h(msg, p.ID)
		case seal.ErrUnsealed:
			c.warnOnce(warnUnsealed, "an unsealed message arrived on a sealed pool, dropped: a worker or executor without the pool key? (it never joins)",
				"subject", msg.Subject)
		case seal.ErrUnknownKey:
			c.warnOnce(warnUnknownKey, "a message sealed with a pool key this process does not hold arrived, dropped: a worker or executor with another key? (during a rotation, accept the other key)",
				"subject", msg.Subject)
		default:
			c.log.Debug(c.who+": dropped a message", "subject", msg.Subject, "err", err)
		}
	}
}

// claimed returns the worker id a worker's message names, ok false for
// an executor's message.
func claimed(m wire.Msg) (string, bool) {
	switch m := m.(type) {
	case *wire.Results:
		return m.WorkerID, true
	case *wire.Started:
		return m.WorkerID, true
	case *wire.Hello:
		return m.WorkerID, true
	case *wire.Heartbeat:
		return m.WorkerID, true
	case *wire.Bye:
		return m.WorkerID, true
	}
	return "", false
}

// vouched reports whether m, opened from sender from, speaks for that
// sender: a worker's announcement or results name the worker that sealed
// them. On an unsealed pool (from == "") anything goes.
func (c *sealConn) vouched(from string, m wire.Msg) bool {
	id, ok := claimed(m)
	if from == "" || !ok || id == from {
		return true
	}
	c.impersonated.Add(1)
	c.warnOnce(warnImpersonated, "a message sealed by one worker claims to come from another, dropped: a holder of the pool key is impersonating a worker",
		"sealed_by", from, "claims", id, "kind", m.Kind())
	return false
}

// onSubjectOf reports whether m, which arrived on worker wid's
// sub-subject of the executor's inbox, names that worker: NATS
// permissions can confine a worker's user to its own sub-subject, which
// then binds its results to it even on an unsealed pool.
func (c *sealConn) onSubjectOf(wid string, m wire.Msg) bool {
	id, ok := claimed(m)
	if !ok || id == wid {
		return true
	}
	c.impersonated.Add(1)
	c.warnOnce(warnImpersonated, "a message on one worker's reply subject claims to come from another, dropped: a client is impersonating a worker",
		"subject_of", wid, "claims", id, "kind", m.Kind())
	return false
}

func (c *sealConn) warnOnce(which int, msg string, args ...any) {
	if c.warned[which].CompareAndSwap(false, true) {
		c.log.Warn(c.who+": "+msg, args...)
	} else {
		c.log.Debug(c.who+": "+msg, args...)
	}
}

// drops returns the counters behind SealDrops.
func (c *sealConn) drops() SealDrops {
	var d SealDrops
	if c.box != nil {
		s := c.box.Stats()
		d = SealDrops{
			Unsealed: s.Unsealed, UnknownKey: s.UnknownKey, Truncated: s.Truncated, Forged: s.Forged,
			Replayed: s.Replayed, Stale: s.Stale, Misaddressed: s.Misaddressed,
		}
	}
	d.Impersonated = c.impersonated.Load()
	return d
}

// SealDrops counts the messages an executor dropped, by reason. A
// sealed pool under attack shows it here; on a healthy pool every count
// stays zero except Replayed and Stale, which a NATS reconnect may raise a
// little.
type SealDrops struct {
	// Unsealed messages: from a process without the pool key, or forged.
	Unsealed uint64
	// UnknownKey: sealed with a key the executor does not hold (a worker
	// with another key, a rotation not accepted yet).
	UnknownKey uint64
	// Truncated messages, too short to hold a seal.
	Truncated uint64
	// Forged: the seal does not verify (altered, moved to another
	// subject, or sealed under another pool's key).
	Forged uint64
	// Replayed: seen before, or older than the replay window.
	Replayed uint64
	// Stale: from an earlier process of a worker that restarted.
	Stale uint64
	// Misaddressed: addressed to another executor process.
	Misaddressed uint64
	// Impersonated: naming a worker other than the one that sealed it (a
	// holder of the pool key posing as another worker), or than the one
	// whose reply subject it came on (counted on unsealed pools too).
	Impersonated uint64
}

// Total is the number of messages dropped for any reason.
func (d SealDrops) Total() uint64 {
	return d.Unsealed + d.UnknownKey + d.Truncated + d.Forged + d.Replayed + d.Stale + d.Misaddressed + d.Impersonated
}
