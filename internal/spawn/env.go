package spawn

import (
	"os"
	"os/exec"
	"strings"
)

// quietRaceExit is added to every child's environment. A binary built with
// -race sleeps atexit_sleep_ms (1s by default) before it exits, to let
// racing goroutines report; a worker that has finished its last work and
// said goodbye would then outlive a short kill grace, and the executor
// would kill it and report a shutdown error although nothing was lost.
const quietRaceExit = "GORACE=atexit_sleep_ms=0"

// ChildEnv returns the environment a child started by Forker.Start gets:
// cmd.Env (os.Environ() when nil) plus GORACE=atexit_sleep_ms=0, unless
// GORACE is already set there (by the user, in this process's environment
// or the transport's worker environment): their race settings win. It
// never modifies env.
func ChildEnv(env []string) []string {
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "GORACE=") {
			return env
		}
	}
	return append(env[:len(env):len(env)], quietRaceExit)
}

// prepare applies what every child needs to cmd before it starts.
func prepare(cmd *exec.Cmd) {
	cmd.Env = ChildEnv(cmd.Env)
}
