package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/wire"
)

// The attacks of the security review, each against a real pool: the
// embedded server (or a real nats-server in-process), real worker
// processes, and a raw NATS client as the attacker.

// testPoolKey is a pool key for tests that need any.
var testPoolKey = cluster.NewPoolKey()

var (
	// sealEcho answers its argument, so an eavesdropper knows what to
	// look for.
	sealEcho = aplex.Register("cluster.seal-echo", func(_ context.Context, s string) (string, error) { return "echo:" + s, nil })
	// runOnce appends a line to the file path each time it runs: a file
	// with two lines is a work that ran twice.
	runOnce = aplex.Register("cluster.run-once", func(_ context.Context, path string) (int, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		_, err = f.WriteString("ran\n")
		return 42, err
	})
)

// attacker is a raw NATS client on the pool's server.
type attacker struct {
	t  *testing.T
	nc *nats.Conn
}

// embeddedAccess splits URL(ex) into the URL with the server's token (what
// someone who learnt the NATS credentials has) and the pool key.
func embeddedAccess(t *testing.T, ex *aplex.Executor) (natsURL string, key []byte) {
	t.Helper()
	full := cluster.URL(ex)
	base, frag, ok := strings.Cut(full, "#aplex-key=")
	if !ok {
		t.Fatalf("URL %q carries no pool key", full)
	}
	key, err := cluster.ParsePoolKey(frag)
	if err != nil {
		t.Fatal(err)
	}
	return base, key
}

func newAttacker(t *testing.T, natsURL string) *attacker {
	t.Helper()
	return newAttackerWith(t, natsURL)
}

