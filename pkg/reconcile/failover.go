package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/pgconf"
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
	// LostAt is when the primary was found lost (not kept): WAL counts as
	// its last position only when At is within SightTolerance of it.
	LostAt time.Time `json:"-"`
}

// SeenFresh is how old a saved LastSeen may be to be used: an older one may
// name standbys that are no longer synchronous, and a WAL position far
// behind the primary's last.
const SeenFresh = 5 * time.Minute

// ErrServerRefused is returned (wrapped) by Database.Connect when a server
// answered and refused the connection (a wrong password, no pg_hba.conf line,
// too many connections): the server is alive, whatever else is wrong.
var ErrServerRefused = errors.New("the server answered and refused the connection")

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
// qualifies (ChooseFailoverTarget decides); the error says why and what an
// operator can do. The rest (repointing standbys, the old primary's rejoin)
// is the next Apply's work.
func Failover(ctx context.Context, c *spec.Cluster, d Deps, last LastSeen, log *slog.Logger) (string, error) {
	return failover(ctx, c, d, last, "", ManualOptions{}, log)
}

// ManualFailover is 'pacsd failover NODE': an operator's decision to make
// node the primary while the acting primary is lost. The acting primary must
// not answer as a primary (a healthy one is switched over instead, without
// loss) and is fenced and confirmed exactly as by Failover. node must be a
// standby that answers. Where node may lack acknowledged commits (beyond
// max_lag of the primary's last known position, that position unknown, or
// not a synchronous standby with synchronous replication), it refuses unless
// o.AcceptLoss is set, and the error says what may be lost. When the old
// primary's engine cannot confirm the fence (its host is down or cut off),
// it refuses unless o.ConfirmFenced says that the operator made sure the
// old primary cannot accept writes (its host powered off, say).
func ManualFailover(ctx context.Context, c *spec.Cluster, d Deps, node string, o ManualOptions, last LastSeen, log *slog.Logger) (string, error) {
	if c.Node(node) == nil {
		return "", fmt.Errorf("cluster %q has no node %q", c.Name, node)
	}
	return failover(ctx, c, d, last, node, o, log)
}

// ManualOptions are an operator's answers to what pacsd cannot know.
type ManualOptions struct {
	// AcceptLoss promotes a standby that may lack acknowledged commits.
	AcceptLoss bool
	// ConfirmFenced goes on when the old primary's engine cannot confirm
	// the fence: the operator has made sure it cannot accept writes.
	ConfirmFenced bool
	// From names the old primary when no record names it (a lost or
	// damaged record while the primary is lost, so that no pass can
	// rebuild it). With a record, it must name the recorded node.
	From string
}

