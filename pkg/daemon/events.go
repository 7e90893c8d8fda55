package daemon

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Event is what a container engine reports about one of a cluster's objects.
type Event struct {
	Type   string // container, network, ...
	Action string // die, stop, kill, oom, destroy, disconnect, start, ...
	Name   string // the object's name, when known
}

// FollowFunc follows rt's events about the objects of cluster, calling event
// for each, until ctx is done (it then returns nil) or the stream breaks (it
// returns why). A runtime that has no events returns when ctx is done.
type FollowFunc func(ctx context.Context, rt reconcile.Runtime, cluster string, event func(Event)) error

// Engine events settle for eventsQuiet, and at most eventsMostWait, before
// they start a pass.
const (
	eventsQuiet    = 50 * time.Millisecond
	eventsMostWait = 250 * time.Millisecond
)

// followed lists the event streams a spec needs: one per cluster and host.
func followed(f *spec.File) []string {
	var keys []string
	if f == nil {
		return keys
	}
	for _, c := range f.Clusters {
		for _, n := range c.Nodes {
			keys = append(keys, c.Name+"\x00"+n.Host)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// follow (re)starts following the engine's events of every cluster of the
// spec in force, one stream per cluster and host, once Run has started.
func (d *Daemon) follow() {
	if d.runCtx == nil || d.o.Follow == nil {
		return
	}
	if d.unfollow != nil {
		d.unfollow()
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	d.unfollow = cancel
	for _, c := range d.file.Clusters {
		hosts := map[string]bool{}
		for _, n := range c.Nodes {
			hosts[n.Host] = true
		}
		for host := range hosts {
			if rt := d.deps.Runtimes[host]; rt != nil {
				go d.followOne(ctx, rt, c.Name, host)
			}
		}
	}
}

// followOne follows one stream; when it breaks, it logs, pokes (events may
// have been missed) and subscribes again after a backoff.
func (d *Daemon) followOne(ctx context.Context, rt reconcile.Runtime, cluster, host string) {
	failures := 0
	for {
		start := time.Now()
		err := d.o.Follow(ctx, rt, cluster, func(ev Event) {
			if d.leftToSupervisor(cluster, ev) {
				d.log.Info("engine event about the acting primary; the failover supervisor decides", "cluster", cluster, "type", ev.Type, "action", ev.Action, "name", ev.Name)
				return
			}
			if worthAPass(ev) {
				d.log.Info("engine event; observing again", "cluster", cluster, "type", ev.Type, "action", ev.Action, "name", ev.Name)
				d.events.Poke()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the event stream ended")
		}
		if time.Since(start) > time.Minute {
			failures = 0
		}
		failures++
		delay := backoffDelay(failures, minEventsBackoff, maxEventsBackoff)
		d.log.Warn("lost the engine's events; observing again and subscribing again", "cluster", cluster, "host", host, "error", err.Error(), "retry_in", delay.String())
		d.trigger.Poke()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		d.trigger.Poke()
	}
}

// worthAPass tells the events that mean an object of pacsd's may have gone,
// or come back: a fenced node started by hand or by the engine is looked at
// at once (it comes back in recovery, and a pass makes it follow).
func worthAPass(ev Event) bool {
	switch ev.Type {
	case "container":
		switch ev.Action {
		case "die", "stop", "kill", "oom", "destroy", "start", "unpause", "restart":
			return true
		}
	case "network":
		return ev.Action == "disconnect" || ev.Action == "destroy"
	}
	return false
}

// leftToSupervisor reports whether ev says that the acting primary of a
// cluster with automatic failover went down (died, stopped, killed,
// removed): the failover supervisor decides what follows, and it starts a
// pass when it is done (or has refused). A pass started by the event would
// only warn that the primary is down, and its requests about the dead
// primary's container (the engine serves them one at a time) would hold up
// the supervisor's own checks and its fence.
func (d *Daemon) leftToSupervisor(cluster string, ev Event) bool {
	if ev.Type != "container" {
		return false
	}
	switch ev.Action {
	case "die", "stop", "kill", "oom", "destroy":
	default:
		return false
	}
	snap := d.snap.Load()
	if snap == nil {
		return false
	}
	for _, c := range snap.file.Clusters {
		if c.Name != cluster || !c.Failover.Automatic {
			continue
		}
		st, err := snap.deps.Store.Load(c.Name)
		if err != nil {
			return false
		}
		acting, err := reconcile.ActingPrimary(c, st, nil)
		if err != nil {
			return false
		}
		n := c.Node(acting)
		return n != nil && n.Container == ev.Name
	}
	return false
}
