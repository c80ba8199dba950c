package spawn

import (
	"runtime"
	"strconv"
	"strings"
)

// MaxProcs returns the GOMAXPROCS of each of n worker processes that share
// the cores this process may use (its own GOMAXPROCS): all of them while n
// is no more than the cores, as before; for a pool of more processes than
// cores, twice an even share, rounded up, and at least one.
//
// Why: every Go runtime sized for the whole machine keeps as many Ps, and
// a worker process whose goroutines wake one at a time (a fan-out of
// sleeping works) has its idle Ps started and parked again at each wake:
// thread wake-ups, spinning and futex calls that a pool of more processes
// than cores pays many times over. With 4 workers on 2 vCPUs, one P each
// cut the process fan-out's CPU per work by a quarter (bench module).
// Twice the share, not the share: a worker given more than its part of
// the load (a balancer's choice, uneven works) can still use cores the
// others leave idle.
func MaxProcs(n int) int {
	p := runtime.GOMAXPROCS(0)
	if n <= p {
		return p
	}
	return max(1, (2*p+n-1)/n)
}

// MaxProcsEnv returns the environment entry that gives each of n worker
// processes MaxProcs(n) Ps, or "" when they keep their runtime's default:
// when that is all the cores anyway (a pool of no more processes than
// cores, or only a few more), and when env, the children's environment,
// sets GOMAXPROCS already (a value the user chose wins). Set, GOMAXPROCS
// also stops a runtime from following changes of its CPU limit, so it is
// set only where it changes something.
func MaxProcsEnv(env []string, n int) string {
	k := MaxProcs(n)
	if k >= runtime.GOMAXPROCS(0) {
		return ""
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return ""
		}
	}
	return "GOMAXPROCS=" + strconv.Itoa(k)
}
