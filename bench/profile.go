package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"
)

// Environment variables of ProfileWorker.
const (
	// WorkerProfileEnv names a directory: each aplex worker process writes
	// a CPU profile there.
	WorkerProfileEnv = "APLEX_BENCH_WORKER_CPUPROFILE"
	// WorkerProfileSecondsEnv sets how long the worker profiles (default 5).
	WorkerProfileSecondsEnv = "APLEX_BENCH_WORKER_PROFILE_SECONDS"
	// aplexRoleEnv is set by aplex in its worker processes.
	aplexRoleEnv = "APLEX_WORKER_ROLE"
)

// ProfileWorker starts a CPU profile when this process is an aplex worker
// and WorkerProfileEnv is set: the worker's own costs never show in the
// parent's -cpuprofile. A worker never returns from aplex.Main, so the
// profile is written after a fixed time, to <dir>/worker-<pid>.prof. Call it
// from TestMain before aplex.Main. It is a diagnostic, off by default:
//
//	APLEX_BENCH_WORKER_CPUPROFILE=/tmp/prof go test -run '^$' -bench 'Process/inflight=256/aplex' -benchtime 4s
//	go tool pprof -top bench.test /tmp/prof/worker-*.prof
func ProfileWorker() {
	dir := os.Getenv(WorkerProfileEnv)
	if dir == "" || os.Getenv(aplexRoleEnv) == "" {
		return
	}
	secs, err := strconv.Atoi(os.Getenv(WorkerProfileSecondsEnv))
	if err != nil || secs <= 0 {
		secs = 5
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.prof", os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: worker profile:", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench: worker profile:", err)
		f.Close()
		return
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
