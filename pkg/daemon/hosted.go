package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// Coordination is what the daemon needs of etcd in the mode "every host"
// (daemon.etcd): leadership per cluster, the primary's lease, and the
// reports each host's pacsd keeps of its own nodes. state.Etcd provides it
// (cmd/pacsd wires it).
type Coordination interface {
	// Host is this pacsd's host block.
	Host() string
	// Campaign waits until this pacsd leads cluster (or ctx is done); the
	// channel is closed when it no longer does.
	Campaign(ctx context.Context, cluster string) (lost <-chan struct{}, resign func(), err error)
	// Leader is the host whose pacsd leads cluster ("" none).
	Leader(ctx context.Context, cluster string) (string, error)
	// LeaseHolder is who holds cluster's primary lease (node "" when no one).
	LeaseHolder(ctx context.Context, cluster string) (node, host string, err error)
	// Leased returns the node and epoch for which cluster's primary lease
	// was last taken (node "" when never).
	Leased(ctx context.Context, cluster string) (node string, epoch int64, err error)
	// AcquireLease takes cluster's primary lease for node of this host
	// while the record names it the acting primary (fileprimary when
	// there is no record), for ttl.
	AcquireLease(ctx context.Context, cluster, node, fileprimary string, ttl time.Duration) (PrimaryLease, error)
	// Watch calls changed whenever cluster's record or primary lease
	// changes (and when the watch breaks), until ctx is done.
	Watch(ctx context.Context, cluster string, changed func())
	// PutReport publishes this host's report on a cluster.
	PutReport(ctx context.Context, cluster string, r reconcile.HostReport) error
	// Hosts returns the hosts whose pacsd reports on cluster now.
	Hosts(ctx context.Context, cluster string) (map[string]reconcile.HostReport, error)
	// MoveLeaderOff moves etcd's own leadership off the member at address,
	// when that member leads, to the other member of lowest rank; it
	// returns the member that leads then ("" when nothing was moved).
	MoveLeaderOff(ctx context.Context, address string, rank func(address string) int) (string, error)
}

// PrimaryLease is a primary's lease as its host's pacsd holds it.
type PrimaryLease interface {
	// Renew renews it once; an error wrapping ErrLeaseLost when it
	// no longer exists.
	Renew(ctx context.Context) error
	// Release gives it up at once.
	Release(ctx context.Context) error
}

// ErrLeaseLost is matched by PrimaryLease.Renew's error when the lease no
// longer exists.
var ErrLeaseLost = errors.New("the primary's lease expired")

// hosted is the daemon's side of the mode "every host".
type hosted struct {
	co Coordination

	mu sync.Mutex
	// leases are the primary's leases this pacsd holds, by cluster.
	leases map[string]*heldLease
	// leads holds the clusters this pacsd leads.
	leads map[string]bool
	// gaveUp is, by cluster, the acting primary and epoch this pacsd
	// fenced and whose lease it gave up (or lost): it does not take the
	// lease for it again, so that the leader fails over.
	gaveUp map[string]gaveUp
	// handing is, by cluster, the acting primary and epoch whose lease
	// this pacsd gave up in a switchover under way (see handOver).
	handing map[string]gaveUp
	// refused is the last reason the lease could not be taken, by
	// cluster (said once).
	refused map[string]string
	// seen is the acting primary of each cluster as this pacsd last read
	// the record (what it confirms to a primary's host in failsafe).
	seen map[string]string
	// confirmed is when this pacsd last confirmed, by cluster, that the
	// primary's host may keep its primary without etcd (failsafe): while
	// that is recent, it neither fails over nor takes the lease.
	confirmed map[string]time.Time
	// failsafeSaid is the last failsafe state logged, by cluster.
	failsafeSaid map[string]string
	// started is when this pacsd started.
	started time.Time
	// change has, by cluster, a channel of one that a change of the
	// record or lease in etcd fills (see changed).
	change map[string]chan struct{}
	// etcdChecked is when this pacsd, holding a primary's lease, last
	// checked where etcd's leader runs; etcdMoving is set while it does,
	// etcdSaid is the last failure said.
	etcdChecked time.Time
	etcdMoving  bool
	etcdSaid    string
	// record is, by cluster, the acting primary and epoch that
	// followRecord last read.
	record map[string]gaveUp
}

// changes returns the channel that says that cluster's record or lease
// changed in etcd.
func (h *hosted) changes(cluster string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.change[cluster]
	if ch == nil {
		ch = make(chan struct{}, 1)
		h.change[cluster] = ch
	}
	return ch
}

// changed says that cluster's record or lease changed in etcd: the lease
// is looked at again at once (a failover may have made this host's node
// the primary).
func (h *hosted) changed(cluster string) {
	select {
	case h.changes(cluster) <- struct{}{}:
	default:
	}
}

type gaveUp struct {
	node  string
	epoch int64
}

