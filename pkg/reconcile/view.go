package reconcile

import (
	"fmt"
	"slices"
	"sort"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// ClusterView is the operator's view of one cluster: what `pacsd status`
// prints, /status carries and the status page draws. It is computed from
// one observation by View, a pure function; the daemon adds what only it
// knows (the controller, work in progress, the last action).
type ClusterView struct {
	Cluster string `json:"cluster"`
	// Controller is who decides for the cluster: "pacsd on this machine"
	// (one controller), or the leading host's pacsd with pacsd on every host.
	Controller string `json:"controller,omitempty"`
	// Acting is the acting primary ("" when unknown), Declared the file's.
	Acting   string `json:"acting"`
	Declared string `json:"declared"`
	Epoch    int64  `json:"epoch"`
	Paused   bool   `json:"paused"`
	// ObservedAt is when the nodes were looked at.
	ObservedAt string     `json:"observed_at,omitempty"`
	Nodes      []NodeView `json:"nodes"`
	// Problem says why the cluster could not be observed at all.
	Problem string `json:"problem,omitempty"`
}

// NodeView is one node as the operator sees it.
type NodeView struct {
	Node string `json:"node"`
	// Host is the node's host block, "" for the local engine.
	Host string `json:"host,omitempty"`
	// Container is the container's state: running, paused, exited,
	// missing, unknown (its engine does not answer).
	Container string `json:"container"`
	// Role is primary, standby, down (container runs, server does not
	// answer), stopped (no running container) or unknown.
	Role     string `json:"role"`
	Timeline int64  `json:"timeline,omitempty"`
	// LSN is the WAL written (primary) or replayed (standby).
	LSN string `json:"lsn,omitempty"`
	// LagBytes is how far a standby's WAL (received, or replayed when
	// further) is behind the acting primary's, the figure a failover's
	// max_lag is checked against; LagSeconds is the primary's replay_lag
	// for it. Nil when not known (not a standby, or the primary not seen).
	LagBytes   *int64   `json:"lag_bytes,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	// Replication is a standby's state: streaming, catching up, not
	// connected; Why says why when it does not stream.
	Replication string `json:"replication,omitempty"`
	Why         string `json:"why,omitempty"`
	// Sync reports a synchronous standby of the primary.
	Sync bool `json:"sync"`
	// Slot is the standby's replication slot on the primary, SlotRetained
	// the WAL it holds back (bytes), SlotStatus PostgreSQL's wal_status
	// (reserved, extended, unreserved, lost).
	Slot         string `json:"slot,omitempty"`
	SlotRetained *int64 `json:"slot_retained_bytes,omitempty"`
	SlotStatus   string `json:"slot_status,omitempty"`
	// PendingRestart lists parameters whose change needs a restart.
	PendingRestart []string `json:"pending_restart,omitempty"`
	// Work is long work in progress on the node (a base backup, a rewind)
	// with its percent done and the time left, when known.
	Work *WorkView `json:"work,omitempty"`
	// LastAction is the node's last event: kind, result and when.
	LastAction *Event `json:"last_action,omitempty"`
}

// WorkView is long work in progress.
type WorkView struct {
	Kind    string  `json:"kind"`
	Percent float64 `json:"percent"`
	// Left is the estimated time left ("" when not known).
	Left  string `json:"left,omitempty"`
	Since string `json:"since"`
}

// Replication states of NodeView.
const (
	ReplStreaming    = "streaming"
	ReplCatchingUp   = "catching up"
	ReplNotConnected = "not connected"
)

// View computes the operator's view of cluster c from one observation o
// (nil when it failed: every node unknown). It has no side effects.
func View(c *spec.Cluster, o *Observed) ClusterView {
	v := ClusterView{Cluster: c.Name, Declared: c.Primary, Nodes: []NodeView{}}
	if o == nil {
		for _, n := range c.Nodes {
			v.Nodes = append(v.Nodes, NodeView{Node: n.Name, Host: n.Host, Container: "unknown", Role: "unknown"})
		}
		return v
	}
	v.Epoch = o.State.Epoch
	// The acting primary as a pass would take it (the record, or what the
	// nodes show beyond doubt when there is none); unknown otherwise.
	acting, err := ActingPrimary(c, o.State, o)
	why := ""
	if err != nil {
		acting, why = "", "the acting primary is not known: "+err.Error()
	}
	v.Acting = acting
	var primary *DBState
	if ns := o.Nodes[acting]; ns != nil && ns.DB != nil && !ns.DB.InRecovery {
		primary = ns.DB
	} else if acting != "" {
		why = "the acting primary " + acting + " does not answer"
		if ns != nil && ns.DB != nil {
			why = "the acting primary " + acting + " is in recovery (it does not take writes)"
		}
	}
	for _, n := range c.Nodes {
		v.Nodes = append(v.Nodes, nodeView(c, n, o.Nodes[n.Name], acting, primary, why))
	}
	return v
}

// nodeView is one node's view; primary is the acting primary's server
// when it answers as one, else noPrimary says why not.
func nodeView(c *spec.Cluster, n *spec.Node, ns *NodeState, acting string, primary *DBState, noPrimary string) NodeView {
	nv := NodeView{Node: n.Name, Host: n.Host, Container: "unknown", Role: "unknown"}
	if ns == nil {
		return nv
	}
	if ns.Unreachable != "" {
		nv.Why = "its Docker engine does not answer: " + ns.Unreachable
		return nv
	}
	switch ct := ns.Container; {
	case ct == nil:
		nv.Container, nv.Role = "missing", "stopped"
	case ct.Paused:
		nv.Container, nv.Role = "paused", "down"
	case ct.Running:
		nv.Container, nv.Role = "running", "down"
	default:
		nv.Container, nv.Role = ct.Status, "stopped"
		if nv.Container == "" {
			nv.Container = "exited"
		}
	}
	db := ns.DB
	if db != nil {
		nv.Role = "primary"
		if db.InRecovery {
			nv.Role = "standby"
		}
		nv.Timeline = db.Timeline
		nv.LSN = FormatLSN(db.WAL)
		for name, s := range db.Settings {
			if s.PendingRestart {
				nv.PendingRestart = append(nv.PendingRestart, name)
			}
		}
		sort.Strings(nv.PendingRestart)
	}
	if n.Name == acting {
		if db == nil && ns.DBError != "" {
			nv.Why = ns.DBError
		}
		return nv
	}
	// A standby (or a node that should be one).
	app := n.Name // application_name in primary_conninfo
	nv.Slot = pgconf.SlotName(c.Name, n.Name)
	if primary != nil {
		if sl, ok := primary.SlotInfo[nv.Slot]; ok {
			r := sl.Retained
			nv.SlotRetained, nv.SlotStatus = &r, sl.WALStatus
		} else {
			nv.Why = "no replication slot on the primary"
		}
		nv.Sync = slices.Contains(primary.SyncStandbys, app)
	}
	rep, streams := primaryReplica(primary, app)
	switch {
	case db == nil:
		nv.Replication = ReplNotConnected
		nv.Why = orElse(ns.DBError, "its server does not run")
	case !db.InRecovery:
		nv.Replication = ReplNotConnected
		nv.Why = "it is not in recovery: it runs as a primary"
	case primary == nil:
		nv.Replication = ReplNotConnected
		nv.Why = noPrimary
	case !streams:
		nv.Replication = ReplNotConnected
		nv.Why = "the primary shows no WAL sender for it"
		if db.Receiver != "" && db.Receiver != "streaming" {
			nv.Why = "its WAL receiver is " + db.Receiver
		} else if db.Receiver == "" {
			nv.Why = "it has no WAL receiver (restoring, or its primary_conninfo does not connect)"
		}
	case rep.State == "streaming":
		nv.Replication = ReplStreaming
	default:
		nv.Replication = ReplCatchingUp
		nv.Why = "the WAL sender is in state " + rep.State
	}
	if primary != nil && db != nil && db.InRecovery {
		// Behind in WAL received (or replayed, when further): what a
		// failover's max_lag is checked against.
		lag := int64(primary.WAL) - int64(received(db))
		if lag < 0 {
			lag = 0
		}
		nv.LagBytes = &lag
		if streams {
			s := rep.ReplayLag
			nv.LagSeconds = &s
		}
	}
	return nv
}

// primaryReplica finds the primary's WAL sender for application name app.
func primaryReplica(primary *DBState, app string) (ReplicaState, bool) {
	if primary == nil {
		return ReplicaState{}, false
	}
	r, ok := primary.Replicas[app]
	return r, ok
}

func orElse(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// LagText prints a lag for a table: "-" when not known.
func LagText(b *int64, s *float64) string {
	if b == nil {
		return "-"
	}
	t := fmt.Sprintf("%d B", *b)
	if s != nil {
		t += fmt.Sprintf(", %.1fs", *s)
	}
	return t
}
