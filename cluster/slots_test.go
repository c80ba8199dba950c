package cluster

import "testing"

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
