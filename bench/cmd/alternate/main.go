// Command alternate measures a change to the goroutine executor's fan-out
// CPU that is too small for the report's run-by-run ratios to resolve
// (this machine's speed moves by more than 10 % between runs): it builds
// the fan-out driver (driver/main.go: 10,000 works sleeping 10 ms on 4
// workers × 300, submitted then collected with a Get each) against two
// revisions of aplex, runs the two builds in turn, round after round, the
// order flipped every round, and prints the median of the rounds' ratios
// B ÷ A of the CPU time per work, its 95 % confidence interval (as the
// report judges its targets: internal/stats) and the quartiles. Two runs
// seconds apart see the same machine, so their ratio cancels its changes
// of speed. Run a revision against itself to see the noise.
//
// Run it from the bench module, on a quiet machine:
//
//	cd bench && go run ./cmd/alternate -a efb86f5 -b HEAD   # 30 rounds of 8 batches each, about a minute
//	go run ./cmd/alternate -a HEAD -b HEAD                  # the noise: the same build twice
//	go run ./cmd/alternate -a HEAD -b . -rounds 40          # ".": the working tree, uncommitted changes included
//
// A revision other than "." is checked out in a temporary git worktree,
// removed at the end. The builds need the modules aplex requires in the
// module cache (or the module proxy). Linux and the other Unix systems
// only: the driver reads its CPU time with getrusage.
package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aplex-go/aplex/bench/internal/stats"
)

// driverSource is the workload, built against each revision.
//
//go:embed driver/main.go
var driverSource []byte

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "alternate:", err)
		os.Exit(1)
	}
}

func run() error {
	a := flag.String("a", "", "revision A, the reference: a git revision, or . for the working tree")
	b := flag.String("b", "", "revision B, the change")
	rounds := flag.Int("rounds", 30, "rounds, each running A and B once")
	batches := flag.Int("batches", 8, "fan-out batches per run")
	verbose := flag.Bool("v", false, "print every round's figures")
	flag.Parse()
	switch {
	case *a == "" || *b == "":
		return errors.New("give both revisions: -a REV -b REV (. is the working tree)")
	case *rounds < 1 || *batches < 1:
		return fmt.Errorf("-rounds and -batches must be at least 1 (got %d, %d)", *rounds, *batches)
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}
	root, err := git("", "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("not in aplex's git repository: %w", err)
	}
	tmp, err := os.MkdirTemp("", "aplex-alternate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	binA, err := build(root, tmp, "a", *a)
	if err != nil {
		return fmt.Errorf("revision A (%s): %w", *a, err)
	}
	binB, err := build(root, tmp, "b", *b)
	if err != nil {
		return fmt.Errorf("revision B (%s): %w", *b, err)
	}
	var cpuA, cpuB, ratios []float64
	for i := range *rounds {
		order := []string{binA, binB}
		if i%2 == 1 {
			order = []string{binB, binA}
		}
		got := map[string]float64{}
		for _, bin := range order {
			if got[bin], err = runDriver(bin, *batches); err != nil {
				return err
			}
		}
		cpuA, cpuB = append(cpuA, got[binA]), append(cpuB, got[binB])
		ratios = append(ratios, got[binB]/got[binA])
		if *verbose {
			fmt.Printf("round %2d: A %.3f µs  B %.3f µs  B/A %.3f\n", i+1, got[binA], got[binB], got[binB]/got[binA])
		}
	}
	fmt.Printf("fan-out CPU per work, %d rounds of %d batches: A (%s) median %.3f µs, B (%s) median %.3f µs\n",
		*rounds, *batches, *a, quantile(cpuA, 0.5), *b, quantile(cpuB, 0.5))
	lo, hi := stats.MedianCI(ratios)
	fmt.Printf("B/A, round by round: median %.3f, its 95 %% interval %.3f–%.3f, quartiles %.3f–%.3f\n",
		quantile(ratios, 0.5), lo, hi, quantile(ratios, 0.25), quantile(ratios, 0.75))
	return nil
}

// build builds the driver against revision rev of the repository at root,
// in tmp, and returns the binary's path.
func build(root, tmp, name, rev string) (string, error) {
	src := root
	if rev != "." {
		src = filepath.Join(tmp, "src-"+name)
		if _, err := git(root, "worktree", "add", "--detach", src, rev); err != nil {
			return "", err
		}
		defer func() {
			// The binary is built: the checkout has done its work.
			if _, err := git(root, "worktree", "remove", "--force", src); err != nil {
				fmt.Fprintln(os.Stderr, "alternate: the temporary worktree stays (git worktree prune removes it):", err)
			}
		}()
	}
	mod := filepath.Join(tmp, "driver-"+name)
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return "", err
	}
	goMod := fmt.Sprintf("module aplexalternate\n\ngo 1.26\n\nrequire github.com/aplex-go/aplex v0.0.0\n\nreplace github.com/aplex-go/aplex => %s\n", src)
	sum, err := os.ReadFile(filepath.Join(src, "go.sum"))
	if err != nil {
		return "", err
	}
	for file, data := range map[string][]byte{"main.go": driverSource, "go.mod": []byte(goMod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(mod, file), data, 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(tmp, "driver-"+name+".bin")
	cmd := exec.Command("go", "build", "-mod=mod", "-o", bin, ".")
	cmd.Dir = mod
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// runDriver runs one build for batches batches and returns its CPU time
// per work in µs.
func runDriver(bin string, batches int) (float64, error) {
	out, err := exec.Command(bin, strconv.Itoa(batches)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("%s: %w: %s", bin, err, ee.Stderr)
		}
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("%s printed %q, not a figure", bin, out)
	}
	return v, nil
}

// git runs git in dir (the current directory if empty) and returns its
// trimmed output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// quantile returns the q-quantile of xs (nearest rank), xs not empty.
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}
