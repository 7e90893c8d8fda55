package daemon

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pacsd/pacsd/pkg/reconcile"
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
	fences *prometheus.CounterVec
	// refusedClusters are the clusters failoverRefused has a series of;
	// guarded by Daemon.mu, like the status the gauge follows.
	refusedClusters map[string]bool
}

func newMetrics() *metrics {
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
			Help: "Actions carried out, by kind and result (ok, error).",
		}, []string{"kind", "result"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pacsd_drift_repairs_total",
			Help: "Actions done in passes not caused by a change of the topology file: what drifted and was put back.",
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
	m.reg.MustRegister(m.passes, m.duration, m.actions, m.drift, m.reloadOK, m.reloadTime, m.failovers, m.engineUp, m.failoverRefused, m.leader, m.lease, m.fences,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// actionKinds are the kinds of reconcile's actions, to tell from an error
// of Apply which kind of action failed.
var actionKinds = []reconcile.Kind{
	reconcile.CreateNetwork, reconcile.PullImage, reconcile.MoveAside, reconcile.CreateContainer,
	reconcile.RemoveContainer, reconcile.StartContainer, reconcile.WriteFile, reconcile.ResetSetting,
	reconcile.SetRole, reconcile.DropRole, reconcile.CreateSlot, reconcile.BaseBackup,
	reconcile.Reload, reconcile.Restart,
}

// failedKind returns the kind of the action an error of Apply names, "" when
// the error is not about an action (observation failed, problems in the plan).
// Apply wraps a failed action's error as "...: while KIND TARGET: ...".
func failedKind(err error) string {
	msg := err.Error()
	for _, k := range actionKinds {
		if strings.Contains(msg, ": while "+string(k)+" ") {
			return string(k)
		}
	}
	return ""
}
