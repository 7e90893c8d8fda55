package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// pinger is a runtime that can be asked whether its engine answers;
// pkg/docker.Runtime is one. Runtimes that are not are not reported.
type pinger interface {
	Ping(context.Context) error
}

// engineTimeout bounds each engine's answer to the daemon's reachability
// check: an engine that answers does so in milliseconds.
var engineTimeout = 3 * time.Second

// localEngine is the key of the local engine (host "") in Status.Engines and
// pacsd_engine_up; localEngineAlt when a host block is named "local".
const (
	localEngine    = "local"
	localEngineAlt = "(local)"
)

// EngineStatus is what the daemon last found of one host's container engine.
type EngineStatus struct {
	// Reachable says that the engine answered the last check.
	Reachable bool `json:"reachable"`
	// Error is why it did not; "" when it answered.
	Error string `json:"error,omitempty"`
	// Since is when Reachable last changed (the first check, for an engine
	// that has always answered or never).
	Since time.Time `json:"since"`
	// CheckedAt is when it was last checked.
	CheckedAt time.Time `json:"checked_at"`
}

// engineKey names the engine of host in Status.Engines and the metrics: the
// host's name, "local" for the local engine (host ""), or "(local)" when a
// host block is named "local" too.
func engineKey(host string, hosts []string) string {
	if host != "" {
		return host
	}
	if slices.Contains(hosts, localEngine) {
		return localEngineAlt
	}
	return localEngine
}

// hostNames lists the hosts of the adapters' engines.
func hostNames(deps reconcile.Deps) []string {
	hosts := make([]string, 0, len(deps.Runtimes))
	for host := range deps.Runtimes {
		hosts = append(hosts, host)
	}
	return hosts
}

// engineCheck is one engine's answer.
type engineCheck struct {
	host string
	err  error
}

// checkEngines asks each engine of the adapters in force whether it
// answers, all at once, each for at most engineTimeout, and records the
// answers (Status.Engines, pacsd_engine_up). It logs when an engine stops
// answering and when it answers again, once each. It takes no cluster lock
// and does not hold the status's lock while it waits, so that neither the
// supervisor nor /status waits for a silent engine. It runs on the loop,
// once per pass.
func (d *Daemon) checkEngines(ctx context.Context) {
	pingers := map[string]pinger{}
	for host, rt := range d.deps.Runtimes {
		if p, ok := rt.(pinger); ok {
			pingers[host] = p
		}
	}
	timeout := engineTimeout
	answers := make(chan engineCheck, len(pingers))
	for host, p := range pingers {
		go func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			answers <- engineCheck{host: host, err: p.Ping(pctx)}
		}()
	}
	// A Ping that does not return when its context is done is not waited
	// for: its engine counts as silent.
	late := time.NewTimer(timeout + timeout/2)
	defer late.Stop()
	got := map[string]error{}
wait:
	for len(got) < len(pingers) {
		select {
		case a := <-answers:
			got[a.host] = a.err
		case <-late.C:
			break wait
		}
	}
	if ctx.Err() != nil {
		return // stopping: a check cut short says nothing of the engines
	}
	checks := make([]engineCheck, 0, len(pingers))
	for host := range pingers {
		err, ok := got[host]
		if !ok {
			err = fmt.Errorf("the engine did not answer within %s", timeout)
		}
		checks = append(checks, engineCheck{host: host, err: err})
	}
	d.recordEngines(checks, time.Now())
}

// recordEngines takes the engines' answers into the status and the metrics,
// drops engines no longer checked (a host removed from the file), and logs
// each change of reachability.
func (d *Daemon) recordEngines(checks []engineCheck, now time.Time) {
	hosts := hostNames(d.deps)
	type change struct {
		host, key string
		was, is   EngineStatus
		first     bool
	}
	var changes []change
	d.mu.Lock()
	prev := d.st.Engines
	next := make(map[string]EngineStatus, len(checks))
	for _, ch := range checks {
		key := engineKey(ch.host, hosts)
		es := EngineStatus{Reachable: ch.err == nil, Since: now, CheckedAt: now}
		if ch.err != nil {
			es.Error = ch.err.Error()
		}
		was, seen := prev[key]
		if seen && was.Reachable == es.Reachable {
			es.Since = was.Since
		} else {
			changes = append(changes, change{host: ch.host, key: key, was: was, is: es, first: !seen})
		}
		next[key] = es
		up := 0.0
		if es.Reachable {
			up = 1
		}
		d.m.engineUp.WithLabelValues(key).Set(up)
	}
	for key := range prev {
		if _, ok := next[key]; !ok {
			d.m.engineUp.DeleteLabelValues(key)
		}
	}
	d.st.Engines = next
	d.mu.Unlock()

	sort.Slice(changes, func(i, j int) bool { return changes[i].key < changes[j].key })
	for _, c := range changes {
		switch {
		case !c.is.Reachable:
			nodes := d.nodesOn(c.host)
			level, msg := slog.LevelError, "Docker engine unreachable: pacsd leaves the nodes on it alone, and fails over no primary on it (its fence cannot be confirmed), until it answers; check that the host is up, that its engine runs, and that this machine reaches it (address, port, TLS certificates)"
			if len(nodes) == 0 {
				level, msg = slog.LevelWarn, "Docker engine unreachable; no node of the file runs on it, so nothing waits for it: check that the host is up and its engine runs, or remove its host block"
			}
			d.log.Log(context.Background(), level, msg, "host", c.key, "error", c.is.Error, "nodes", nodes)
		case !c.first:
			d.log.Info("Docker engine answers again; its nodes are converged again", "host", c.key,
				"unreachable_for", c.is.Since.Sub(c.was.Since).Round(time.Millisecond).String())
		default:
			d.log.Debug("Docker engine answers", "host", c.key)
		}
	}
}

// nodesOn lists the nodes of the spec in force on host, as cluster/node.
func (d *Daemon) nodesOn(host string) []string {
	nodes := []string{}
	if d.file == nil {
		return nodes
	}
	for _, c := range d.file.Clusters {
		for _, n := range c.Nodes {
			if n.Host == host {
				nodes = append(nodes, c.Name+"/"+n.Name)
			}
		}
	}
	return nodes
}

// unreachableEngines lists the engines that did not answer their last
// check, sorted; d.mu must be held.
func (d *Daemon) unreachableEngines() []string {
	var keys []string
	for key, es := range d.st.Engines {
		if !es.Reachable {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}
