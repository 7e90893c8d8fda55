package daemon

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// EventLog keeps a cluster's event history in the cluster store (the state
// directory, or etcd), bounded to reconcile.EventsKept per cluster.
type EventLog interface {
	AppendEvent(e reconcile.Event) error
	Events(cluster string, since time.Time) ([]reconcile.Event, error)
}

// historyQueue is how many events wait for the store at most; beyond it
// events are dropped (counted in pacsd_events_dropped_total) rather than
// holding up the action or decision that made them.
const historyQueue = 1000

// history records events: at once in memory (the last per node, the recent
// ones), and in the store by a writer of its own, so that a store that
// does not answer (etcd during an outage) never delays a failover.
type history struct {
	mu     sync.Mutex
	recent map[string][]reconcile.Event          // by cluster, oldest first, at most EventsKept
	lastOf map[string]map[string]reconcile.Event // cluster -> node -> last event
	// said is the last result of each decision not to act, and "failed"
	// after a failed action, by (cluster, node, kind, target): a decision
	// repeated at every pass, or an action that keeps failing while it is
	// retried, is kept once (see repeated); reported are the problems of
	// the running pass of each cluster (see endPass).
	said     map[[4]string]string
	reported map[string]map[[4]string]bool
	queue    chan reconcile.Event
}

func newHistory() *history {
	return &history{recent: map[string][]reconcile.Event{}, lastOf: map[string]map[string]reconcile.Event{},
		queue: make(chan reconcile.Event, historyQueue), said: map[[4]string]string{}, reported: map[string]map[[4]string]bool{}}
}

// record takes one event: the checksum of the file in force is added, the
// metrics counted, and it is queued for the store.
func (d *Daemon) record(e reconcile.Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if e.Checksum == "" {
		d.mu.Lock()
		if len(d.st.Checksum) >= 12 {
			e.Checksum = d.st.Checksum[:12]
		}
		d.mu.Unlock()
	}
	d.m.countEvent(e) // every action counts, kept in the history or not
	h := d.history
	h.mu.Lock()
	if h.repeated(e) {
		h.mu.Unlock()
		return
	}
	r := append(h.recent[e.Cluster], e)
	if len(r) > reconcile.EventsKept {
		r = append([]reconcile.Event(nil), r[len(r)-reconcile.EventsKept:]...)
	}
	h.recent[e.Cluster] = r
	if e.Node != "" {
		if h.lastOf[e.Cluster] == nil {
			h.lastOf[e.Cluster] = map[string]reconcile.Event{}
		}
		h.lastOf[e.Cluster][e.Node] = e
	}
	h.mu.Unlock()
	if e.Duration != "" && e.Node != "" {
		// An action on the node ended: the long work its progress lines
		// showed (a base backup, a rewind, an image pull) is over.
		d.workDone(e.Cluster, e.Node)
	}
	select {
	case h.queue <- e:
	default:
		d.m.eventsDropped.Inc()
	}
}

// repeated reports whether e repeats what the history holds already: a
// decision not to act with the same result as the last one of its
// cluster, node, kind and target (a problem's target is its summary, so
// that its detail, which may quote an address, does not make it new), or
// a failed action right after the same failed; it remembers e otherwise.
// h.mu must be held.
func (h *history) repeated(e reconcile.Event) bool {
	k := [4]string{e.Cluster, e.Node, e.Kind, e.Target}
	v := e.Result
	if e.Duration != "" {
		if !strings.HasPrefix(e.Result, "failed") {
			delete(h.said, k)
			return false
		}
		v = "failed"
	}
	if e.Kind == "problem" {
		if h.reported[e.Cluster] == nil {
			h.reported[e.Cluster] = map[[4]string]bool{}
		}
		h.reported[e.Cluster][k] = true
	}
	if h.said[k] == v {
		return true
	}
	h.said[k] = v
	return false
}

// endPass forgets the problems of cluster that its pass no longer
// reported: reported again later, they are kept again.
func (h *history) endPass(cluster string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.said {
		if k[0] == cluster && k[2] == "problem" && !h.reported[cluster][k] {
			delete(h.said, k)
		}
	}
	delete(h.reported, cluster)
}

// forget forgets the decisions of kind about cluster: the next one is kept
// again (a failover refused again after the primary was seen healthy).
func (h *history) forget(cluster, kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.said {
		if k[0] == cluster && k[2] == kind {
			delete(h.said, k)
		}
	}
}

// last returns the last event about node of cluster.
func (h *history) last(cluster, node string) (reconcile.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.lastOf[cluster][node]
	return e, ok
}

// writeHistory hands queued events to the store until ctx is done.
func (d *Daemon) writeHistory(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.drainHistory()
			return
		case e := <-d.history.queue:
			el := d.eventLog()
			if el == nil {
				continue
			}
			if err := el.AppendEvent(e); err != nil {
				d.m.eventsDropped.Inc()
				d.log.Warn("cannot keep an event in the cluster store; it is shown by this pacsd only until it restarts", "cluster", e.Cluster, "kind", e.Kind, "error", err.Error())
			}
		}
	}
}

// drainHistoryFor bounds how long a stopping daemon keeps handing queued
// events to the store.
const drainHistoryFor = 2 * time.Second

// drainHistory hands what is still queued to the store, for at most
// drainHistoryFor.
func (d *Daemon) drainHistory() {
	el := d.eventLog()
	by := time.Now().Add(drainHistoryFor)
	for el != nil && time.Now().Before(by) {
		select {
		case e := <-d.history.queue:
			_ = el.AppendEvent(e)
		default:
			return
		}
	}
}

// eventLog is the store's event history, nil when the store keeps none.
func (d *Daemon) eventLog() EventLog {
	snap := d.snap.Load()
	if snap == nil {
		return nil
	}
	el, _ := snap.shared.(EventLog)
	return el
}

// Events returns the events of cluster ("" for every cluster of the file)
// since since, oldest first: from the store when it keeps them, else
// those this pacsd recorded since it started.
func (d *Daemon) Events(cluster string, since time.Time) ([]reconcile.Event, error) {
	var clusters []string
	if cluster != "" {
		clusters = []string{cluster}
	} else if snap := d.snap.Load(); snap != nil {
		for _, c := range snap.file.Clusters {
			clusters = append(clusters, c.Name)
		}
	}
	var all []reconcile.Event
	el := d.eventLog()
	for _, name := range clusters {
		if el != nil {
			es, err := el.Events(name, since)
			if err != nil {
				return nil, err
			}
			all = append(all, es...)
			continue
		}
		d.history.mu.Lock()
		for _, e := range d.history.recent[name] {
			if !e.At.Before(since) {
				all = append(all, e)
			}
		}
		d.history.mu.Unlock()
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
	return all, nil
}
