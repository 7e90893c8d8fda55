package reconcile

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"

	"github.com/pacsd/pacsd/pkg/spec"
)

// ErrActingUnknown is matched by the error of ActingPrimary and CurrentState
// when the acting primary cannot be told: no record and no observation, or
// an observation that does not name one node beyond doubt.
var ErrActingUnknown = errors.New("the acting primary is unknown")

// ActingPrimary is the one answer to "which node is the primary of c now".
// It decides nothing of its own: see CurrentState.
func ActingPrimary(c *spec.Cluster, st ClusterState, world *Observed) (string, error) {
	cur, err := CurrentState(c, st, world)
	return cur.Acting, err
}

// CurrentState returns the cluster's state as pacsd acts on it: the record st
// when it names an acting primary, otherwise (no record: a new state
// directory, state_dir changed, a reinstalled host, or a damaged record that
// Observe set aside) one rebuilt from what world shows of the nodes. The
// file's primary is never taken for the acting one against the world:
//
//   - No node but the file's primary holds data: the cluster is new (or
//     has no standby yet), and the file's primary is its primary, running
//     or not: no other node can hold newer data.
//   - Exactly one node accepts writes and no node may be on a later
//     timeline (timelines only grow: a promotion starts a new one): that
//     node is the acting primary. The rebuilt record keeps the file's
//     primary from starting a switchover back (Keep) and takes the
//     timeline as the epoch.
//   - Otherwise (no node or several accept writes, a later timeline
//     elsewhere, a stopped node whose timeline is not certain, a node whose
//     data could not be read): the error says what each node shows and how
//     to repair, and matches ErrActingUnknown; nothing may act.
//
// A record is refused the same way when the world contradicts it: its
// acting primary does not accept writes while another node does on a
// timeline later than any promotion the record counts (every promotion
// pacsd makes is recorded first, raising the epoch by one; a record
// restored from a backup, or an old state_dir, does not know of the later
// ones). A record whose acting primary accepts writes is kept: another
// writable node is a second primary, and Plan fences it.
//
// Without world (nil: the failover supervisor, the failover command), only
// the record counts; no record is ErrActingUnknown. No side effects.
func CurrentState(c *spec.Cluster, st ClusterState, world *Observed) (ClusterState, error) {
	if st.Acting == "" && world == nil {
		return st, fmt.Errorf("cluster %q: %w: no record of it is kept (a new or changed state_dir, or a damaged record); a pass of 'pacsd run' or 'pacsd apply' rebuilds the record from the nodes", c.Name, ErrActingUnknown)
	}
	if world == nil {
		return st, nil
	}
	var writable, uncertain []string
	held := false // a node other than the file's primary holds data
	var top int64
	var topNode string
	for _, n := range c.Nodes {
		ns := world.Nodes[n.Name]
		if ns == nil {
			continue
		}
		tl, certain := timelineOf(ns)
		if tl > top {
			top, topNode = tl, n.Name
		}
		if n.Name != c.Primary && (ns.DB != nil || tl > 0 || ns.Data.Major > 0 && !ns.Data.Partial || ns.Data.Unknown) {
			held = true
		}
		if !certain {
			uncertain = append(uncertain, n.Name)
		}
		if ns.DB != nil && !ns.DB.InRecovery {
			writable = append(writable, n.Name)
		}
	}
	if st.Acting != "" {
		recorded := world.Nodes[st.Acting]
		if recorded == nil || recorded.DB != nil && !recorded.DB.InRecovery {
			return st, nil
		}
		for _, n := range c.Nodes {
			ns := world.Nodes[n.Name]
			if ns == nil || n.Name == st.Acting {
				continue
			}
			tl, certain := timelineOf(ns)
			writes := ns.DB != nil && !ns.DB.InRecovery
			if (writes || certain) && tl > st.Epoch+1 {
				what := "accepts writes"
				if !writes {
					what = "was last a primary"
				}
				return st, fmt.Errorf("cluster %q: %w: the record names %q (epoch %d), but %q %s on timeline %d, later than any promotion the record counts: a promotion happened that pacsd did not record (a state directory restored from a backup, an old state_dir, a promotion by hand) (%s); pacsd acts on nothing in this cluster: if %q holds the newest data, remove the record (the file cluster-%s.json in daemon.state_dir) and pacsd rebuilds it from the nodes; otherwise make sure the recorded primary holds the newest data",
					c.Name, ErrActingUnknown, st.Acting, st.Epoch, n.Name, what, tl, describeNodes(c, world), n.Name, c.Name)
			}
		}
		return st, nil
	}
	if !held {
		return ClusterState{Acting: c.Primary, Epoch: max(top-1, 0)}, nil
	}
	why, repair := "", "start by hand ('docker start') the node that holds the newest data, or stop ('docker stop') every node but that one"
	switch {
	case len(writable) > 1:
		why = fmt.Sprintf("nodes %s all accept writes", strings.Join(quoteAll(writable), ", "))
	case len(writable) == 1 && len(uncertain) > 0:
		why = fmt.Sprintf("%q accepts writes, but the timeline of %s is not certain (stopped without a clean shutdown as a primary, or unreadable)", writable[0], strings.Join(quoteAll(uncertain), ", "))
		repair = fmt.Sprintf("start %s by hand ('docker start'), so that its server reports its timeline (a node whose host cannot be reached: take it out of the file until the host is back)", strings.Join(quoteAll(uncertain), ", "))
	case len(writable) == 1:
		if tl, _ := timelineOf(world.Nodes[writable[0]]); tl < top {
			why = fmt.Sprintf("%q accepts writes on timeline %d, but %q shows timeline %d (it was promoted later)", writable[0], tl, topNode, top)
		}
	default:
		why = "no node accepts writes"
	}
	if why != "" {
		return st, fmt.Errorf("cluster %q: %w: pacsd keeps no record of it%s, and the nodes do not name it beyond doubt: %s (%s); pacsd acts on nothing in this cluster until exactly one node accepts writes and no node may be on a later timeline: %s; pacsd then records the one writable node as the acting primary and rejoins the others",
			c.Name, ErrActingUnknown, recordNote(world), why, describeNodes(c, world), repair)
	}
	acting := writable[0]
	rebuilt := ClusterState{Acting: acting, Epoch: max(top-1, 0)}
	if c.Primary != acting {
		rebuilt.Keep = c.Primary
	}
	return rebuilt, nil
}