func newAttackerWith(t *testing.T, natsURL string, opts ...nats.Option) *attacker {
	t.Helper()
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		t.Fatalf("attacker connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return &attacker{t: t, nc: nc}
}

// capture subscribes to the whole pool; msgs returns what arrived so far.
type capture struct {
	a   *attacker
	sub *nats.Subscription
}

func (a *attacker) capture(subject string) *capture {
	a.t.Helper()
	sub, err := a.nc.SubscribeSync(subject)
	if err != nil {
		a.t.Fatal(err)
	}
	sub.SetPendingLimits(-1, -1)
	a.flush()
	return &capture{a: a, sub: sub}
}

// msgs returns every message delivered to the attacker up to now: the
// flush's PONG comes after every message the server routed to this client
// before it. A message another client published may still be on its way
// here although its subscriber already got it (see poolTraffic).
func (c *capture) msgs() []*nats.Msg {
	c.a.t.Helper()
	c.a.flush()
	n, _, err := c.sub.Pending()
	if err != nil {
		c.a.t.Fatal(err)
	}
	var out []*nats.Msg
	for range n {
		m, err := c.sub.NextMsg(time.Second)
		if err != nil {
			c.a.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (a *attacker) flush() {
	a.t.Helper()
	if err := a.nc.FlushTimeout(5 * time.Second); err != nil {
		a.t.Fatal(err)
	}
}

func (a *attacker) publish(subject string, data []byte) {
	a.t.Helper()
	if err := a.nc.Publish(subject, data); err != nil {
		a.t.Fatal(err)
	}
}

func marshal(t *testing.T, m wire.Msg) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// poolTraffic returns the messages captured so far once they hold a Run
// to the worker and a result to the executor, waiting (a bounded poll) for
// those the server is still routing here: the executor may have got a
// result before the server queued its copy for the attacker.
func (c *capture) poolTraffic() []*nats.Msg {
	c.a.t.Helper()
	var all []*nats.Msg
	waitFor(c.a.t, 10*time.Second, "the pool's traffic to reach the attacker", func() bool {
		all = append(all, c.msgs()...)
		w, inbox := subjectsOf(all)
		return w != "" && inbox != ""
	})
	return all
}

// subjectsOf finds a worker subject and an executor inbox among msgs.
func subjectsOf(msgs []*nats.Msg) (workerSubj, inbox string) {
	for _, m := range msgs {
		switch {
		case strings.Contains(m.Subject, ".w."):
			workerSubj = m.Subject
		case strings.Contains(m.Subject, ".x."):
			inbox = m.Subject
		}
	}
	return workerSubj, inbox
}

// poolSubjects learns the worker's subject and the subject its results
// come on (the executor's inbox and the worker's id) from captured
// traffic, as an eavesdropper would (subjects travel in clear), and waits
// for a heartbeat of the worker.
func (a *attacker) poolSubjects(msgs []*nats.Msg) (workerSubj, inbox string, hb *nats.Msg) {
	a.t.Helper()
	workerSubj, inbox = subjectsOf(msgs)
	if workerSubj == "" || inbox == "" {
		var subs []string
		for _, m := range msgs {
			subs = append(subs, m.Subject)
		}
		a.t.Fatalf("captured no worker subject or inbox in %d messages: %v", len(msgs), subs)
	}
	sub, err := a.nc.SubscribeSync("aplex.default.hb.*")
	if err != nil {
		a.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if hb, err = sub.NextMsg(10 * time.Second); err != nil {
		a.t.Fatalf("no heartbeat: %v", err)
	}
	return workerSubj, inbox, hb
}

// TestEmbeddedServerRefusesAnonymous: the default server takes only
// clients with its generated token; URL carries it.
func TestEmbeddedServerRefusesAnonymous(t *testing.T) {
	ex := newExecutor(t)
	natsURL, _ := embeddedAccess(t, ex)
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	token := u.User.Username()
	if len(token) < 32 {
		t.Fatalf("token %q is too short to be generated", token)
	}
	u.User = nil
	for _, c := range []struct {
		name string
		url  string
		ok   bool
	}{
		{"anonymous", u.String(), false},
		{"wrong token", strings.Replace(natsURL, token, "x"+token[1:], 1), false}, // tokens are hex
		{"the URL's token", natsURL, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			nc, err := nats.Connect(c.url, nats.MaxReconnects(0))
			if c.ok != (err == nil) {
				t.Fatalf("connect = %v, want ok %v", err, c.ok)
			}
			if err == nil {
				nc.Close()
			} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Fatalf("refused with %v, want an authorization error", err)
			}
		})
	}
}

// TestLocalWorkerSecretsNotOnCommandLine: the token and the pool key
// reach local workers through the environment, never argv, which every
// user of the machine can list.
func TestLocalWorkerSecretsNotOnCommandLine(t *testing.T) {
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("needs /proc/<pid>/cmdline to read a worker's argv (Linux): not on this system")
	}
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	natsURL, key := embeddedAccess(t, ex)
	u, _ := url.Parse(natsURL)
	pid := ex.Stats().Workers[0].PID
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{u.User.Username(), cluster.FormatPoolKey(key)} {
		if bytes.Contains(cmdline, []byte(secret)) {
			t.Fatalf("local worker %d shows a secret on its command line: %q", pid, cmdline)
		}
	}
}

// TestSealedEavesdropperSeesNoPlaintext: a client with the server's
// credentials but not the pool key reads no argument, result or work name.
func TestSealedEavesdropperSeesNoPlaintext(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	natsURL, _ := embeddedAccess(t, ex)
	a := newAttacker(t, natsURL)
	c := a.capture("aplex.>")
	const secret = "secret-argument-7f3a"
	if v, err := get(t, submit(t, ex, sealEcho, secret)); v != "echo:"+secret || err != nil {
		t.Fatalf("seal-echo = %q, %v", v, err)
	}
	for v, err := range aplex.Map(context.Background(), ex, sealEcho, slices.Values([]string{secret + "-a", secret + "-b", secret + "-c"}), aplex.ChunkSize(2)) {
		if err != nil || !strings.HasPrefix(v, "echo:"+secret) {
			t.Fatalf("Map: %q, %v", v, err)
		}
	}
	msgs := c.poolTraffic()
	subjects := map[string]bool{}
	for _, m := range msgs {
		for _, clear := range []string{secret, "echo:", "cluster.seal-echo", "cluster.square"} {
			if bytes.Contains(m.Data, []byte(clear)) {
				t.Fatalf("%q readable in a message on %s", clear, m.Subject)
			}
		}
		if len(m.Data) == 0 || m.Data[0] != seal.Magic {
			t.Fatalf("unsealed message on %s: % x", m.Subject, m.Data[:min(len(m.Data), 16)])
		}
		subjects[strings.SplitN(m.Subject, ".", 4)[2]] = true
	}
	for _, s := range []string{"w", "x"} {
		if !subjects[s] {
			t.Fatalf("captured no message on the %q subjects (saw %v): nothing was checked", s, subjects)
		}
	}
}

// TestSealedReplayRunsNothingTwice: every captured message, replayed,
// runs nothing again and changes no future.
func TestSealedReplayRunsNothingTwice(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	natsURL, _ := embeddedAccess(t, ex)
	a := newAttacker(t, natsURL)
	c := a.capture("aplex.>")
	dir := t.TempDir()
	var fs []*aplex.Future[int]
	for i := range 20 {
		fs = append(fs, submit(t, ex, runOnce, filepath.Join(dir, itoa(i))))
	}
	for _, f := range fs {
		if v, err := get(t, f); v != 42 || err != nil {
			t.Fatalf("run-once = %v, %v", v, err)
		}
	}
	captured := c.msgs()
	for round := range 3 {
		if round == 2 {
			// The worker restarts under the same id, with no memory of
			// what it ran: the old Runs, replayed, are for its
			// predecessor, and the old Hellos are stale.
			old := ex.Stats().Workers[0].PID
			if err := kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the local worker to come back", func() bool {
				ws := ex.Stats().Workers
				return len(ws) == 1 && ws[0].PID != old && ws[0].PID != 0
			})
		}
		for _, m := range captured {
			if m.Reply != "" {
				if err := a.nc.PublishRequest(m.Subject, m.Reply, m.Data); err != nil {
					t.Fatal(err)
				}
				continue
			}
			a.publish(m.Subject, m.Data)
		}
		a.flush()
		// Handshake: the worker and the executor handle the replays
		// before this work's Run and result, which come after them.
		if v, err := get(t, submit(t, ex, runOnce, filepath.Join(dir, "handshake-"+itoa(round)))); v != 42 || err != nil {
			t.Fatalf("handshake = %v, %v", v, err)
		}
	}
	for i := range 20 {
		b, err := os.ReadFile(filepath.Join(dir, itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("ran\n")); n != 1 {
			t.Fatalf("work %d ran %d times", i, n)
		}
		if v, err := fs[i].Get(context.Background()); v != 42 || err != nil {
			t.Fatalf("future %d changed to %v, %v", i, v, err)
		}
	}
	if d := cluster.SealDropsOf(ex); d.Replayed == 0 || d.Stale == 0 {
		t.Fatalf("no replay or stale message counted: %+v", d)
	}
}

// TestSealedGarbageIgnored: random, truncated and altered messages on
// every subject of the pool are dropped, and the pool keeps serving.
func TestSealedGarbageIgnored(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	natsURL, _ := embeddedAccess(t, ex)
	a := newAttacker(t, natsURL)
	c := a.capture("aplex.>")
	if v, err := get(t, submit(t, ex, square, 3)); v != 9 || err != nil {
		t.Fatalf("square = %v, %v", v, err)
	}
	captured := c.poolTraffic()
	workerSubj, inbox, hb := a.poolSubjects(captured)
	subjects := []string{"aplex.default.hello", "aplex.default.discover", hb.Subject, workerSubj, inbox}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, subj := range subjects {
		for range 30 { // random bytes, some starting like a sealed or a clear message
			b := make([]byte, rng.IntN(300))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			if len(b) > 0 && rng.IntN(2) == 0 {
				b[0] = seal.Magic
			} else if len(b) > 1 {
				b[0], b[1] = wire.Version, byte(wire.KindHello)
			}
			a.publish(subj, b)
		}
		for _, m := range captured[:min(len(captured), 6)] {
			for n := 0; n < len(m.Data); n += 1 + len(m.Data)/40 { // truncated
				a.publish(subj, m.Data[:n])
			}
			for range 5 { // one bit flipped
				b := bytes.Clone(m.Data)
				b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
				a.publish(subj, b)
			}
		}
	}
	a.flush()
	var fs []*aplex.Future[int]
	for i := range 20 {
		fs = append(fs, submit(t, ex, square, i))
	}
	for i, f := range fs {
		if v, err := get(t, f); v != i*i || err != nil {
			t.Fatalf("after the garbage, square(%d) = %v, %v", i, v, err)
		}
	}
	d := cluster.SealDropsOf(ex)
	if d.Truncated == 0 || d.Forged == 0 || d.Unsealed == 0 {
		t.Fatalf("drops not counted: %+v", d)
	}
	if n := len(ex.Stats().Workers); n != 1 {
		t.Fatalf("%d workers after the garbage, want the one", n)
	}
}

// TestSealedWorkerWithoutTheKeyGetsNoWork: a worker with another key, or
// none, never joins; the work waits for a worker with the key.
func TestSealedWorkerWithoutTheKeyGetsNoWork(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
		seen func(cluster.SealDrops) bool
	}{
		{"wrong key", []string{"APLEX_CLUSTER_KEY=" + cluster.FormatPoolKey(cluster.NewPoolKey())},
			func(d cluster.SealDrops) bool { return d.UnknownKey > 0 }},
		{"no key", nil, func(d cluster.SealDrops) bool { return d.Unsealed > 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := newExecutor(t)
			natsURL, _ := embeddedAccess(t, ex)
			spawnWorker(t, natsURL, "default", "keyless", c.env...)
			// Its Hellos and heartbeats arrive, and are dropped.
			waitFor(t, 10*time.Second, "the keyless worker's messages", func() bool { return c.seen(cluster.SealDropsOf(ex)) })
			f := submit(t, ex, whoami, time.Duration(0))
			if n := len(ex.Stats().Workers); n != 0 {
				t.Fatalf("%d workers joined", n)
			}
			spawnWorker(t, cluster.URL(ex), "default", "keyed")
			who, err := get(t, f)
			if err != nil || worker(who) != "keyed" {
				t.Fatalf("whoami = %q, %v; want the keyed worker", who, err)
			}
			for _, w := range ex.Stats().Workers {
				if w.Name == "keyless" {
					t.Fatalf("the keyless worker joined: %+v", ex.Stats().Workers)
				}
			}
		})
	}
}

