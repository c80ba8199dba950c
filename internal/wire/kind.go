package wire

import "strconv"

// String returns the kind's name, or "Kind(n)" for an unknown kind, so that
// log lines and error messages name message kinds readably.
func (k Kind) String() string {
	switch k {
	case KindHello:
		return "Hello"
	case KindRun:
		return "Run"
	case KindCancel:
		return "Cancel"
	case KindResult:
		return "Results"
	case KindHeartbeat:
		return "Heartbeat"
	case KindShutdown:
		return "Shutdown"
	case KindBye:
		return "Bye"
	case KindStarted:
		return "Started"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
