package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// LastSeen is what the failover supervisor last saw of a healthy primary.
type LastSeen struct {
	// Node is the acting primary that was seen (and found lost); Failover
	// does nothing when another node acts by the time it holds the lock.
	Node string
	// WAL is the primary's WAL position at its last healthy check (0 unknown).
	WAL uint64
	// SyncStandbys are the standbys the primary waited for then.
	SyncStandbys []string
	// At is when that was.
	At time.Time
}

// ErrNotFenced is returned (wrapped) when the old primary cannot be confirmed
// stopped: pacsd then never promotes.
var ErrNotFenced = errors.New("the old primary cannot be confirmed stopped")

// ErrActingChanged is returned (wrapped) when the acting primary is no
// longer the node that was found lost.
var ErrActingChanged = errors.New("the acting primary changed")

// ErrNoCandidate is returned (wrapped) when no standby may be promoted.
var ErrNoCandidate = errors.New("no standby qualifies for promotion")

// FailoverTimeout bounds each step of a failover that talks to a server.
var FailoverTimeout = 2 * time.Second

// Failover replaces a lost acting primary: it fences it through its engine
// (stopped or killed, and confirmed), chooses the standby that has received
// the most WAL among those within failover.max_lag of what the primary last
// wrote (and, with synchronous replication, among its synchronous standbys),
// records it as the acting primary, and promotes it. It returns the promoted
// node. It never promotes when the fence is not confirmed or no standby
// qualifies; the error says why and what an operator can do. The rest
// (repointing standbys, the old primary's rejoin) is the next Apply's work.
func Failover(ctx context.Context, c *spec.Cluster, d Deps, last LastSeen, log *slog.Logger) (string, error) {
	var st ClusterState
	if d.State != nil {
		var err error
		if st, err = d.State.Load(c.Name); err != nil {
			return "", err
		}
	}
	old := st.Acting
	if old == "" {
		old = c.Primary
	}
	if last.Node != "" && last.Node != old {
		return "", fmt.Errorf("cluster %q: %w: %q was found lost, but %q acts as primary now (a switchover or failover happened meanwhile); nothing was done", c.Name, ErrActingChanged, last.Node, old)
	}
	on := c.Node(old)
	if on == nil {
		return "", fmt.Errorf("cluster %q: the acting primary %q is not declared", c.Name, old)
	}
	rt, err := d.runtime(c, on.Host)
	if err != nil {
		return "", err
	}
	// 1. Fence: stop it (a frozen one is killed) and confirm through the engine.
	fctx, cancel := context.WithTimeout(ctx, 3*FailoverTimeout+FenceTimeout)
	ct, err := rt.ContainerInspect(fctx, on.Container, c.Name, on.Name)
	if err == nil && ct != nil && (ct.Running || ct.Paused) {
		err = rt.ContainerStop(fctx, ct.ID, time.Second)
		if err == nil {
			ct, err = rt.ContainerInspect(fctx, on.Container, c.Name, on.Name)
		}
	}
	cancel()
	if err != nil {
		return "", fmt.Errorf("cluster %q, node %q: %w (%v); pacsd does not promote a standby while the old primary might still accept writes: make sure it is stopped (power off its host, or stop its container), then run 'pacsd switchover NODE'", c.Name, old, ErrNotFenced, err)
	}
	if ct != nil && ct.Running {
		return "", fmt.Errorf("cluster %q, node %q: %w: its container still runs after a stop; stop it by hand, then run 'pacsd switchover NODE'", c.Name, old, ErrNotFenced)
	}
	log.Warn("old primary fenced", "cluster", c.Name, "node", old)

	// 2. Choose: the most WAL received, within max_lag, synchronous if asked.
	type candidate struct {
		node     *spec.Node
		received uint64
	}
	var cands []candidate
	var refused []string
	for _, n := range c.Nodes {
		if n.Name == old {
			continue
		}
		h, err := Health(ctx, c, n, d)
		switch {
		case err != nil:
			refused = append(refused, fmt.Sprintf("%s: %v", n.Name, err))
			continue
		case !h.InRecovery:
			refused = append(refused, n.Name+": it is not in recovery (not a standby)")
			continue
		case c.Replication.Synchronous && !slices.Contains(last.SyncStandbys, n.Name):
			refused = append(refused, n.Name+": it was not a synchronous standby")
			continue
		}
		got := max(h.ReceivedWAL, h.WAL)
		if last.WAL > got && last.WAL-got > uint64(c.Failover.MaxLag) {
			refused = append(refused, fmt.Sprintf("%s: %d bytes behind the primary's last known position %s (max_lag %s)", n.Name, last.WAL-got, FormatLSN(last.WAL), c.Failover.MaxLag))
			continue
		}
		cands = append(cands, candidate{n, got})
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("cluster %q: %w: %s; the old primary %q stays fenced: bring it back with 'docker start %s' if its data is intact, or promote a standby by hand with 'pacsd switchover NODE' accepting the loss of what it lacks", c.Name, ErrNoCandidate, strings.Join(refused, "; "), old, on.Container)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].received > cands[j].received })
	to := cands[0].node

	// 3. Record, then promote.
	x := &executor{c: c, d: d, obs: &Observed{State: st}, log: log, ids: map[string]string{}, acting: old, keep: c.Primary}
	if c.Primary == to.Name {
		x.keep = ""
	}
	if err := x.setActing(to.Name); err != nil {
		return "", err
	}
	trt, err := d.runtime(c, to.Host)
	if err != nil {
		return to.Name, err
	}
	conn, err := x.connect(ctx, trt, to.Name)
	if err != nil {
		return to.Name, fmt.Errorf("%q is recorded as the acting primary but could not be reached to promote it (%w); the next pass promotes it", to.Name, err)
	}
	defer conn.Close()
	if err := conn.Promote(ctx); err != nil {
		return to.Name, fmt.Errorf("%q is recorded as the acting primary but its promotion failed (%w); the next pass tries again", to.Name, err)
	}
	log.Warn("failover: standby promoted", "cluster", c.Name, "from", old, "to", to.Name, "epoch", x.obs.State.Epoch, "received", FormatLSN(cands[0].received))
	return to.Name, nil
}

// Health checks node n of c cheaply, bounded by FailoverTimeout: its
// container runs and its server answers; it returns the server's recovery
// state and WAL positions.
func Health(ctx context.Context, c *spec.Cluster, n *spec.Node, d Deps) (*DBState, error) {
	ctx, cancel := context.WithTimeout(ctx, FailoverTimeout)
	defer cancel()
	rt, err := d.runtime(c, n.Host)
	if err != nil {
		return nil, err
	}
	ct, err := rt.ContainerInspect(ctx, n.Container, c.Name, n.Name)
	if err != nil {
		return nil, err
	}
	if ct == nil || !ct.Running || ct.Paused || ct.Addr == "" {
		return nil, errors.New("its container does not run")
	}
	conn, err := d.DB.Connect(ctx, ct.Addr, c.Superuser.Name, c.Superuser.Password, c.Database)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Health(ctx)
}
