package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/link"
	"github.com/aplex-go/aplex/internal/seal"
	"github.com/aplex-go/aplex/internal/wire"
	"github.com/aplex-go/aplex/internal/xport"
)

// transport is the executor side of the cluster: an xport.Transport whose
// workers are remote processes reached over NATS. It owns the connection
// (and the embedded server, if any), membership (who is alive, in which
// slot), the sender of Runs and Cancels, and the local worker processes.
type transport struct {
	cfg   *execConfig
	xc    xport.Config
	subj  subjects
	exid  string // this executor's id, unique in the pool
	inbox string // where results and discover answers come
	log   *slog.Logger
	epoch time.Time // origin of now()

	nc      *nats.Conn
	sealed  *sealConn // every publish and subscription of the pool
	ownConn bool
	srv     *server.Server // the embedded server, nil if none
	url     string         // how workers reach the server, as URL reports it
	dialURL string         // the same without credentials or key (local workers get those in their environment)
	token   string         // the embedded server's token
	max     int            // NATS max payload

	sink  xport.Sink
	send  *link.Writer[*member]
	local *localWorkers // nil without local workers; read under mu once started (Resize may create it)
	subs  []*nats.Subscription

	gate     sync.RWMutex // message handlers hold it shared; shutdown takes it
	stopped  atomic.Bool  // set before gate is taken: handlers return at once
	started  bool
	closing  atomic.Bool // membership no longer changes; no Join
	done     atomic.Bool // Close returned: no Sink call any more
	connDead atomic.Bool // the NATS connection closed for good
	// reconnectsSeen is the connection's reconnect count the monitor has
	// handled (checkReconnect): one above it is a reconnect whose members
	// are not marked unsynced yet (member.Unreachable).
	reconnectsSeen atomic.Uint64

	reconnected chan struct{} // the NATS client reconnected
	connClosed  chan struct{} // the NATS client closed for good
	stopMon     chan struct{}
	monDone     chan struct{}
	joinWake    chan struct{}

	mu      sync.Mutex
	members map[string]*member
	ever    map[string]bool // local workers that joined at least once
	slots   slotTable
	tombs   map[string]tomb
	asked   map[string]time.Duration // targeted discover sent at, by worker id
	unreg   func()                   // removes the executor from URL's registry

	// lslots are the local workers' slots, which Resize changes; their
	// own lock.
	lslots localSlots
}

// tomb remembers a dropped worker: a killed process must not re-join, and
// one that comes back after losing its heartbeat has its orphaned jobs of
// this executor cancelled.
type tomb struct {
	pid     int
	orphans []uint64
	owed    []wire.Job // orphans whose kill was due (member.owed)
	killed  bool
	at      time.Duration
}

// defaultStartTimeout is aplex.WithStartTimeout's default, should a
// transport be built without it.
const defaultStartTimeout = 10 * time.Second

// Housekeeping periods.
const (
	tombTTL     = 10 * time.Minute
	slotReserve = time.Minute // a departed worker's slot waits this long for it
	flushClose  = time.Second
)

var _ xport.Transport = (*transport)(nil)