// TestSealedForgedResultCancelShutdownIgnored: forged Results, Cancels
// and Shutdowns, in clear or sealed with another key, change nothing; a
// holder of the key cannot answer a job sent to another worker, nor
// cancel another executor's job, nor kill a worker it never used.
func TestSealedForgedResultCancelShutdownIgnored(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	natsURL, key := embeddedAccess(t, ex)
	a := newAttacker(t, natsURL)
	c := a.capture("aplex.>")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked, err := aplex.Submit(ctx, ex, block, "forged")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the block work to start", startedIn(t, ex, "forged"))
	before, err := get(t, submit(t, ex, whoami, time.Duration(0)))
	if err != nil {
		t.Fatal(err)
	}
	captured := c.poolTraffic()
	workerSubj, replies, hb := a.poolSubjects(captured)
	// The executor's epoch, from the clear header of a Run it sent.
	var exEpoch seal.Epoch
	for _, m := range captured {
		if m.Subject == workerSubj {
			copy(exEpoch[:], m.Data[5:21])
		}
	}
	wid := worker(before)
	inbox := strings.TrimSuffix(replies, "."+wid) // the executor's inbox, the ReplyTo of its Runs
	exid := strings.TrimPrefix(inbox, "aplex.default.x.")
	var workerEpoch seal.Epoch
	copy(workerEpoch[:], hb.Data[5:21]) // the clear header: sender epoch

	var ids []uint64
	var results []wire.Result
	for id := uint64(1); id <= 50; id++ {
		ids = append(ids, id)
		results = append(results, wire.Result{ID: id, Items: []wire.Outcome{{Value: []byte{0x19, 0x02, 0x9a}}}}) // CBOR 666
	}
	forgedResults := func(claim string) []byte {
		return marshal(t, &wire.Results{WorkerID: claim, Results: results})
	}
	cancelOf := func(replyTo string) []byte { return marshal(t, &wire.Cancel{ReplyTo: replyTo, IDs: ids}) }
	kill := marshal(t, &wire.Shutdown{Graceful: false})

	// In clear, as before sealing.
	a.publish(replies, forgedResults(wid))
	a.publish(workerSubj, cancelOf(inbox))
	a.publish(workerSubj, kill)
	// Sealed with another key.
	otherKey := cluster.NewPoolKey()
	for _, m := range []struct {
		role    seal.Role
		id      string
		subject string
		to      seal.Epoch
		data    []byte
	}{
		{seal.Worker, wid, replies, seal.Epoch{}, forgedResults(wid)},
		{seal.Executor, exid, workerSubj, workerEpoch, cancelOf(inbox)},
		{seal.Executor, exid, workerSubj, workerEpoch, kill},
	} {
		box, err := seal.New(seal.Config{Keys: [][]byte{otherKey}, Pool: "default", ID: m.id, Role: m.role})
		if err != nil {
			t.Fatal(err)
		}
		b, err := box.Seal(nil, m.subject, m.to, m.data)
		if err != nil {
			t.Fatal(err)
		}
		a.publish(m.subject, b)
	}
	// With the key: a worker "intruder" answering with its own id (it was
	// sent nothing) and with the real worker's; an executor "intruder"
	// cancelling the real executor's jobs, and its own, and killing.
	intruderW, err := seal.New(seal.Config{Keys: [][]byte{key}, Pool: "default", ID: "intruder", Role: seal.Worker})
	if err != nil {
		t.Fatal(err)
	}
	intruderX, err := seal.New(seal.Config{Keys: [][]byte{key}, Pool: "default", ID: "intruder", Role: seal.Executor})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct {
		box     *seal.Box
		subject string
		to      seal.Epoch
		data    []byte
	}{
		{intruderW, inbox + ".intruder", exEpoch, forgedResults("intruder")},
		{intruderW, inbox + ".intruder", exEpoch, forgedResults(wid)},
		{intruderW, replies, exEpoch, forgedResults(wid)},
		{intruderX, workerSubj, workerEpoch, cancelOf(inbox)},
		{intruderX, workerSubj, workerEpoch, cancelOf("aplex.default.x.intruder")},
		{intruderX, workerSubj, workerEpoch, kill},
	} {
		b, err := m.box.Seal(nil, m.subject, m.to, m.data)
		if err != nil {
			t.Fatal(err)
		}
		a.publish(m.subject, b)
	}
	a.flush()

	// Handshake: a work after the forgeries runs on the same worker
	// process, which handled them first.
	after, err := get(t, submit(t, ex, whoami, time.Duration(0)))
	if err != nil || after != before {
		t.Fatalf("after the forgeries whoami = %q, %v; want the same worker process %q", after, err, before)
	}
	select {
	case <-blocked.Done():
		v, err := blocked.Get(context.Background())
		t.Fatalf("a forged message ended the blocked work: %v, %v", v, err)
	default:
	}
	if cancelled, err := get(t, submit(t, ex, observed, "forged")); err != nil || cancelled {
		t.Fatalf("the blocked work was cancelled by a forged Cancel (%v, %v)", cancelled, err)
	}
	d := cluster.SealDropsOf(ex)
	if d.Unsealed == 0 || d.UnknownKey == 0 || d.Impersonated == 0 {
		t.Fatalf("forgeries not counted: %+v", d)
	}
	cancel()
	if _, err := get(t, blocked); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked work after its caller's cancel: %v", err)
	}
}

