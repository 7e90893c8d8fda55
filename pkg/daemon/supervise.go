package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// SuperviseInterval is how often the failover supervisor checks each acting
// primary of a cluster with automatic failover.
var SuperviseInterval = 100 * time.Millisecond

// recheckTimeout bounds the health check that the supervisor repeats under
// the cluster's lock before it counts a primary as lost: a healthy primary
// answers in milliseconds.
const recheckTimeout = 500 * time.Millisecond

// snapshot is the spec and adapters in force, as the loop last took them.
type snapshot struct {
	file *spec.File
	// deps are the adapters; deps.Store is a lockedStore over shared.
	deps reconcile.Deps
	// shared is the cluster store shared with other pacsd processes.
	shared reconcile.ClusterStore
}

// seenFresh is how old a saved sight of the primary may be to be used by a
// pacsd that starts while the primary is lost.
const seenFresh = reconcile.SeenFresh

// seenSaveEvery is how often an unchanged synchronous set is saved again
// with the primary's newer WAL position (an idle primary's, every
// seenFresh/2).
const seenSaveEvery = 5 * time.Second

// keepSeen saves the watch's last sight of the primary when the synchronous
// standbys changed since prev, or when the WAL moved and seenSaveEvery has
// passed (an idle primary's now and then): a pacsd started during an outage
// then knows them (with synchronous replication, failover only promotes one
// of them).
func (d *Daemon) keepSeen(cluster string, deps reconcile.Deps, ws *watchState, prev reconcile.LastSeen) {
	seen := ws.w.Last
	if seen.At.IsZero() {
		return
	}
	changed := !slices.Equal(prev.SyncStandbys, seen.SyncStandbys) || prev.Node != seen.Node
	moved := seen.WAL != ws.savedWAL || seen.At.Sub(ws.saved) > seenFresh/2 // an idle primary is saved now and then, so the sight stays fresh
	if !changed && (!moved || seen.At.Sub(ws.saved) < seenSaveEvery) {
		return
	}
	if err := deps.Store.SaveSeen(cluster, seen); err != nil {
		if !ws.seenFailing { // said once, not at every check
			d.log.Warn("cannot keep what was seen of the primary; a pacsd started during an outage may refuse to fail over", "cluster", cluster, "error", err.Error())
		}
		ws.seenFailing = true
		return
	}
	if ws.seenFailing {
		d.log.Info("what is seen of the primary is kept again", "cluster", cluster)
	}
	ws.saved, ws.savedWAL, ws.seenFailing = seen.At, seen.WAL, false
}

// watchState is what the supervisor remembers of one cluster: the watch
// (reconcile decides over it) and what it saved and logged.
type watchState struct {
	w        reconcile.PrimaryWatch
	saved    time.Time // when the last sight was last saved
	savedWAL uint64    // and the WAL position saved then
	// seenFailing is set while the sight cannot be saved (said once).
	seenFailing bool
	loadErr     string // the last error telling the acting primary, logged once
	// unleased is since when the leader has seen no lease for the acting
	// primary in its epoch, unleasedSaid set once it said so (pacsd on
	// every host).
	unleased     time.Time
	unleasedSaid bool
	// waitSaid is the last reason the leader said it does not fail over
	// yet (leaderWaits).
	waitSaid string
}

// supervise checks, every SuperviseInterval, the acting primary of each
// cluster with failover.automatic whose first pass succeeded. When it has
// been unreachable, stopped, frozen or in recovery for failover.after, it
// fails over (reconcile.Failover: fence, choose, record, promote), then pokes
// a pass to repoint the standbys and rejoin the old primary. A refused
// failover (fence not confirmed, no standby within max_lag) is logged as an
// error with what to do (once, and again when its reason changes), counted,
// kept in the cluster's status (failover_refused) and the gauge
// pacsd_failover_refused until a failover is done or the primary is seen
// healthy, and tried again later; pacsd never promotes against those rules.
func (d *Daemon) supervise(ctx context.Context) {
	// Each cluster is checked on its own goroutine, one check at a time: a
	// failover that takes seconds in one cluster never delays the checks
	// of another.
	type slot struct {
		ws   watchState
		busy atomic.Bool
		// next is when a cluster without automatic failover is looked at
		// again (sightEvery).
		next time.Time
	}
	seen := map[string]*slot{}
	var running sync.WaitGroup
	defer running.Wait()
	tick := time.NewTicker(SuperviseInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		snap := d.snap.Load()
		if snap == nil {
			continue
		}
		for _, c := range snap.file.Clusters {
			// A cluster is supervised once its first pass succeeded, or once
			// its state records an acting primary: a pacsd started in the
			// middle of a long base backup, or with one engine unreachable,
			// still fails over a lost primary.
			if _, ok := d.ready.Load(c.Name); !ok && !recorded(snap.deps, c) {
				continue // its slot, if any, stays: its timer goes on
			}
			sl := seen[c.Name]
			if sl == nil {
				sl = &slot{}
				seen[c.Name] = sl
			}
			manual := !c.Failover.Automatic
			if manual && time.Now().Before(sl.next) {
				continue
			}
			if !sl.busy.CompareAndSwap(false, true) {
				continue // its last check still runs
			}
			sl.next = time.Now().Add(sightEvery)
			running.Add(1)
			go func() {
				defer running.Done()
				defer sl.busy.Store(false)
				if manual {
					d.sight(ctx, c, snap.deps, &sl.ws)
					return
				}
				d.check(ctx, c, snap.deps, &sl.ws)
			}()
		}
	}
}

