package daemon

import (
	"runtime"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// metrics are the daemon's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg        *prometheus.Registry
	passes     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	actions    *prometheus.CounterVec
	drift      *prometheus.CounterVec
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	failovers  *prometheus.CounterVec
	// engineUp is 1 while a host's engine answers, 0 while it does not.
	engineUp *prometheus.GaugeVec
	// failoverRefused is 1 while a cluster's failover is refused.
	failoverRefused *prometheus.GaugeVec
	// leader is 1 while this pacsd leads a cluster (pacsd on every host).
	leader *prometheus.GaugeVec
	// lease is 1 while this pacsd holds a cluster's primary lease.
	lease *prometheus.GaugeVec
	// fences counts the fences of this host's primary on a lost lease.
	fences        *prometheus.CounterVec
	switchovers   *prometheus.CounterVec
	eventsDropped prometheus.Counter
	buildInfo     *prometheus.GaugeVec
	// Per node and per cluster, as last observed (setNodes).
	nodeUp, nodeRole, nodeLag, nodeLagSeconds, nodeTimeline, slotRetained, nodeRepl *prometheus.GaugeVec
	slotMax, maxLag, acting, epoch, primaries                                       *prometheus.GaugeVec
	// nodesMu keeps setNodes of a pass and of the view's refresh apart.
	paused     *prometheus.GaugeVec
	nodesMu    sync.Mutex
	observedAt *prometheus.GaugeVec
	// all are pacsd's own collectors.
	all []prometheus.Collector
	// refusedClusters are the clusters failoverRefused has a series of;
	// guarded by Daemon.mu, like the status the gauge follows.
	refusedClusters map[string]bool
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_reconcile_passes_total",
			Help: "Passes of a cluster, by result (ok, partial: converged but for the nodes of an engine that does not answer, error).",
		}, []string{"cluster", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pacsd_reconcile_pass_duration_seconds",
			Help:    "How long a pass of a cluster took, by result.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"cluster", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_actions_total",
			Help: "Actions carried out, by cluster, kind and result (ok, error).",
		}, []string{"cluster", "kind", "result"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_drift_repairs_total",
			Help: "Actions done in passes not caused by a change of the topology file, by kind of action: what drifted and was put back.",
		}, []string{"cluster", "kind"}),
		switchovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_switchovers_total",
			Help: "Switchovers carried out by this pacsd, by result (ok, error).",
		}, []string{"cluster", "result"}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pacsd_events_dropped_total",
			Help: "Events of the history that the cluster store did not keep (it did not answer, or too many waited).",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_build_info",
			Help: "Always 1; the labels say which pacsd runs.",
		}, []string{"version", "goversion"}),
		nodeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_up",
			Help: "1 while a node's server answers, 0 otherwise, as last observed.",
		}, []string{"cluster", "node", "host"}),
		nodeRole: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_role",
			Help: "1 for the role a node was last observed in (primary, standby, down, stopped, unknown).",
		}, []string{"cluster", "node", "role"}),
		nodeLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_lag_bytes",
			Help: "How far a standby's replayed WAL is behind the acting primary's WAL, in bytes.",
		}, []string{"cluster", "node"}),
		nodeLagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_lag_seconds",
			Help: "A streaming standby's replay lag as the primary reports it (pg_stat_replication.replay_lag), in seconds.",
		}, []string{"cluster", "node"}),
		nodeTimeline: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_timeline",
			Help: "The timeline a node's server is on.",
		}, []string{"cluster", "node"}),
		slotRetained: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_slot_retained_bytes",
			Help: "WAL the standby's replication slot holds back on the primary, in bytes.",
		}, []string{"cluster", "node"}),
		slotMax: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_max_slot_wal_bytes",
			Help: "The most WAL a slot may hold back (max_slot_wal_keep_size), in bytes; absent when unlimited.",
		}, []string{"cluster"}),
		nodeRepl: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_node_replication_state",
			Help: "1 for a standby's replication state (streaming, catching up, not connected).",
		}, []string{"cluster", "node", "state"}),
		maxLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_max_lag_bytes",
			Help: "failover.max_lag of a cluster, in bytes: a standby further behind is never promoted.",
		}, []string{"cluster"}),
		acting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_acting_primary",
			Help: "1 for the node that acts as a cluster's primary; no series while none is known.",
		}, []string{"cluster", "node"}),
		epoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_epoch",
			Help: "A cluster's fencing epoch: it grows by one with every failover and switchover.",
		}, []string{"cluster"}),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_paused",
			Help: "1 while a cluster is in maintenance mode ('pacsd pause'): observed and reported, no action taken, no failover.",
		}, []string{"cluster"}),
		observedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_last_observed_timestamp_seconds",
			Help: "When a cluster's nodes were last observed, as a Unix time: the per-node metrics are that old.",
		}, []string{"cluster"}),
		primaries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_cluster_writable_nodes",
			Help: "How many of a cluster's nodes were last observed accepting writes (1 is healthy; 0 means no primary).",
		}, []string{"cluster"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacsd_config_last_reload_successful",
			Help: "Whether the last load of the topology file was taken (1) or refused (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pacsd_config_last_reload_success_timestamp_seconds",
			Help: "When the topology file was last taken, as a Unix time.",
		}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_failovers_total",
			Help: "Automatic failovers, by result (promoted, refused: not fenced or no standby qualified, error).",
		}, []string{"cluster", "result"}),
		engineUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_engine_up",
			Help: "Whether the container engine of a host answered the daemon's last check (1) or not (0); host \"local\" is the engine of nodes without host. Checked at every pass.",
		}, []string{"host"}),
		failoverRefused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_failover_refused",
			Help: "1 while the automatic failover of a cluster's lost primary is refused (its fence not confirmed, e.g. its engine unreachable, or no standby qualified), 0 otherwise; /status says why.",
		}, []string{"cluster"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_leader",
			Help: "With pacsd on every host (daemon.etcd): 1 while this pacsd leads the cluster (it alone fails over), 0 otherwise.",
		}, []string{"cluster"}),
		lease: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pacsd_primary_lease_held",
			Help: "With pacsd on every host (daemon.etcd): 1 while this pacsd holds the cluster's primary lease (its acting primary runs on this host), 0 otherwise.",
		}, []string{"cluster"}),
		fences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_self_fences_total",
			Help: "With pacsd on every host (daemon.etcd): fences of this host's primary because its lease was lost or the primary was lost.",
		}, []string{"cluster"}),
		refusedClusters: map[string]bool{},
	}
	m.all = []prometheus.Collector{m.switchovers, m.eventsDropped, m.buildInfo, m.nodeUp, m.nodeRole, m.nodeLag, m.nodeLagSeconds, m.nodeTimeline,
		m.slotRetained, m.slotMax, m.nodeRepl, m.maxLag, m.acting, m.epoch, m.primaries, m.observedAt, m.paused,
		m.passes, m.duration, m.actions, m.drift, m.reloadOK, m.reloadTime, m.failovers, m.engineUp, m.failoverRefused, m.leader, m.lease, m.fences}
	m.reg.MustRegister(m.switchovers, m.eventsDropped, m.buildInfo, m.nodeUp, m.nodeRole, m.nodeLag, m.nodeLagSeconds, m.nodeTimeline,
		m.slotRetained, m.slotMax, m.nodeRepl, m.maxLag, m.acting, m.epoch, m.primaries, m.observedAt, m.paused)
	m.reg.MustRegister(m.passes, m.duration, m.actions, m.drift, m.reloadOK, m.reloadTime, m.failovers, m.engineUp, m.failoverRefused, m.leader, m.lease, m.fences,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if version == "" {
		version = "unknown"
	}
	m.buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	return m
}