// TestSealedKeyRotationFailsNoWork rotates a pool from key A to key B in
// the documented three steps, executors and workers replaced one by one
// while works run, and no work fails.
func TestSealedKeyRotationFailsNoWork(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	keyA, keyB := cluster.NewPoolKey(), cluster.NewPoolKey()
	hexA, hexB := cluster.FormatPoolKey(keyA), cluster.FormatPoolKey(keyB)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(hexB+"\n"+hexA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(ex *aplex.Executor, n int) {
		t.Helper()
		var fs []*aplex.Future[int]
		for i := range n {
			fs = append(fs, submit(t, ex, square, i))
		}
		for i, f := range fs {
			if v, err := get(t, f); v != i*i || err != nil {
				t.Fatalf("square(%d) = %v, %v", i, v, err)
			}
		}
	}
	// Step 1: seal with A, accept B.
	w1 := spawnWorker(t, url, "rot", "w1", "APLEX_CLUSTER_KEY="+hexA+","+hexB)
	ex1 := newExecutor(t, cluster.WithURL(url), cluster.WithPool("rot"),
		cluster.WithPoolKey(keyA), cluster.WithAcceptedPoolKeys(keyB), aplex.WithPoolSize(1))
	run(ex1, 30)
	// Step 2: seal with B, accept A: a new worker and a new executor join
	// the old ones, and every pair works.
	spawnWorker(t, url, "rot", "w2", "APLEX_CLUSTER_KEY_FILE="+keyFile)
	ex2 := newExecutor(t, cluster.WithURL(url), cluster.WithPool("rot"),
		cluster.WithPoolKey(keyB), cluster.WithAcceptedPoolKeys(keyA), aplex.WithPoolSize(2))
	waitFor(t, 10*time.Second, "w2 to join the old executor", func() bool { return len(ex1.Stats().Workers) == 2 })
	var wg sync.WaitGroup
	for _, ex := range []*aplex.Executor{ex1, ex2} {
		wg.Go(func() { run(ex, 60) })
	}
	wg.Wait()
	// The old worker and executor leave while the new executor works.
	done := make(chan struct{})
	go func() { defer close(done); run(ex2, 60) }()
	w1.cmd.Process.Signal(os.Interrupt)
	if !w1.exited(10 * time.Second) {
		t.Fatal("w1 did not leave")
	}
	ctx, cancelSD := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSD()
	if err := ex1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	// Step 3: B only.
	spawnWorker(t, url, "rot", "w3", "APLEX_CLUSTER_KEY="+hexB)
	ex3 := newExecutor(t, cluster.WithURL(url), cluster.WithPool("rot"), cluster.WithPoolKey(keyB))
	waitFor(t, 10*time.Second, "w2 and w3 in the last executor", func() bool { return len(ex3.Stats().Workers) == 2 })
	run(ex3, 30)
	if d := cluster.SealDropsOf(ex2); d.UnknownKey != 0 || d.Forged != 0 {
		t.Fatalf("the rotation dropped messages: %+v", d)
	}
}

// TestUnsealedPoolWarnsOnce: an executor on another server without a key
// works, and says once that its pool is unsealed.
func TestUnsealedPoolWarnsOnce(t *testing.T) {
	srv := startServer(t, 0, nil)
	h := &countLog{}
	ex := newExecutor(t, cluster.WithURL(srv.ClientURL()), cluster.WithPool("open"), aplex.WithLogger(slog.New(h)))
	spawnWorker(t, srv.ClientURL(), "open", "")
	for i := range 5 {
		if v, err := get(t, submit(t, ex, square, i)); v != i*i || err != nil {
			t.Fatalf("square = %v, %v", v, err)
		}
	}
	if n := h.count("unsealed"); n != 1 {
		t.Fatalf("%d warnings about the unsealed pool, want 1", n)
	}
}

type countLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *countLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countLog) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *countLog) WithGroup(string) slog.Handler                { return h }
func (h *countLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}

