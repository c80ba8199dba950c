package cluster

import (
	"os/exec"
	"testing"
)

// TestLocalProcessesAreToldOnceAndNoneIsMissedAtShutdown: the shutdown
// signals each slot's process once (terminateAll: not one that Resize or
// recycling told to leave already, which a second signal makes exit at
// once), and a process forked as the shutdown began, which terminateAll
// may have missed, is to be killed by its forker (forked), as the shutdown
// kills every worker that has not joined; before the shutdown, a process
// forked for a removed slot is told to leave.
func TestLocalProcessesAreToldOnceAndNoneIsMissedAtShutdown(t *testing.T) {
	var ls localSlots
	ls.init(3, nil)
	told := &exec.Cmd{Path: "told"}
	if leave, die := ls.forked(ls.m[0], told); leave || die {
		t.Fatalf("forked before any shutdown: leave %v, die %v; want neither", leave, die)
	}
	ls.m[0].termed = true // Resize or recycling told it to leave
	fresh := &exec.Cmd{Path: "fresh"}
	ls.forked(ls.m[1], fresh)
	ls.m[2].removed = true
	if leave, die := ls.forked(ls.m[2], &exec.Cmd{Path: "removed"}); !leave || die {
		t.Fatalf("forked for a removed slot: leave %v, die %v; want leave", leave, die)
	}
	ls.close()
	if got := ls.terminateAll(); len(got) != 1 || got[0] != fresh {
		t.Fatalf("terminateAll = %v, want only the process not told yet", got)
	}
	if got := ls.terminateAll(); len(got) != 0 {
		t.Fatalf("terminateAll again = %v, want none: each is told once", got)
	}
	ls.m[1].cmd = nil // reaped, and its slot's next process forked as the shutdown began
	if leave, die := ls.forked(ls.m[1], &exec.Cmd{Path: "late"}); leave || !die {
		t.Fatalf("forked after the shutdown began: leave %v, die %v; want die", leave, die)
	}
	if !ls.m[1].termed {
		t.Error("a process forked after the shutdown began is not marked told: terminateAll would signal it")
	}
}