// sightEvery is how often the supervisor looks at the primary of a
// cluster without automatic failover.
var sightEvery = time.Second

// sight looks at the acting primary of a cluster without automatic
// failover and keeps what it sees of it healthy (its WAL position, its
// synchronous standbys), as the automatic failover's checks do: 'pacsd
// failover NODE' by hand then judges a standby by the same rules (with
// synchronous replication, only a standby the primary waited for is
// promoted without --accept-loss). It never fails over. With pacsd on
// every host the primary's own host keeps the sight.
func (d *Daemon) sight(ctx context.Context, c *spec.Cluster, deps reconcile.Deps, ws *watchState) {
	st, err := deps.Store.Load(c.Name)
	if err != nil {
		return
	}
	acting, err := reconcile.ActingPrimary(c, st, nil)
	n := c.Node(acting)
	if err != nil || n == nil || d.hosted != nil && n.Host != d.hosted.co.Host() {
		return
	}
	if ws.w.Node != acting {
		*ws = watchState{w: reconcile.PrimaryWatch{Node: acting}}
	}
	began := time.Now()
	h, err := reconcile.Health(ctx, c, n, deps)
	prev := ws.w.Last
	w, v, _ := ws.w.Observe(acting, reconcile.HealthCheck{At: time.Now(), Began: began, Health: h, Err: err}, c.Failover.After.Duration)
	ws.w = w
	if v == reconcile.Healthy || v == reconcile.Recovered {
		d.keepSeen(c.Name, deps, ws, prev)
		d.primaryHealthy(c.Name, ws.w.Last)
	}
}

// recorded reports whether the cluster's record names an acting primary.
func recorded(deps reconcile.Deps, c *spec.Cluster) bool {
	st, err := deps.Store.Load(c.Name)
	if err == nil {
		_, err = reconcile.ActingPrimary(c, st, nil)
	}
	return err == nil
}