// failover fences the acting primary, chooses a standby (to, when an
// operator named one), records and promotes it.
func failover(ctx context.Context, c *spec.Cluster, d Deps, last LastSeen, to string, o ManualOptions, log *slog.Logger) (string, error) {
	if d.Store == nil {
		return "", fmt.Errorf("cluster %q: no cluster store is configured", c.Name)
	}
	st, err := d.Store.Load(c.Name)
	if errors.Is(err, ErrRecordDamaged) {
		st = ClusterState{} // as good as none: the primary must be named (From)
	} else if err != nil {
		return "", fmt.Errorf("cluster %q: while reading which node is the acting primary: %w; nothing was done", c.Name, err)
	}
	// Only the record names the primary to fence: without one, the file's
	// primary may be a standby since a switchover.
	old, err := ActingPrimary(c, st, nil)
	switch {
	case err != nil && to != "" && o.From != "":
		// No record, and the primary is lost too, so that no pass can
		// rebuild it: the operator names the old primary.
		if c.Node(o.From) == nil {
			return "", fmt.Errorf("cluster %q has no node %q (--from)", c.Name, o.From)
		}
		old = o.From
		log.Warn("failover by hand without a record: the operator named the old primary", "cluster", c.Name, "node", old)
	case err != nil && to != "":
		return "", fmt.Errorf("%w; nothing was done: when the primary is lost, so that no pass can rebuild the record, name the node that was the primary: 'pacsd failover %s --from NODE'; it is fenced like any old primary", err, to)
	case err != nil:
		return "", fmt.Errorf("%w; nothing was done", err)
	case o.From != "" && o.From != old:
		return "", fmt.Errorf("cluster %q: the record names %q as the acting primary, not %q (--from); nothing was done: leave --from out, it is only for a cluster without a record", c.Name, old, o.From)
	}
	if last.Node != "" && last.Node != old {
		return "", fmt.Errorf("cluster %q: %w: %q was found lost, but %q acts as primary now (a switchover or failover happened meanwhile); nothing was done", c.Name, ErrActingChanged, last.Node, old)
	}
	if last.Node == "" {
		last = LastSeen{Node: old} // nothing is known of the primary's last position
	}
	on := c.Node(old)
	if on == nil {
		return "", fmt.Errorf("cluster %q: the acting primary %q is not declared", c.Name, old)
	}
	if where := moved(st, on, ""); where != "" && !sameEngineOrOwned(ctx, c, on, st.Placed[old], d) {
		// Its engine in the file would report no container: that is no
		// fence of the one that may still run where it was.
		return "", fmt.Errorf("cluster %q, node %q: %w: its container was last seen on %s, but the file now puts it on %s, where pacsd cannot stop it; nothing was done: put the node's host back in the file, then try again", c.Name, old, ErrNotFenced, where, engineName(on.Host))
	}
	manual := to != ""
	if manual {
		if to == old {
			return "", fmt.Errorf("cluster %q: %q is the acting primary already; name the standby to promote", c.Name, to)
		}
		if h, err := Health(ctx, c, on, d); err == nil && !h.InRecovery {
			return "", fmt.Errorf("cluster %q: the acting primary %q answers and accepts writes; pacsd does not fail over a healthy primary: run 'pacsd switchover %s', which loses no acknowledged write", c.Name, old, to)
		}
	}
	rt, err := d.runtime(c, on.Host)
	if err != nil {
		return "", err
	}
	standbyHealth := func() []StandbyHealth {
		var hs []StandbyHealth
		for _, n := range c.Nodes {
			if n.Name != old {
				h, err := Health(ctx, c, n, d)
				hs = append(hs, StandbyHealth{Node: n.Name, DB: h, Err: err})
			}
		}
		return hs
	}
	// 0. Another node that accepts writes is a primary already (promoted by
	// hand, or the record or --from names a node that is not the primary):
	// a promotion would make a second one. And a primary is never fenced
	// for nothing: when no standby qualifies now, none will once the
	// primary is stopped.
	before := standbyHealth()
	if err := writableElsewhere(c, old, before); err != nil {
		return "", err
	}
	if !manual {
		if ch := ChooseFailoverTarget(c, old, last, before); ch.To == "" {
			return "", fmt.Errorf("cluster %q: %w: %s; the old primary %q was not touched: bring it back if its data is intact, or promote a standby by hand with 'pacsd failover NODE', which says what it may lose", c.Name, ErrNoCandidate, strings.Join(ch.Refused, "; "), old)
		}
	}
	// 1. Fence: standby.signal, then stopped (a frozen one killed), confirmed by the engine.
	fctx, cancel := context.WithTimeout(ctx, 4*FailoverTimeout+FenceTimeout)
	switch {
	case d.Hosted != nil && manual && on.Host == d.Hosted.Host && d.Hosted.FenceOwn != nil:
		// A failover by hand that the old primary's own host carries
		// out: fenced through its engine, its lease (if any) given up.
		err = d.Hosted.FenceOwn(fctx, c, old)
	case d.Hosted != nil:
		// Only the old primary's host could stop it: its lease says
		// whether it did, or can no longer take writes.
		err = d.Hosted.Fenced(fctx, c, old)
	default:
		err = fenceNode(fctx, rt, c, on, time.Second)
	}
	cancel()
	confirmed := false
	switch policy := restartPolicy(st, c, old); {
	case err != nil && manual && o.ConfirmFenced && errors.Is(err, ErrEngineUnreachable) && (policy != "no" || !c.Failover.Automatic):
		if policy == "no" {
			policy = "no when last seen, unless-stopped in the file, which pacsd may have given it since"
		}
		// Its container would be started by its engine when the host comes
		// back, without standby.signal.
		return "", fmt.Errorf("cluster %q, node %q: %w; --confirm-fenced is refused: its container restarts with its engine (restart policy %s), so the old primary would come back writable when its host does; keep its host off and set its restart policy to no ('docker update --restart=no %s' once its engine answers, or remove the container), then try again", c.Name, old, err, policy, on.Container)
	case err != nil && manual && o.ConfirmFenced && errors.Is(err, ErrEngineUnreachable):
		log.Warn("failover by hand: the old primary's fence is not confirmed by its engine; the operator confirmed it", "cluster", c.Name, "node", old, "error", err.Error())
		confirmed = true
	case err != nil:
		return "", fmt.Errorf("cluster %q, node %q: %w; pacsd does not promote a standby while the old primary might still accept writes: make sure it is stopped (power off its host, or stop its container), then run 'pacsd failover NODE' (with --confirm-fenced when its engine cannot be reached)", c.Name, old, err)
	default:
		log.Warn("old primary fenced", "cluster", c.Name, "node", old)
	}

	// 2. Choose: the most WAL received, within max_lag, synchronous if asked.
	health := standbyHealth() // the positions are final now
	if err := writableElsewhere(c, old, health); err != nil {
		return "", fmt.Errorf("%w; the old primary %q stays fenced", err, old)
	}
	var got uint64
	if manual {
		h := healthOf(health, to)
		if why := standbyUnusable(h); why != "" {
			return "", fmt.Errorf("cluster %q, node %q: %w: %s; the old primary %q stays fenced", c.Name, to, ErrNoCandidate, why, old)
		}
		risks := standbyRisks(c, last, h)
		if why := quorumRisk(c, old, last, health); why != "" {
			risks = append(risks, why)
		}
		risks = append(risks, aheadOf(c, old, to, health)...)
		if len(risks) > 0 && !o.AcceptLoss {
			return "", fmt.Errorf("cluster %q, node %q: it may lack acknowledged commits: %s; the old primary %q stays fenced: bring it back with 'docker start %s' if its data is intact, or run 'pacsd failover %s --accept-loss' to promote it anyway", c.Name, to, strings.Join(risks, "; "), old, on.Container, to)
		}
		if len(risks) > 0 {
			log.Warn("failover by hand: promoting a standby that may lack acknowledged commits", "cluster", c.Name, "node", to, "risk", strings.Join(risks, "; "))
		}
		got = received(h.DB)
	} else {
		ch := ChooseFailoverTarget(c, old, last, health)
		if ch.To == "" {
			return "", fmt.Errorf("cluster %q: %w: %s; the old primary %q stays fenced: bring it back with 'docker start %s' if its data is intact, or promote a standby by hand with 'pacsd failover NODE', which says what it may lose", c.Name, ErrNoCandidate, strings.Join(ch.Refused, "; "), old, on.Container)
		}
		to, got = ch.To, ch.Received
	}

	// 3. Record, then promote.
	st.Confirmed = ""
	if confirmed {
		st.Confirmed = old // the promotion goes on without its engine (planPromote)
	}
	x := &executor{c: c, d: d, obs: &Observed{State: st}, log: log, ids: map[string]string{}, acting: old, keep: c.Primary}
	if c.Primary == to {
		x.keep = ""
	}
	if err := x.setActing(to); err != nil {
		return "", err
	}
	if err := x.promoteRecorded(ctx, to); err != nil {
		return to, err
	}
	log.Warn("failover: standby promoted", "cluster", c.Name, "from", old, "to", to, "epoch", x.obs.State.Epoch, "received", FormatLSN(got), "by_hand", manual)
	if d.Hosted != nil {
		x.readyFollowers(ctx, to)
	}
	return to, nil
}