// heldLease is a primary's lease this pacsd holds.
type heldLease struct {
	lease PrimaryLease
	node  string
	epoch int64
	ttl   time.Duration
	// renewed is when the last renewal that succeeded was sent (etcd
	// cannot let the lease expire before renewed + ttl).
	renewed time.Time
	// renewing is set while a renewal is under way, asking while a
	// failsafe round is; failed when the last renewal failed (the next
	// one is tried at once).
	renewing, asking, failed bool
}

// fenceAt is how long after its last renewal a lease counts as lost to
// its holder, which fences its primary then: half the TTL, so that the
// fence is done long before etcd lets the lease expire.
func fenceAt(ttl time.Duration) time.Duration { return ttl / 2 }

// renewEvery is how often a held lease is renewed.
func renewEvery(ttl time.Duration) time.Duration { return ttl / 5 }

func newHosted(co Coordination) *hosted {
	return &hosted{co: co, leases: map[string]*heldLease{}, leads: map[string]bool{}, gaveUp: map[string]gaveUp{}, handing: map[string]gaveUp{}, record: map[string]gaveUp{}, refused: map[string]string{},
		seen: map[string]string{}, confirmed: map[string]time.Time{}, failsafeSaid: map[string]string{}, change: map[string]chan struct{}{}, started: time.Now()}
}

// mayRunPrimary reports whether this pacsd holds cluster's lease for node,
// renewed recently enough.
func (h *hosted) mayRunPrimary(cluster, node string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.leases[cluster]
	return l != nil && l.node == node && time.Since(l.renewed) < fenceAt(l.ttl)
}

// leaseOf returns the primary's lease of cluster this pacsd holds, nil
// when none.
func (h *hosted) leaseOf(cluster string) *heldLease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leases[cluster]
}

func (h *hosted) leading(cluster string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leads[cluster]
}

// hostedDeps are the adapters of the mode "every host".
func (d *Daemon) hostedDeps(deps reconcile.Deps) reconcile.Deps {
	h := d.hosted
	deps.Hosted = &reconcile.Hosted{
		Host: h.co.Host(),
		MayRunPrimary: func(cluster, node string) bool {
			// Without automatic failover no lease is held: nothing
			// promotes a standby by itself, and a primary cut off from
			// etcd keeps running.
			if c := clusterNamed(d.snap.Load().file, cluster); c != nil && !c.Failover.Automatic {
				return true
			}
			return h.mayRunPrimary(cluster, node)
		},
		Fenced:   d.leaseFenced,
		FenceOwn: d.fenceOwnPrimary,
		Seen: func(c *spec.Cluster, obs *reconcile.Observed) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := h.co.PutReport(ctx, c.Name, reconcile.Report(c, h.co.Host(), obs, time.Now())); err != nil {
				d.log.Warn("cannot report this host's nodes to the other hosts", "cluster", c.Name, "host", h.co.Host(), "error", err.Error())
			}
		},
		FilePrimaries: func(ctx context.Context, cluster string) (map[string]string, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			reps, err := h.co.Hosts(ctx, cluster)
			if err != nil {
				return nil, err
			}
			prim := map[string]string{}
			for host, r := range reps {
				prim[host] = r.Primary
			}
			return prim, nil
		},
		HandOver: d.handOver,
	}
	return deps
}

// handOver gives up cluster's primary lease for node in a switchover (see
// reconcile.Hosted.HandOver): node is stopped, and the record may name the
// target once the lease is gone. The lease is not taken for node again
// until undo. Without automatic failover no lease is held, and nothing is
// given up. When etcd does not confirm the release (within ttl/5), the
// lease is kept as held: renewed, or lost and then fenced as any lease.
func (d *Daemon) handOver(ctx context.Context, cluster, node string) (func(), error) {
	if c := clusterNamed(d.snap.Load().file, cluster); c != nil && !c.Failover.Automatic {
		return func() {}, nil
	}
	h := d.hosted
	h.mu.Lock()
	l := h.leases[cluster]
	h.mu.Unlock()
	if l == nil || l.node != node {
		return nil, fmt.Errorf("this host's pacsd does not hold the primary's lease of cluster %q for node %q", cluster, node)
	}
	mark := gaveUp{node: l.node, epoch: l.epoch}
	h.mu.Lock()
	h.handing[cluster] = mark
	h.mu.Unlock()
	undo := func() {
		h.mu.Lock()
		if h.handing[cluster] == mark {
			delete(h.handing, cluster)
		}
		h.mu.Unlock()
		h.changed(cluster) // taken again at once
	}
	if !d.dropLease(cluster, l) {
		undo()
		return nil, fmt.Errorf("the primary's lease of cluster %q for node %q was lost meanwhile", cluster, node)
	}
	rctx, cancel := context.WithTimeout(ctx, renewEvery(l.ttl))
	err := l.lease.Release(rctx)
	cancel()
	if err != nil {
		h.mu.Lock()
		if h.leases[cluster] == nil {
			h.leases[cluster] = l // renewed on, or lost and fenced, as before
			d.m.lease.WithLabelValues(cluster).Set(1)
		}
		h.mu.Unlock()
		undo()
		return nil, err
	}
	d.log.Info("the primary's lease given up for a switchover", "cluster", cluster, "node", node)
	return undo, nil
}

