package aplex

// Main turns a re-executed binary into a worker process. Call it first
// thing in main (and in TestMain): in the parent it returns at once; in a
// worker child started by NewProcessExecutor it serves registered works and
// never returns.
func Main() {}
