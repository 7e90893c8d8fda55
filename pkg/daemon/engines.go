package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
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

// The engines are checked on their own ticker, independent of passes (a
// pass may be held for minutes by a base backup): every engineCheckEvery
// while every engine answers, and every engineCheckEveryDown while one does
// not, so that an engine that answers again is seen, and its nodes
// observed, within seconds. A check that takes longer than the interval
// (an engine that does not answer within engineTimeout) is followed by the
// next one at once; checks never overlap.
const (
	engineCheckEvery     = 10 * time.Second
	engineCheckEveryDown = 2 * time.Second
)

// watchEngines checks the engines at once, then every engineCheckEvery
// (engineCheckEveryDown while one does not answer), until ctx is done. Run
// starts it, and waits for it before it closes the adapters.
func (d *Daemon) watchEngines(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		silent, again := d.checkEngines(ctx)
		every := engineCheckEvery
		switch {
		case again:
			every = 0
		case silent > 0:
			every = engineCheckEveryDown
		}
		timer.Reset(max(0, every-time.Since(start)))
	}
}

// engineCheck is one engine's answer.
type engineCheck struct {
	host string
	err  error
}

// checkEngines asks each engine of the adapters in force whether it
// answers, all at once, each for at most engineTimeout, records the answers
// (Status.Engines, pacsd_engine_up), and returns how many did not answer.
// It logs when an engine stops answering and when it answers again, once
// each, and pokes a pass when an engine that runs nodes answers again (see
// recordEngines). It reads the adapters from the snapshot, takes no cluster
// lock and does not hold the status's lock while it waits, so that neither
// the loop, the supervisor nor /status waits for a silent engine. A check
// cut short by ctx records nothing; nor does one made while a new file was
// taken (the adapters it asked may have been closed and replaced), which
// reports that the engines should be checked again at once.
func (d *Daemon) checkEngines(ctx context.Context) (silent int, again bool) {
	snap := d.snap.Load()
	if snap == nil {
		return 0, false
	}
	pingers := map[string]pinger{}
	for host, rt := range snap.deps.Runtimes {
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
		case <-ctx.Done():
			break wait
		}
	}
	if ctx.Err() != nil {
		return 0, false // stopping: a check cut short says nothing of the engines
	}
	checks := make([]engineCheck, 0, len(pingers))
	for host := range pingers {
		err, ok := got[host]
		if !ok {
			err = fmt.Errorf("the engine did not answer within %s", timeout)
		}
		if err != nil {
			silent++
		}
		checks = append(checks, engineCheck{host: host, err: err})
	}
	if !d.recordEngines(snap, checks, time.Now()) {
		return 0, true
	}
	return silent, false
}

// recordEngines takes the engines' answers into the status and the metrics,
// drops engines no longer checked (a host removed from the file), and logs
// each change of reachability. When an engine that did not answer answers
// again and nodes of the file run on it, it pokes a pass at once: the old
// primary on a host whose partition healed may still run as a primary,
// and the pass fences it (without the poke, it would wait for the resync).
// It records nothing, and reports false, when snap is no longer the
// snapshot in force.
func (d *Daemon) recordEngines(snap *snapshot, checks []engineCheck, now time.Time) bool {
	hosts := hostNames(snap.deps)
	type change struct {
		host, key string
		was, is   EngineStatus
		first     bool
	}
	var changes []change
	d.mu.Lock()
	if d.snap.Load() != snap {
		d.mu.Unlock()
		return false
	}
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
		nodes := nodesOn(snap.file, c.host)
		switch {
		case !c.is.Reachable:
			level, msg := slog.LevelError, "Docker engine unreachable: pacsd leaves the nodes on it alone, and fails over no primary on it (its fence cannot be confirmed), until it answers; check that the host is up, that its engine runs, and that this machine reaches it (address, port, TLS certificates)"
			if len(nodes) == 0 {
				level, msg = slog.LevelWarn, "Docker engine unreachable; no node of the file runs on it, so nothing waits for it: check that the host is up and its engine runs, or remove its host block"
			}
			d.log.Log(context.Background(), level, msg, "host", c.key, "error", c.is.Error, "nodes", nodes)
		case !c.first:
			attrs := []any{"host", c.key, "unreachable_for", c.is.Since.Sub(c.was.Since).Round(time.Millisecond).String(), "nodes", nodes}
			if len(nodes) == 0 {
				d.log.Info("Docker engine answers again; no node of the file runs on it", attrs...)
				continue
			}
			d.log.Info("Docker engine answers again; observing its nodes at once", attrs...)
			d.trigger.Poke()
		default:
			d.log.Debug("Docker engine answers", "host", c.key)
		}
	}
	return true
}

// nodesOn lists the nodes of f on host, as cluster/node.
func nodesOn(f *spec.File, host string) []string {
	nodes := []string{}
	if f == nil {
		return nodes
	}
	for _, c := range f.Clusters {
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
