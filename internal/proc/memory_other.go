//go:build !linux

package proc

// memorySupported reports whether readRSS works here.
const memorySupported = false

// readRSS is not implemented outside Linux.
func readRSS(int) (int64, bool) { return 0, false }
