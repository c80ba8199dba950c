package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aplex-go/aplex/internal/engine"
	"github.com/aplex-go/aplex/internal/proc"
)

// The worker role: a binary started with APLEX_WORKER_ROLE=cluster serves
// from aplex.Main, configured by these environment variables.
const (
	roleCluster = "cluster"

	envURL       = "APLEX_CLUSTER_URL"           // NATS URL(s), comma-separated (default nats://127.0.0.1:4222)
	envPool      = "APLEX_CLUSTER_POOL"          // pool name (default "default")
	envMaxWorks  = "APLEX_CLUSTER_MAX_WORKS"     // works at once per executor (default 300)
	envHeartbeat = "APLEX_CLUSTER_HEARTBEAT"     // heartbeat interval, a Go duration (default 1s)
	envWorkerID  = "APLEX_CLUSTER_WORKER_ID"     // worker id (default host-pid-random)
	envLabels    = "APLEX_CLUSTER_LABELS"        // labels, "k=v,k2=v2"
	envDrain     = "APLEX_CLUSTER_DRAIN_TIMEOUT" // drain bound, a Go duration (default 30s)
	envUser      = "APLEX_CLUSTER_USER"          // user name (with APLEX_CLUSTER_PASSWORD)
	envPassword  = "APLEX_CLUSTER_PASSWORD"
	envToken     = "APLEX_CLUSTER_TOKEN"    // token authentication
	envCreds     = "APLEX_CLUSTER_CREDS"    // credentials file (JWT + nkey seed)
	envNKey      = "APLEX_CLUSTER_NKEY"     // nkey seed file
	envTLSCA     = "APLEX_CLUSTER_TLS_CA"   // CA certificate file(s), comma-separated
	envTLSCert   = "APLEX_CLUSTER_TLS_CERT" // client certificate file (with APLEX_CLUSTER_TLS_KEY)
	envTLSKey    = "APLEX_CLUSTER_TLS_KEY"
	envLog       = "APLEX_LOG"        // log level: debug, info (default), warn, error
	envLogFormat = "APLEX_LOG_FORMAT" // log format: text (default) or json
	// envParent is set for local workers: the executor's pid. The worker
	// exits when its parent is gone and ignores Ctrl-C (meant for the
	// parent, which stops its workers itself).
	envParent = "APLEX_CLUSTER_PARENT_PID"
	// envIndex is set for local workers: their index among the executor's
	// SpawnLocalWorkers, which the worker init sees as WorkerInfo.ID.
	envIndex = "APLEX_CLUSTER_WORKER_INDEX"
)

// parentPoll is how often a local worker checks that its parent lives (on
// Linux the kernel also kills it with its parent).
const parentPoll = 500 * time.Millisecond

func init() {
	engine.RegisterRole(roleCluster, serveRole)
}

// serveRole is aplex.Main's worker role: Serve configured from the
// environment, leaving cleanly on SIGTERM or SIGINT and at once on a
// second signal. It returns the process's exit status.
func serveRole() int {
	opts, parent, err := envOptions()
	// Programs started by works must not become workers, nor see secrets.
	for _, k := range []string{proc.EnvRole, envPassword, envToken, envIndex, envKey, envKeyFile} {
		os.Unsetenv(k)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "aplex cluster worker: %v\n", err)
		return 2
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	if parent != 0 {
		signal.Ignore(os.Interrupt)
		signal.Notify(sigs, syscall.SIGTERM)
		go watchParent(parent)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	}
	go func() {
		<-sigs
		stop() // leave cleanly
		<-sigs
		fmt.Fprintln(os.Stderr, "aplex cluster worker: second signal, exiting now")
		os.Exit(1)
	}()
	// Its log lines (connection retries while NATS is not up yet, and at
	// APLEX_LOG=debug its message traffic) go to stderr, where a
	// supervisor or a local worker's executor shows them, labelled.
	log, err := envLogger(os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "aplex cluster worker: %v\n", err)
		return 2
	}
	opts = append(opts, ServeLogger(log))
	if err := Serve(ctx, opts...); err != nil {
		fmt.Fprintf(os.Stderr, "aplex cluster worker: %v\n", err)
		return 1
	}
	return 0
}

