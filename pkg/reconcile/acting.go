package reconcile

import (
	"errors"
	"fmt"
	"log/slog"
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
//   - No node holds data: the cluster is new, and the file's primary is
//     its primary.
//   - Exactly one node accepts writes and no node shows a later timeline
//     (timelines only grow: a promotion starts a new one): that node is the
//     acting primary. The rebuilt record keeps the file's primary from
//     starting a switchover back (Keep) and takes the timeline as the epoch.
//   - Otherwise (no node or several accept writes, a later timeline
//     elsewhere, a node whose data could not be read): the error says what
//     each node shows and how to repair, and matches ErrActingUnknown;
//     nothing may act on the cluster.
//
// Without world (nil: the failover supervisor, the failover command), only
// the record counts; no record is ErrActingUnknown. No side effects.
func CurrentState(c *spec.Cluster, st ClusterState, world *Observed) (ClusterState, error) {
	if st.Acting != "" {
		return st, nil
	}
	if world == nil {
		return st, fmt.Errorf("cluster %q: %w: no record of it is kept (a new or changed state_dir, or a damaged record); a pass of 'pacsd run' or 'pacsd apply' rebuilds the record from the nodes", c.Name, ErrActingUnknown)
	}
	var writable, unreadable []string
	held := false
	var top int64
	var topNode string
	for _, n := range c.Nodes {
		ns := world.Nodes[n.Name]
		if ns == nil {
			continue
		}
		tl := observedTimeline(ns)
		if tl > top {
			top, topNode = tl, n.Name
		}
		if ns.DB != nil || tl > 0 || ns.Data.Major > 0 && !ns.Data.Partial {
			held = true
		}
		if ns.Data.Unknown || ns.Data.Major > 0 && !ns.Data.Partial && tl == 0 {
			unreadable = append(unreadable, n.Name)
		}
		if ns.DB != nil && !ns.DB.InRecovery {
			writable = append(writable, n.Name)
		}
	}
	if !held && len(unreadable) == 0 {
		return ClusterState{Acting: c.Primary}, nil
	}
	why := ""
	switch {
	case len(writable) == 0:
		why = "no node accepts writes"
	case len(writable) > 1:
		why = fmt.Sprintf("nodes %s all accept writes", strings.Join(quoteAll(writable), ", "))
	case observedTimeline(world.Nodes[writable[0]]) < top:
		why = fmt.Sprintf("%q accepts writes on timeline %d, but %q shows timeline %d (it was promoted later)", writable[0], observedTimeline(world.Nodes[writable[0]]), topNode, top)
	case len(unreadable) > 0:
		why = fmt.Sprintf("the timeline of %s could not be read", strings.Join(quoteAll(unreadable), ", "))
	}
	if why != "" {
		return st, fmt.Errorf("cluster %q: %w: pacsd keeps no record of it%s, and the nodes do not name it beyond doubt: %s (%s); pacsd acts on nothing in this cluster until exactly one node accepts writes and no node shows a later timeline: start by hand ('docker start') the node that holds the newest data, or stop ('docker stop') every node but that one; pacsd then records it as the acting primary and rejoins the others",
			c.Name, ErrActingUnknown, recordNote(world), why, describeNodes(c, world))
	}
	acting := writable[0]
	rebuilt := ClusterState{Acting: acting, Epoch: max(top-1, 0)}
	if c.Primary != acting {
		rebuilt.Keep = c.Primary
	}
	return rebuilt, nil
}

// observedTimeline is the newest timeline seen of a node: its server's, else
// its control file's; 0 when neither was read.
func observedTimeline(ns *NodeState) int64 {
	var tl int64
	if ns.DB != nil {
		tl = ns.DB.Timeline
	}
	if ns.Data.Control != nil {
		tl = max(tl, int64(ns.Data.Control.Timeline))
	}
	return tl
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
		case ns.Container != nil && ns.Container.Running:
			what = "running, not answering"
		case ns.Data.Major == 0:
			what = "no data"
		default:
			what = "stopped"
		}
		if tl := observedTimeline(ns); tl > 0 {
			what += fmt.Sprintf(", timeline %d", tl)
		}
		parts = append(parts, fmt.Sprintf("%s: %s", n.Name, what))
	}
	return strings.Join(parts, "; ")
}

// recordActing records the acting primary when nothing is recorded yet: the
// file's primary for a new cluster, or the state CurrentState rebuilds from
// the nodes (a lost or damaged record), so that a later edit of the file's
// primary is a switchover, not a guess. The caller holds the cluster's lock.
func recordActing(c *spec.Cluster, obs *Observed, d Deps, log *slog.Logger) error {
	if obs.State.Acting != "" {
		return nil
	}
	st, err := CurrentState(c, obs.State, obs)
	if err != nil {
		return err
	}
	if err := d.Store.Save(c.Name, st); err != nil {
		return fmt.Errorf("cluster %q: while recording %q as the acting primary: %w", c.Name, st.Acting, err)
	}
	if obs.RecordError != "" || st != (ClusterState{Acting: c.Primary}) {
		log.Warn("the cluster's record was missing or damaged; rebuilt from the nodes", "cluster", c.Name,
			"acting", st.Acting, "epoch", st.Epoch, "keep", st.Keep, "damaged", obs.RecordError)
	}
	obs.State, obs.RecordError = st, ""
	return nil
}

// unchanged reports whether the cluster's record is still what obs saw (a
// damaged record that obs saw damaged counts as unchanged); now is the
// record as it is. The caller holds the cluster's lock.
func unchanged(c *spec.Cluster, d Deps, obs *Observed) (now ClusterState, same bool, err error) {
	now, err = d.Store.Load(c.Name)
	if errors.Is(err, ErrRecordDamaged) && obs.RecordError != "" {
		return ClusterState{}, obs.State == ClusterState{}, nil
	}
	if err != nil {
		return now, false, err
	}
	return now, now == obs.State, nil
}
