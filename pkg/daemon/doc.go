// Package daemon is pacsd's service loop: it keeps every cluster of the
// topology file converged, for as long as it runs.
//
// The loop is level-triggered, like controller-runtime's and Consul's
// anti-entropy: a change of the file, SIGHUP (Reload), an engine event about
// one of pacsd's objects (a container died, stopped, was killed or removed, a
// network was disconnected) and a resync ticker only poke one coalescing
// trigger. Each pass loads the file (skipped when its bytes did not change),
// then converges every cluster with reconcile.Apply, from a fresh observation.
//
// Reloads work like Prometheus's: a file that is invalid, or that
// spec.CheckAgainstPrevious refuses, is never acted on; its diagnostics are
// logged, the last good spec stays in force and the reload-success gauge
// drops to 0 until a good file is saved.
//
// Each cluster's pass has a timeout, recovers from panics, and backs off
// exponentially after a failure (1s doubling to 2m, reset by a success, by a
// new file and by Reload). A pass that converged all but the nodes of an
// engine that does not answer is partial: no backoff, but the daemon is not
// ready until they are converged too. The daemon reports to systemd (READY,
// RELOADING, STATUS, WATCHDOG) and serves /healthz, /readyz, /metrics,
// /status (the operator's view of each cluster: its nodes as a pass or the
// view's own refresh every 3 s observed them), /events (the event history),
// the status page / and the load balancer's checks.
//
// Each host's engine is asked whether it answers on a ticker of its own,
// independent of passes (a pass may be held for minutes by a base backup):
// every 10 s, every 2 s while one does not answer, each for at most 3 s,
// without a cluster's lock (/status engines.<host>, pacsd_engine_up). When
// an engine that did not answer answers again, a pass starts at once: it
// fences an old primary on a host whose partition healed, without waiting
// for the resync.
//
// Stopping the daemon never stops a database container: it cancels the
// running pass, waits for it to end and returns.
//
// The files: daemon.go, the loop and its passes; reload.go, reading and
// validating the file; converge.go, one cluster's pass; backoff.go; events.go,
// engine events that poke the trigger; engines.go, the engines' reachability
// check, which pokes it when an engine answers again; supervise.go, the
// failover supervisor (reconcile.PrimaryWatch decides); lock.go, the state
// directory's lock and the cluster locks; status.go, view.go (the
// operator's view and work in progress), history.go (the event history),
// page.go and web/ (the status page), http.go, metrics.go, notify.go, what
// the daemon reports; auth.go, the endpoints' HTTPS and authentication
// (daemon.tls, daemon.token_file) and the Client other pacsd and pacsd
// status ask them with; requests.go, with pacsd on every host, the
// maintenance commands asked for on the command line ('pacsd restart',
// 'reinit', 'failover') that this host's pacsd carries out, and Ask, which
// the command line asks with.
package daemon
