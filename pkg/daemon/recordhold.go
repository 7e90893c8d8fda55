package daemon

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// A cluster whose record could not be written (reconcile.ErrRecordNotWritten:
// a full or read-only state directory) is held: pacsd observes and reports
// it, and carries out nothing on it (no repair, no switchover, no failover),
// since every round, switchover and failover must record before it acts, and
// a switchover tried again and again would stop the primary each time. It is
// said once; the hold ends by itself once the store can hold the record
// again (reconcile.CheckWrite), tried at most once every recordRetry.

// recordRetry is how often a held cluster's store is tried again.
const recordRetry = time.Second

// errRecordHeld refuses a failover of a held cluster.
var errRecordHeld = errors.New("pacsd holds the cluster")

// recordHold is why and since when a cluster is held.
type recordHold struct {
	err   string
	since time.Time
	tried time.Time
}

// recordHolds are the held clusters, by name.
type recordHolds struct {
	mu sync.Mutex
	m  map[string]*recordHold
}

// holdRecord holds cluster when err says its record could not be written,
// and returns why it is held; nil when err says nothing of the kind.
func (d *Daemon) holdRecord(cluster string, err error) error {
	if !errors.Is(err, reconcile.ErrRecordNotWritten) {
		return nil
	}
	d.holds.mu.Lock()
	defer d.holds.mu.Unlock()
	if h := d.holds.m[cluster]; h != nil {
		return h.why(cluster)
	}
	if d.holds.m == nil {
		d.holds.m = map[string]*recordHold{}
	}
	now := time.Now()
	h := &recordHold{err: err.Error(), since: now, tried: now}
	d.holds.m[cluster] = h
	d.log.Error("the cluster's record cannot be written; pacsd holds the cluster: it observes and reports it, and does nothing on it (no repair, no switchover, no failover) until the record can be written: free space in the state directory's file system, or make it writable",
		"cluster", cluster, "error", err.Error())
	return h.why(cluster)
}

// recordHeld returns why cluster is held, or nil when it is not: a held
// cluster whose store can hold its record again (tried at most once every
// recordRetry) is released, and a pass is poked.
func (d *Daemon) recordHeld(cluster string) error {
	d.holds.mu.Lock()
	defer d.holds.mu.Unlock()
	h := d.holds.m[cluster]
	if h == nil {
		return nil
	}
	if time.Since(h.tried) >= recordRetry {
		h.tried = time.Now()
		var err error
		if snap := d.snap.Load(); snap != nil {
			err = reconcile.CheckWrite(snap.shared, cluster)
		}
		if err == nil {
			delete(d.holds.m, cluster)
			d.log.Warn("the cluster's record can be written again; pacsd acts on the cluster again", "cluster", cluster, "held_for", time.Since(h.since).Round(time.Millisecond).String())
			d.history.forget(cluster, "held")
			d.trigger.Poke()
			return nil
		}
	}
	return h.why(cluster)
}

// why says why cluster is held, as an error matching errRecordHeld.
func (h *recordHold) why(cluster string) error {
	return fmt.Errorf("cluster %q: %w since %s: %s; pacsd acts on it again once the record can be written", cluster, errRecordHeld, h.since.Format(time.RFC3339), h.err)
}
