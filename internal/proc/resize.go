package proc

import (
	"context"
	"fmt"

	"github.com/aplex-go/aplex/internal/xport"
)

// The process transport's side of Executor.Resize and WithAutoscale
// (xport.Resizable): the engine picks the slots, the supervisor runs them.

var _ xport.Resizable = (*Transport)(nil)

// AddSlot starts a worker for slot i, keeps the slot staffed from then on,
// and returns once the worker joined. If its first start fails, or ctx
// ends first, the slot is removed again and the error returned.
func (t *Transport) AddSlot(ctx context.Context, i int) error {
	t.mu.Lock()
	if t.closing || !t.started {
		t.mu.Unlock()
		return fmt.Errorf("aplex: process workers: cannot add worker %d: the pool is closing", i)
	}
	if t.slots[i] != nil {
		t.mu.Unlock()
		return fmt.Errorf("aplex: process workers: slot %d exists", i)
	}
	s := newSlot(i)
	t.slots[i] = s
	t.mu.Unlock()
	t.sup.AddSlot(i)
	select {
	case <-s.joined:
		return nil
	case <-s.failed:
		t.RemoveSlot(i)
		t.mu.Lock()
		err := s.startErr
		t.mu.Unlock()
		return fmt.Errorf("aplex: process workers: cannot add worker %d: %w", i, err)
	case <-ctx.Done():
		t.RemoveSlot(i)
		return fmt.Errorf("aplex: process workers: worker %d did not join: %w", i, ctx.Err())
	case <-t.ctx.Done():
		t.RemoveSlot(i)
		return fmt.Errorf("aplex: process workers: cannot add worker %d: the pool is closing", i)
	}
}

// RemoveSlot stops keeping slot i staffed. Its worker, which the core has
// retired, serves what it holds and exits when the core closes it.
func (t *Transport) RemoveSlot(i int) {
	t.mu.Lock()
	delete(t.slots, i)
	t.mu.Unlock()
	t.sup.RemoveSlot(i)
}

// OwnsSlot is true: every slot of a process pool is the transport's.
func (t *Transport) OwnsSlot(int) bool { return true }

// joinedSlot records that slot s has a worker (AddSlot waits for it).
func (t *Transport) joinedSlot(s *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-s.joined:
	default:
		close(s.joined)
	}
}

// failedSlot records slot i's first failed start before any join.
func (t *Transport) failedSlot(i int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.slots[i]
	if s == nil {
		return
	}
	select {
	case <-s.joined:
		return
	case <-s.failed:
		return
	default:
	}
	s.startErr = err
	close(s.failed)
}