// watchParent exits the process once its parent executor is gone.
func watchParent(parent int) {
	for range time.Tick(parentPoll) {
		if os.Getppid() != parent {
			os.Exit(1)
		}
	}
}

// envOptions reads the worker's configuration from the environment.
func envOptions() (opts []ServeOption, parent int, err error) {
	if v := os.Getenv(envURL); v != "" {
		opts = append(opts, ServeURL(strings.Split(v, ",")...))
	}
	if v := os.Getenv(envPool); v != "" {
		opts = append(opts, ServePool(v))
	}
	if v := os.Getenv(envWorkerID); v != "" {
		opts = append(opts, ServeWorkerID(v))
	}
	if v := os.Getenv(envMaxWorks); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s=%q: %v", envMaxWorks, v, err)
		}
		opts = append(opts, ServeMaxWorks(n))
	}
	for _, d := range []struct {
		env string
		opt func(time.Duration) ServeOption
	}{{envHeartbeat, ServeHeartbeat}, {envDrain, ServeDrainTimeout}} {
		if v := os.Getenv(d.env); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil {
				return nil, 0, fmt.Errorf("%s=%q: %v", d.env, v, err)
			}
			opts = append(opts, d.opt(t))
		}
	}
	if v := os.Getenv(envLabels); v != "" {
		labels := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, 0, fmt.Errorf("%s: want k=v,k2=v2, got %q", envLabels, v)
			}
			labels[k] = val
		}
		opts = append(opts, ServeLabels(labels))
	}
	var nopts []nats.Option
	if v := os.Getenv(envUser); v != "" {
		nopts = append(nopts, nats.UserInfo(v, os.Getenv(envPassword)))
	}
	if v := os.Getenv(envToken); v != "" {
		nopts = append(nopts, nats.Token(v))
	}
	if v := os.Getenv(envCreds); v != "" {
		nopts = append(nopts, nats.UserCredentials(v))
	}
	if v := os.Getenv(envNKey); v != "" {
		o, err := nats.NkeyOptionFromSeed(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %v", envNKey, err)
		}
		nopts = append(nopts, o)
	}
	if v := os.Getenv(envTLSCA); v != "" {
		nopts = append(nopts, nats.RootCAs(strings.Split(v, ",")...))
	}
	if c, k := os.Getenv(envTLSCert), os.Getenv(envTLSKey); c != "" || k != "" {
		nopts = append(nopts, nats.ClientCert(c, k))
	}
	if len(nopts) > 0 {
		opts = append(opts, ServeNATSOptions(nopts...))
	}
	kopts, err := envKeyOptions()
	if err != nil {
		return nil, 0, err
	}
	opts = append(opts, kopts...)
	if v := os.Getenv(envParent); v != "" {
		parent, err = strconv.Atoi(v)
		if err != nil {
			return nil, 0, fmt.Errorf("%s=%q: %v", envParent, v, err)
		}
		opts = append(opts, serveNoAcceptWindow())
	}
	if v := os.Getenv(envIndex); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return nil, 0, fmt.Errorf("%s=%q: want a worker index", envIndex, v)
		}
		opts = append(opts, serveIndex(i))
	}
	return opts, parent, nil
}

// envLogger builds the worker's logger from APLEX_LOG (level: debug, info,
// warn, error; default info) and APLEX_LOG_FORMAT (text or json; default
// text), writing to w.
func envLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if v := os.Getenv(envLog); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("%s=%q: want debug, info, warn or error", envLog, v)
		}
	}
	ho := &slog.HandlerOptions{Level: level}
	switch v := os.Getenv(envLogFormat); strings.ToLower(v) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	default:
		return nil, fmt.Errorf("%s=%q: want text or json", envLogFormat, v)
	}
}
