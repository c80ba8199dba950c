package spawn

import (
	"bytes"
	"os"
	"strconv"
)

// MemorySupported reports whether ReadRSS works here.
const MemorySupported = true

// ReadRSS returns the resident set size of pid in bytes, from the VmRSS
// line of /proc/<pid>/status.
func ReadRSS(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	_, rest, ok := bytes.Cut(b, []byte("\nVmRSS:"))
	if !ok {
		return 0, false // a zombie has no VmRSS
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	fields := bytes.Fields(line) // "12345" "kB"
	if len(fields) != 2 || string(fields[1]) != "kB" {
		return 0, false
	}
	kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil {
		return 0, false
	}
	return kb << 10, true
}
