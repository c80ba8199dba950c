package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/spawn"
	"github.com/aplex-go/aplex/internal/xport"
)

// The cluster transport's side of Executor.Resize (xport.Resizable): the
// engine resizes a cluster executor's local workers only. It picks the
// slots (the lowest ones it does not know, the highest local ones); the
// transport checks that no remote worker holds or waits for a slot it
// adds, runs the slot's worker under the shared supervisor, and stops
// restarting a removed one. The removed slot's process gets SIGTERM once
// the core closes it (Worker.Close), that is once it holds no job and is
// sent none: every Run sent to it has been answered, so none can reach it
// after it left (a local worker leaves without an accept window). It says
// Bye and exits, and is reported lost once its process has exited. Remote
// workers join and leave on their own: OwnsSlot is false for their slots,
// so the engine neither counts nor removes them.

var _ xport.Resizable = (*transport)(nil)

// errLocalClosing is AddSlot's error once Close began: Resize then
// reports aplex.ErrClosed, as it does once Shutdown began.
var errLocalClosing = fmt.Errorf("aplex: cluster: no local worker starts while the executor closes: %w", aplex.ErrClosed)

// AddSlot starts local worker slot (id "<executor id>-<slot>", with its
// LocalWorkerLabels, WithWorkerEnv and labelled output), keeps it running
// like the first ones, and returns once it joined. If it cannot start, a
// remote worker holds or reserves the slot, or ctx ends first, the slot is
// removed again and the error returned.
func (t *transport) AddSlot(ctx context.Context, slot int) error {
	if slot < 0 {
		return fmt.Errorf("aplex: cluster: cannot add local worker %d: negative slot", slot)
	}
	l, err := t.localWorkers()
	if err != nil {
		return err
	}
	var labels string
	if f := t.cfg.localLabels; f != nil {
		if labels, err = labelsEntry(f, slot); err != nil {
			return err
		}
	}
	s, err := t.lslots.add(ctx, slot, labels)
	if err != nil {
		return err
	}
	// From here on the slot is local: slotTable.assign gives it to no
	// remote worker. One may hold it already, or may come back for it.
	wid := l.wid(slot)
	t.mu.Lock()
	err = t.slots.claim(slot, wid, t.now(), t.isMember)
	if err == nil && t.closing.Load() {
		err = errLocalClosing
	}
	if err == nil {
		delete(t.ever, wid) // a new worker: one that never joins fails AddSlot
	}
	t.mu.Unlock()
	if err != nil {
		t.lslots.remove(slot, false)
		return fmt.Errorf("aplex: cluster: cannot add local worker %d: %w", slot, err)
	}
	l.sup.AddSlot(slot)
	select {
	case <-s.joined:
		return nil
	case err = <-s.failed:
		err = fmt.Errorf("aplex: cluster: cannot add local worker %d: %w", slot, err)
	case <-ctx.Done():
		err = fmt.Errorf("aplex: cluster: local worker %d did not join: %w", slot, ctx.Err())
	}
	if t.removeSlot(slot, true) {
		<-s.joined // it is joining as ctx ended: it serves
		return nil
	}
	return err
}

// RemoveSlot stops restarting local worker slot. The core retired its
// worker already and closes it once it holds no job (member.Close), which
// tells the process to leave; a process that has not joined yet, which
// holds nothing, is told at once. It is reported lost once its process
// has exited (localExited), which is when Resize returns.
func (t *transport) RemoveSlot(slot int) { t.removeSlot(slot, false) }

// removeSlot is RemoveSlot. For AddSlot giving up (unlessJoining), it
// leaves a slot whose process is joining alone and reports it: the core
// may be using that worker already.
func (t *transport) removeSlot(slot int, unlessJoining bool) (joining bool) {
	cmd, ok, joining := t.lslots.remove(slot, unlessJoining)
	if !ok {
		return joining
	}
	t.mu.Lock()
	l := t.local
	t.mu.Unlock()
	if l != nil {
		l.sup.RemoveSlot(slot)
	}
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	return false
}

// leaveLocal tells a retired local worker's process to leave, once the
// core closed it: its slot was removed, or it was recycled (m.recycled).
func (t *transport) leaveLocal(m *member) {
	if cmd := t.lslots.terminate(m.slot, m.pid, m.recycled()); cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
	}
}

// OwnsSlot reports whether slot is a local worker's: SpawnLocalWorkers'
// and those Resize added, until their process has left.
func (t *transport) OwnsSlot(slot int) bool { return t.lslots.has(slot) }

