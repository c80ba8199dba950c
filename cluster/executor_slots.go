package cluster

import (
	"fmt"
	"time"
)

// slotTable gives each worker id a small stable slot: the balancers' worker
// identity. A worker that comes back with the same id gets its slot again;
// a departed worker's slot is handed to a new id only after slotReserve.
// Local worker i holds slot i whatever the order they join in, so the slot
// in Stats is the N of its output prefix "[aplex cluster worker N pid P]"
// and of its WorkerInfo.ID: slots 0 … reserved-1 are SpawnLocalWorkers',
// and Resize makes other slots local (claim). Other workers take the
// lowest slot from reserved on that is not local.
type slotTable struct {
	reserved int
	isLocal  func(slot int) bool      // a local worker's slot (localSlots.has); nil: none but the reserved
	of       map[string]int           // worker id → slot
	owner    map[int]string           // slot → worker id
	leftAt   map[string]time.Duration // worker id → when it left
}

func newSlotTable(reserved int) slotTable {
	return slotTable{reserved: reserved, of: map[string]int{}, owner: map[int]string{}, leftAt: map[string]time.Duration{}}
}

// assign returns wid's slot: local worker i's (local >= 0) is i; another
// worker gets its own if it had one, else the lowest unreserved slot that
// is not local and is free or whose owner left long enough ago.
func (s *slotTable) assign(wid string, local int, now time.Duration, isMember func(string) bool) int {
	delete(s.leftAt, wid)
	if local >= 0 {
		s.of[wid], s.owner[local] = local, wid
		return local
	}
	if slot, ok := s.of[wid]; ok && !s.local(slot) {
		return slot
	}
	for slot := s.reserved; ; slot++ {
		if s.local(slot) {
			continue
		}
		o, taken := s.owner[slot]
		if taken {
			left, gone := s.leftAt[o]
			if isMember(o) || !gone || now-left < slotReserve {
				continue
			}
			delete(s.of, o)
			delete(s.leftAt, o)
		}
		s.of[wid], s.owner[slot] = slot, wid
		return slot
	}
}

// local reports whether slot is a local worker's.
func (s *slotTable) local(slot int) bool {
	return s.isLocal != nil && s.isLocal(slot)
}

// claim takes slot for local worker wid (Resize): it fails if another
// worker holds it or may still come back for it (slotReserve).
func (s *slotTable) claim(slot int, wid string, now time.Duration, isMember func(string) bool) error {
	o, taken := s.owner[slot]
	if !taken || o == wid {
		return nil
	}
	left, gone := s.leftAt[o]
	if isMember(o) || !gone || now-left < slotReserve {
		return fmt.Errorf("slot %d is held by worker %q", slot, o)
	}
	delete(s.of, o)
	delete(s.leftAt, o)
	delete(s.owner, slot)
	return nil
}

// left records that wid's member is gone.
func (s *slotTable) left(wid string, now time.Duration) { s.leftAt[wid] = now }
