package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// subjectRoot is the first token of every subject this package uses, so a
// NATS account can grant aplex exactly "aplex.>" (or "aplex.<pool>.>").
const subjectRoot = "aplex"

// DefaultPool is the pool name used when none is given.
const DefaultPool = "default"

// subjects names every subject of one pool. Everything lives under
// aplex.<pool>, so pools sharing a NATS server never see each other's
// messages, and a NATS permission on "aplex.<pool>.>" confines a user to a
// pool.
type subjects struct {
	pool string
}

// hello is where workers announce themselves (Hello) when they start and
// after every reconnect.
func (s subjects) hello() string { return subjectRoot + "." + s.pool + ".hello" }

// discover is where executors ask workers to announce themselves; the
// request's reply subject receives the Hellos. A non-empty body names the
// one worker that should answer.
func (s subjects) discover() string { return subjectRoot + "." + s.pool + ".discover" }

// heartbeats matches every worker's heartbeat subject.
func (s subjects) heartbeats() string { return subjectRoot + "." + s.pool + ".hb.*" }

// heartbeat is worker wid's Heartbeat and Bye subject: one subject, so a
// Bye can never overtake the Draining heartbeats before it.
func (s subjects) heartbeat(wid string) string { return subjectRoot + "." + s.pool + ".hb." + wid }

// worker is worker wid's own subject: Run, Cancel and Shutdown from any
// executor of the pool. Per-worker subjects let the executor's balancer,
// not the server, choose the worker, at the same cost as a queue group.
func (s subjects) worker(wid string) string { return subjectRoot + "." + s.pool + ".w." + wid }

// inbox is an executor's own subject: the ReplyTo of its Runs and the
// reply subject of its discover requests. A worker answers (Results, and
// Hellos answering discover requests) on the inbox's sub-subject of its
// own id, fromWorker, which the executor checks against the worker id the
// message names: a NATS permission that lets a worker's user publish only
// on "aplex.<pool>.x.*.<its id>" then binds its results to it, and the
// sealed sender id does so on a sealed pool.
func (s subjects) inbox(exid string) string { return subjectRoot + "." + s.pool + ".x." + exid }

// fromWorker is worker wid's sub-subject of the executor inbox inbox.
func fromWorker(inbox, wid string) string { return inbox + "." + wid }

// inboxWorker returns the worker id that ends subject, a sub-subject of
// inbox, or "" if subject is not one.
func inboxWorker(inbox, subject string) string {
	rest, ok := strings.CutPrefix(subject, inbox+".")
	if !ok || strings.Contains(rest, ".") {
		return ""
	}
	return rest
}

// checkToken reports why s cannot be one token of a NATS subject (pool
// names and worker ids are used as such).
func checkToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > 128 {
		return fmt.Errorf("%s %.20q… is longer than 128 bytes", what, s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f
	}); i >= 0 {
		return fmt.Errorf("%s %q contains %q; use letters, digits, '-' and '_'", what, s, s[i])
	}
	return nil
}

// randomToken returns n random bytes in hex: unique ids for executors and
// workers without a coordinator.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// defaultWorkerID names a worker after its host and process, readable in
// errors and logs ("web-3-4711-9f2c1a"), plus a random suffix so a reused
// pid on a reused host name is still a new id.
func defaultWorkerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r >= 0x7f {
			return '-' // ASCII only, so the cut below splits no rune
		}
		return r
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	if host == "" {
		host = "worker"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + randomToken(3)
}