// localWorkers returns the local workers' machinery, creating it for the
// first slot Resize adds to an executor started without local workers.
func (t *transport) localWorkers() (*localWorkers, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing.Load() {
		return nil, errLocalClosing
	}
	if t.local == nil {
		l, err := newLocalWorkers(t, 0, t.dialURL)
		if err != nil {
			return nil, err
		}
		l.start()
		t.local = l
	}
	return t.local, nil
}

// retiredLocal reports whether m is a local worker whose slot Resize
// removed: it is dropped once its process has exited, not before.
func (t *transport) retiredLocal(m *member) bool {
	i := t.localIndex(m.wid)
	return i >= 0 && i == m.slot && t.lslots.removed(i)
}

// localSlots is the set of slots this executor's local workers hold,
// with each one's state: SpawnLocalWorkers' 0 … n-1 at first, then what
// Resize adds and removes. A removed slot stays in the set until its
// process has exited. Its lock is a leaf, taken under t.mu (slotTable)
// and under the core's lock (OwnsSlot), and nothing is called under it.
type localSlots struct {
	mu   sync.Mutex
	m    map[int]*localSlot
	shut bool // Close began: nothing is added
}

// localSlot is one local worker slot.
type localSlot struct {
	labels  string    // its APLEX_CLUSTER_LABELS entry, "" for none; set once
	cmd     *exec.Cmd // its process, from fork to reaping
	joinPID int       // the pid of its last process that joined
	// termed: cmd got its SIGTERM. Once only: a local worker exits at once
	// on a second signal, dropping what it holds.
	termed  bool
	running bool // an incarnation runs (localWorkers.run)
	removed bool // RemoveSlot: not restarted; its process leaves
	// killed says why cmd was killed where it runs (WithWorkerMemoryLimit);
	// nil if it was not. Taken when it is reaped.
	killed error
	// gone is closed once a removed slot has no process any more, and is
	// forgotten: it may then be added again.
	gone chan struct{}
	// AddSlot's, nil for SpawnLocalWorkers' slots: closed at the first
	// join, and the first failed start.
	joined chan struct{}
	failed chan error
}

// init records SpawnLocalWorkers' n slots, with their labels entries
// (nil: none).
func (ls *localSlots) init(n int, labels []string) {
	ls.m = map[int]*localSlot{}
	for i := range n {
		s := &localSlot{gone: make(chan struct{})}
		if labels != nil {
			s.labels = labels[i]
		}
		ls.m[i] = s
	}
}

// live returns the number of local slots that Resize has not removed.
func (ls *localSlots) live() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for _, s := range ls.m {
		if !s.removed {
			n++
		}
	}
	return n
}

// has reports whether slot is local.
func (ls *localSlots) has(slot int) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.m[slot] != nil
}

// removed reports whether slot is local and removed.
func (ls *localSlots) removed(slot int) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	return s != nil && s.removed
}

// add makes slot local, for AddSlot. A previous worker of the slot that
// is still leaving is waited for, until ctx ends.
func (ls *localSlots) add(ctx context.Context, slot int, labels string) (*localSlot, error) {
	for {
		ls.mu.Lock()
		if ls.shut {
			ls.mu.Unlock()
			return nil, errLocalClosing
		}
		old := ls.m[slot]
		if old == nil {
			s := &localSlot{labels: labels, gone: make(chan struct{}), joined: make(chan struct{}), failed: make(chan error, 1)}
			if ls.m == nil {
				ls.m = map[int]*localSlot{}
			}
			ls.m[slot] = s
			ls.mu.Unlock()
			return s, nil
		}
		if !old.removed {
			ls.mu.Unlock()
			return nil, fmt.Errorf("aplex: cluster: local worker %d runs already", slot)
		}
		gone := old.gone
		ls.mu.Unlock()
		select {
		case <-gone:
		case <-ctx.Done():
			return nil, fmt.Errorf("aplex: cluster: local worker %d: its previous process is still leaving: %w", slot, ctx.Err())
		}
	}
}

// remove marks slot removed; ok false if the slot is not local or was
// removed already. It returns the slot's process to tell to leave if that
// has not joined yet (nil otherwise: the core closes a joined one when
// idle); such a process is then refused should its Hello come (joining).
// With unlessJoining, a slot whose process joins, or joined, is left
// alone (joining true). A slot without a running incarnation is forgotten
// at once.
func (ls *localSlots) remove(slot int, unlessJoining bool) (cmd *exec.Cmd, ok, joining bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil || s.removed {
		return nil, false, false
	}
	joining = s.cmd != nil && s.joinPID == s.cmd.Process.Pid
	if unlessJoining && joining {
		return nil, false, true
	}
	s.removed = true
	if !s.running {
		ls.forgetLocked(slot, s)
	}
	if s.cmd == nil || s.termed || joining {
		return nil, true, false
	}
	s.termed = true
	return s.cmd, true, false
}