// timelineOf is the newest timeline seen of a node, and whether no later
// one can be in its data. A running server reports its own; a stopped node's
// control file names the timeline of its last checkpoint, which is its
// timeline only after a clean shutdown as a primary (a shutdown
// checkpoint): a primary promoted and then crashed before its first
// checkpoint, or a standby that replayed past a timeline switch since its
// last restartpoint, holds a later one. A node without data is on no
// timeline, with certainty; data that could not be read is uncertain.
func timelineOf(ns *NodeState) (int64, bool) {
	var tl int64
	if ns.Data.Control != nil {
		tl = int64(ns.Data.Control.Timeline)
	}
	switch {
	case ns.DB != nil:
		return max(tl, ns.DB.Timeline), true
	case ns.Data.Unknown:
		return tl, false
	case ns.Data.Control != nil:
		return tl, ns.Data.Control.State == DBShutdowned
	default:
		return 0, ns.Data.Major == 0 || ns.Data.Partial
	}
}

// recordNote says why no record counts, for CurrentState's errors.
func recordNote(world *Observed) string {
	if world.RecordError != "" {
		return " (its record is damaged: " + world.RecordError + ")"
	}
	return ""
}

// describeNodes says, per node, what CurrentState saw: writable or in
// recovery, stopped, no data, and the timeline.
func describeNodes(c *spec.Cluster, world *Observed) string {
	var parts []string
	for _, n := range c.Nodes {
		ns := world.Nodes[n.Name]
		if ns == nil {
			continue
		}
		var what string
		switch {
		case ns.DB != nil && !ns.DB.InRecovery:
			what = "accepts writes"
		case ns.DB != nil:
			what = "in recovery"
		case ns.Data.Unknown:
			what = "data unreadable"
		case ns.Container != nil && ns.Container.Running && ns.DBError != "":
			what = "running, pacsd cannot log in or query it (" + shorten(ns.DBError, 120) + ")"
		case ns.Container != nil && ns.Container.Running:
			what = "running, not answering"
		case ns.Data.Major == 0:
			what = "no data"
		default:
			what = "stopped"
		}
		if tl, certain := timelineOf(ns); tl > 0 && certain {
			what += fmt.Sprintf(", timeline %d", tl)
		} else if tl > 0 {
			what += fmt.Sprintf(", timeline %d or later (not certain)", tl)
		}
		parts = append(parts, fmt.Sprintf("%s: %s", n.Name, what))
	}
	return strings.Join(parts, "; ")
}

// otherEngine reports whether engine is known to differ from the one pl
// recorded.
func otherEngine(pl Placement, engine string) bool {
	return pl.Engine != "" && engine != "" && pl.Engine != engine
}