// readyFollowers prepares the new primary node for the other hosts' standbys
// with pacsd on every host: it creates every other node's slot on it (a
// standby repointed to a slot that does not exist yet retries only after
// wal_retrieve_retry_interval, 5 s by default), then counts a round in the
// record, so that every host's pacsd, which follows the record in etcd,
// runs a pass at once and finds the primary promoted and its slots there.
// What fails is only logged: the passes that follow do the same.
func (x *executor) readyFollowers(ctx context.Context, primary string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FailoverTimeout)
	defer cancel()
	rt, err := x.rt(primary)
	if err == nil {
		var conn DBConn
		if conn, err = x.connect(ctx, rt, primary); err == nil {
			for _, n := range x.c.Nodes {
				if n.Name != primary && err == nil {
					err = conn.CreateSlot(ctx, pgconf.SlotName(x.c.Name, n.Name))
				}
			}
			conn.Close()
		}
	}
	if err != nil {
		x.log.Warn("cannot create the standbys' slots on the new primary yet; its host's pass does", "cluster", x.c.Name, "node", primary, "error", err.Error())
	}
	if err := countRound(x.c, x.d); err != nil {
		x.log.Warn("cannot count the failover's round in the record; the other hosts follow at their next pass", "cluster", x.c.Name, "error", err.Error())
	}
}

