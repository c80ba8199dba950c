package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// pyRow is one row of bench/python/pools.py's output.
type pyRow struct {
	Workload     string  `json:"workload"`
	Impl         string  `json:"impl"`
	Works        int     `json:"works"`
	WallS        float64 `json:"wall_s"`
	NsPerWork    float64 `json:"ns_per_work"`
	WorksPerS    float64 `json:"works_per_s"`
	CPUUsPerWork float64 `json:"cpu_us_per_work"`
	XIdeal       float64 `json:"x_ideal"`
	Chunk        int     `json:"chunk"`
}

// pyReport is the whole output of pools.py.
type pyReport struct {
	Python string  `json:"python"`
	CPUs   int     `json:"cpus"`
	Rows   []pyRow `json:"rows"`
}

// find returns the row of workload and impl (and chunk, for map rows).
func (p *pyReport) find(workload, impl string, chunk int) (pyRow, bool) {
	if p == nil {
		return pyRow{}, false
	}
	for _, r := range p.Rows {
		if r.Workload == workload && r.Impl == impl && r.Chunk == chunk {
			return r, true
		}
	}
	return pyRow{}, false
}

// runPython runs pools.py with the interpreter python and returns its
// report; a missing interpreter is reported as (nil, nil) after printing
// the skip line.
func runPython(python, dir string, short bool) (*pyReport, error) {
	path, err := exec.LookPath(python)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s not found: Python rows skipped\n", python)
		return nil, nil
	}
	args := []string{filepath.Join(dir, "python", "pools.py")}
	if short {
		args = append(args, "--short")
	}
	cmd := exec.Command(path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", python, args[0], err)
	}
	var rep pyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("pools.py output: %w", err)
	}
	return &rep, nil
}