// recordActing saves the record when it lacks the acting primary (rebuilt
// with CurrentState) or where the nodes' containers are (placedState), in
// one write. The caller holds the cluster's lock and has checked that the
// record is still what obs saw.
func recordActing(c *spec.Cluster, obs *Observed, d Deps, log *slog.Logger) error {
	st, rebuilt := obs.State, obs.State.Acting == ""
	if rebuilt {
		var err error
		if st, err = CurrentState(c, obs.State, obs); err != nil {
			return err
		}
	}
	seen := *obs
	seen.State = st
	st, placed := placedState(c, &seen)
	if !rebuilt && !placed {
		return nil
	}
	if err := d.Store.Save(c.Name, st); err != nil {
		if rebuilt {
			return fmt.Errorf("cluster %q: while recording %q as the acting primary: %w", c.Name, st.Acting, err)
		}
		return fmt.Errorf("cluster %q: while recording where its nodes run: %w", c.Name, err)
	}
	if rebuilt && (obs.RecordError != "" || st.Acting != c.Primary || st.Epoch != 0 || st.Keep != "") {
		log.Warn("the cluster's record was missing or damaged; rebuilt from the nodes", "cluster", c.Name,
			"acting", st.Acting, "epoch", st.Epoch, "keep", st.Keep, "damaged", obs.RecordError)
	}
	obs.State, obs.RecordError = st, ""
	return nil
}

// placementOf is where the file puts node n, with the restart policy of
// its container ct (nil: not known).
func placementOf(n *spec.Node, ct *ContainerState, engine string) Placement {
	pl := Placement{Host: n.Host, Docker: n.Docker, Engine: engine}
	if ct != nil {
		pl.Restart = ct.RestartPolicy
	}
	return pl
}

// moved says where node n was last seen when the file now puts it on
// another host or endpoint, or on an engine whose ID (engine, "" when not
// known) differs from the one it ran on; "" when it has not moved, or was
// never seen. An equal ID never clears a move by itself: engines cloned
// with their machine can share one.
func moved(st ClusterState, n *spec.Node, engine string) string {
	pl, ok := st.Placed[n.Name]
	if !ok || pl.Host == n.Host && pl.Docker == n.Docker && !otherEngine(pl, engine) {
		return ""
	}
	return fmt.Sprintf("%s (%s)", engineName(pl.Host), cmp.Or(pl.Docker, "the local engine"))
}

// placedState is obs.State with where each node's container is seen (see
// ClusterState.Placed; a node seen without a container keeps where it was
// seen last), without nodes the file no longer declares, and
// without an operator's confirmation once that node's engine answers; it
// reports whether that differs from the record. No side effects.
func placedState(c *spec.Cluster, obs *Observed) (ClusterState, bool) {
	st := obs.State
	placed := map[string]Placement{}
	for _, n := range c.Nodes {
		ns := obs.Nodes[n.Name]
		switch {
		case ns == nil || ns.Unreachable != "":
			if pl, ok := st.Placed[n.Name]; ok {
				placed[n.Name] = pl
			}
		case ns.Container != nil && ns.Container.Owned:
			placed[n.Name] = placementOf(n, ns.Container, obs.Engine(n.Host).ID)
		default:
			// No container of it on the engine the file names: it was
			// seen where it was (Plan refuses to act on it elsewhere).
			if pl, ok := st.Placed[n.Name]; ok {
				placed[n.Name] = pl
			}
		}
	}
	if len(placed) == 0 {
		placed = nil
	}
	// An operator's confirmation counts until the node's engine answers
	// again, the promotion it allowed is done, or the node is gone.
	confirmed := st.Confirmed
	ns, acting := obs.Nodes[confirmed], obs.Nodes[st.Acting]
	if c.Node(confirmed) == nil || ns != nil && ns.Unreachable == "" || acting != nil && acting.DB != nil && !acting.DB.InRecovery {
		confirmed = ""
	}
	changed := !maps.Equal(placed, st.Placed) || confirmed != st.Confirmed
	st.Placed, st.Confirmed = placed, confirmed
	return st, changed
}

// unchanged reports whether the cluster's record is still what obs saw (a
// damaged record that obs saw damaged counts as unchanged); now is the
// record as it is. The caller holds the cluster's lock.
//
// With pacsd on every host (Deps.Hosted) the round counter is left out:
// another host's round acted on that host's own nodes only (Scope), which
// leaves what this host planned for its own nodes valid, so that a standby
// is repointed without waiting for every other host to converge first.
// obs then takes the newest count, so that what this round saves does not
// take it back.
func unchanged(c *spec.Cluster, d Deps, obs *Observed) (now ClusterState, same bool, err error) {
	now, err = d.Store.Load(c.Name)
	if errors.Is(err, ErrRecordDamaged) && obs.RecordError != "" {
		return ClusterState{}, obs.State.Same(ClusterState{}), nil
	}
	if err != nil {
		return now, false, err
	}
	if d.Hosted != nil {
		seen := obs.State
		seen.Rounds = now.Rounds
		if !now.Same(seen) {
			return now, false, nil
		}
		obs.State.Rounds = now.Rounds
		return now, true, nil
	}
	return now, now.Same(obs.State), nil
}

// shorten cuts s to at most n bytes, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