// countEvent counts an action of the event history (an event with a
// duration) by cluster, kind and result, and switchovers by result.
func (m *metrics) countEvent(e reconcile.Event) {
	if e.Duration == "" {
		return
	}
	result := "ok"
	if !strings.HasPrefix(e.Result, "ok") {
		result = "error"
	}
	m.actions.WithLabelValues(e.Cluster, e.Kind, result).Inc()
	if e.Kind == string(reconcile.Switchover) {
		m.switchovers.WithLabelValues(e.Cluster, result).Inc()
	}
}

// setNodes sets the per-node and per-cluster gauges from a cluster's view;
// series of roles and states a node is no longer in are dropped. observed
// says that v comes from an observation (its time is exported).
func (m *metrics) setNodes(c *spec.Cluster, v reconcile.ClusterView, observed bool) {
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	if observed {
		m.observedAt.WithLabelValues(c.Name).SetToCurrentTime()
	}
	for _, g := range []*prometheus.GaugeVec{m.nodeUp, m.nodeRole, m.nodeLag, m.nodeLagSeconds, m.nodeTimeline, m.slotRetained, m.nodeRepl, m.acting} {
		g.DeletePartialMatch(prometheus.Labels{"cluster": c.Name})
	}
	writable := 0
	for _, n := range v.Nodes {
		host := n.Host
		if host == "" {
			host = "local"
		}
		up := 0.0
		if n.Role == "primary" || n.Role == "standby" {
			up = 1
		}
		if n.Role == "primary" {
			writable++
		}
		m.nodeUp.WithLabelValues(c.Name, n.Node, host).Set(up)
		m.nodeRole.WithLabelValues(c.Name, n.Node, n.Role).Set(1)
		if n.Timeline > 0 {
			m.nodeTimeline.WithLabelValues(c.Name, n.Node).Set(float64(n.Timeline))
		}
		if n.LagBytes != nil {
			m.nodeLag.WithLabelValues(c.Name, n.Node).Set(float64(*n.LagBytes))
		}
		if n.LagSeconds != nil {
			m.nodeLagSeconds.WithLabelValues(c.Name, n.Node).Set(*n.LagSeconds)
		}
		if n.SlotRetained != nil {
			m.slotRetained.WithLabelValues(c.Name, n.Node).Set(float64(*n.SlotRetained))
		}
		if n.Replication != "" {
			m.nodeRepl.WithLabelValues(c.Name, n.Node, n.Replication).Set(1)
		}
	}
	if v.Acting != "" {
		m.acting.WithLabelValues(c.Name, v.Acting).Set(1)
	}
	m.epoch.WithLabelValues(c.Name).Set(float64(v.Epoch))
	m.primaries.WithLabelValues(c.Name).Set(float64(writable))
	m.maxLag.WithLabelValues(c.Name).Set(float64(c.Failover.MaxLag))
	if max := int64(c.Replication.MaxSlotWAL); max > 0 {
		m.slotMax.WithLabelValues(c.Name).Set(float64(max))
	} else {
		m.slotMax.DeleteLabelValues(c.Name)
	}
}

// forgetCluster drops every series of a cluster the file no longer declares.
func (m *metrics) forgetCluster(cluster string) {
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	for _, c := range m.all {
		if g, ok := c.(*prometheus.GaugeVec); ok {
			g.DeletePartialMatch(prometheus.Labels{"cluster": cluster})
		}
		if cv, ok := c.(*prometheus.CounterVec); ok {
			cv.DeletePartialMatch(prometheus.Labels{"cluster": cluster})
		}
	}
}
