package spawn

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSupervisorBackOff: failed starts double the wait before the next
// start; an incarnation that started, however briefly, restarts at once.
func TestSupervisorBackOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration
		failed bool
		want   time.Duration
	}{
		{"first failed start", 0, true, 10 * time.Millisecond},
		{"failed start doubles", 40 * time.Millisecond, true, 80 * time.Millisecond},
		{"capped", 1500 * time.Millisecond, true, 2 * time.Second},
		{"a start resets", 2 * time.Second, false, 0},
		{"a start after none failed", 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextDelay(tc.delay, tc.failed); got != tc.want {
				t.Fatalf("nextDelay(%v, %v) = %v, want %v", tc.delay, tc.failed, got, tc.want)
			}
		})
	}
}

// TestSupervisorRestartsEndedIncarnations: each slot runs incarnation
// after incarnation, and Failed hears of failed starts with the growing
// back-off until it gives the slot up.
func TestSupervisorRestartsEndedIncarnations(t *testing.T) {
	var mu sync.Mutex
	runs := map[int]int{}
	var waits []time.Duration
	gaveUp := make(chan struct{})
	ended := make(chan struct{})
	errStart := errors.New("cannot start")
	s := NewSupervisor(SupervisorConfig{
		Slots: 2,
		Run: func(ctx context.Context, slot int) error {
			mu.Lock()
			runs[slot]++
			n := runs[slot]
			mu.Unlock()
			switch {
			case slot == 0 && n <= 3:
				return nil // died: restarted at once (SteadyRun 0)
			case slot == 0 && n == 4:
				close(ended)
				<-ctx.Done() // runs until Stop
				return nil
			}
			return errStart
		},
		Failed: func(slot int, err error, retryIn time.Duration) bool {
			if slot != 1 || !errors.Is(err, errStart) {
				t.Errorf("Failed(%d, %v)", slot, err)
			}
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, retryIn)
			if len(waits) == 3 {
				close(gaveUp)
				return false
			}
			return true
		},
	})
	defer s.Release()
	s.Start()
	<-ended
	<-gaveUp
	s.Stop()
	s.Wait()
	mu.Lock()
	defer mu.Unlock()
	if runs[0] != 4 || runs[1] != 3 {
		t.Errorf("runs = %v, want slot 0: 4, slot 1: 3", runs)
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Errorf("back-off %v, want %v", waits, want)
	}
}

// TestSupervisorStopEndsBackOff: Stop ends a slot waiting out its back-off,
// and Fork then refuses to start a process that would miss the caller's
// stop signal.
func TestSupervisorStopEndsBackOff(t *testing.T) {
	failed := make(chan struct{}, 1)
	s := NewSupervisor(SupervisorConfig{
		Slots: 1,
		Run:   func(context.Context, int) error { return errors.New("cannot start") },
		Failed: func(int, error, time.Duration) bool {
			select {
			case failed <- struct{}{}:
			default:
			}
			return true
		},
	})
	defer s.Release()
	s.Start()
	<-failed
	s.Stop()
	s.Wait() // would hang for the back-off's growth without the stop
	if err := s.Fork(exec.Command("/bin/true")); !errors.Is(err, ErrStopped) {
		t.Fatalf("Fork after Stop: %v, want ErrStopped", err)
	}
}

// TestSupervisorSignalReachesUnreapedChildren: Signal reaches every child
// Fork started and not yet Reaped.
func TestSupervisorSignalReachesUnreapedChildren(t *testing.T) {
	s := NewSupervisor(SupervisorConfig{})
	defer s.Release()
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command("/bin/sleep", "30")
		if err := s.Fork(cmd); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	s.Signal(syscall.SIGKILL)
	for _, cmd := range cmds {
		if err := cmd.Wait(); err == nil || cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("child ended with %v, want SIGKILL", err)
		}
		s.Reaped(cmd)
	}
	s.mu.Lock()
	n := len(s.children)
	s.mu.Unlock()
	if n != 0 {
		t.Errorf("%d children left after Reaped", n)
	}
}
