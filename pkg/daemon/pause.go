package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// PauseStore keeps a cluster's maintenance mode ('pacsd pause') in the
// cluster store.
type PauseStore interface {
	LoadPause(cluster string) (reconcile.Pause, error)
}

// pauseFresh is how long a read of a cluster's maintenance mode is used
// before it is read again: 'pacsd pause' holds a failover back within it.
const pauseFresh = time.Second

// errPaused refuses a failover of a paused cluster.
var errPaused = errors.New("the cluster is paused")

// pauseSeen is the last read of a cluster's maintenance mode.
type pauseSeen struct {
	paused bool
	at     time.Time
	by     string
	err    string // why it could not be read, said once
}

// paused reports whether cluster is paused, as the store said at most
// pauseFresh ago. A store that keeps no maintenance mode counts as not
// paused. When the mode cannot be read (a file pacsd may not read, a
// damaged one, etcd that does not answer), the last mode read stands, and
// paused when none was ever read: an operator who paused is never
// overruled by a read that failed.
func (d *Daemon) paused(cluster string) bool {
	if v, ok := d.pauses.Load(cluster); ok && time.Since(v.(pauseSeen).at) < pauseFresh {
		return v.(pauseSeen).paused
	}
	snap := d.snap.Load()
	var ps reconcile.Pause
	prev, known := d.pauses.Load(cluster)
	seen := pauseSeen{at: time.Now()}
	if snap != nil {
		if pst, ok := snap.shared.(PauseStore); ok {
			var err error
			if ps, err = pst.LoadPause(cluster); err != nil {
				seen.err = err.Error()
				ps = reconcile.Pause{Paused: true, By: "an unreadable maintenance mode"}
				if known {
					ps = reconcile.Pause{Paused: prev.(pauseSeen).paused, By: prev.(pauseSeen).by}
				}
				if !known || prev.(pauseSeen).err != seen.err {
					d.log.Error("cannot read whether the cluster is paused; the last mode read stands (paused when none was read): make the store readable by pacsd, or write the mode anew with 'pacsd pause' or 'pacsd resume' as pacsd's user", "cluster", cluster, "paused", ps.Paused, "error", seen.err)
				}
			}
		}
	}
	seen.paused, seen.by = ps.Paused, ps.By
	d.pauses.Store(cluster, seen)
	switch {
	case ps.Paused && (!known || !prev.(pauseSeen).paused):
		d.log.Warn("cluster paused: pacsd observes and reports it, and takes no action on it (no repair, no failover) until 'pacsd resume'", "cluster", cluster, "by", ps.By, "since", ps.At)
		d.m.paused.WithLabelValues(cluster).Set(1)
	case !ps.Paused && known && prev.(pauseSeen).paused:
		d.log.Info("cluster resumed: pacsd acts on it again", "cluster", cluster, "by", ps.By)
		d.history.forget(cluster, "paused")
		d.m.paused.WithLabelValues(cluster).Set(0)
		d.trigger.Poke()
	case !known:
		d.m.paused.WithLabelValues(cluster).Set(0)
	}
	return ps.Paused
}

// convergePaused is a paused cluster's pass: it observes and plans, shows
// what it holds back, and carries out nothing.
func (d *Daemon) convergePaused(ctx context.Context, c *spec.Cluster) {
	n := d.observeOnly(ctx, c, "paused", "")
	d.record(reconcile.Event{Cluster: c.Name, Kind: "paused", Reason: "the cluster is paused ('pacsd resume " + c.Name + "' ends it)",
		Result: "not acted on: paused"})
	d.log.Warn("cluster paused: observed, nothing done", "cluster", c.Name, "held_back", n)
}

// convergeHeld is the pass of a cluster held because its record cannot be
// written (recordhold.go): as a paused cluster's, said once when the hold
// began.
func (d *Daemon) convergeHeld(ctx context.Context, c *spec.Cluster, why error) {
	n := d.observeOnly(ctx, c, "held", why.Error())
	d.record(reconcile.Event{Cluster: c.Name, Kind: "held", Reason: why.Error(), Result: "not acted on: held"})
	d.log.Debug("cluster held: observed, nothing done", "cluster", c.Name, "held_back", n)
}

// observeOnly observes and plans cluster c, shows the actions it holds back
// in its status with result and why, carries out nothing, and returns how
// many actions it held back.
func (d *Daemon) observeOnly(ctx context.Context, c *spec.Cluster, result, why string) int {
	start := time.Now()
	obs, err := reconcile.Observe(ctx, c, d.deps)
	d.observed(c, obs, err)
	st := &ClusterStatus{LastPass: start, Result: result, Error: why, Actions: []string{}}
	n := 0
	if err != nil {
		st.Error = err.Error()
	} else {
		actions, _ := reconcile.Plan(c, obs, d.deps.Matches)
		n = len(actions)
		for _, a := range actions {
			st.Actions = append(st.Actions, "held back: "+a.String())
		}
	}
	st.Duration = time.Since(start).Round(time.Millisecond).String()
	d.m.passes.WithLabelValues(c.Name, result).Inc()
	d.setClusterStatus(c.Name, st)
	return n
}

// pausedFailover is the error of a failover held back by maintenance mode.
func pausedFailover(cluster string) error {
	return fmt.Errorf("cluster %q: %w: no failover while it is; 'pacsd resume %s' lets pacsd fail over (or 'pacsd failover NODE' by hand)", cluster, errPaused, cluster)
}
