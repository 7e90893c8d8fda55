package daemon

import (
	"context"
	"errors"
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

// failoverRetry is how long the supervisor waits after a refused or failed
// failover before it tries again.
const failoverRetry = 5 * time.Second

// snapshot is the spec and adapters in force, as the loop last took them.
type snapshot struct {
	file *spec.File
	deps reconcile.Deps
	// shared is the cluster lock shared with other pacsd processes (nil: none).
	shared func(ctx context.Context, cluster string) (func(), error)
}

// sharedLock returns the cluster lock shared with other processes, if any.
func (d *Daemon) sharedLock() func(ctx context.Context, cluster string) (func(), error) {
	if s := d.snap.Load(); s != nil {
		return s.shared
	}
	return nil
}

// lock takes the cluster's lock, which a pass holds while it acts (not while
// it observes) and the supervisor while it checks and fails over: the
// in-process mutex, then the lock shared with other pacsd processes (a
// switchover or apply on the command line). It returns the release.
func (d *Daemon) lock(ctx context.Context, cluster string) (func(), error) {
	return d.take(ctx, cluster, false)
}

// tryLock takes the cluster's lock when it is free at once.
func (d *Daemon) tryLock(cluster string) (func(), bool) {
	now, cancel := context.WithCancel(context.Background())
	cancel() // one try of the shared lock
	unlock, err := d.take(now, cluster, true)
	return unlock, err == nil
}

// errBusy says that tryLock found the in-process mutex taken.
var errBusy = errors.New("the cluster's lock is taken")

// take takes the in-process mutex (at once or not at all when try is set),
// then the shared lock, waiting until ctx is done.
func (d *Daemon) take(ctx context.Context, cluster string, try bool) (func(), error) {
	mu := d.mutex(cluster)
	if !try {
		mu.Lock()
	} else if !mu.TryLock() {
		return nil, errBusy
	}
	shared := d.sharedLock()
	if shared == nil {
		return mu.Unlock, nil
	}
	unlock, err := shared(ctx, cluster)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { unlock(); mu.Unlock() }, nil
}

func (d *Daemon) mutex(cluster string) *sync.Mutex {
	m, _ := d.locks.LoadOrStore(cluster, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// lostBecause says why a health check found the primary lost; nil when it
// answers as a primary.
func lostBecause(h *reconcile.DBState, err error) error {
	if errors.Is(err, reconcile.ErrServerRefused) {
		return nil // it answers: a refused login is drift for a pass to repair, never a failover
	}
	if err == nil && h.InRecovery {
		return errors.New("it is in recovery")
	}
	return err
}

// reachable notes that the primary answers: it is not lost (any more).
func (d *Daemon) reachable(cluster string, ws *watchState) {
	if ws.announced {
		d.log.Info("primary reachable again", "cluster", cluster, "node", ws.node, "down_for", time.Since(ws.downSince).Round(time.Millisecond).String())
	}
	ws.downSince, ws.announced = time.Time{}, false
}

// seenStore keeps the supervisor's last sight of a healthy primary across
// restarts of pacsd (pkg/state implements it).
type seenStore interface {
	LoadSeen(cluster string) (reconcile.LastSeen, error)
	SaveSeen(cluster string, ls reconcile.LastSeen) error
}

// seenFresh is how old a saved sight of the primary may be to be used by a
// pacsd that starts while the primary is lost.
const seenFresh = reconcile.SeenFresh

// seenSaveEvery is how often an unchanged synchronous set is saved again
// with the primary's newer WAL position (an idle primary's, every
// seenFresh/2).
const seenSaveEvery = 5 * time.Second

// keepSeen makes seen the last sight of the primary and saves it when the
// synchronous standbys changed, or when the WAL moved and seenSaveEvery has
// passed (an idle primary's now and then): a pacsd started during an outage
// then knows them (with synchronous replication, failover only promotes one
// of them).
func (d *Daemon) keepSeen(cluster string, deps reconcile.Deps, ws *watchState, seen reconcile.LastSeen) {
	changed := !slices.Equal(ws.last.SyncStandbys, seen.SyncStandbys) || ws.last.Node != seen.Node
	moved := seen.WAL != ws.savedWAL || seen.At.Sub(ws.saved) > seenFresh/2 // an idle primary is saved now and then, so the sight stays fresh
	ws.last = seen
	ss, ok := deps.State.(seenStore)
	if !ok || !changed && (!moved || seen.At.Sub(ws.saved) < seenSaveEvery) {
		return
	}
	if err := ss.SaveSeen(cluster, seen); err != nil {
		d.log.Warn("cannot keep what was seen of the primary; a pacsd started during an outage may refuse to fail over", "cluster", cluster, "error", err.Error())
		return
	}
	ws.saved, ws.savedWAL = seen.At, seen.WAL
}

// watchState is what the supervisor remembers of one cluster.
type watchState struct {
	node       string    // the acting primary all this is about
	saved      time.Time // when last was last saved
	savedWAL   uint64    // and the WAL position saved then
	last       reconcile.LastSeen
	downSince  time.Time // when a check first found it lost, with or without the lock
	announced  bool      // a check under the lock confirmed it lost, and said so
	loadErr    string    // the last error reading the cluster's state, logged once
	retryAfter time.Time
}

// supervise checks, every SuperviseInterval, the acting primary of each
// cluster with failover.automatic whose first pass succeeded. When it has
// been unreachable, stopped, frozen or in recovery for failover.after, it
// fails over (reconcile.Failover: fence, choose, record, promote), then pokes
// a pass to repoint the standbys and rejoin the old primary. A refused
// failover (fence not confirmed, no standby within max_lag) is logged as an
// error with what to do, counted, and tried again later; pacsd never
// promotes against those rules.
func (d *Daemon) supervise(ctx context.Context) {
	// Each cluster is checked on its own goroutine, one check at a time: a
	// failover that takes seconds in one cluster never delays the checks
	// of another.
	type slot struct {
		ws   watchState
		busy atomic.Bool
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
			if !c.Failover.Automatic {
				delete(seen, c.Name)
				continue
			}
			if _, ok := d.ready.Load(c.Name); !ok && !recorded(snap.deps, c.Name) {
				continue // its slot, if any, stays: its timer goes on
			}
			sl := seen[c.Name]
			if sl == nil {
				sl = &slot{}
				seen[c.Name] = sl
			}
			if !sl.busy.CompareAndSwap(false, true) {
				continue // its last check still runs
			}
			running.Add(1)
			go func() {
				defer running.Done()
				defer sl.busy.Store(false)
				d.check(ctx, c, snap.deps, &sl.ws)
			}()
		}
	}
}

// recorded reports whether the cluster's state records an acting primary.
func recorded(deps reconcile.Deps, cluster string) bool {
	if deps.State == nil {
		return false
	}
	st, err := deps.State.Load(cluster)
	return err == nil && st.Acting != ""
}

// check looks at one cluster's acting primary and fails over when it has
// been lost for long enough. The first health check takes no lock; a failed
// one counts only when the cluster's lock is free at once and a second check
// under it fails too, and the failover runs under that lock.
func (d *Daemon) check(ctx context.Context, c *spec.Cluster, deps reconcile.Deps, ws *watchState) {
	acting := c.Primary
	if deps.State != nil {
		st, err := deps.State.Load(c.Name)
		if err != nil {
			// Without the record the acting primary is unknown: after a
			// failover the file's primary is the fenced old one. Nothing
			// is checked, nothing fails over.
			if ws.loadErr != err.Error() {
				ws.loadErr = err.Error()
				d.log.Error("cannot read the cluster's state; automatic failover is suspended until it can be read", "cluster", c.Name, "error", err.Error())
			}
			return
		}
		ws.loadErr = ""
		if st.Acting != "" {
			acting = st.Acting
		}
	}
	n := c.Node(acting)
	if n == nil {
		return
	}
	if ws.node != acting { // a start, a switchover or a failover
		*ws = watchState{node: acting, loadErr: ws.loadErr}
		if ss, ok := deps.State.(seenStore); ok {
			// What a pacsd before this one saw, when recent: an older sight
			// may name standbys that are no longer synchronous.
			ls, err := ss.LoadSeen(c.Name)
			switch {
			case err != nil:
				d.log.Warn("cannot read the last sight of the primary; until the primary is seen healthy, a failover has no position to bound the standbys' lag", "cluster", c.Name, "error", err.Error())
			case ls.Node == acting && time.Since(ls.At) < seenFresh:
				ws.last = ls
			}
		}
	}
	began := time.Now()
	h, err := reconcile.Health(ctx, c, n, deps)
	lost := lostBecause(h, err)
	now := time.Now()
	if took := now.Sub(began); took > time.Second {
		d.log.Warn("slow health check", "cluster", c.Name, "node", acting, "took", took.String())
	}
	if lost == nil {
		if h != nil {
			seen := reconcile.LastSeen{Node: acting, WAL: h.WAL, SyncStandbys: h.SyncStandbys, At: now}
			d.keepSeen(c.Name, deps, ws, seen)
		}
		d.reachable(c.Name, ws)
		return
	}
	// The health check takes no lock, so that what a healthy primary shows
	// (its WAL position, its synchronous standbys) stays fresh, and so that
	// the time a primary has been lost counts while a pass, or another pacsd
	// process, holds the cluster's lock (a restart, a base backup): failover
	// never waits for a pass to end before its timer starts. But what a pass
	// or a switchover does (a restart, a primary stopped to switch over) can
	// look like a lost primary: the primary counts as lost, and the decision
	// is taken, only under the lock, after one more look.
	if ws.downSince.IsZero() {
		ws.downSince = now
	}
	unlock, ok := d.tryLock(c.Name)
	if !ok {
		return
	}
	defer unlock()
	// One more look, now under the lock: what the check above saw may be
	// older than what acted in between (a switchover that promoted its
	// target and let go of the lock, a pass that restarted the primary), and
	// the first call after a partition heals may fail. A primary that
	// answers now is not lost.
	rctx, cancel := context.WithTimeout(ctx, recheckTimeout)
	lost = lostBecause(reconcile.Health(rctx, c, n, deps))
	cancel()
	if lost == nil {
		d.reachable(c.Name, ws)
		return
	}
	now = time.Now()
	if !ws.announced {
		ws.announced = true
		d.log.Warn("primary lost", "cluster", c.Name, "node", acting, "error", lost.Error(), "failover_after", c.Failover.After.String(), "down_for", now.Sub(ws.downSince).Round(time.Millisecond).String())
	}
	if now.Sub(ws.downSince) < c.Failover.After.Duration || now.Before(ws.retryAfter) {
		return
	}
	ws.last.Node, ws.last.LostAt = acting, ws.downSince
	to, ferr := reconcile.Failover(ctx, c, deps, ws.last, d.log)
	switch {
	case errors.Is(ferr, reconcile.ErrActingChanged):
		d.log.Info("failover not needed", "cluster", c.Name, "error", ferr.Error())
		*ws = watchState{}
		return
	case ferr == nil:
		d.m.failovers.WithLabelValues(c.Name, "promoted").Inc()
		d.log.Warn("failover done", "cluster", c.Name, "from", acting, "to", to, "lost_for", time.Since(ws.downSince).Round(time.Millisecond).String())
		ws.downSince, ws.announced, ws.last = time.Time{}, false, reconcile.LastSeen{}
		d.resetBackoff()
		d.trigger.Poke()
	case errors.Is(ferr, reconcile.ErrNotFenced) || errors.Is(ferr, reconcile.ErrNoCandidate):
		d.m.failovers.WithLabelValues(c.Name, "refused").Inc()
		d.log.Error("failover refused", "cluster", c.Name, "node", acting, "error", ferr.Error())
		ws.retryAfter = now.Add(failoverRetry)
	default:
		d.m.failovers.WithLabelValues(c.Name, "error").Inc()
		d.log.Error("failover failed", "cluster", c.Name, "node", acting, "error", ferr.Error())
		ws.retryAfter = now.Add(failoverRetry)
		d.trigger.Poke()
	}
	d.mu.Lock()
	if st := d.st.Clusters[c.Name]; st != nil && ferr != nil {
		st.Error = "failover: " + ferr.Error()
	}
	d.mu.Unlock()
}
