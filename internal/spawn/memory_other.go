//go:build !linux

package spawn

// MemorySupported reports whether ReadRSS works here.
const MemorySupported = false

// ReadRSS is not implemented outside Linux.
func ReadRSS(int) (int64, bool) { return 0, false }
