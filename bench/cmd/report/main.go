// Command report runs aplex's benchmark suite and prints markdown tables of
// ratios: aplex's executors against the raw Go floors and against the peer
// libraries, workload by workload, then the performance targets of
// DESIGN.md §5 with a verdict each.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/report                  # the whole suite, about 7 minutes
//	go run ./cmd/report -only fanout,memory          # some workloads
//	go run ./cmd/report -raw new.txt                 # keep the raw output for benchstat
//	go test -run '^$' -bench . -benchmem ./... | go run ./cmd/report -in -
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
	only := flag.String("only", "", "comma-separated workloads to run: overhead, fanout, cpu, memory, map, process (default all)")
	count := flag.Int("count", 5, "runs of each benchmark; the report shows medians")
	short := flag.Bool("short", false, "a tenth of the big workloads' sizes (a quick look, not the real figures)")
	in := flag.String("in", "", "read go test -bench output from this file (- for stdin) instead of running the suite")
	raw := flag.String("raw", "", "also write the raw benchmark output to this file (for benchstat)")
	python := flag.String("python", "python3", "Python interpreter for the concurrent.futures rows (empty: skip them)")
	flag.Parse()

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

	if *in != "" {
		if err := readInput(*in, rs, rawOut); err != nil {
			return err
		}
	} else if err := runSuite(dir, *only, *count, *short, rs, rawOut); err != nil {
		return err
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

	v := view{rs: rs, py: py, short: *short}
	w := os.Stdout
	header(w, pyNote, *count, *short, *in, libraryVersion(dir))
	v.overhead(w)
	v.fanout(w)
	v.cpu(w)
	v.memory(w)
	v.mapping(w)
	v.process(w)
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
func runSuite(dir, only string, count int, short bool, rs results, raw io.Writer) error {
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
	s := &suite{bin: bin, count: count, short: short, raw: raw}
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

// header prints the title, the date and the machine.
func header(w io.Writer, pyNote string, count int, short bool, in, version string) {
	fmt.Fprintln(w, "# aplex benchmark report")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s · aplex %s · %s · %d CPUs · %s/%s · kernel %s · %s · %s\n",
		time.Now().Format("2006-01-02"), version, cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		readTrim("/proc/sys/kernel/osrelease"), runtime.Version(), pyNote)
	fmt.Fprintln(w)
	how := fmt.Sprintf("Medians of %d runs; load average at the end: %s.", count, loadAvg())
	if in != "" {
		how = "Medians of the runs read from the input; load average at the end: " + loadAvg() + "."
	}
	if short {
		how += " **-short: a tenth of the real sizes.**"
	}
	fmt.Fprintln(w, how, "Every ratio is a cost divided by the reference's cost (time per work, wall time or bytes per work): below 1.00× is cheaper than the reference, above is dearer. Floors are raw Go with no library.")
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
