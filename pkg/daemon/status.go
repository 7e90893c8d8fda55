package daemon

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// Status is what /status reports.
type Status struct {
	// File is the topology file and the checksum of its last good content.
	File     string    `json:"file"`
	Checksum string    `json:"checksum"`
	LoadedAt time.Time `json:"loaded_at"`
	// ReloadError says why the last content saved was refused; "" when it was taken.
	ReloadError string `json:"reload_error,omitempty"`
	// Passed is set once the first pass has ended.
	Passed   bool                      `json:"passed"`
	Clusters map[string]*ClusterStatus `json:"clusters"`
	// Engines is what the last check of each host's container engine found,
	// by host name ("local" for the engine of nodes without host); checked
	// independently of passes, every 10 s, every 2 s while one does not
	// answer (watchEngines). Engines that cannot be asked are left out.
	Engines map[string]EngineStatus `json:"engines,omitempty"`
}

// ClusterStatus is the operator's view of a cluster (its nodes as last
// observed, by a pass or by the view's own refresh) and the outcome of its
// last pass.
type ClusterStatus struct {
	reconcile.ClusterView
	LastPass time.Time `json:"last_pass"`
	Duration string    `json:"duration"`
	// Result is ok, partial (converged but for the nodes of an engine that
	// does not answer: reconcile.NodesLeftError), error, paused (pacsd
	// pause) or held (its record cannot be written; Error says why).
	Result  string   `json:"result"`
	Error   string   `json:"error,omitempty"`
	Actions []string `json:"actions"`
	// Failures counts failed passes in a row; RetryAt is when the next one
	// may run (backoff).
	Failures int        `json:"failures,omitempty"`
	RetryAt  *time.Time `json:"retry_at,omitempty"`
	// FailoverRefused says why the failover supervisor refuses to fail over
	// the lost acting primary; zero when it does not. It is set by the
	// supervisor, not by the pass, and kept across passes until a failover
	// is done, the acting primary is seen healthy, or automatic failover
	// is turned off.
	FailoverRefused FailoverRefusal `json:"failover_refused,omitzero"`
	// PrimarySeen is the failover supervisor's last sight of the acting
	// primary healthy: the WAL position that bounds a failover's max_lag.
	// Nil without automatic failover or before the first sight.
	PrimarySeen *PrimarySeen `json:"primary_seen,omitempty"`
	// Coordination is, with pacsd on every host (daemon.etcd), the
	// cluster's leader, primary lease and hosts as etcd has them now; it
	// is read when /status is asked.
	Coordination *CoordinationStatus `json:"coordination,omitempty"`
}

// FailoverRefusal is a refused automatic failover (reconcile.ErrNotFenced:
// the old primary cannot be confirmed stopped, often because its engine
// cannot be reached; reconcile.ErrNoCandidate: no standby qualifies).
type FailoverRefusal struct {
	// Node is the lost acting primary.
	Node string `json:"node"`
	// Error is why the last try was refused, and what an operator can do.
	Error string `json:"error"`
	// Since is the first refusal while Node is lost; Last the latest.
	Since time.Time `json:"since"`
	Last  time.Time `json:"last"`
	// Attempts counts the refused tries since Since.
	Attempts int `json:"attempts"`
}

// PrimarySeen is a sight of the acting primary healthy.
type PrimarySeen struct {
	Node string `json:"node"`
	// WAL is its WAL position ("0/3000060"); At when the check that read
	// it began.
	WAL string    `json:"wal"`
	At  time.Time `json:"at"`
	// SyncStandbys are the standbys it waited for then: with synchronous
	// replication, automatic failover promotes only one of them.
	SyncStandbys []string `json:"sync_standbys"`
}

// Status returns a copy of the daemon's status with the operator's view of
// each cluster.
func (d *Daemon) Status() Status {
	return d.withViews(d.status())
}

func (d *Daemon) status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st
	st.Clusters = make(map[string]*ClusterStatus, len(d.st.Clusters))
	for name, cs := range d.st.Clusters {
		c := *cs
		st.Clusters[name] = &c
	}
	if d.st.Engines != nil {
		st.Engines = make(map[string]EngineStatus, len(d.st.Engines))
		for key, es := range d.st.Engines {
			st.Engines[key] = es
		}
	}
	return st
}

