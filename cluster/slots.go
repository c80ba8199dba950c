package cluster

import "time"

// slotTable gives each worker id a small stable slot: the balancers' worker
// identity. A worker that comes back with the same id gets its slot again;
// a departed worker's slot is handed to a new id only after slotReserve.
type slotTable struct {
	of     map[string]int           // worker id → slot
	owner  map[int]string           // slot → worker id
	leftAt map[string]time.Duration // worker id → when it left
}

func newSlotTable() slotTable {
	return slotTable{of: map[string]int{}, owner: map[int]string{}, leftAt: map[string]time.Duration{}}
}

// assign returns wid's slot: its own if it had one, else the lowest slot
// that is free or whose owner left long enough ago.
func (s *slotTable) assign(wid string, now time.Duration, isMember func(string) bool) int {
	delete(s.leftAt, wid)
	if slot, ok := s.of[wid]; ok {
		return slot
	}
	for slot := 0; ; slot++ {
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

// left records that wid's member is gone.
func (s *slotTable) left(wid string, now time.Duration) { s.leftAt[wid] = now }
