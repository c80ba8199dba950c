package cluster

import (
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/wire"
)

// The executor's message handlers: NATS calls them on one goroutine per
// subscription. Results go straight from the inbox handler to the core,
// with no other goroutine in between.

// enter admits a message handler unless the transport stopped; leave must
// follow.
func (t *transport) enter() bool {
	t.gate.RLock()
	if t.stopped.Load() {
		t.gate.RUnlock()
		return false
	}
	return true
}

func (t *transport) leave() { t.gate.RUnlock() }

// onInbox handles messages to the executor's inbox: results, and Hellos
// answering its discover requests.
// from is the sealed sender ("" on an unsealed pool): a message naming
// another worker is dropped, so a result is accepted only from the worker
// its job was sent to (member.answered keeps only that member's jobs).
func (t *transport) onInbox(msg *nats.Msg, from string) {
	if !t.enter() {
		return
	}
	defer t.leave()
	m := t.decodeFrom(msg, from)
	if m == nil || !t.sealed.onSubjectOf(inboxWorker(t.inbox, msg.Subject), m) {
		return
	}
	switch m := m.(type) {
	case *wire.Results:
		if w := t.member(m.WorkerID); w != nil {
			w.touch()
			t.deliver(w, m.Results)
		}
	case *wire.Started:
		if w := t.member(m.WorkerID); w != nil && !t.done.Load() {
			w.touch()
			t.sink.Started(w, m.IDs)
		}
	case *wire.Hello:
		t.onHello(m)
	default:
		t.log.Debug("aplex cluster: unexpected message on the inbox", "kind", m.Kind())
	}
}

// decodeFrom decodes a message and checks that it names its sealed sender
// from; nil (logged) if it does not decode or names another worker.
func (t *transport) decodeFrom(msg *nats.Msg, from string) wire.Msg {
	m, err := wire.Unmarshal(msg.Data)
	if err != nil {
		t.badAnnouncement(msg, err)
		return nil
	}
	if !t.sealed.vouched(from, m) {
		return nil
	}
	return m
}

// badAnnouncement logs a message that does not decode. A worker of another
// protocol version is worth a warning, once per Hello (not per heartbeat):
// it will never join, and the version byte comes first, so its Hello fails
// here rather than in onHello.
func (t *transport) badAnnouncement(msg *nats.Msg, err error) {
	if errors.Is(err, wire.ErrVersion) && len(msg.Data) > 1 && wire.Kind(msg.Data[1]) == wire.KindHello {
		t.log.Warn("aplex cluster: ignoring a worker of another protocol version; rebuild it with the same aplex version",
			"version", msg.Data[0], "want", wire.Version, "err", err)
		return
	}
	t.log.Debug("aplex cluster: bad message", "subject", msg.Subject, "err", err)
}

// onControl handles the pool's announcements: Hello, Heartbeat, Bye, each
// only from the worker it names (from, as onInbox).
func (t *transport) onControl(msg *nats.Msg, from string) {
	if !t.enter() {
		return
	}
	defer t.leave()
	m := t.decodeFrom(msg, from)
	if m == nil {
		return
	}
	switch m := m.(type) {
	case *wire.Hello:
		if from != "" {
			// A Hello on the broadcast subject is addressed to no one,
			// so it may be a replay of a worker long gone, sealed before
			// this executor existed. Join on the answer to a discover
			// request naming it instead: that comes to this executor's
			// inbox, addressed to this process.
			t.discover(m.WorkerID)
			return
		}
		t.onHello(m)
	case *wire.Heartbeat:
		t.onHeartbeat(m)
	case *wire.Bye:
		t.onBye(m)
	default:
		t.log.Debug("aplex cluster: unexpected announcement", "kind", m.Kind())
	}
}

// deliver hands a worker's results to the core, which drops those it no
// longer awaits from m (late answers after a drop, duplicates after a
// resend).
func (t *transport) deliver(m *member, rs []wire.Result) {
	if len(rs) > 0 && !t.done.Load() {
		m.settled(rs)
		t.sink.Done(m, rs)
	}
}

// discover asks the pool's workers (or only worker wid) to send their
// Hello to this executor's inbox.
func (t *transport) discover(wid string) {
	if err := t.sealed.PublishRequest(t.subj.discover(), t.inbox, []byte(wid)); err != nil {
		t.log.Debug("aplex cluster: discover", "err", err)
	}
}

// publishTo sends a control message to a worker, outside the sender (for
// workers being dropped, which the sender skips).
func (t *transport) publishTo(wid string, msg wire.Msg) {
	b, err := wire.Marshal(msg)
	if err == nil {
		err = t.sealed.Publish(t.subj.worker(wid), b)
	}
	if err != nil {
		t.log.Debug("aplex cluster: publish", "worker", wid, "kind", msg.Kind(), "err", err)
	}
}
