// Command report runs aplex's benchmark suite and prints markdown tables of
// ratios: aplex's executors against the raw Go floors and against the peer
// libraries, workload by workload, then the performance targets of issue 12
// (each a ratio or a figure from the same interleaved runs) with a verdict
// each.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/report                  # the whole suite, about 17 minutes
//	go run ./cmd/report -only fanout,memory          # some workloads
//	go run ./cmd/report -only overhead -count 2 -benchtime 100ms -python ''  # a smoke run
//	go run ./cmd/report -raw new.txt                 # keep the raw output for benchstat
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/report -in -
//
// Method: each workload runs -count times (5 by default), interleaved: each
// run executes every implementation once, in turn, before the next run
// starts; the fan-out runs three times as many rounds, and it and the
// memory workload run each implementation in a process of its own. Tables
// show the median of the runs and their spread (the widest run's distance
// from the median, ±%); the header gives the load average at the start and
// the end. A target whose median's 95 % confidence interval (from the
// order statistics of the runs; with up to 8 runs their whole range)
// reaches past its limit is called unclear rather than met or not met.
//
// Progress goes to stderr, one line as each workload starts and ends; the
// report goes to stdout. Python's concurrent.futures rows come from
// python/pools.py when python3 is on the PATH.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run() error {
	only := flag.String("only", "", "comma-separated workloads to run: overhead, fanout, cpu, memory, map, process, cluster (default all)")
	count := flag.Int("count", minRuns, "interleaved runs of each workload; the report shows medians and spreads (fewer than 5: a quick look)")
	benchtime := flag.String("benchtime", "", "replace every workload's -test.benchtime (e.g. 100ms or 1x: a smoke run, not the real figures)")
	short := flag.Bool("short", false, "a tenth of the big workloads' sizes (a quick look, not the real figures)")
	in := flag.String("in", "", "read go test -bench output from this file (- for stdin) instead of running the suite")
	raw := flag.String("raw", "", "also write the raw benchmark output to this file (for benchstat)")
	python := flag.String("python", "python3", "Python interpreter for the concurrent.futures rows (empty: skip them)")
	flag.Parse()
	if *count < 1 {
		return fmt.Errorf("-count %d: need at least 1 run", *count)
	}

	dir, err := moduleDir()
	if err != nil {
		return err
	}
	rs := results{}
	rawOut := io.Discard
	if *raw != "" {
		f, err := os.Create(*raw)
		if err != nil {
			return err
		}
		defer f.Close()
		rawOut = f
	}

	m := method{runs: *count, short: *short, benchtime: *benchtime, loadStart: "not measured", loadEnd: "not measured", workloads: workloads()}
	if *in != "" {
		if err := readInput(*in, rs, rawOut); err != nil {
			return err
		}
		m.input, m.runs = true, rs.runs()
	} else {
		m.loadStart = loadAvg()
		if err := runSuite(dir, *only, *count, *short, *benchtime, rs, rawOut); err != nil {
			return err
		}
	}

	var py *pyReport
	pyNote := "Python rows skipped"
	if *python != "" && wants(*only, "python") {
		fmt.Fprintln(os.Stderr, "report: python concurrent.futures rows...")
		if py, err = runPython(*python, dir, *short); err != nil {
			return err
		}
		if py == nil {
			pyNote = *python + " not found: Python rows skipped"
		} else {
			pyNote = "Python " + py.Python
		}
	} else {
		fmt.Fprintln(os.Stderr, "report: Python rows skipped")
	}

	if !m.input {
		m.loadEnd = loadAvg()
	}
	v := view{rs: rs, py: py, short: *short, quick: m.runs < minRuns || m.benchtime != ""}
	w := os.Stdout
	header(w, pyNote, m, libraryVersion(dir))
	v.overhead(w)
	v.fanout(w)
	v.cpu(w)
	v.memory(w)
	v.mapping(w)
	v.process(w)
	v.cluster(w)
	v.writeTargets(w)
	return nil
}

// wants reports whether the -only list includes key ("python" rides along
// with the workloads it has rows for).
func wants(only, key string) bool {
	if only == "" {
		return true
	}
	for _, k := range strings.Split(only, ",") {
		k = strings.TrimSpace(k)
		if k == key || key == "python" && (k == "overhead" || k == "fanout" || k == "map" || k == "process") {
			return true
		}
	}
	return false
}

