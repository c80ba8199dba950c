package cluster

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"weak"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/internal/seal"
)

// Pool keys. With a pool key every message of the pool (Run, Results,
// Cancel, Shutdown, Hello, Heartbeat, Bye, discover) is sealed with
// AES-256-GCM under keys derived from it per pool and per direction: a
// process without the key reads nothing, forges nothing, and a captured
// message replayed is dropped. The sealed sender id binds every result to
// the worker its job was sent to. See internal/seal for the construction
// and its limits.

const (
	envKey     = "APLEX_CLUSTER_KEY"      // pool key(s): current[,accepted…], 64 hex digits or base64 each
	envKeyFile = "APLEX_CLUSTER_KEY_FILE" // a file holding the same text
	// urlKeyParam names the pool key in the fragment of URL's answer
	// ("nats://token@127.0.0.1:4222#aplex-key=<hex>"): the URL alone lets
	// a worker join the default, sealed, embedded pool.
	urlKeyParam = "aplex-key="
)

// PoolKeySize is the length of a pool key: 32 random bytes.
const PoolKeySize = seal.KeySize

// NewPoolKey returns a random pool key for WithPoolKey and ServePoolKey.
func NewPoolKey() []byte { return seal.NewKey() }

// FormatPoolKey returns key as APLEX_CLUSTER_KEY's text: 64 hex digits.
func FormatPoolKey(key []byte) string { return seal.FormatKey(key) }

// ParsePoolKey reads a pool key written as 64 hex digits (FormatPoolKey,
// `openssl rand -hex 32`) or base64 of 32 bytes.
func ParsePoolKey(s string) ([]byte, error) { return seal.ParseKey(s) }

// WithPoolKey seals every message of the executor's pool with key,
// PoolKeySize (32) random bytes (NewPoolKey, or `openssl rand -hex 32`
// given to ParsePoolKey). Its workers need the same key (ServePoolKey,
// APLEX_CLUSTER_KEY); a worker without it never joins and never gets work.
// Local workers (SpawnLocalWorkers) get it through their environment.
//
// Without WithPoolKey, an executor that starts the embedded server makes
// a key of its own (URL carries it to workers started by hand), and one
// on another NATS server runs unsealed and logs a warning once.
func WithPoolKey(key []byte) aplex.Option {
	return option("WithPoolKey", func(c *execConfig) error {
		if err := seal.CheckKey(key); err != nil {
			return fmt.Errorf("aplex: cluster.WithPoolKey: %w", err)
		}
		c.key = bytes.Clone(key)
		return nil
	})
}

// WithAcceptedPoolKeys makes the executor also open messages sealed with
// keys, while it seals its own with WithPoolKey's: a key rotation without
// downtime. Rotate from key A to key B in three steps, each finished on
// every executor and worker (restarted one by one) before the next:
//
//  1. WithPoolKey(A), WithAcceptedPoolKeys(B): everyone opens B.
//  2. WithPoolKey(B), WithAcceptedPoolKeys(A): everyone seals with B.
//  3. WithPoolKey(B): A is retired.
//
// Workers take the same steps with ServePoolKey and ServeAcceptedPoolKeys,
// or APLEX_CLUSTER_KEY="A,B", then "B,A", then "B".
func WithAcceptedPoolKeys(keys ...[]byte) aplex.Option {
	return option("WithAcceptedPoolKeys", func(c *execConfig) error {
		for i, k := range keys {
			if err := seal.CheckKey(k); err != nil {
				return fmt.Errorf("aplex: cluster.WithAcceptedPoolKeys: key %d: %w", i, err)
			}
			c.accepted = append(c.accepted, bytes.Clone(k))
		}
		return nil
	})
}

// ServePoolKey seals every message of the worker with key (see
// WithPoolKey): it joins only executors with the same key, and opens only
// their messages.
func ServePoolKey(key []byte) ServeOption {
	return func(c *serveConfig) error {
		if err := seal.CheckKey(key); err != nil {
			return fmt.Errorf("aplex: cluster.ServePoolKey: %w", err)
		}
		c.key = bytes.Clone(key)
		return nil
	}
}

// ServeAcceptedPoolKeys makes the worker also open messages sealed with
// keys during a key rotation (see WithAcceptedPoolKeys).
func ServeAcceptedPoolKeys(keys ...[]byte) ServeOption {
	return func(c *serveConfig) error {
		for i, k := range keys {
			if err := seal.CheckKey(k); err != nil {
				return fmt.Errorf("aplex: cluster.ServeAcceptedPoolKeys: key %d: %w", i, err)
			}
			c.accepted = append(c.accepted, bytes.Clone(k))
		}
		return nil
	}
}

// SealDropsOf returns the messages ex dropped because they failed the
// pool's seal, by reason; zero for an executor that is not a cluster
// executor or has been shut down.
func SealDropsOf(ex *aplex.Executor) SealDrops {
	v, ok := executors.Load(weak.Make(ex))
	if !ok {
		return SealDrops{}
	}
	return v.(*transport).sealed.drops()
}

// parseKeys reads APLEX_CLUSTER_KEY's text: the current key, then the
// accepted ones, separated by commas or white space.
func parseKeys(what, s string) (key []byte, accepted [][]byte, err error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		return nil, nil, fmt.Errorf("%s: no pool key", what)
	}
	for i, f := range fields {
		k, err := seal.ParseKey(f)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: key %d: %w", what, i, err)
		}
		if i == 0 {
			key = k
		} else {
			accepted = append(accepted, k)
		}
	}
	return key, accepted, nil
}

// formatKeys writes keys as APLEX_CLUSTER_KEY's text.
func formatKeys(key []byte, accepted [][]byte) string {
	s := seal.FormatKey(key)
	for _, k := range accepted {
		s += "," + seal.FormatKey(k)
	}
	return s
}

// envKeyOptions reads APLEX_CLUSTER_KEY or APLEX_CLUSTER_KEY_FILE.
func envKeyOptions() ([]ServeOption, error) {
	text, file := os.Getenv(envKey), os.Getenv(envKeyFile)
	if text != "" && file != "" {
		return nil, fmt.Errorf("both %s and %s are set: give the pool key once", envKey, envKeyFile)
	}
	what := envKey
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envKeyFile, err)
		}
		text, what = string(b), envKeyFile+" "+file
	}
	if text == "" {
		return nil, nil
	}
	key, accepted, err := parseKeys(what, text)
	if err != nil {
		return nil, err
	}
	opts := []ServeOption{ServePoolKey(key)}
	if len(accepted) > 0 {
		opts = append(opts, ServeAcceptedPoolKeys(accepted...))
	}
	return opts, nil
}

// splitURLKey removes the "#aplex-key=…" fragment URL adds for a
// generated key, returning the URL NATS dials and the key text, if any.
func splitURLKey(u string) (string, string) {
	base, frag, ok := strings.Cut(u, "#")
	if !ok {
		return u, ""
	}
	if v, ok := strings.CutPrefix(frag, urlKeyParam); ok {
		return base, v
	}
	return u, ""
}

// sealBox builds the Box of one process, nil without a key.
func sealBox(key []byte, accepted [][]byte, pool, id string, role seal.Role) (*seal.Box, error) {
	if key == nil {
		if len(accepted) > 0 {
			return nil, fmt.Errorf("accepted pool keys without a pool key of its own: add the current key")
		}
		return nil, nil
	}
	return seal.New(seal.Config{Keys: append([][]byte{key}, accepted...), Pool: pool, ID: id, Role: role})
}
