package engine

import (
	"fmt"
	"testing"
)

// view builds a balancer view from loads, one worker per load, cap each.
func view(cap int, loads ...int) Workers {
	ws := make([]*worker, len(loads))
	for i, l := range loads {
		ws[i] = &worker{slot: i, cap: cap}
		ws[i].load.Store(int32(l))
	}
	return Workers{ws: ws, gen: 1}
}

func TestBalancersAgainstOriginalScenario(t *testing.T) {
	// The original's test: loads (7,3,7,2,7), cap 7.
	v := view(7, 7, 3, 7, 2, 7)
	if got := RoundRobin().Pick(v, nil); got != 1 {
		t.Errorf("RoundRobin picked %d, want 1", got)
	}
	if got := Average().Pick(v, nil); got != 3 {
		t.Errorf("Average picked %d, want 3", got)
	}
	for range 100 {
		if got := Random().Pick(v, nil); got != 1 && got != 3 {
			t.Fatalf("Random picked full worker %d", got)
		}
		if got := PowerOfTwo().Pick(v, nil); got != 1 && got != 3 {
			t.Fatalf("PowerOfTwo picked full worker %d", got)
		}
	}
}

func TestRoundRobinCycles(t *testing.T) {
	rr := RoundRobin()
	v := view(5, 0, 0, 5, 0)
	var got []int
	for range 6 {
		got = append(got, rr.Pick(v, nil))
	}
	if fmt.Sprint(got) != "[0 1 3 0 1 3]" {
		t.Fatalf("RoundRobin order %v, want [0 1 3 0 1 3] (skipping the full worker)", got)
	}
}

func TestAverageTiesGoFirst(t *testing.T) {
	if got := Average().Pick(view(9, 4, 2, 2, 3), nil); got != 1 {
		t.Fatalf("Average picked %d, want 1", got)
	}
}

func TestRandomIsUniform(t *testing.T) {
	v := view(10, 0, 10, 0, 0, 0)
	counts := map[int]int{}
	const n = 40000
	lb := Random()
	for range n {
		counts[lb.Pick(v, nil)]++
	}
	if counts[1] != 0 {
		t.Fatalf("picked the full worker %d times", counts[1])
	}
	for _, i := range []int{0, 2, 3, 4} {
		if share := float64(counts[i]) / n; share < 0.22 || share > 0.28 {
			t.Errorf("worker %d got %.3f of picks, want about 0.25", i, share)
		}
	}
}

func TestPowerOfTwoPrefersLessLoaded(t *testing.T) {
	v := view(100, 90, 10, 50, 50)
	counts := map[int]int{}
	const n = 40000
	lb := PowerOfTwo()
	for range n {
		counts[lb.Pick(v, nil)]++
	}
	// The least loaded wins every pair it is in: P = 1-(3/4)^2 = 7/16.
	if share := float64(counts[1]) / n; share < 0.40 || share > 0.48 {
		t.Errorf("least loaded worker got %.3f of picks, want about 0.44", share)
	}
	if counts[0] > counts[2] || counts[0] > counts[1] {
		t.Errorf("most loaded worker picked too often: %v", counts)
	}
}

func TestAffinity(t *testing.T) {
	lb := Affinity()
	v := view(10, 0, 0, 0, 0)
	home := map[string]int{}
	for k := range 200 {
		key := fmt.Sprintf("user-%d", k)
		home[key] = lb.Pick(v, key)
		for range 3 {
			if got := lb.Pick(v, key); got != home[key] {
				t.Fatalf("key %s moved from %d to %d", key, home[key], got)
			}
		}
	}
	spread := map[int]int{}
	for _, w := range home {
		spread[w]++
	}
	if len(spread) != 4 {
		t.Fatalf("200 keys landed on %d workers only: %v", len(spread), spread)
	}
	// A full home worker overflows to another worker with room.
	key := "user-1"
	full := view(10, 0, 0, 0, 0)
	full.ws[home[key]].load.Store(10)
	if got := lb.Pick(full, key); got == home[key] || !full.Available(got) {
		t.Fatalf("full home worker: picked %d", got)
	}
	// Adding a fifth worker moves only some keys (consistent hashing).
	five := view(10, 0, 0, 0, 0, 0)
	five.gen = 2
	moved := 0
	for key, w := range home {
		if lb.Pick(five, key) != w {
			moved++
		}
	}
	if moved == 0 || moved > 200/2 {
		t.Fatalf("adding a worker moved %d of 200 keys; want about 1/5", moved)
	}
}

func TestBalancerMisbehaviourIsOverruled(t *testing.T) {
	c := newCore(defaultConfig(kindThread))
	for i := range 3 {
		c.addWorkerLocked(&worker{slot: i, cap: 1, stats: c.statsFor(i)})
	}
	c.workers[0].load.Store(1)
	for _, lb := range []LoadBalancer{badLB(-1), badLB(0), badLB(99), panicLB{}} {
		c.lb = lb
		if w := c.pickLocked(nil); !w.hasRoom() {
			t.Fatalf("%T overfilled worker %d", lb, w.slot)
		}
	}
}

type badLB int

func (b badLB) Pick(Workers, any) int { return int(b) }

type panicLB struct{}

func (panicLB) Pick(Workers, any) int { panic("balancer bug") }

// TestBalancerViewIdentityAllocatesNothing: the worker's name and labels
// are read at Join, so a balancer reading them in Pick costs no allocation.
func TestBalancerViewIdentityAllocatesNothing(t *testing.T) {
	v := view(2, 0, 1, 2)
	v.ws[1].name, v.ws[1].labels = "gpu-box", map[string]string{"gpu": "true"}
	pick := func() int {
		for i := range v.Len() {
			if val, ok := v.Label(i, "gpu"); ok && val == "true" && v.Available(i) && v.Name(i) != "" && len(v.Labels(i)) == 1 {
				return i
			}
		}
		return -1
	}
	var got int
	if n := testing.AllocsPerRun(100, func() { got = pick() }); n != 0 {
		t.Errorf("Pick reading names and labels allocates %v times", n)
	}
	if got != 1 {
		t.Errorf("picked %d, want the labelled worker 1", got)
	}
}
