package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aplex-go/aplex/bench"
)

// workload is one benchmark of the suite and how the report runs it.
type workload struct {
	key   string // the -only name
	bench string // the testing.B function
	// benchtime is passed as -test.benchtime: a duration for the per-work
	// benchmarks, a count of whole batches for the fixed-size ones.
	benchtime string
	// perProcess lists sub-benchmarks to run each in a process of its own,
	// one run per process, so that the runtime's figures start clean: no
	// heap, goroutines or GC pacing left by the implementation before.
	perProcess []string
	// rounds multiplies -count for this workload (0 or 1: -count rounds).
	rounds int
}

// runs returns how many rounds w runs for a -count of count.
func (w workload) runs(count int) int { return count * max(1, w.rounds) }

func workloads() []workload {
	var memRows, fanRows []string
	for _, im := range bench.Impls(false) {
		memRows = append(memRows, im.Name)
	}
	for _, im := range bench.FanOutImpls() {
		if !im.Unbounded { // BenchmarkFanOut leaves those out
			fanRows = append(fanRows, im.Name)
		}
	}
	return []workload{
		{key: "overhead", bench: "BenchmarkOverhead", benchtime: "1s"},
		// 20 batches a run (2 s), not 5: the CPU per work of a run of 5
		// strayed ±28 % on this shared machine, more than the margins of
		// the targets it decides; runs of 20 interleaved in pairs kept
		// within about ±10 %. Each implementation in a process of its own,
		// and three times the rounds: the fan-out's CPU per work decides
		// two targets by a few per cent, and the median of 15 rounds has a
		// confidence interval a few per cent wide (stats.MedianCI) where that
		// of 5 is their whole range. Run in one process, each
		// implementation inherited the heap and GC pacing of the one
		// before it.
		{key: "fanout", bench: "BenchmarkFanOut", benchtime: "20x", perProcess: fanRows, rounds: 3},
		{key: "cpu", bench: "BenchmarkCPU", benchtime: "1x"},
		{key: "memory", bench: "BenchmarkMemory", benchtime: "1x", perProcess: memRows},
		{key: "map", bench: "BenchmarkMap", benchtime: "1s"},
		{key: "process", bench: "BenchmarkProcess", benchtime: "1s"},
		{key: "cluster", bench: "BenchmarkCluster", benchtime: "1s"},
	}
}

// suite runs the benchmark binary built from the bench module.
type suite struct {
	bin   string // the compiled test binary
	count int    // interleaved runs of each workload
	short bool   // -test.short
	// benchtime, when set, replaces every workload's own -test.benchtime
	// (a quick look or a smoke run).
	benchtime string
	raw       io.Writer // receives every line of benchmark output
}

// build compiles the bench package's test binary into dir.
func build(moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "bench.test")
	cmd := exec.Command("go", "test", "-c", "-o", bin, ".")
	cmd.Dir = moduleDir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go test -c: %w", err)
	}
	return bin, nil
}

// step is one execution of the benchmark binary: one run (-test.count 1)
// of every benchmark pattern matches.
type step struct {
	round   int    // 1..runs
	pattern string // -test.bench
}

// plan lists the executions of one workload, interleaved: each round runs
// every implementation once, and the next round starts only when it is
// done, rather than all runs of one implementation and then all of the
// next. A burst of load from a neighbour then lands on one run of several
// implementations, which the medians absorb, instead of on every run of one
// implementation, which would skew its ratios. A workload with perProcess
// rows runs each row in a process of its own within each round, starting
// one row further each round, so that no implementation always runs
// first, or always right after the same one.
func plan(w workload, runs int) []step {
	var steps []step
	for r := 1; r <= runs; r++ {
		if w.perProcess == nil {
			steps = append(steps, step{r, "^" + w.bench + "$"})
			continue
		}
		n := len(w.perProcess)
		for i := range n {
			row := w.perProcess[(r-1+i)%n]
			steps = append(steps, step{r, "^" + w.bench + "$/^" + regexp.QuoteMeta(row) + "$"})
		}
	}
	return steps
}

// run runs one workload, feeding its output to rs and s.raw, with a
// progress line on stderr.
func (s *suite) run(i, n int, w workload, rs results) error {
	start := time.Now()
	bt := w.benchtime
	if s.benchtime != "" {
		bt = s.benchtime
	}
	fmt.Fprintf(os.Stderr, "report: [%d/%d] %s (%s, benchtime %s, %d interleaved runs)...\n", i, n, w.key, w.bench, bt, w.runs(s.count))
	for _, st := range plan(w, w.runs(s.count)) {
		if err := s.exec(st.pattern, bt, 1, rs); err != nil {
			return fmt.Errorf("%s, run %d: %w", w.key, st.round, err)
		}
	}
	fmt.Fprintf(os.Stderr, "report: [%d/%d] %s done in %s\n", i, n, w.key, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// exec runs the test binary once for the benchmarks matching pattern.
func (s *suite) exec(pattern, benchtime string, count int, rs results) error {
	args := []string{
		"-test.run", "^$", "-test.bench", pattern, "-test.benchmem",
		"-test.benchtime", benchtime, "-test.count", fmt.Sprint(count), "-test.timeout", "30m",
	}
	if s.short {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(s.bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { filterStderr(stderr); close(done) }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(s.raw, line)
		rs.parseLine(line)
	}
	<-done
	return cmd.Wait()
}

// filterStderr copies the benchmark binary's stderr to ours, less the
// noise go-plugin's yamux logs when its plugin is killed.
func filterStderr(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := sc.Text(); !strings.Contains(line, "[ERR] yamux:") {
			fmt.Fprintln(os.Stderr, line)
		}
	}
}
