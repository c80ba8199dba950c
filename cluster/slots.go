package cluster

import "time"

// slotTable gives each worker id a small stable slot: the balancers' worker
// identity. A worker that comes back with the same id gets its slot again;
// a departed worker's slot is handed to a new id only after slotReserve.
// Slots 0 … reserved-1 belong to the executor's local workers, local
// worker i holding slot i whatever the order they join in, so the slot in
// Stats is the N of its output prefix "[aplex cluster worker N pid P]" and
// of its WorkerInfo.ID; other workers take the slots after them.
type slotTable struct {
	reserved int
	of       map[string]int           // worker id → slot
	owner    map[int]string           // slot → worker id
	leftAt   map[string]time.Duration // worker id → when it left
}

func newSlotTable(reserved int) slotTable {
	return slotTable{reserved: reserved, of: map[string]int{}, owner: map[int]string{}, leftAt: map[string]time.Duration{}}
}

// assign returns wid's slot: local worker i's (local >= 0) is i; another
// worker gets its own if it had one, else the lowest unreserved slot that
// is free or whose owner left long enough ago.
func (s *slotTable) assign(wid string, local int, now time.Duration, isMember func(string) bool) int {
	delete(s.leftAt, wid)
	if local >= 0 && local < s.reserved {
		s.of[wid], s.owner[local] = local, wid
		return local
	}
	if slot, ok := s.of[wid]; ok {
		return slot
	}
	for slot := s.reserved; ; slot++ {
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