// runHosted runs, until ctx is done, the work of the mode "every host" for
// each cluster of the spec in force: the campaign to lead it, and the
// primary's lease when its acting primary is on this host.
func (d *Daemon) runHosted(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range running {
			stop()
		}
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		names := map[string]bool{}
		if snap := d.snap.Load(); snap != nil {
			for _, c := range snap.file.Clusters {
				if !slices.Contains(c.Hosts(), d.hosted.co.Host()) {
					continue // no node of it here: this pacsd neither leads it nor holds its lease
				}
				names[c.Name] = true
				if running[c.Name] == nil {
					cctx, stop := context.WithCancel(ctx)
					running[c.Name] = stop
					wg.Add(4)
					go func() { defer wg.Done(); d.campaign(cctx, c.Name) }()
					go func() { defer wg.Done(); d.keepLease(cctx, c.Name) }()
					// Commands asked for on the command line ('pacsd
					// restart', 'reinit', 'failover') for this host.
					go func() { defer wg.Done(); d.serveRequests(cctx, c.Name) }()
					// Another host's failover or lease: a pass follows it
					// at once (repointing this host's standbys).
					go func() {
						defer wg.Done()
						d.hosted.co.Watch(cctx, c.Name, func() {
							d.followRecord(c.Name)
							d.events.Poke()
							d.hosted.changed(c.Name)
						})
					}()
				}
			}
		}
		for name, stop := range running {
			if !names[name] {
				stop()
				delete(running, name)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// campaign keeps this pacsd a candidate to lead cluster: when it leads, it
// alone fails over; when its session ends (cut off from etcd), it no
// longer leads and campaigns again.
func (d *Daemon) campaign(ctx context.Context, cluster string) {
	h := d.hosted
	for ctx.Err() == nil {
		lost, resign, err := h.co.Campaign(ctx, cluster)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Debug("cannot campaign to lead the cluster; trying again", "cluster", cluster, "error", err.Error())
				sleep(ctx, time.Second)
			}
			continue
		}
		h.mu.Lock()
		h.leads[cluster] = true
		h.mu.Unlock()
		d.m.leader.WithLabelValues(cluster).Set(1)
		d.log.Info("this pacsd leads the cluster", "cluster", cluster, "host", h.co.Host())
		select {
		case <-ctx.Done():
		case <-lost:
		}
		h.mu.Lock()
		h.leads[cluster] = false
		h.mu.Unlock()
		d.m.leader.WithLabelValues(cluster).Set(0)
		if ctx.Err() != nil {
			resign()
			return
		}
		d.log.Warn("this pacsd no longer leads the cluster (its etcd session ended)", "cluster", cluster, "host", h.co.Host())
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// leaseTick is how often keepLease looks at its lease.
var leaseTick = 50 * time.Millisecond

// keepLease holds cluster's primary lease while its acting primary is on
// this host: it takes it, renews it every TTL/5, and when it has not been
// renewed for TTL/2 (etcd does not answer, or lost its quorum) fences the
// primary, before etcd can let the lease expire and the leader promote
// another node. The lease is given up when the record names a node of
// another host.
func (d *Daemon) keepLease(ctx context.Context, cluster string) {
	h := d.hosted
	tick := time.NewTicker(leaseTick)
	defer tick.Stop()
	var next time.Time // of the next try to take the lease
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-h.changes(cluster):
			next = time.Time{} // the record changed: this host may be the primary's now
		}
		snap := d.snap.Load()
		c := clusterNamed(snap.file, cluster)
		if c == nil {
			continue
		}
		if !c.Failover.Automatic {
			// No lease without automatic failover (see hostedDeps).
			h.mu.Lock()
			l := h.leases[cluster]
			h.mu.Unlock()
			if l != nil && d.dropLease(cluster, l) {
				rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_ = l.lease.Release(rctx)
				cancel()
			}
			continue
		}
		h.mu.Lock()
		l := h.leases[cluster]
		h.mu.Unlock()
		if l != nil {
			d.renewLease(ctx, c, l)
			d.etcdLeaderOff(ctx)
			continue
		}
		if time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(renewEvery(c.Failover.TTL.Duration))
		d.takeLease(ctx, c, snap)
	}
}

// takeLease takes cluster c's primary lease when the record names a node of
// this host as the acting primary, and this pacsd has not fenced it.
func (d *Daemon) takeLease(ctx context.Context, c *spec.Cluster, snap *snapshot) {
	h := d.hosted
	st, err := snap.shared.Load(c.Name)
	if err != nil {
		return
	}
	acting, err := reconcile.ActingPrimary(c, st, nil)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.seen[c.Name] = acting
	h.mu.Unlock()
	n := c.Node(acting)
	if n == nil || n.Host != h.co.Host() {
		return
	}
	if h.heldBack(c.Name, c.Failover.TTL.Duration, c.Failover.Failsafe) {
		return // another host's primary runs in failsafe
	}
	h.mu.Lock()
	g, ho := h.gaveUp[c.Name], h.handing[c.Name]
	h.mu.Unlock()
	if g.node == acting && g.epoch == st.Epoch {
		return // fenced by this pacsd: the leader fails over
	}
	if ho.node == acting && ho.epoch == st.Epoch {
		return // handed over in a switchover under way
	}
	sent := time.Now()
	lctx, cancel := context.WithTimeout(ctx, renewEvery(c.Failover.TTL.Duration)+time.Second)
	lease, err := h.co.AcquireLease(lctx, c.Name, acting, c.Primary, c.Failover.TTL.Duration)
	cancel()
	if err != nil {
		h.mu.Lock()
		news := h.refused[c.Name] != err.Error()
		h.refused[c.Name] = err.Error()
		h.mu.Unlock()
		level := slog.LevelDebug
		if news {
			level = slog.LevelWarn
		}
		d.log.Log(ctx, level, "cannot take the primary's lease; this host's primary is not started until it can", "cluster", c.Name, "node", acting, "error", err.Error())
		return
	}
	h.mu.Lock()
	delete(h.refused, c.Name)
	h.mu.Unlock()
	h.mu.Lock()
	h.leases[c.Name] = &heldLease{lease: lease, node: acting, epoch: st.Epoch, ttl: c.Failover.TTL.Duration, renewed: sent}
	h.etcdChecked = time.Time{} // where etcd's leader runs, looked at at once
	h.mu.Unlock()
	d.m.lease.WithLabelValues(c.Name).Set(1)
	d.log.Info("this pacsd holds the primary's lease", "cluster", c.Name, "node", acting, "ttl", c.Failover.TTL.String())
	d.trigger.Poke() // a primary held back for the lease may start now
}

// renewLease renews l when it is due (on its own goroutine: a renewal that
// hangs never delays the fence), gives it up when the record names another
// primary, and fences the primary when l was not renewed for TTL/2.
func (d *Daemon) renewLease(ctx context.Context, c *spec.Cluster, l *heldLease) {
	h := d.hosted
	h.mu.Lock()
	since := time.Since(l.renewed)
	due := !l.renewing && (since >= renewEvery(l.ttl) || l.failed)
	if due {
		l.renewing = true
	}
	h.mu.Unlock()
	if since >= fenceAt(l.ttl) {
		d.loseLease(ctx, c, l, fmt.Sprintf("its lease in etcd was not renewed for %s (etcd does not answer from this host, or has no quorum)", since.Round(time.Millisecond)))
		return
	}
	if c.Failover.Failsafe && since >= renewEvery(l.ttl)*3/2 {
		h.mu.Lock()
		ask := !l.asking
		l.asking = true
		h.mu.Unlock()
		if ask {
			go d.failsafeRound(ctx, c, l)
		}
	}
	if !due {
		return
	}
	go func() {
		sent := time.Now()
		// A try that hangs (an etcd election, a member that went away) is
		// cut short and made again at once, several times before ttl/2.
		rctx, cancel := context.WithTimeout(ctx, l.ttl/10)
		err := l.lease.Renew(rctx)
		cancel()
		h.mu.Lock()
		l.failed = err != nil
		if err == nil {
			l.renewed = sent
		}
		h.mu.Unlock()
		// No other renewal starts until this one's outcome is handled (a
		// second retake would lose the race to this one, and fence).
		defer func() {
			h.mu.Lock()
			l.renewing = false
			h.mu.Unlock()
		}()
		switch {
		case errors.Is(err, ErrLeaseLost) && c.Failover.Failsafe && d.retake(ctx, c, l):
		case errors.Is(err, ErrLeaseLost):
			d.loseLease(ctx, c, l, "its lease in etcd expired")
		case err != nil:
			d.log.Warn("cannot renew the primary's lease", "cluster", c.Name, "node", l.node, "error", err.Error())
		default:
			d.checkLeaseNode(ctx, c, l)
		}
	}()
}

// checkLeaseNode gives l up when the record no longer names its node.
func (d *Daemon) checkLeaseNode(ctx context.Context, c *spec.Cluster, l *heldLease) {
	st, err := d.snap.Load().shared.Load(c.Name)
	if err != nil {
		return
	}
	if acting, err := reconcile.ActingPrimary(c, st, nil); err == nil {
		d.hosted.mu.Lock()
		d.hosted.seen[c.Name] = acting
		d.hosted.mu.Unlock()
	}
	if acting, err := reconcile.ActingPrimary(c, st, nil); err == nil && acting != l.node {
		d.dropLease(c.Name, l)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = l.lease.Release(rctx)
		cancel()
		d.log.Info("the primary's lease given up: the record names another acting primary", "cluster", c.Name, "node", l.node, "acting", acting)
	}
}

// dropLease forgets l, when it is still the cluster's lease; false when
// another goroutine dropped it first.
func (d *Daemon) dropLease(cluster string, l *heldLease) bool {
	h := d.hosted
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.leases[cluster] != l {
		return false
	}
	delete(h.leases, cluster)
	d.m.lease.WithLabelValues(cluster).Set(0)
	return true
}

// loseLease fences the primary whose lease l was lost, and does not take
// the lease for it again (the leader fails over).
func (d *Daemon) loseLease(ctx context.Context, c *spec.Cluster, l *heldLease, why string) {
	if !d.dropLease(c.Name, l) {
		return
	}
	d.hosted.mu.Lock()
	d.hosted.gaveUp[c.Name] = gaveUp{node: l.node, epoch: l.epoch}
	d.hosted.mu.Unlock()
	d.log.Error("fencing this host's primary: the primary's lease is lost", "cluster", c.Name, "node", l.node, "reason", why)
	// Tried again until confirmed: nothing else stops it.
	for ctx.Err() == nil && d.fenceOwn(ctx, c, l.node, l.ttl) != nil {
		sleep(ctx, 200*time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, renewEvery(l.ttl))
	_ = l.lease.Release(rctx) // fenced: the failover need not wait for the expiry
	cancel()
}

// fenceOwn fences node, of this host, through the local engine; the stop
// may take ttl/10 before the container is killed.
func (d *Daemon) fenceOwn(ctx context.Context, c *spec.Cluster, node string, ttl time.Duration) error {
	n := c.Node(node)
	rt := d.deps.Runtimes[d.hosted.co.Host()]
	if n == nil || rt == nil {
		d.log.Error("cannot fence this host's primary: no engine for it", "cluster", c.Name, "node", node)
		return fmt.Errorf("cluster %q: no engine for node %q on this host", c.Name, node)
	}
	began := time.Now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ttl/2)
	err := reconcile.FenceNode(fctx, rt, c, n, ttl/10)
	cancel()
	e := reconcile.Event{At: began, Cluster: c.Name, Node: node, Kind: "fence", Target: n.Container,
		Reason: "this host's primary lost its lease, or was lost", Result: "ok", Duration: time.Since(began).Round(time.Millisecond).String()}
	if err != nil {
		e.Result = "failed: " + err.Error()
	}
	d.record(e)
	if err != nil {
		d.log.Error("fencing this host's primary failed; it may still take writes: stop it by hand ('docker stop "+n.Container+"')", "cluster", c.Name, "node", node, "error", err.Error())
		return err
	}
	d.m.fences.WithLabelValues(c.Name).Inc()
	d.log.Warn("this host's primary is fenced", "cluster", c.Name, "node", node, "took", time.Since(began).Round(time.Millisecond).String())
	return nil
}

// giveUpPrimary is the holder's failover: its primary has been lost for
// failover.after; it fences it and gives the lease up, so that the leader
// promotes a standby.
func (d *Daemon) giveUpPrimary(ctx context.Context, c *spec.Cluster, node string) {
	h := d.hosted
	h.mu.Lock()
	l := h.leases[c.Name]
	h.mu.Unlock()
	if l == nil || l.node != node {
		return
	}
	// A fence that fails keeps the lease: no standby is promoted beside a
	// primary that may still take writes; the next check tries again.
	if err := d.fenceOwnPrimary(ctx, c, node); err != nil {
		if d.hosted.leaseOf(c.Name) == nil {
			d.log.Warn("cannot give up the primary's lease; the leader fails over once it expires", "cluster", c.Name, "node", node, "error", err.Error())
		}
		return
	}
	d.log.Warn("the lost primary is fenced and its lease given up; the leader fails over", "cluster", c.Name, "node", node)
}

// leaseFenced is the failover's fence in the mode "every host" (see
// reconcile.Hosted.Fenced): the old primary's lease is gone, so its host's
// pacsd fenced it or can no longer renew (and fenced it before the lease
// expired), and it does not answer as a primary over SQL (its pacsd may be
// gone while it runs).
func (d *Daemon) leaseFenced(ctx context.Context, c *spec.Cluster, node string) error {
	holder, host, err := d.hosted.co.LeaseHolder(ctx, c.Name)
	if err != nil {
		return fmt.Errorf("%w: %v", reconcile.ErrNotFenced, err)
	}
	if holder != "" {
		return fmt.Errorf("%w: the pacsd of host %q holds the primary's lease (for node %q)", reconcile.ErrNotFenced, host, holder)
	}
	if why := d.answersAsPrimary(ctx, c, node); why != "" {
		return fmt.Errorf("%w: its lease has expired but %s: the pacsd of its host is not running; start it ('systemctl start pacsd' there) or stop the container by hand", reconcile.ErrNotFenced, why)
	}
	return nil
}

// answerTimeout bounds the failover's question to the old primary (see
// answersAsPrimary): a server that runs answers on a local network in
// milliseconds.
var answerTimeout = 500 * time.Millisecond

// answersAsPrimary asks node over SQL, at its host's address, whether it
// takes writes; it says how when it does (or when it answers but refuses
// the login, or takes it and does not say its role: a server that answers
// may be a primary), "" when it cannot be reached within answerTimeout or is a
// standby.
func (d *Daemon) answersAsPrimary(ctx context.Context, c *spec.Cluster, node string) string {
	n := c.Node(node)
	addr := ""
	if n != nil {
		addr = reconcile.HostAddr(n)
	}
	if addr == "" {
		return "it publishes no port at its host's address, so whether it still takes writes cannot be asked"
	}
	hctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	conn, err := d.deps.Connect(hctx, c, n, addr)
	if errors.Is(err, reconcile.ErrServerRefused) {
		return fmt.Sprintf("its server at %s answers (and refuses the login)", addr)
	}
	if errors.Is(err, reconcile.ErrCannotVerify) {
		return fmt.Sprintf("pacsd cannot tell whether its server at %s answers (%v)", addr, err)
	}
	if err != nil {
		return ""
	}
	defer conn.Close()
	h, err := conn.Health(hctx)
	switch {
	case err != nil:
		return fmt.Sprintf("its server at %s takes the login but its role could not be read (%v)", addr, err)
	case h.InRecovery:
		return ""
	}
	return fmt.Sprintf("its server at %s answers as a primary", addr)
}

// clusterNamed returns f's cluster name, nil when there is none.
func clusterNamed(f *spec.File, name string) *spec.Cluster {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// CoordinationStatus is a cluster's state in etcd, with pacsd on every host
// (ClusterStatus.Coordination), as this pacsd reads it when asked.
type CoordinationStatus struct {
	// Host is this pacsd's host.
	Host string `json:"host"`
	// Leader is the host whose pacsd leads the cluster ("" none).
	Leader string `json:"leader"`
	// Lease is who holds the primary's lease; nil when no pacsd does.
	Lease *LeaseStatus `json:"lease"`
	// Hosts are the hosts whose pacsd reports on the cluster (it runs and
	// reaches etcd), with what it last saw of its nodes.
	Hosts map[string]HostStatus `json:"hosts"`
	// Error says what could not be read from etcd.
	Error string `json:"error,omitempty"`
}

// LeaseStatus is the holder of a primary's lease.
type LeaseStatus struct {
	Node string `json:"node"`
	Host string `json:"host"`
}

// HostStatus is what a host's pacsd last reported.
type HostStatus struct {
	ReportedAt time.Time `json:"reported_at"`
	// Nodes maps the host's nodes to their state: primary, standby
	// (streaming or not), stopped, no container, not answering.
	Nodes map[string]string `json:"nodes"`
}

// coordinationStatus reads cluster's leader, lease and host reports.
func (d *Daemon) coordinationStatus(ctx context.Context, cluster string) *CoordinationStatus {
	co := d.hosted.co
	cs := &CoordinationStatus{Host: co.Host(), Hosts: map[string]HostStatus{}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var errs []error
	var err error
	if cs.Leader, err = co.Leader(ctx, cluster); err != nil {
		errs = append(errs, err)
	}
	if node, host, err := co.LeaseHolder(ctx, cluster); err != nil {
		errs = append(errs, err)
	} else if node != "" {
		cs.Lease = &LeaseStatus{Node: node, Host: host}
	}
	reps, err := co.Hosts(ctx, cluster)
	if err != nil {
		errs = append(errs, err)
	}
	for host, r := range reps {
		hs := HostStatus{ReportedAt: r.At, Nodes: map[string]string{}}
		for name, n := range r.Nodes {
			hs.Nodes[name] = nodeSummary(n)
		}
		cs.Hosts[host] = hs
	}
	if len(errs) > 0 {
		cs.Error = errors.Join(errs...).Error()
	}
	return cs
}

// nodeSummary says in a few words what a report shows of a node.
func nodeSummary(n reconcile.NodeReport) string {
	switch {
	case n.Container == nil:
		return "no container"
	case !n.Container.Running:
		return "stopped"
	case n.Health == nil:
		return "not answering"
	case !n.Health.InRecovery:
		return "primary"
	case n.Health.Receiver == "streaming":
		return "standby, streaming"
	default:
		return "standby, not streaming"
	}
}

// retake takes the lease of l's node again after etcd let it expire while
// the other hosts' pacsd confirmed the primary (failsafe), within the time
// those confirmations keep it; it reports whether it did.
func (d *Daemon) retake(ctx context.Context, c *spec.Cluster, l *heldLease) bool {
	h := d.hosted
	h.mu.Lock()
	// A lease given up meanwhile (handed over in a switchover, dropped
	// when the record named another primary) is not taken again.
	fresh := h.leases[c.Name] == l && time.Since(l.renewed) < fenceAt(l.ttl)
	h.mu.Unlock()
	if !fresh {
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, renewEvery(l.ttl))
	lease, err := h.co.AcquireLease(lctx, c.Name, l.node, c.Primary, l.ttl)
	cancel()
	if err != nil {
		d.log.Warn("the primary's lease expired while etcd could not be reached, and cannot be taken again", "cluster", c.Name, "node", l.node, "error", err.Error())
		return false
	}
	h.mu.Lock()
	l.lease, l.renewed = lease, time.Now()
	h.mu.Unlock()
	d.log.Info("the primary's lease taken again after failsafe", "cluster", c.Name, "node", l.node)
	return true
}

// FailsafeRequest is what the pacsd of a primary's host asks the pacsd of
// every other host while etcd cannot be reached (failover.failsafe).
type FailsafeRequest struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Host    string `json:"host"`
}

// FailsafeAnswer is a pacsd's answer to a FailsafeRequest.
type FailsafeAnswer struct {
	Host string `json:"host"`
	OK   bool   `json:"ok"`
	Why  string `json:"why,omitempty"`
}

// failsafeRound asks the pacsd of every other host of c whether it sees
// l's node as the acting primary and holds no lease of its own; when every
// one confirms, the round counts as a renewal of l (the primary keeps
// running while etcd cannot be reached). One host silent or refusing, and
// the lease runs out: the primary is fenced at TTL/2.
func (d *Daemon) failsafeRound(ctx context.Context, c *spec.Cluster, l *heldLease) {
	h := d.hosted
	defer func() {
		h.mu.Lock()
		l.asking = false
		h.mu.Unlock()
	}()
	sent := time.Now()
	f := d.snap.Load().file
	_, port, err := net.SplitHostPort(f.Daemon.Listen)
	if err != nil {
		return
	}
	body, _ := json.Marshal(FailsafeRequest{Cluster: c.Name, Node: l.node, Host: h.co.Host()})
	cl := d.security.Load().client
	// Every other host of the cluster at once: the round must end well
	// within the ttl/5 between renewals.
	var refused []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range c.Hosts() {
		if name == h.co.Host() {
			continue
		}
		var addr string
		for _, hb := range f.Hosts {
			if hb.Name == name {
				addr = hb.Address
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if why := askFailsafe(ctx, cl, net.JoinHostPort(addr, port), body, renewEvery(l.ttl)); why != "" {
				mu.Lock()
				refused = append(refused, fmt.Sprintf("host %q: %s", name, why))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(refused)
	state := "confirmed"
	if len(refused) > 0 {
		state = "refused: " + strings.Join(refused, "; ")
	}
	h.mu.Lock()
	if len(refused) == 0 && h.leases[c.Name] == l && sent.After(l.renewed) {
		l.renewed = sent
	}
	said := h.failsafeSaid[c.Name]
	h.failsafeSaid[c.Name] = state
	h.mu.Unlock()
	switch {
	case state == said:
	case len(refused) == 0:
		d.log.Warn("etcd cannot be renewed from this host; the primary keeps running: the pacsd of every other host confirms it (failsafe)", "cluster", c.Name, "node", l.node)
	default:
		d.log.Error("etcd cannot be renewed from this host, and failsafe is not confirmed; the primary is fenced when its lease runs out", "cluster", c.Name, "node", l.node, "reason", strings.Join(refused, "; "))
	}
}

// askFailsafe posts body to the pacsd at addr with cl (the pacsd of every
// host share the file's daemon.tls and daemon.token_file, so one host's
// credentials are every other's); "" when it confirms.
func askFailsafe(ctx context.Context, cl *Client, addr string, body []byte, timeout time.Duration) string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.URL(addr, "/failsafe"), bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return "its pacsd does not answer (" + err.Error() + ")"
	}
	defer resp.Body.Close()
	var a FailsafeAnswer
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Sprintf("its pacsd refused this pacsd's credentials (%s): every host's file must have the same daemon.token_file content, or daemon.tls.client_ca must have signed daemon.tls.cert", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a); err != nil {
		return fmt.Sprintf("its pacsd answered %s, not a failsafe answer", resp.Status)
	}
	if !a.OK {
		return a.Why
	}
	return ""
}

// failsafeAnswer answers a FailsafeRequest: it confirms when this pacsd,
// too, sees the node as the acting primary and holds no lease for the
// cluster; then it neither fails over nor takes the lease while the
// confirmation is recent (failover.ttl).
func (d *Daemon) failsafeAnswer(r FailsafeRequest, from string) FailsafeAnswer {
	h := d.hosted
	a := FailsafeAnswer{Host: h.co.Host()}
	f := d.snap.Load().file
	c := clusterNamed(f, r.Cluster)
	switch {
	case c == nil:
		a.Why = fmt.Sprintf("this pacsd's file has no cluster %q", r.Cluster)
		return a
	case !c.Failover.Failsafe:
		a.Why = fmt.Sprintf("failover.failsafe is off for cluster %q in this pacsd's file", r.Cluster)
		return a
	case c.Node(r.Node) == nil || c.Node(r.Node).Host != r.Host:
		a.Why = fmt.Sprintf("node %q of cluster %q does not run on host %q", r.Node, r.Cluster, r.Host)
		return a
	case !fromHost(f, r.Host, from):
		// Only the primary's own host may vouch for it.
		a.Why = fmt.Sprintf("the request comes from %s, not from host %q's address", from, r.Host)
		return a
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch seen := h.seen[r.Cluster]; {
	case h.leases[r.Cluster] != nil:
		a.Why = fmt.Sprintf("this pacsd holds the primary's lease of cluster %q (for %q)", r.Cluster, h.leases[r.Cluster].node)
	case seen != r.Node:
		a.Why = fmt.Sprintf("this pacsd last read %q as the acting primary of cluster %q, not %q", seen, r.Cluster, r.Node)
	default:
		a.OK = true
		h.confirmed[r.Cluster] = time.Now()
	}
	return a
}

// heldBack reports whether this pacsd confirmed failsafe for cluster within
// ttl: it then neither fails over nor takes the lease.
func (h *hosted) heldBack(cluster string, ttl time.Duration, failsafe bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if failsafe && time.Since(h.started) < ttl {
		return true // what this pacsd confirmed before it started again is not known
	}
	at, ok := h.confirmed[cluster]
	return ok && time.Since(at) < ttl
}

// fromHost reports whether remote ("ip:port") is the address of host's
// block in f.
func fromHost(f *spec.File, host, remote string) bool {
	ip, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	want, got := net.ParseIP(hostAddress(f, host)), net.ParseIP(ip)
	return want != nil && got != nil && want.Equal(got)
}

// etcdLeaderEvery is how often the pacsd holding a primary's lease checks
// that etcd's leader runs on another host.
var etcdLeaderEvery = 10 * time.Second

// etcdLeaderOff keeps etcd's leader off this host while this pacsd holds
// a primary's lease (at once after taking one, then every
// etcdLeaderEvery, on its own goroutine): when etcd's leader is lost with
// the primary's host, etcd elects another and extends every lease by its
// TTL, so that the failover comes an election and a TTL after the loss
// instead of a TTL. The new leader is a member on no host of the file (a
// witness) if there is one, else one on a host that runs no acting
// primary (see etcdRank). A host whose address is no member's changes
// nothing.
func (d *Daemon) etcdLeaderOff(ctx context.Context) {
	h := d.hosted
	snap := d.snap.Load()
	addr := hostAddress(snap.file, h.co.Host())
	h.mu.Lock()
	// Not during a switchover's hand-over: a transfer pauses etcd's
	// writes for a moment.
	due := addr != "" && !h.etcdMoving && len(h.handing) == 0 && time.Since(h.etcdChecked) >= etcdLeaderEvery
	if due {
		h.etcdMoving, h.etcdChecked = true, time.Now()
	}
	rank := etcdRank(snap.file, h.seen)
	h.mu.Unlock()
	if !due {
		return
	}
	go func() {
		to, err := h.co.MoveLeaderOff(ctx, addr, rank)
		h.mu.Lock()
		h.etcdMoving = false
		said := ""
		if err != nil {
			said = err.Error()
		}
		news := said != h.etcdSaid
		h.etcdSaid = said
		h.mu.Unlock()
		switch {
		case err != nil && news:
			d.log.Warn("cannot move etcd's leadership off the primary's host; losing this host would cost etcd an election before the failover", "host", h.co.Host(), "error", err.Error())
		case to != "":
			d.log.Info("etcd's leadership moved off the primary's host", "host", h.co.Host(), "to", to)
		}
	}()
}

// etcdRank ranks the address of an etcd member as etcd's leader: 0 on no
// host of the file (a witness), 1 on a host that runs no acting primary
// as last seen (acting, by cluster), 2 on one that does. It has no side
// effects; acting is copied.
func etcdRank(f *spec.File, acting map[string]string) func(string) int {
	hosts := map[string]bool{}
	for _, h := range f.Hosts {
		hosts[h.Address] = true
	}
	primaries := map[string]bool{}
	for _, c := range f.Clusters {
		if n := c.Node(acting[c.Name]); n != nil {
			primaries[n.Address] = true
		}
	}
	return func(address string) int {
		switch {
		case primaries[address]:
			return 2
		case hosts[address]:
			return 1
		}
		return 0
	}
}

// hostAddress is the address of host block name ("" when none).
func hostAddress(f *spec.File, name string) string {
	for _, h := range f.Hosts {
		if h.Name == name {
			return h.Address
		}
	}
	return ""
}

// followRecord reads cluster's record after a change in etcd; when its
// acting primary or epoch changed (a failover or a switchover), the
// cluster's backoff ends: a pass that failed while it was under way (the
// old primary stopped, the new one not promoted yet) succeeds now, and
// this host's standbys follow the new primary at once. Other changes (a
// round counted, a lease renewed or taken) leave the backoff as it is.
func (d *Daemon) followRecord(cluster string) {
	st, err := d.snap.Load().shared.Load(cluster)
	if err != nil {
		return
	}
	now := gaveUp{node: st.Acting, epoch: st.Epoch}
	h := d.hosted
	h.mu.Lock()
	prev, known := h.record[cluster]
	h.record[cluster] = now
	h.mu.Unlock()
	if known && prev != now {
		d.retryNow(cluster)
	}
}
