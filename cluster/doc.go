// Package cluster runs aplex works on worker processes on any machine,
// reached through NATS (https://nats.io). It is the only package of aplex
// that imports NATS: the client (nats.go) and, for the embedded default,
// the server.
//
// # Executor
//
// NewExecutor returns the same *aplex.Executor as the thread and process
// executors: Submit, Map, futures, balancers, queueing and Shutdown behave
// the same, and the executor's own LoadBalancer picks the worker for every
// work (or Map chunk), using the load it tracks itself.
//
//	ex, err := cluster.NewExecutor(cluster.WithURL("nats://nats:4222"), cluster.WithPool("images"))
//
// With no URL the executor starts an embedded NATS server on 127.0.0.1 and a
// random port, so development, tests and examples need nothing installed;
// URL returns its address for workers, and it stops at Shutdown.
// SpawnLocalWorkers(n) starts n worker processes of the running binary
// against the executor's server, so one machine runs the whole distributed
// path; they are restarted if they die, and stopped and reaped at
// Shutdown. Executor.Resize(ctx, n) sets their number while the executor
// runs (n may be 0): it starts new ones, or retires local ones, which
// finish their works and exit; remote workers are never counted, started
// or stopped by it. The core options for worker processes apply to them as
// to process workers: aplex.WithWorkerOutput, aplex.WithWorkerEnv,
// aplex.WithWorkerCommand (another binary, or arguments),
// aplex.WithRecycleAfter (a worker that was sent n works of this executor
// leaves once they ended, and a fresh process takes its slot) and
// aplex.WithWorkerMemoryLimit (a worker over it is killed and replaced)
// (refused without SpawnLocalWorkers, whose workers are the only ones they
// could reach; SpawnLocalWorkers(0) starts none, for Resize to add),
// aplex.WithStartTimeout and aplex.WithHeartbeatTimeout. aplex.WithAutoscale
// replaces SpawnLocalWorkers: it starts min local workers (min may be 0)
// and adds local ones, up to max, while works wait, whatever the remote
// workers, and retires those idle for its idle time.
//
// # Workers
//
// A worker is a process of a binary that registered the works
// (aplex.Register) and serves them: Serve does it, and so does aplex.Main
// in a binary started with APLEX_WORKER_ROLE=cluster, configured by the
// environment:
//
//	APLEX_CLUSTER_URL            NATS URL(s), comma-separated (default nats://127.0.0.1:4222)
//	APLEX_CLUSTER_POOL           pool name (default "default")
//	APLEX_CLUSTER_MAX_WORKS      works run at once, per executor (default 300)
//	APLEX_CLUSTER_HEARTBEAT      heartbeat interval (default 1s)
//	APLEX_CLUSTER_WORKER_ID      worker id (default host-pid-random)
//	APLEX_CLUSTER_LABELS         labels, k=v,k2=v2
//	APLEX_CLUSTER_DRAIN_TIMEOUT  bound on draining when leaving (default 30s)
//	APLEX_CLUSTER_USER, APLEX_CLUSTER_PASSWORD, APLEX_CLUSTER_TOKEN,
//	APLEX_CLUSTER_CREDS (credentials file), APLEX_CLUSTER_NKEY (seed file),
//	APLEX_CLUSTER_TLS_CA, APLEX_CLUSTER_TLS_CERT, APLEX_CLUSTER_TLS_KEY
//	APLEX_CLUSTER_KEY            pool key: 64 hex digits (or base64); "current,accepted" during a rotation
//	APLEX_CLUSTER_KEY_FILE       a file holding APLEX_CLUSTER_KEY's text
//	APLEX_LOG                    log level on stderr: debug, info (default), warn, error
//	APLEX_LOG_FORMAT             log format: text (default) or json (log/slog)
//
// Such a worker leaves cleanly on SIGTERM or SIGINT and exits at once on a
// second signal. A worker started before its NATS server (docker-compose
// starts them together) waits for it: it retries the connection with
// back-off up to every 2s, logging each retry to stderr, rather than exit
// and crash-loop; bad credentials still make it exit at once. Workers and executors must be built from the same aplex
// version (the protocol is versioned; a worker of another version is
// ignored) and register the works under the same names.
//
// # Guarantees
//
// Delivery is at-most-once by default: a work runs once or not at all.
// When a worker dies or goes silent for the heartbeat timeout, the works it
// held fail with a *aplex.WorkerError ("lost heartbeat", or the exit status
// of a local worker): they may or may not have run. Works submitted with
// aplex.Retry(n) are sent again to another worker instead, up to n times:
// at-least-once, for idempotent works. Results are never duplicated, a
// cancelled work's ctx is cancelled in the worker, and every future ends.
//
// Cancellation, per-work deadlines and the kill grace work as with process
// workers: a work that ignores its cancelled ctx past aplex.WithKillGrace
// gets its worker killed. A killed worker cancels all its works, for every
// executor it serves, and exits; its heartbeat says so, and other
// executors fail their works there at once with a *aplex.WorkerError
// ("killed by another executor of the pool"), but for those it received
// after the kill, which it never starts and which run elsewhere. Run
// workers under a supervisor (systemd,
// Kubernetes) so a killed worker comes back; local workers are restarted
// by their executor. A work's deadline (the caller's ctx deadline, or
// aplex.Deadline if earlier) travels as the time left, so the clocks of
// executor and worker machines need not agree: in the worker it is the
// executor's, later by the time the work took to arrive. Values of the
// caller's ctx reach the work through the propagators registered with
// aplex.RegisterPropagator.
//
// A message is at most the server's max_payload (1 MiB by default): an
// argument above it is refused by Submit with aplex.ErrTooLarge, and a
// bigger result or Map chunk fails with aplex.ErrTooLarge. Send references
// (object store keys, URLs) for large data.
//
// # Security model
//
// NATS authentication and TLS decide who can reach a pool's subjects; the
// pool key decides who can take part in the pool. Give executors and
// workers NATS credentials (WithNATSOptions, ServeNATSOptions, or the
// environment above), on a shared server confine each user to its pools
// with NATS permissions on "aplex.<pool>.>", and seal the pool with a key
// (WithPoolKey, ServePoolKey, APLEX_CLUSTER_KEY).
//
// With a pool key every message is sealed (AES-256-GCM, keys derived per
// pool and per direction with HKDF): whoever reaches the subjects without
// the key reads nothing, and what they send (forged, altered, truncated,
// replayed, or sealed with another key) is dropped and counted
// (SealDropsOf). A worker without the key never joins and gets no work.
// Each message names its sender under the seal, so a result is accepted
// only from the worker its job was sent to, a Cancel only from the
// executor that sent the job, a Shutdown only from an executor that sent
// the worker work. A holder of the key is trusted: it can join as a
// worker, and could seal messages under another worker's id. Key
// rotation: WithAcceptedPoolKeys.
//
// A worker answers on its own sub-subject of the executor's inbox
// (aplex.<pool>.x.<exid>.<wid>), and the executor drops an answer naming
// another worker. With a NATS user per worker, allowed to publish results
// only on "aplex.<pool>.x.*.<wid>", the server then binds each worker's
// results to it, even against a holder of the pool key:
//
//	publish:   aplex.<pool>.hello, aplex.<pool>.hb.<wid>, aplex.<pool>.x.*.<wid>
//	subscribe: aplex.<pool>.w.<wid>, aplex.<pool>.discover
//
// Secure by default: the embedded server takes only clients presenting a
// token it generates, and the executor generates a pool key. Local
// workers get both in their environment, never on the command line; URL
// returns both, so a worker started by hand joins with the URL alone
// (treat it as a secret). An executor on another NATS server without a
// pool key runs unsealed and logs a warning once.
//
// Workers run only works registered in their own binary, by name, with
// arguments decoded into the registered types; any other name is answered
// with aplex.ErrNotRegistered.
//
// # Subjects
//
// Every subject sits under aplex.<pool>, so several pools share one NATS
// without crosstalk:
//
//	aplex.<pool>.hello          worker → executors: Hello, at start and after each reconnect
//	aplex.<pool>.discover       executor → workers: "announce yourselves" (reply: its inbox)
//	aplex.<pool>.hb.<wid>       worker → executors: Heartbeat (load, capacity, draining, killed), then Bye
//	aplex.<pool>.w.<wid>        executor → worker: Run batches, Cancel, Shutdown
//	aplex.<pool>.x.<exid>.<wid> worker → executor: Results batches, Hello answering discover
//
// Payloads are the internal wire messages of aplex (the same as process
// workers use, without the length prefix), batched: the executor merges
// the jobs queued for a worker into as few Run messages as fit, and a
// worker merges the results finished at the same moment into as few
// Results messages.
//
// # Membership
//
// An executor asks for Hellos when it starts and joins every worker that
// announces itself; a worker that starts later is used as soon as its Hello
// arrives. A worker that sends nothing for the heartbeat timeout
// (aplex.WithHeartbeatTimeout, the same option as for process executors,
// default 3s; workers beat every second, local workers three times per
// timeout) is dropped. A worker that leaves cleanly (Serve's ctx ends, SIGTERM)
// announces that it drains, so executors stop sending it work; it still
// accepts works for a moment (those sent before the announcement arrived),
// finishes all it holds, sends Bye and exits. The Bye names the last work
// it received from each executor: one sent later never reached it and
// runs on another worker, whether or not it was sent with aplex.Retry.
// Each worker id keeps a stable
// balancer slot, so aplex.Affinity keeps keys on a worker that restarts
// under the same id. Local worker N (SpawnLocalWorkers) holds slot N, the N
// of its output prefix; other workers take the slots after the local ones.
// A local worker Resize adds takes the lowest slot aplex.Stats does not
// list (a remote worker's slot stays listed after it left, for its
// return); the slot of one it retired is free again once its process has
// exited.
// A worker's id and labels (ServeLabels, APLEX_CLUSTER_LABELS,
// LocalWorkerLabels) show in aplex.WorkerStats (Name, Labels) and in the
// balancer's view (aplex.Workers.Name, Label, Labels), so a balancer can
// prefer labelled workers for some works (see ExampleLocalWorkerLabels).
//
// # Reconnects
//
// Executors and workers reconnect to NATS without limit, every 250ms. While
// one side was disconnected, Runs or Results may have been lost, so when a
// worker announces itself again (after its reconnect, or in answer to the
// discover request an executor sends after its own), the executor sends it
// again every job it still waits for, marked as a resend. The worker skips
// the jobs it is running, answers the ones it finished from memory (the
// last results per executor, up to 4 MiB), and runs only the ones it can
// tell it never received; a job sent ahead of a free slot
// (aplex.WithPrefetch) that it has started is named started again, since
// that word may have been lost too. A resent job whose result the worker no longer
// holds, or which it no longer remembers at all (more jobs finished since
// than it remembers, or it forgot the executor after two idle minutes),
// fails with a *aplex.WorkerError saying its result was lost: it ran, or
// may have, and it does not run again, even with aplex.Retry. A kill due
// during an outage (a work past its deadline and the kill grace) waits
// until the worker can be reached again and has resynchronised, since its
// answer may only be held up, or come back with the resend; should the
// heartbeat timeout drop the worker meanwhile, it is asked about the work
// again when it comes back, and a work still running past the kill grace
// costs it. Nothing runs
// twice, and no future waits forever: an outage shorter than the
// heartbeat timeout costs nothing but delay, and a longer one drops the
// workers, failing their works with a *aplex.WorkerError, until they join
// again.
package cluster
