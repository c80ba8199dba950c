//go:build !unix

package bench

import "time"

// CPUTime returns 0: getrusage is Unix-only, and so is this suite, whose
// process workloads need process workers. It exists so the module builds.
func CPUTime() time.Duration { return 0 }

// ChildrenCPUTime returns 0, as CPUTime does.
func ChildrenCPUTime() time.Duration { return 0 }
