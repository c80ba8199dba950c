package proc

// WorkerReason is how the worker ended, without the worker's identity
// (which the executor's *aplex.WorkerError carries itself): "exit status 3",
// "killed: memory limit 64 MiB exceeded (RSS 80 MiB) (signal: killed)".
func (e *ExitError) WorkerReason() string {
	if e.Reason != "" {
		return e.Reason + " (" + e.Status + ")"
	}
	return e.Status
}
