package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestSlotTableReservesLocalSlots: local workers took slots in the order
// they joined, so local worker 0 (output "[aplex cluster worker 0 …]")
// could hold slot 1. Local worker i now holds slot i, and other workers the
// slots after the local ones, whatever the order of joins.
func TestSlotTableReservesLocalSlots(t *testing.T) {
	s := newSlotTable(2)
	none := func(string) bool { return false }
	for _, j := range []struct {
		wid   string
		local int
		want  int
	}{
		{"remote-a", -1, 2},
		{"ex-1", 1, 1},
		{"remote-b", -1, 3},
		{"ex-0", 0, 0},
		{"ex-1", 1, 1}, // a restart keeps its slot
		{"remote-a", -1, 2},
	} {
		if got := s.assign(j.wid, j.local, 0, none); got != j.want {
			t.Errorf("assign(%q, local %d) = %d, want %d", j.wid, j.local, got, j.want)
		}
	}
}

// TestSlotTableClaimsLocalSlots: a slot Resize makes local is refused
// while another worker holds it or may come back for it (slotReserve),
// taken once that worker's reservation has passed, and never given to a
// remote worker while it is local.
func TestSlotTableClaimsLocalSlots(t *testing.T) {
	s := newSlotTable(1)
	local := map[int]bool{0: true}
	s.isLocal = func(slot int) bool { return local[slot] }
	members := map[string]bool{}
	isMember := func(wid string) bool { return members[wid] }

	if got := s.assign("remote-a", -1, 0, isMember); got != 1 {
		t.Fatalf("remote-a got slot %d, want 1", got)
	}
	members["remote-a"] = true
	if err := s.claim(1, "ex-1", 0, isMember); err == nil || !strings.Contains(err.Error(), "remote-a") {
		t.Errorf("claiming a member's slot = %v, want it refused naming the member", err)
	}
	delete(members, "remote-a")
	s.left("remote-a", time.Second)
	if err := s.claim(1, "ex-1", time.Second+slotReserve/2, isMember); err == nil {
		t.Error("claimed the slot of a worker that left within slotReserve")
	}
	if err := s.claim(2, "ex-2", 0, isMember); err != nil {
		t.Errorf("claiming a free slot: %v", err)
	}
	local[2] = true
	if got := s.assign("ex-2", 2, 0, isMember); got != 2 {
		t.Errorf("local worker 2 got slot %d", got)
	}
	if err := s.claim(2, "ex-2", 0, isMember); err != nil {
		t.Errorf("claiming a slot again for its own local worker: %v", err)
	}
	// A new remote worker skips local slot 2 and remote-a's reserved 1.
	if got := s.assign("remote-b", -1, time.Second, isMember); got != 3 {
		t.Errorf("remote-b got slot %d, want 3", got)
	}
	later := time.Second + slotReserve
	if err := s.claim(1, "ex-1", later, isMember); err != nil {
		t.Fatalf("claiming a slot whose worker left slotReserve ago: %v", err)
	}
	local[1] = true
	// remote-a comes back: its slot is local now, so it gets another.
	if got := s.assign("remote-a", -1, later, isMember); got == 1 || local[got] {
		t.Errorf("remote-a came back to slot %d, a local one", got)
	}
}