// setClusterStatus records the outcome of a cluster's pass, keeping what
// the failover supervisor reports of it (a pass does not know it).
func (d *Daemon) setClusterStatus(cluster string, st *ClusterStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev := d.st.Clusters[cluster]; prev != nil {
		st.FailoverRefused, st.PrimarySeen = prev.FailoverRefused, prev.PrimarySeen
	}
	d.st.Clusters[cluster] = st
}

// refuseFailover records that a failover of the lost acting primary node
// was refused with err, and reports whether the refusal is new, or its
// reason changed (the log says so then; repeats are not worth an error
// line each).
func (d *Daemon) refuseFailover(cluster, node string, err error, now time.Time) (news bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.st.Clusters[cluster]
	if st == nil { // before the cluster's first pass has ended
		st = &ClusterStatus{Actions: []string{}}
		d.st.Clusters[cluster] = st
	}
	r := &st.FailoverRefused
	if r.Node != node || r.Since.IsZero() {
		*r = FailoverRefusal{Node: node, Since: now}
	}
	news = r.Error != err.Error()
	r.Error, r.Last = err.Error(), now
	r.Attempts++
	d.m.failoverRefused.WithLabelValues(cluster).Set(1)
	d.m.refusedClusters[cluster] = true
	return news
}

// clearFailoverRefusal forgets a cluster's refused failover (a failover is
// done, or the acting primary is seen healthy) and reports whether there
// was one.
func (d *Daemon) clearFailoverRefusal(cluster string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.clearFailoverRefusalLocked(cluster)
}

// primaryHealthy takes the supervisor's sight of a healthy acting primary:
// a refusal is over, and the sight is shown.
func (d *Daemon) primaryHealthy(cluster string, last reconcile.LastSeen) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clearFailoverRefusalLocked(cluster) {
		d.history.forget(cluster, "failover-refused")
	}
	if st := d.st.Clusters[cluster]; st != nil && last.Node != "" {
		st.PrimarySeen = &PrimarySeen{Node: last.Node, WAL: reconcile.FormatLSN(last.WAL), At: last.At, SyncStandbys: slices.Clone(last.SyncStandbys)}
	}
}

func (d *Daemon) clearFailoverRefusalLocked(cluster string) bool {
	st := d.st.Clusters[cluster]
	if st == nil || st.FailoverRefused.Since.IsZero() {
		return false
	}
	st.FailoverRefused = FailoverRefusal{}
	d.m.failoverRefused.WithLabelValues(cluster).Set(0)
	d.m.refusedClusters[cluster] = true
	return true
}

// reportRefusals sets pacsd_failover_refused for every cluster of the spec
// in force, drops it for clusters no longer declared, and forgets the
// refusals of clusters whose automatic failover was turned off (nothing
// will try again, or clear them). d.mu must be held.
func (d *Daemon) reportRefusals() {
	declared := map[string]bool{}
	for _, c := range d.file.Clusters {
		declared[c.Name] = true
		if !c.Failover.Automatic {
			d.clearFailoverRefusalLocked(c.Name)
		}
		refused := 0.0
		if st := d.st.Clusters[c.Name]; st != nil && !st.FailoverRefused.Since.IsZero() {
			refused = 1
		}
		d.m.failoverRefused.WithLabelValues(c.Name).Set(refused)
		d.m.refusedClusters[c.Name] = true
	}
	for name := range d.m.refusedClusters {
		if !declared[name] {
			d.m.failoverRefused.DeleteLabelValues(name)
			delete(d.m.refusedClusters, name)
		}
	}
}

// notReady lists why the daemon is not ready; none when it is. A cluster
// whose last pass was partial keeps the daemon not ready, so that an
// operator sees it, and the reason says that the rest is converged.
func (d *Daemon) notReady() []string {
	st := d.status() // the passes only: a view without a pass is no failure
	if !st.Passed {
		return []string{"the first pass has not ended yet"}
	}
	var reasons []string
	for name, cs := range st.Clusters {
		switch cs.Result {
		case "ok", "paused":
		case "held":
			reasons = append(reasons, fmt.Sprintf("cluster %q: %s", name, cs.Error))
		case "partial":
			reasons = append(reasons, fmt.Sprintf("cluster %q: converged but for nodes whose Docker engine does not answer: %s", name, cs.Error))
		default:
			reasons = append(reasons, fmt.Sprintf("cluster %q: last pass failed: %s", name, cs.Error))
		}
	}
	sort.Strings(reasons)
	return reasons
}