// check looks at one cluster's acting primary and fails over when it has
// been lost for long enough; reconcile.PrimaryWatch decides, check carries
// out. The first health check takes no lock; a failed one counts only when
// the cluster's lock is free at once and a second check under it fails too,
// and the failover runs under that lock.
func (d *Daemon) check(ctx context.Context, c *spec.Cluster, deps reconcile.Deps, ws *watchState) {
	st, err := deps.Store.Load(c.Name)
	var acting string
	if err == nil {
		acting, err = reconcile.ActingPrimary(c, st, nil)
	}
	if err == nil && c.Node(acting) == nil {
		err = fmt.Errorf("cluster %q: the record names %q as the acting primary, but the file no longer declares it; declare it again, or switch over to a declared node", c.Name, acting)
	}
	if err != nil {
		// Without the record the acting primary is unknown: after a
		// switchover or a failover the file's primary is a standby or the
		// fenced old primary. Nothing is checked, nothing fails over,
		// until a pass rebuilds the record from the nodes.
		if ws.loadErr != err.Error() {
			ws.loadErr = err.Error()
			d.log.Error("cannot tell the cluster's acting primary; automatic failover is suspended until its record is read or rebuilt", "cluster", c.Name, "error", err.Error())
		}
		return
	}
	ws.loadErr = ""
	n := c.Node(acting)
	if h := d.hosted; h != nil && !(n.Host == h.co.Host() && h.mayRunPrimary(c.Name, acting)) {
		// Pacsd on every host: the holder of the primary's lease watches
		// its own primary (below); the leader fails over when the lease
		// is gone; the others do nothing.
		if h.leading(c.Name) {
			d.leadFailover(ctx, c, deps, ws, acting, st.Epoch)
			d.lost.Store(c.Name, !ws.w.DownSince.IsZero())
		}
		return
	}
	if ws.w.Node != acting { // a start, a switchover or a failover
		*ws = watchState{w: reconcile.PrimaryWatch{Node: acting}}
		// What a pacsd before this one saw, when recent: an older sight
		// may name standbys that are no longer synchronous.
		ls, err := deps.Store.LoadSeen(c.Name)
		switch {
		case err != nil:
			d.log.Warn("cannot read the last sight of the primary; until the primary is seen healthy, a failover has no position to bound the standbys' lag", "cluster", c.Name, "error", err.Error())
		case ls.Node == acting && time.Since(ls.At) < seenFresh:
			ws.w.Last = ls
		}
	}
	began := time.Now()
	h, err := reconcile.Health(ctx, c, n, deps)
	now := time.Now()
	if took := now.Sub(began); took > time.Second {
		d.log.Warn("slow health check", "cluster", c.Name, "node", acting, "took", took.String())
	}
	after := c.Failover.After.Duration
	prev := ws.w.Last
	w, v, lost := ws.w.Observe(acting, reconcile.HealthCheck{At: now, Began: began, Health: h, Err: err}, after)
	ws.w = w
	if v != reconcile.Recheck {
		d.verdict(c, ws, v, prev, deps, lost)
		return
	}
	// The health check takes no lock, so that what a healthy primary shows
	// (its WAL position, its synchronous standbys) stays fresh, and so that
	// the time a primary has been lost counts while a pass, or another pacsd
	// process, holds the cluster's lock (a restart, a base backup): failover
	// never waits for a pass to end before its timer starts. But what a pass
	// or a switchover does (a restart, a primary stopped to switch over) can
	// look like a lost primary: the primary counts as lost, and the decision
	// is taken, only under the lock, after one more look: what the check
	// above saw may be older than what acted in between, and the first call
	// after a partition heals may fail.
	unlock, ok := d.tryLock(c.Name)
	if !ok {
		return
	}
	defer unlock()
	rctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	began = time.Now()
	h, err = reconcile.Health(rctx, c, n, deps)
	cancel()
	prev = ws.w.Last
	ws.w, v, lost = ws.w.Observe(acting, reconcile.HealthCheck{At: time.Now(), Began: began, Health: h, Err: err, Locked: true}, after)
	d.verdict(c, ws, v, prev, deps, lost)
	if v != reconcile.FailOver {
		return
	}
	if d.hosted != nil && ws.w.Last.Node != acting {
		// Never seen healthy (recently, by any pacsd): a primary that has
		// not started yet; the pass starts it.
		ws.w.DownSince = time.Now()
		return
	}
	if d.hosted != nil && d.paused(c.Name) {
		// Paused: the lost primary is left as it is (while this host holds
		// its lease nobody promotes another); losing the lease still
		// fences it (loseLease).
		ws.w.RetryAfter = time.Now().Add(reconcile.FailoverRetry)
		d.record(reconcile.Event{Cluster: c.Name, Node: acting, Kind: "failover-refused", Reason: "this host's primary is lost",
			Result: "refused: " + pausedFailover(c.Name).Error()})
		return
	}
	if d.hosted != nil {
		// Only the leader promotes; this host fences its own primary and
		// gives the lease up.
		d.log.Warn("this host's primary is lost; fencing it and giving up its lease", "cluster", c.Name, "node", acting, "lost_for", time.Since(ws.w.DownSince).Round(time.Millisecond).String())
		d.giveUpPrimary(ctx, c, acting)
		*ws = watchState{}
		return
	}
	began = time.Now()
	var to string
	var ferr error
	if d.paused(c.Name) {
		ferr = pausedFailover(c.Name)
	} else if ferr = d.recordHeld(c.Name); ferr == nil {
		d.log.Info("failing over", "cluster", c.Name, "node", acting, "lost_for", time.Since(ws.w.DownSince).Round(time.Millisecond).String())
		to, ferr = reconcile.Failover(ctx, c, deps, ws.w.Last, d.log)
	}
	took := time.Since(began)
	lostFor := time.Since(ws.w.DownSince).Round(time.Millisecond).String()
	ws.w = ws.w.FailedOver(time.Now(), ferr)
	d.failedOver(ctx, c, n, acting, to, lostFor, took, ferr, deps)
}