// newTransport connects (or starts the embedded server) so that the core
// can read MaxMessage before Start.
func newTransport(xc xport.Config, cfg *execConfig) (*transport, error) {
	if xc.HeartbeatTimeout <= 0 { // aplex.WithHeartbeatTimeout sets it; never below its minimum
		xc.HeartbeatTimeout = aplex.DefaultHeartbeatTimeout
	}
	if xc.StartTimeout <= 0 { // aplex.WithStartTimeout sets it
		xc.StartTimeout = defaultStartTimeout
	}
	if err := cfg.check(xc); err != nil {
		return nil, err
	}
	t := &transport{
		cfg:         cfg,
		xc:          xc,
		subj:        subjects{pool: cfg.pool},
		exid:        randomToken(6),
		log:         xc.Logger,
		epoch:       time.Now(),
		reconnected: make(chan struct{}, 1),
		connClosed:  make(chan struct{}, 1),
		stopMon:     make(chan struct{}),
		monDone:     make(chan struct{}),
		joinWake:    make(chan struct{}, 1),
		members:     map[string]*member{},
		ever:        map[string]bool{},
		slots:       newSlotTable(cfg.local),
		tombs:       map[string]tomb{},
		asked:       map[string]time.Duration{},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.inbox = t.subj.inbox(t.exid)
	name := "aplex executor " + cfg.pool + " " + t.exid
	onReconnect := func() { notify(t.reconnected) }
	onClosed := func() { notify(t.connClosed) }
	switch {
	case cfg.conn != nil:
		t.nc = cfg.conn
		t.url = cfg.conn.ConnectedUrl()
	case len(cfg.urls) > 0:
		nc, err := dial(cfg.urls, name, cfg.natsOpts, onReconnect, onClosed)
		if err != nil {
			return nil, err
		}
		t.nc, t.ownConn = nc, true
		t.url = strings.Join(cfg.urls, ",")
	default:
		// Secure by default: the embedded server takes only clients with
		// its token, and the pool is sealed with a key made here unless
		// WithPoolKey gave one. Local workers get both in their
		// environment (never on a command line, which any user can list);
		// URL hands both to workers started by hand.
		t.token = randomToken(24)
		if cfg.key == nil {
			cfg.key, cfg.generated = seal.NewKey(), true
		}
		srv, err := startEmbedded(t.token)
		if err != nil {
			return nil, err
		}
		// The executor talks to its own server in-process, without a
		// loopback socket (reference/limits.md §2.5: 132 against 175 µs
		// per request/reply); workers connect over TCP.
		nc, err := dial([]string{srv.ClientURL()}, name,
			append([]nats.Option{nats.InProcessServer(srv), nats.Token(t.token)}, cfg.natsOpts...), onReconnect, onClosed)
		if err != nil {
			stopEmbedded(srv)
			return nil, err
		}
		t.nc, t.ownConn, t.srv = nc, true, srv
		t.dialURL = srv.ClientURL()
		t.url = strings.Replace(t.dialURL, "://", "://"+t.token+"@", 1)
		if cfg.generated {
			t.url += "#" + urlKeyParam + formatKeys(cfg.key, nil)
		}
	}
	if t.dialURL == "" {
		t.dialURL = t.url
	}
	box, err := sealBox(cfg.key, cfg.accepted, cfg.pool, t.exid, seal.Executor)
	if err != nil {
		t.release()
		return nil, fmt.Errorf("aplex: cluster: %w", err)
	}
	t.sealed = newSealConn(t.nc, box, t.subj, t.log, "aplex cluster", "")
	if box == nil {
		t.log.Warn("aplex cluster: the pool is unsealed: whoever can use its subjects on the NATS server can read every argument and result and forge messages; seal it with cluster.WithPoolKey",
			"pool", cfg.pool)
	}
	t.max = maxPayload(t.nc) - t.sealed.overhead()
	t.send = newSender(t)
	if cfg.local > 0 {
		l, err := newLocalWorkers(t, cfg.local, t.dialURL)
		if err != nil {
			t.release()
			return nil, err
		}
		t.local = l
	}
	t.lslots.init(cfg.local, t.local.labelsOrNil())
	t.slots.isLocal = t.lslots.has
	return t, nil
}

// reconnects counts the connection's reconnections: a member resynced at
// a lower count may have lost messages since (member.Unreachable).
func (t *transport) reconnects() uint64 { return t.nc.Stats().Reconnects }

// now is the transport's monotonic clock.
func (t *transport) now() time.Duration { return time.Since(t.epoch) }

// MaxMessage is NATS' max payload: the core rejects larger arguments at
// Submit, and the worker host turns larger results into errors.
func (t *transport) MaxMessage() int { return t.max }

// Start subscribes, asks the pool's workers to announce themselves, starts
// the local workers, and returns once the workers it must wait for have
// joined: every local worker, and at least aplex.WithPoolSize workers if
// that option was given. Otherwise it returns at once and works queue
// until a worker joins.
func (t *transport) Start(ctx context.Context, sink xport.Sink) error {
	// The start timeout bounds the whole start, subscriptions included;
	// the caller's ctx may end sooner.
	ctx, cancel := context.WithTimeout(ctx, t.xc.StartTimeout)
	defer cancel()
	t.sink = sink
	if err := t.subscribe(ctx); err != nil {
		t.abort()
		return err
	}
	t.started = true
	t.send.Start()
	go t.monitor()
	t.discover("")
	if t.local != nil {
		t.local.start()
	}
	if err := t.waitJoined(ctx); err != nil {
		t.abort()
		return err
	}
	return nil
}

// subscribe listens on the executor's inbox and the pool's announcements,
// and makes sure the server has the subscriptions before anything asks a
// worker to answer.
func (t *transport) subscribe(ctx context.Context) error {
	for _, s := range []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{fromWorker(t.inbox, "*"), t.sealed.handler(true, t.onInbox)},
		{t.subj.hello(), t.sealed.handler(false, t.onControl)},
		{t.subj.heartbeats(), t.sealed.handler(false, t.onControl)},
	} {
		sub, err := t.nc.Subscribe(s.subject, s.handle)
		if err != nil {
			return fmt.Errorf("aplex: cluster: subscribe %s: %w", s.subject, err)
		}
		// Never drop a result because this process was briefly slow.
		sub.SetPendingLimits(-1, -1)
		t.subs = append(t.subs, sub)
	}
	if err := t.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("aplex: cluster: NATS server does not answer: %w", err)
	}
	return nil
}