// runSuite builds the test binary and runs the chosen workloads.
func runSuite(dir, only string, count int, short bool, benchtime string, rs results, raw io.Writer) error {
	tmp, err := os.MkdirTemp("", "aplex-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(os.Stderr, "report: building the benchmark binary...")
	bin, err := build(dir, tmp)
	if err != nil {
		return err
	}
	var ws []workload
	for _, w := range workloads() {
		if only == "" || wants(only, w.key) && w.key != "python" {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return fmt.Errorf("-only %q names no workload", only)
	}
	s := &suite{bin: bin, count: count, short: short, benchtime: benchtime, raw: raw}
	start := time.Now()
	for i, w := range ws {
		if err := s.run(i+1, len(ws), w, rs); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "report: suite done in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// readInput parses go test -bench output from path ("-": stdin).
func readInput(path string, rs results, raw io.Writer) error {
	r := io.Reader(os.Stdin)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return rs.parse(io.TeeReader(r, raw))
}

// moduleDir returns the bench module's directory: the report must run
// inside it (go run ./cmd/report from bench/).
func moduleDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	data, err := os.ReadFile(mod)
	if err != nil || !strings.Contains(string(data), "module github.com/aplex-go/aplex/bench") {
		return "", fmt.Errorf("run the report from the bench module: cd bench && go run ./cmd/report")
	}
	return filepath.Dir(mod), nil
}

// method is how the figures were taken, for the report's header.
type method struct {
	runs      int    // runs per workload (from the input: the most any figure has)
	input     bool   // read from -in rather than run here
	short     bool   // -short sizes
	benchtime string // the -benchtime override, if any
	// loadStart and loadEnd are the load averages (1, 5, 15 min) before
	// the first workload and after the last one (Python's included).
	loadStart, loadEnd string
	// workloads are the suite's, for the ones run differently.
	workloads []workload
}

// text states the method in a paragraph.
func (m method) text() string {
	var b strings.Builder
	if m.input {
		fmt.Fprintf(&b, "Figures read from the input: medians of up to %d runs, in the order the input ran them; load average not measured.", m.runs)
	} else {
		fmt.Fprintf(&b, "Each workload ran %d times, interleaved: each run executed every implementation once, in turn, before the next run started. Figures are the medians of the %d runs; spread is the widest run's distance from the median (±%%). Load average (1, 5, 15 min) at the start: %s; at the end: %s.",
			m.runs, m.runs, m.loadStart, m.loadEnd)
		for _, w := range m.workloads {
			switch {
			case w.perProcess != nil && w.rounds > 1:
				fmt.Fprintf(&b, " The %s workload ran %d rounds, each implementation in a process of its own, starting one implementation further each round.", w.key, w.runs(m.runs))
			case w.perProcess != nil:
				fmt.Fprintf(&b, " The %s workload ran each implementation in a process of its own, starting one implementation further each round.", w.key)
			}
		}
	}
	if m.runs < minRuns {
		fmt.Fprintf(&b, " **Fewer than %d runs: a quick look, not the real figures.**", minRuns)
	}
	if m.benchtime != "" {
		fmt.Fprintf(&b, " **-benchtime %s for every workload: a smoke run, not the real figures.**", m.benchtime)
	}
	if m.short {
		b.WriteString(" **-short: a tenth of the real sizes.**")
	}
	return b.String()
}

// header prints the title, the date, the machine and the method.
func header(w io.Writer, pyNote string, m method, version string) {
	fmt.Fprintln(w, "# aplex benchmark report")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s · aplex %s · %s · %d CPUs · %s/%s · kernel %s · %s · %s\n",
		time.Now().Format("2006-01-02"), version, cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		readTrim("/proc/sys/kernel/osrelease"), runtime.Version(), pyNote)
	fmt.Fprintln(w)
	fmt.Fprintln(w, m.text(), "Every ratio is a cost divided by the reference's cost (time per work, wall time or bytes per work): below 1.00× is cheaper than the reference, above is dearer. Floors are raw Go with no library.")
	fmt.Fprintln(w)
}

// libraryVersion names the library's commit, with "+changes" when its
// work tree differs from it ("unknown" outside a git checkout).
func libraryVersion(dir string) string {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = filepath.Dir(dir)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	rev, err := git("rev-parse", "--short", "HEAD")
	if err != nil {
		return "unknown"
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no", "."); err == nil && st != "" {
		rev += "+changes"
	}
	return rev
}

func cpuModel() string {
	for _, line := range strings.Split(readTrim("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// loadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg,
// or "unknown" where there is none (not Linux).
func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