// failedOver carries out what follows a failover: metrics, the refusal
// kept in the status, the log, and a pass.
func (d *Daemon) failedOver(ctx context.Context, c *spec.Cluster, n *spec.Node, acting, to, lostFor string, took time.Duration, ferr error, deps reconcile.Deps) {
	e := reconcile.Event{Cluster: c.Name, Node: acting, Kind: "failover", Target: to, Reason: "the acting primary is lost"}
	switch {
	case ferr == nil:
		e.Result, e.Duration = "ok: "+to+" promoted, the primary lost for "+lostFor, took.Round(time.Millisecond).String()
		d.history.forget(c.Name, "failover-refused")
	case errors.Is(ferr, reconcile.ErrActingChanged):
		e.Result = "not needed: " + ferr.Error()
	case errors.Is(ferr, reconcile.ErrNotFenced) || errors.Is(ferr, reconcile.ErrNoCandidate) || errors.Is(ferr, errPaused) || errors.Is(ferr, errRecordHeld):
		e.Kind, e.Result = "failover-refused", "refused: "+ferr.Error()
	default:
		e.Result, e.Duration = "failed: "+ferr.Error(), took.Round(time.Millisecond).String()
	}
	d.record(e)
	switch {
	case errors.Is(ferr, reconcile.ErrActingChanged):
		d.log.Info("failover not needed", "cluster", c.Name, "error", ferr.Error())
		return
	case ferr == nil:
		d.m.failovers.WithLabelValues(c.Name, "promoted").Inc()
		d.clearFailoverRefusal(c.Name)
		d.log.Warn("failover done", "cluster", c.Name, "from", acting, "to", to, "lost_for", lostFor)
		d.resetBackoff()
		d.trigger.Poke()
	case errors.Is(ferr, reconcile.ErrNotFenced) || errors.Is(ferr, reconcile.ErrNoCandidate) || errors.Is(ferr, errPaused) || errors.Is(ferr, errRecordHeld):
		d.m.failovers.WithLabelValues(c.Name, "refused").Inc()
		// Said at Error once, and again when the reason changes; /status
		// (failover_refused) and pacsd_failover_refused say it meanwhile.
		level := slog.LevelDebug
		if d.refuseFailover(c.Name, acting, ferr, time.Now()) {
			level = slog.LevelError
		}
		d.log.Log(ctx, level, "failover refused", "cluster", c.Name, "node", acting, "host", engineKey(n.Host, hostNames(deps)), "error", ferr.Error())
		// A pass shows the rest (and starts the primary again when no
		// standby runs at all): the engine's events about the primary
		// left that to the supervisor.
		d.trigger.Poke()
	default:
		d.m.failovers.WithLabelValues(c.Name, "error").Inc()
		d.log.Error("failover failed", "cluster", c.Name, "node", acting, "error", ferr.Error())
		if d.holdRecord(c.Name, ferr) == nil {
			d.trigger.Poke()
		}
	}
	d.mu.Lock()
	if st := d.st.Clusters[c.Name]; st != nil && ferr != nil {
		st.Error = "failover: " + ferr.Error()
	}
	d.mu.Unlock()
}