// waitJoined waits until the workers Start must wait for have joined.
func (t *transport) waitJoined(ctx context.Context) error {
	want := max(t.cfg.local, t.xc.PoolSize)
	for {
		// A member counts once its Join has returned: before, the core
		// does not know it, and the first works would go to the others.
		t.mu.Lock()
		members := slices.Collect(maps.Values(t.members))
		locals := make([]*member, t.cfg.local)
		for i := range locals {
			locals[i] = t.members[t.local.wid(i)]
		}
		t.mu.Unlock()
		have, ok := 0, true
		for _, m := range members {
			if m.hasJoined() {
				have++
			}
		}
		for _, m := range locals {
			ok = ok && m != nil && m.hasJoined()
		}
		if ok && have >= want {
			return nil
		}
		var failed chan error
		if t.local != nil {
			failed = t.local.failed
		}
		select {
		case <-t.joinWake:
		case err := <-failed:
			return err
		case <-ctx.Done():
			return fmt.Errorf("aplex: cluster: %d of %d workers joined pool %q before the start timeout: %w", have, want, t.cfg.pool, ctx.Err())
		}
	}
}

// Close stops the local workers (waiting for them until ctx ends, then
// killing them), unsubscribes, and closes the connection and the embedded
// server. Remote workers are not told anything: they serve other executors.
func (t *transport) Close(ctx context.Context) error {
	if !t.closing.CompareAndSwap(false, true) {
		return nil
	}
	t.lslots.close()
	t.mu.Lock()
	l := t.local // Resize may have created it
	t.mu.Unlock()
	var err error
	if l != nil {
		// Before the server goes: a leaving worker says Bye through it.
		err = l.stop(ctx)
	}
	return errors.Join(err, t.release())
}

// stopHandlers makes message handlers return at once from now on, and
// waits for those running to return; true if one still runs xport.StuckGrace
// later. A handler delivering results runs completion callbacks
// (Future.OnDone), and one that shuts the executor down, which OnDone
// forbids but must not hang, waits for this: it is left to return on its
// own. Its Done then finds the slots freed by the teardown.
func (t *transport) stopHandlers() (stuck bool) {
	t.stopped.Store(true)
	// A handler holds gate shared while it runs: taking it exclusively
	// waits for those running. Polled, not Lock: a pending Lock would
	// also hold up the handlers about to see stopped and return.
	for deadline := time.Now().Add(xport.StuckGrace); !t.gate.TryLock(); {
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	t.gate.Unlock()
	return false
}

// abort undoes a failed Start.
func (t *transport) abort() {
	t.closing.Store(true)
	if t.local != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t.local.stop(ctx)
		cancel()
	}
	t.release()
}

// release stops everything but the local workers: no handler runs and no
// Sink method is called once it returns, but for a handler or the monitor
// stuck in a completion callback (stopHandlers; the monitor's wait).
func (t *transport) release() error {
	stuck := t.stopHandlers()
	for _, s := range t.subs {
		s.Unsubscribe()
	}
	if t.started {
		close(t.stopMon)
		// The monitor reports the workers it finds silent (Sink.Lost),
		// which runs the callbacks of their failed futures: one that
		// shuts the executor down waits for this, and is left likewise.
		select {
		case <-t.monDone:
		case <-time.After(xport.StuckGrace):
			stuck = true
		}
		t.send.Close()
	}
	if t.ownConn {
		t.nc.Close()
	} else {
		t.nc.FlushTimeout(flushClose) // our unsubscriptions reach the server
	}
	if t.srv != nil {
		stopEmbedded(t.srv)
	}
	t.done.Store(true)
	t.mu.Lock()
	unreg := t.unreg
	t.mu.Unlock()
	if unreg != nil {
		unreg()
	}
	if stuck {
		return fmt.Errorf("aplex: cluster: a result handler or the worker monitor still runs a completion callback %v after the executor closed (one that shuts its own executor down, which OnDone forbids, never returns before this does)", xport.StuckGrace)
	}
	return nil
}