// terminate returns the process pid of slot to tell to leave, unless it
// was told already or is not the slot's current process: a removed slot's,
// or, with recycle, one whose slot stays and gets a fresh process.
func (ls *localSlots) terminate(slot, pid int, recycle bool) *exec.Cmd {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil || !(s.removed || recycle) || s.cmd == nil || s.termed || s.cmd.Process.Pid != pid {
		return nil
	}
	s.termed = true
	return s.cmd
}

// terminateAll returns the slots' processes not told to leave yet, and
// marks them told: the executor's shutdown asks each to leave once.
func (ls *localSlots) terminateAll() []*exec.Cmd {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []*exec.Cmd
	for _, s := range ls.m {
		if s.cmd != nil && !s.termed {
			s.termed = true
			out = append(out, s.cmd)
		}
	}
	return out
}

// close refuses further adds and fails the AddSlot calls waiting.
func (ls *localSlots) close() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.shut = true
	for _, s := range ls.m {
		if s.failed != nil {
			select {
			case s.failed <- errLocalClosing:
			default:
			}
		}
	}
}

// begin starts an incarnation of slot; nil if the slot was removed.
func (ls *localSlots) begin(slot int) *localSlot {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil || s.removed {
		return nil
	}
	s.running = true
	return s
}

// localProc is a local worker process, for stop.
type localProc struct {
	slot   int
	cmd    *exec.Cmd
	joined bool // its Hello was taken (joinPID)
}

// procs returns the local slots' processes not yet reaped.
func (ls *localSlots) procs() []localProc {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []localProc
	for slot, s := range ls.m {
		if s.cmd != nil {
			out = append(out, localProc{slot: slot, cmd: s.cmd, joined: s.joinPID == s.cmd.Process.Pid})
		}
	}
	return out
}

// forked records s's new process and says what to do with it: leave,
// when the slot was removed meanwhile; die, when the executor's shutdown
// began, whose signals (terminateAll) it may have missed, and which kills
// the workers that have not joined anyway.
func (ls *localSlots) forked(s *localSlot, cmd *exec.Cmd) (leave, die bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s.cmd, s.termed = cmd, s.removed || ls.shut
	return s.removed && !ls.shut, ls.shut
}

// reaped records that s's process has exited and reports whether the slot
// was removed, and whether that process had joined.
func (ls *localSlots) reaped(s *localSlot) (removed, joined bool, killed error) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	joined = s.cmd != nil && s.joinPID == s.cmd.Process.Pid
	s.cmd, killed, s.killed = nil, s.killed, nil
	return s.removed, joined, killed
}

// watched returns the slots' processes for the memory watch
// (spawn.WatchMemory): one over the limit is killed at once, as a process
// worker is, and its slot remembers why, for the cause of its loss.
func (ls *localSlots) watched() []spawn.Watched {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []spawn.Watched
	for _, s := range ls.m {
		if cmd := s.cmd; cmd != nil {
			out = append(out, spawn.Watched{PID: cmd.Process.Pid, Kill: func(err *spawn.MemoryLimitError) {
				ls.mu.Lock()
				if s.cmd == cmd && s.killed == nil {
					s.killed = err
				}
				ls.mu.Unlock()
				cmd.Process.Kill()
			}})
		}
	}
	return out
}

// end ends an incarnation; a removed slot is forgotten.
func (ls *localSlots) end(slot int, s *localSlot) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s.running, s.cmd = false, nil
	if s.removed {
		ls.forgetLocked(slot, s)
	}
}

// forgetLocked takes a removed slot out of the set.
func (ls *localSlots) forgetLocked(slot int, s *localSlot) {
	if ls.m[slot] == s {
		delete(ls.m, slot)
	}
	close(s.gone)
}

// joining records that slot's process pid is joining (onHello, under
// t.mu, before Sink.Join), for remove; false if that process was told to
// leave before it joined: its Hello is ignored.
func (ls *localSlots) joining(slot, pid int) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil {
		return true
	}
	if s.termed && s.joinPID != pid && s.cmd != nil && s.cmd.Process.Pid == pid {
		return false
	}
	s.joinPID = pid
	return true
}

// joined tells AddSlot that slot's worker joined (Sink.Join returned).
func (ls *localSlots) joined(slot int) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil || s.joined == nil {
		return
	}
	select {
	case <-s.joined:
	default:
		close(s.joined)
	}
}

// startFailed tells AddSlot that slot's worker could not start; false if
// no AddSlot waits for the slot (it is one of SpawnLocalWorkers').
func (ls *localSlots) startFailed(slot int, err error) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := ls.m[slot]
	if s == nil || s.failed == nil {
		return false
	}
	select {
	case s.failed <- err:
	default:
	}
	return true
}