// leadFailover is the leader's check of a cluster with pacsd on every
// host: when no pacsd holds the primary's lease (it expired, or its holder
// gave it up after fencing a lost primary) and the acting primary does not
// answer as a primary, it fails over (reconcile.Failover, whose fence is
// the lease: leaseFenced) under the cluster's lock.
func (d *Daemon) leadFailover(ctx context.Context, c *spec.Cluster, deps reconcile.Deps, ws *watchState, acting string, epoch int64) {
	if ws.w.Node != acting {
		*ws = watchState{w: reconcile.PrimaryWatch{Node: acting}}
	}
	holder, _, err := d.hosted.co.LeaseHolder(ctx, c.Name)
	if err != nil || holder != "" {
		if holder != "" {
			ws.w.DownSince = time.Time{}
		}
		if err != nil {
			d.leaderWaits(c, ws, "the primary's lease cannot be read: "+err.Error())
		}
		return
	}
	// A primary kept running in failsafe, as this pacsd confirmed, is not
	// failed over while the confirmation is recent.
	if d.hosted.heldBack(c.Name, c.Failover.TTL.Duration, c.Failover.Failsafe) {
		return
	}
	// A primary whose host never took its lease in this epoch (the cluster
	// starts, or it was just promoted) has not lost it.
	if node, at, err := d.hosted.co.Leased(ctx, c.Name); err != nil || node != acting || at != epoch {
		if err != nil {
			d.leaderWaits(c, ws, "for which primary the lease was last taken cannot be read: "+err.Error())
		}
		if err == nil && ws.unleased.IsZero() {
			ws.unleased = time.Now()
		}
		if err == nil && time.Since(ws.unleased) > c.Failover.TTL.Duration && !ws.unleasedSaid {
			ws.unleasedSaid = true
			d.log.Warn("the acting primary's host has not taken its lease in this epoch; no failover either: check that pacsd runs on its host and reaches etcd", "cluster", c.Name, "node", acting, "epoch", epoch, "since", ws.unleased.Format(time.RFC3339))
		}
		return
	}
	ws.unleased, ws.unleasedSaid = time.Time{}, false
	now := time.Now()
	if ws.w.DownSince.IsZero() {
		ws.w.DownSince = now
		d.log.Warn("no pacsd holds the primary's lease", "cluster", c.Name, "node", acting)
	}
	if now.Before(ws.w.RetryAfter) {
		return
	}
	unlock, err := d.tryLockErr(c.Name)
	if err != nil {
		d.leaderWaits(c, ws, "the cluster's lock cannot be taken: "+err.Error())
		return
	}
	defer unlock()
	last, err := deps.Store.LoadSeen(c.Name)
	if err != nil || last.Node != acting || time.Since(last.At) >= seenFresh {
		last = reconcile.LastSeen{}
	}
	began := time.Now()
	var to string
	var ferr error
	if d.paused(c.Name) {
		ferr = pausedFailover(c.Name)
	} else if ferr = d.recordHeld(c.Name); ferr == nil {
		d.log.Info("failing over: the primary's lease is gone", "cluster", c.Name, "node", acting, "lost_for", time.Since(ws.w.DownSince).Round(time.Millisecond).String())
		to, ferr = reconcile.Failover(ctx, c, deps, last, d.log)
	}
	took := time.Since(began)
	lostFor := time.Since(ws.w.DownSince).Round(time.Millisecond).String()
	if ferr == nil || errors.Is(ferr, reconcile.ErrActingChanged) {
		*ws = watchState{}
	} else {
		// Tried again soon: a standby that could not be checked (its
		// host's etcd session renewed late) answers a moment later.
		ws.w.RetryAfter = time.Now().Add(min(reconcile.FailoverRetry, renewEvery(c.Failover.TTL.Duration)))
	}
	d.failedOver(ctx, c, c.Node(acting), acting, to, lostFor, took, ferr, deps)
}

// leaderWaits says, once for each reason and only once the lease has been
// gone for the lease's TTL, why the leader has not failed over yet.
func (d *Daemon) leaderWaits(c *spec.Cluster, ws *watchState, why string) {
	if ws.w.DownSince.IsZero() || time.Since(ws.w.DownSince) < c.Failover.TTL.Duration || ws.waitSaid == why {
		return
	}
	ws.waitSaid = why
	d.log.Warn("the leader does not fail over yet", "cluster", c.Name, "node", ws.w.Node, "lost_for", time.Since(ws.w.DownSince).Round(time.Millisecond).String(), "reason", why)
}

// verdict carries out what the watch decided after a check, short of a
// failover: keep the sight of a healthy primary, and say when a primary is
// lost and when it answers again.
func (d *Daemon) verdict(c *spec.Cluster, ws *watchState, v reconcile.Verdict, prev reconcile.LastSeen, deps reconcile.Deps, lost error) {
	d.lost.Store(c.Name, !ws.w.DownSince.IsZero())
	switch v {
	case reconcile.Healthy:
		d.keepSeen(c.Name, deps, ws, prev)
		d.primaryHealthy(c.Name, ws.w.Last)
	case reconcile.Recovered:
		d.log.Info("primary reachable again", "cluster", c.Name, "node", ws.w.Node)
		d.keepSeen(c.Name, deps, ws, prev)
		d.primaryHealthy(c.Name, ws.w.Last)
	case reconcile.LostNow:
		d.log.Warn("primary lost", "cluster", c.Name, "node", ws.w.Node, "error", lost.Error(), "failover_after", c.Failover.After.String(),
			"down_for", time.Since(ws.w.DownSince).Round(time.Millisecond).String())
	}
}