// sameEngineOrOwned reports whether node n, which the file puts on another
// host or endpoint than where it was seen (pl), is still on the engine it
// ran on (a host block renamed, or its endpoint spelled anew): the engine
// the file names shows n's own container, and its ID, when known, is the
// one pl recorded.
func sameEngineOrOwned(ctx context.Context, c *spec.Cluster, n *spec.Node, pl Placement, d Deps) bool {
	rt, err := d.runtime(c, n.Host)
	if err != nil {
		return false
	}
	if id, err := rt.EngineID(ctx); err == nil && otherEngine(pl, id) {
		return false
	}
	ct, err := rt.ContainerInspect(ctx, n.Container, c.Name, n.Name)
	return err == nil && ct != nil && ct.Owned
}

// restartPolicy is the restart policy of node's container as last seen
// (ClusterState.Placed), or, when none was seen, the one pacsd gives it:
// "no" with automatic failover, else "unless-stopped".
func restartPolicy(st ClusterState, c *spec.Cluster, node string) string {
	if pl := st.Placed[node]; pl.Restart != "" {
		return pl.Restart
	}
	if c.Failover.Automatic {
		return "no"
	}
	return "unless-stopped"
}

// Health checks node n of c cheaply, bounded by FailoverTimeout: its
// container runs and its server answers; it returns the server's recovery
// state and WAL positions.
func Health(ctx context.Context, c *spec.Cluster, n *spec.Node, d Deps) (*DBState, error) {
	ctx, cancel := context.WithTimeout(ctx, FailoverTimeout)
	defer cancel()
	if addr := d.remoteAddr(n); addr != "" {
		// Another host's node: asked where it is, not where its host's
		// last report says it was.
		conn, err := d.connect(ctx, c, n, addr)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.Health(ctx)
	}
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
	conn, err := d.connect(ctx, c, n, ct.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Health(ctx)
}

// writableElsewhere refuses a failover from old when another node answers
// as a primary: promoting a standby would make a second one.
func writableElsewhere(c *spec.Cluster, old string, hs []StandbyHealth) error {
	for _, h := range hs {
		if h.Err == nil && h.DB != nil && !h.DB.InRecovery {
			return fmt.Errorf("cluster %q: %w: %q accepts writes, so it is a primary already while %q is taken for the lost one (a promotion by hand, a record restored from a backup, or --from naming a node that was not the primary); nothing was promoted: if %q holds the newest data, let a pass record it (remove the record, the file cluster-%s.json in daemon.state_dir, when the pass refuses it), otherwise stop it ('docker stop') and try again",
				c.Name, ErrActingUnknown, h.Node, old, h.Node, c.Name)
		}
	}
	return nil
}

// FailoverByHand is 'pacsd failover NODE' as one command: under the
// cluster's lock, with the last sight of the primary when it is fresh
// (SeenFresh; its position counts only as of now, see LastSeen.LostAt),
// ManualFailover, then the failover's event in the history (who asked: by).
// It returns the node promoted and the old primary. The rest (repointing
// the standbys, the old primary's rejoin) is the next Apply's.
func FailoverByHand(ctx context.Context, c *spec.Cluster, d Deps, node string, o ManualOptions, by string, log *slog.Logger) (to, old string, err error) {
	if d.Store == nil {
		return "", "", fmt.Errorf("cluster %q: no cluster store is configured", c.Name)
	}
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return "", "", err
	}
	var last LastSeen
	switch ls, err := d.Store.LoadSeen(c.Name); {
	case err != nil:
		log.Warn("cannot read the last sight of the primary; its last position counts as unknown", "cluster", c.Name, "error", err.Error())
	case time.Since(ls.At) < SeenFresh:
		last = ls
	}
	last.LostAt = time.Now() // when it was lost is not known here: only a sight of just now counts
	before, _ := d.Store.Load(c.Name)
	old = before.Acting
	if o.From != "" {
		old = o.From
	}
	began := time.Now()
	to, err = ManualFailover(ctx, c, d, node, o, last, log)
	unlock()
	if d.Events != nil {
		e := Event{At: began, Cluster: c.Name, Node: old, Kind: "failover", Target: node,
			Reason: "asked for on the command line (" + by + ")", Result: "ok: " + to + " promoted", Duration: time.Since(began).Round(time.Millisecond).String()}
		if err != nil {
			e.Result = "refused: " + err.Error()
		}
		d.Events(e)
	}
	return to, old, err
}
