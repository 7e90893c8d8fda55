package daemon

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// ViewRefresh is how often the operator's view of a cluster is observed
// again when no pass has observed it meanwhile: a standby that streams
// again after a pass restarted it shows so within it.
var ViewRefresh = 3 * time.Second

// viewTimeout bounds one refresh of a cluster's view.
const viewTimeout = 10 * time.Second

// views keeps the operator's view of each cluster and the long work in
// progress on its nodes.
type views struct {
	mu    sync.Mutex
	by    map[string]reconcile.ClusterView
	at    map[string]time.Time
	work  map[[2]string]*reconcile.WorkView // by cluster and node
	begun map[[2]string]time.Time
}

func newViews() *views {
	return &views{by: map[string]reconcile.ClusterView{}, at: map[string]time.Time{},
		work: map[[2]string]*reconcile.WorkView{}, begun: map[[2]string]time.Time{}}
}

// controller names who decides for the clusters of this pacsd with one
// controller.
func controller() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "this machine"
	}
	return "pacsd on " + h + " (one controller)"
}

// observed takes one observation of c into its view and the per-node
// metrics (a pass's, or the view's own refresh); obs nil with err when the
// observation failed.
func (d *Daemon) observed(c *spec.Cluster, obs *reconcile.Observed, err error) {
	v := reconcile.View(c, obs)
	v.ObservedAt = time.Now().UTC().Format(time.RFC3339)
	if err != nil {
		v.Problem = err.Error()
	}
	if d.hosted == nil {
		v.Controller = controller()
	}
	d.views.mu.Lock()
	if prev, ok := d.views.by[c.Name]; ok && obs == nil {
		// Keep what was last known of the nodes; the problem says why it
		// is not fresh.
		prev.Problem, prev.ObservedAt = v.Problem, v.ObservedAt
		v = prev
	}
	d.views.by[c.Name] = v
	d.views.at[c.Name] = time.Now()
	d.views.mu.Unlock()
	if obs != nil {
		d.m.setNodes(c, v, true)
	} else {
		// Nothing is known of the nodes now: the metrics say unknown (no
		// node up, none writable) rather than what was last seen.
		d.m.setNodes(c, reconcile.View(c, nil), false)
	}
}

// forgetViews drops the views and metrics of clusters the file no longer
// declares.
func (d *Daemon) forgetViews(f *spec.File) {
	d.views.mu.Lock()
	var gone []string
	for name := range d.views.by {
		if !declares(f, name) {
			gone = append(gone, name)
			delete(d.views.by, name)
			delete(d.views.at, name)
		}
	}
	for k := range d.views.work {
		if !declares(f, k[0]) {
			delete(d.views.work, k)
			delete(d.views.begun, k)
		}
	}
	d.views.mu.Unlock()
	for _, name := range gone {
		d.m.forgetCluster(name)
	}
}

// refreshViews observes, every ViewRefresh, each cluster whose view no pass
// has refreshed meanwhile, lightly (containers and servers only:
// reconcile.Deps.Light). Observing only reads.
func (d *Daemon) refreshViews(ctx context.Context) {
	tick := time.NewTicker(ViewRefresh)
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
		light := snap.deps
		light.Light = true
		for _, c := range snap.file.Clusters {
			d.paused(c.Name) // the view and the metric follow pause and resume
			d.views.mu.Lock()
			fresh := time.Since(d.views.at[c.Name]) < ViewRefresh
			d.views.mu.Unlock()
			// Not while a pass runs (it observes, and the engine is busy
			// with its work), nor while the supervisor finds the primary
			// lost: a failover's checks and fence go first.
			if fresh || ctx.Err() != nil || d.passCtx.Load() != nil || d.primaryLost(c.Name) {
				continue
			}
			octx, cancel := context.WithTimeout(ctx, viewTimeout)
			obs, err := reconcile.Observe(octx, c, light)
			cancel()
			if ctx.Err() != nil {
				return
			}
			d.observed(c, obs, err)
		}
	}
}

// progressRE finds the copied and total kB and the percent in the progress
// lines of pg_basebackup and pg_rewind ("12345/67890 kB (18%)").
var progressRE = regexp.MustCompile(`(\d+)/(\d+) kB \((\d+)%\)`)

// progressed takes a progress line of long work on node of cluster into
// its view.
func (d *Daemon) progressed(cluster, node, line string) {
	k := [2]string{cluster, node}
	kind := ""
	switch {
	case strings.Contains(line, "pg_basebackup"):
		kind = "base backup"
	case strings.Contains(line, "pg_rewind"):
		kind = "rewind"
	}
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	w := d.views.work[k]
	if w == nil {
		if kind == "" {
			kind = "long work"
		}
		w = &reconcile.WorkView{Kind: kind, Since: time.Now().UTC().Format(time.RFC3339)}
		d.views.work[k] = w
		d.views.begun[k] = time.Now()
	} else if kind != "" {
		w.Kind = kind
	}
	m := progressRE.FindStringSubmatch(line)
	if m == nil {
		return
	}
	p, _ := strconv.ParseFloat(m[3], 64)
	w.Percent = p
	if elapsed := time.Since(d.views.begun[k]); p > 0 && p < 100 {
		w.Left = (time.Duration(float64(elapsed) * (100 - p) / p)).Round(time.Second).String()
	} else {
		w.Left = ""
	}
}

// workDone ends the long work shown on node of cluster.
func (d *Daemon) workDone(cluster, node string) {
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	delete(d.views.work, [2]string{cluster, node})
	delete(d.views.begun, [2]string{cluster, node})
}

// withViews returns st with each cluster's view, its nodes' work in
// progress and last action; clusters without a pass yet get one too.
func (d *Daemon) withViews(st Status) Status {
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	snap := d.snap.Load()
	for name, v := range d.views.by {
		if snap != nil && !declares(snap.file, name) {
			continue // no longer declared (forgetViews drops it)
		}
		cs := st.Clusters[name]
		if cs == nil {
			cs = &ClusterStatus{Actions: []string{}}
			st.Clusters[name] = cs
		}
		v.Nodes = append([]reconcile.NodeView(nil), v.Nodes...)
		for i := range v.Nodes {
			n := &v.Nodes[i]
			if w := d.views.work[[2]string{name, n.Node}]; w != nil {
				cp := *w
				n.Work = &cp
			}
			if e, ok := d.history.last(name, n.Node); ok {
				n.LastAction = &e
			}
		}
		cs.ClusterView = v
	}
	for name, cs := range st.Clusters {
		if ps, ok := d.pauses.Load(name); ok {
			cs.Paused = ps.(pauseSeen).paused
		}
	}
	return st
}

func orElse(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// declares reports whether f declares a cluster named name.
func declares(f *spec.File, name string) bool {
	return slices.ContainsFunc(f.Clusters, func(c *spec.Cluster) bool { return c.Name == name })
}

// primaryLost reports whether the failover supervisor finds the acting
// primary of cluster lost now.
func (d *Daemon) primaryLost(cluster string) bool {
	lost, _ := d.lost.Load(cluster)
	return lost == true
}