func (h *countLog) count(sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// TestPoolKeyOptions: bad keys are refused with a message saying what a
// key is.
func TestPoolKeyOptions(t *testing.T) {
	good := cluster.NewPoolKey()
	for _, c := range []struct {
		name string
		opts []aplex.Option
		want string
	}{
		{"short", []aplex.Option{cluster.WithPoolKey(make([]byte, 16))}, "cluster.WithPoolKey: a pool key is 32 random bytes, got 16"},
		{"zero", []aplex.Option{cluster.WithPoolKey(make([]byte, 32))}, "all zero"},
		{"accepted short", []aplex.Option{cluster.WithPoolKey(good), cluster.WithAcceptedPoolKeys(good[:31])}, "WithAcceptedPoolKeys: key 0"},
		{"accepted alone", []aplex.Option{cluster.WithAcceptedPoolKeys(good)}, "needs cluster.WithPoolKey"},
	} {
		t.Run("executor "+c.name, func(t *testing.T) {
			ex, err := cluster.NewExecutor(c.opts...)
			if err == nil {
				ex.Shutdown(context.Background())
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	for _, c := range []struct {
		name string
		opts []cluster.ServeOption
		want string
	}{
		{"short", []cluster.ServeOption{cluster.ServePoolKey(good[:8])}, "cluster.ServePoolKey: a pool key is 32 random bytes, got 8"},
		{"accepted alone", []cluster.ServeOption{cluster.ServeAcceptedPoolKeys(good)}, "needs cluster.ServePoolKey"},
		{"bad key in URL", []cluster.ServeOption{cluster.ServeURL("nats://127.0.0.1:1#aplex-key=zz")}, "the pool key in the URL"},
	} {
		t.Run("serve "+c.name, func(t *testing.T) {
			err := cluster.Serve(context.Background(), c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"short", []string{"APLEX_CLUSTER_KEY=abcd"}, "APLEX_CLUSTER_KEY: key 0"},
		{"both", []string{"APLEX_CLUSTER_KEY=" + cluster.FormatPoolKey(good), "APLEX_CLUSTER_KEY_FILE=/nonexistent"}, "both APLEX_CLUSTER_KEY and APLEX_CLUSTER_KEY_FILE"},
		{"missing file", []string{"APLEX_CLUSTER_KEY_FILE=/nonexistent/key"}, "APLEX_CLUSTER_KEY_FILE"},
	} {
		t.Run("env "+c.name, func(t *testing.T) {
			var out bytes.Buffer
			var mu sync.Mutex
			p := spawnWorkerTo(t, &lockedWriter{w: &out, mu: &mu}, "nats://127.0.0.1:1", "default", "", c.env...)
			if !p.exited(10 * time.Second) {
				t.Fatal("the worker did not exit")
			}
			mu.Lock()
			defer mu.Unlock()
			if p.cmd.ProcessState.ExitCode() != 2 || !strings.Contains(out.String(), c.want) {
				t.Fatalf("exit %d, output %q; want status 2 and %q", p.cmd.ProcessState.ExitCode(), out.String(), c.want)
			}
		})
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSealedReplayedHelloJoinsNoGhost: a gone worker's Hello, captured
// and replayed to an executor that never met it, does not join a worker
// that would hold works until its heartbeat timeout.
func TestSealedReplayedHelloJoinsNoGhost(t *testing.T) {
	srv := startServer(t, 0, nil)
	url := srv.ClientURL()
	key := cluster.NewPoolKey()
	keyEnv := "APLEX_CLUSTER_KEY=" + cluster.FormatPoolKey(key)
	a := newAttacker(t, url)
	c := a.capture("aplex.ghosts.hello")
	gone := spawnWorker(t, url, "ghosts", "gone", keyEnv)
	ex1 := newExecutor(t, cluster.WithURL(url), cluster.WithPool("ghosts"), cluster.WithPoolKey(key), aplex.WithPoolSize(1))
	if who, err := get(t, submit(t, ex1, whoami, time.Duration(0))); err != nil || worker(who) != "gone" {
		t.Fatalf("whoami = %q, %v", who, err)
	}
	gone.cmd.Process.Signal(os.Interrupt)
	if !gone.exited(10 * time.Second) {
		t.Fatal("the worker did not leave")
	}
	hellos := c.msgs()
	if len(hellos) == 0 {
		t.Fatal("captured no Hello")
	}
	ex2 := newExecutor(t, cluster.WithURL(url), cluster.WithPool("ghosts"), cluster.WithPoolKey(key))
	for _, m := range hellos {
		a.publish(m.Subject, m.Data)
	}
	a.flush()
	// Handshake: a live worker's Hello comes after the replayed ones.
	spawnWorker(t, url, "ghosts", "live", keyEnv)
	waitFor(t, 10*time.Second, "the live worker to join", func() bool {
		for _, w := range ex2.Stats().Workers {
			if w.Name == "live" {
				return true
			}
		}
		return false
	})
	for _, w := range ex2.Stats().Workers {
		if w.Name == "gone" {
			t.Fatalf("a replayed Hello joined the gone worker: %+v", ex2.Stats().Workers)
		}
	}
}

// TestConnectErrorHidesSecrets: a worker that cannot connect names the
// server, but not the token or the pool key of the URL it was given.
func TestConnectErrorHidesSecrets(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // give up after the first attempt
	key := cluster.FormatPoolKey(cluster.NewPoolKey())
	err := cluster.Serve(ctx, cluster.ServeURL("nats://tok3n-s3cret@127.0.0.1:1#aplex-key="+key))
	if err == nil {
		t.Fatal("connected")
	}
	if msg := err.Error(); strings.Contains(msg, "tok3n-s3cret") || strings.Contains(msg, key) || !strings.Contains(msg, "127.0.0.1:1") {
		t.Fatalf("error %q shows a secret, or not the server", msg)
	}
}

// TestPermissionTemplate runs a sealed pool under the NATS permissions
// the README documents: an executor user and a worker user confined to
// the subjects of pool "images" their side uses, and a worker user pinned
// to its own worker id. Another pool's subjects are refused to them.
func TestPermissionTemplate(t *testing.T) {
	perms := func(pub, sub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: sub},
		}
	}
	srv := startServer(t, 0, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "images-executor", Password: "ex-pw", Permissions: perms(
				[]string{"aplex.images.w.*", "aplex.images.discover"},
				[]string{"aplex.images.x.>", "aplex.images.hello", "aplex.images.hb.*"})},
			{Username: "images-worker", Password: "w-pw", Permissions: perms(
				[]string{"aplex.images.hello", "aplex.images.hb.*", "aplex.images.x.*.*"},
				[]string{"aplex.images.w.*", "aplex.images.discover"})},
			{Username: "gpu-1", Password: "g-pw", Permissions: perms(
				[]string{"aplex.images.hello", "aplex.images.hb.gpu-1", "aplex.images.x.*.gpu-1"},
				[]string{"aplex.images.w.gpu-1", "aplex.images.discover"})},
		}
	})
	url := srv.ClientURL()
	key := cluster.NewPoolKey()
	keyEnv := "APLEX_CLUSTER_KEY=" + cluster.FormatPoolKey(key)
	spawnWorker(t, url, "images", "", keyEnv, "APLEX_CLUSTER_USER=images-worker", "APLEX_CLUSTER_PASSWORD=w-pw")
	spawnWorker(t, url, "images", "gpu-1", keyEnv, "APLEX_CLUSTER_USER=gpu-1", "APLEX_CLUSTER_PASSWORD=g-pw")
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("images"), cluster.WithPoolKey(key),
		cluster.WithNATSOptions(nats.UserInfo("images-executor", "ex-pw")), aplex.WithPoolSize(2))
	var fs []*aplex.Future[int]
	for i := range 40 {
		fs = append(fs, submit(t, ex, square, i))
	}
	for i, f := range fs {
		if v, err := get(t, f); v != i*i || err != nil {
			t.Fatalf("square(%d) = %v, %v", i, v, err)
		}
	}
	// The worker user cannot listen to another pool, nor to another
	// worker's subject when pinned.
	for _, c := range []struct{ user, pw, subject string }{
		{"images-worker", "w-pw", "aplex.other.w.x"},
		{"gpu-1", "g-pw", "aplex.images.w.gpu-2"},
	} {
		errs := make(chan error, 1)
		nc, err := nats.Connect(url, nats.UserInfo(c.user, c.pw), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.SubscribeSync(c.subject); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Fatalf("%s subscribing %s: %v", c.user, c.subject, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s could subscribe to %s", c.user, c.subject)
		}
		nc.Close()
	}
}

// TestResultBoundToWorkerSubject: on an unsealed pool with NATS
// authentication, a worker's results were attributed by the id inside
// the payload, so one worker's credentials could answer every job of the
// pool. A worker now answers on its own sub-subject of the executor's
// inbox, which the executor checks against the id the results name: under
// the documented permissions, gpu-1's credentials cannot answer a job sent
// to gpu-2.
func TestResultBoundToWorkerSubject(t *testing.T) {
	perms := func(wid string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{"aplex.images.hello", "aplex.images.hb." + wid, "aplex.images.x.*." + wid}},
			Subscribe: &server.SubjectPermission{Allow: []string{"aplex.images.w." + wid, "aplex.images.discover"}},
		}
	}
	srv := startServer(t, 0, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "images-executor", Password: "ex-pw"}, // unrestricted
			{Username: "gpu-1", Password: "g1-pw", Permissions: perms("gpu-1")},
			{Username: "gpu-2", Password: "g2-pw", Permissions: perms("gpu-2")},
		}
	})
	url := srv.ClientURL()
	spawnWorker(t, url, "images", "gpu-2", "APLEX_CLUSTER_USER=gpu-2", "APLEX_CLUSTER_PASSWORD=g2-pw")
	ex := newExecutor(t, cluster.WithURL(url), cluster.WithPool("images"),
		cluster.WithNATSOptions(nats.UserInfo("images-executor", "ex-pw")), aplex.WithPoolSize(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blocked, err := aplex.Submit(ctx, ex, block, "bound")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the block work to start", startedIn(t, ex, "bound"))

	// The holder of gpu-1's credentials learns the executor's inbox from a
	// discover request, which its heartbeat of an unknown worker prompts.
	a := newAttackerWith(t, url, nats.UserInfo("gpu-1", "g1-pw"))
	disc, err := a.nc.SubscribeSync("aplex.images.discover")
	if err != nil {
		t.Fatal(err)
	}
	a.flush()
	a.publish("aplex.images.hb.gpu-1", marshal(t, &wire.Heartbeat{WorkerID: "gpu-1", MaxWorks: 1}))
	req, err := disc.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no discover request: %v", err)
	}
	var results []wire.Result
	for id := uint64(1); id <= 50; id++ {
		results = append(results, wire.Result{ID: id, Items: []wire.Outcome{{Value: []byte{0x19, 0x02, 0x9a}}}})
	}
	// Claiming gpu-2 on its own sub-subject, and its own id: neither is
	// accepted for gpu-2's job. (gpu-2's sub-subject is refused by NATS.)
	a.publish(req.Reply+".gpu-1", marshal(t, &wire.Results{WorkerID: "gpu-2", Results: results}))
	a.publish(req.Reply+".gpu-1", marshal(t, &wire.Results{WorkerID: "gpu-1", Results: results}))
	a.flush()
	if v, err := get(t, submit(t, ex, square, 7)); v != 49 || err != nil { // handshake
		t.Fatalf("square = %v, %v", v, err)
	}
	select {
	case <-blocked.Done():
		v, err := blocked.Get(context.Background())
		t.Fatalf("gpu-1's credentials answered gpu-2's job: %v, %v", v, err)
	default:
	}
	if d := cluster.SealDropsOf(ex); d.Impersonated == 0 {
		t.Fatalf("the impersonation was not counted: %+v", d)
	}
	cancel()
	if _, err := get(t, blocked); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked work after its caller's cancel: %v", err)
	}
}
