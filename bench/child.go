package bench

import (
	"fmt"
	"os"
	"os/exec"
)

// roleEnv names the environment variable that tells a re-executed bench
// binary which child to be.
const roleEnv = "APLEX_BENCH_ROLE"

// The child roles.
const (
	rolePipeEcho    = "pipe-echo"
	rolePipeEchoRaw = "pipe-echo-raw"
	rolePlugin      = "plugin"
)

// ServeChild turns this process into a benchmark child when it was started
// as one (the raw pipe echo, the go-plugin plugin) and never returns then;
// otherwise it returns at once. Call it from TestMain after aplex.Main.
func ServeChild() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	var err error
	switch role {
	case rolePipeEcho:
		err = servePipeEcho(os.NewFile(3, "in"), os.NewFile(4, "out"))
	case rolePipeEchoRaw:
		err = serveRawPipeEcho()
	case rolePlugin:
		servePlugin()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// selfCommand returns a command re-executing this binary in role.
func selfCommand(role string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd, nil
}
