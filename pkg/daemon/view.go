package daemon

import (
	"context"
	"os"
	"regexp"
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
	work  map[string]*reconcile.WorkView // by node name (progress lines name no cluster)
	begun map[string]time.Time
}

func newViews() *views {
	return &views{by: map[string]reconcile.ClusterView{}, at: map[string]time.Time{},
		work: map[string]*reconcile.WorkView{}, begun: map[string]time.Time{}}
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
		d.m.setNodes(c, v)
	}
}

// refreshViews observes, every ViewRefresh, each cluster whose view no pass
// has refreshed meanwhile. Observing only reads.
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
		for _, c := range snap.file.Clusters {
			d.views.mu.Lock()
			fresh := time.Since(d.views.at[c.Name]) < ViewRefresh
			d.views.mu.Unlock()
			if fresh || ctx.Err() != nil {
				continue
			}
			octx, cancel := context.WithTimeout(ctx, viewTimeout)
			obs, err := reconcile.Observe(octx, c, snap.deps)
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

// progressed takes a progress line of long work on node into its view.
func (d *Daemon) progressed(node, line string) {
	kind := ""
	switch {
	case strings.Contains(line, "pg_basebackup"):
		kind = "base backup"
	case strings.Contains(line, "pg_rewind"):
		kind = "rewind"
	}
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	w := d.views.work[node]
	if w == nil {
		if kind == "" {
			kind = "long work"
		}
		w = &reconcile.WorkView{Kind: kind, Since: time.Now().UTC().Format(time.RFC3339)}
		d.views.work[node] = w
		d.views.begun[node] = time.Now()
	} else if kind != "" {
		w.Kind = kind
	}
	m := progressRE.FindStringSubmatch(line)
	if m == nil {
		return
	}
	p, _ := strconv.ParseFloat(m[3], 64)
	w.Percent = p
	if elapsed := time.Since(d.views.begun[node]); p > 0 && p < 100 {
		w.Left = (time.Duration(float64(elapsed) * (100 - p) / p)).Round(time.Second).String()
	} else {
		w.Left = ""
	}
}

// workDone ends the long work shown on node.
func (d *Daemon) workDone(node string) {
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	delete(d.views.work, node)
	delete(d.views.begun, node)
}

// withViews returns st with each cluster's view, its nodes' work in
// progress and last action; clusters without a pass yet get one too.
func (d *Daemon) withViews(st Status) Status {
	d.views.mu.Lock()
	defer d.views.mu.Unlock()
	for name, v := range d.views.by {
		cs := st.Clusters[name]
		if cs == nil {
			cs = &ClusterStatus{Actions: []string{}}
			st.Clusters[name] = cs
		}
		v.Nodes = append([]reconcile.NodeView(nil), v.Nodes...)
		for i := range v.Nodes {
			n := &v.Nodes[i]
			if w := d.views.work[n.Node]; w != nil {
				cp := *w
				n.Work = &cp
			}
			if e, ok := d.history.last(name, n.Node); ok {
				n.LastAction = &e
			}
		}
		cs.ClusterView = v
	}
	return st
}

func orElse(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}
