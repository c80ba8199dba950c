package cluster

import (
	"errors"
	"fmt"
	"time"
)

// monitor drops silent workers, notices reconnects and a closed
// connection, and expires bookkeeping.
func (t *transport) monitor() {
	defer close(t.monDone)
	tick := time.NewTicker(max(t.xc.HeartbeatTimeout/5, 10*time.Millisecond))
	defer tick.Stop()
	seen := t.reconnects()
	t.reconnectsSeen.Store(seen)
	for {
		select {
		case <-t.stopMon:
			return
		case <-t.reconnected:
			t.checkReconnect(&seen)
		case <-t.connClosed:
			t.checkClosed()
		case <-tick.C:
			t.checkReconnect(&seen)
			t.checkClosed()
			t.expire()
		}
	}
}

// checkReconnect resynchronises after this executor's connection came
// back: every member gets a full timeout to re-announce itself (the
// silence was ours), and a discover request makes them do so now; until
// each has, its kill timers wait (member.Unreachable).
func (t *transport) checkReconnect(seen *uint64) {
	n := t.reconnects()
	if n == *seen {
		return
	}
	*seen = n
	t.mu.Lock()
	for _, m := range t.members {
		m.unsynced() // until its Hello answers the discover below
		m.touch()
	}
	t.mu.Unlock()
	t.reconnectsSeen.Store(n) // the members are marked
	t.discover("")
}

// errConnClosed is the Broken cause once the connection closed for good.
var errConnClosed = errors.New("aplex: cluster: the NATS connection is closed")

// checkClosed fails the pool clearly once the connection is closed for
// good (a bounded nats.MaxReconnects ran out, or the caller closed the
// connection it gave WithConn): every member is lost and Submit fails.
func (t *transport) checkClosed() {
	if t.closing.Load() || !t.nc.IsClosed() || !t.connDead.CompareAndSwap(false, true) {
		return
	}
	err := errConnClosed
	t.mu.Lock()
	ms := make([]*member, 0, len(t.members))
	for _, m := range t.members {
		ms = append(ms, m)
	}
	t.mu.Unlock()
	t.sink.Broken(err)
	for _, m := range ms {
		t.drop(m, err, false)
	}
}

// expire drops members silent for the heartbeat timeout and forgets old
// bookkeeping.
func (t *transport) expire() {
	now := t.now()
	timeout := t.xc.HeartbeatTimeout
	type verdict struct {
		m      *member
		silent time.Duration
	}
	var out []verdict
	t.mu.Lock()
	for _, m := range t.members {
		if silent := now - time.Duration(m.seen.Load()); silent > timeout {
			out = append(out, verdict{m, silent})
		}
	}
	for wid, tb := range t.tombs {
		if now-tb.at > tombTTL {
			delete(t.tombs, wid)
		}
	}
	for wid, at := range t.asked {
		if now-at > timeout {
			delete(t.asked, wid)
		}
	}
	t.mu.Unlock()
	for _, v := range out {
		t.drop(v.m, fmt.Errorf("lost heartbeat: no message for %v (timeout %v)", v.silent.Round(time.Millisecond), timeout), false)
	}
}
