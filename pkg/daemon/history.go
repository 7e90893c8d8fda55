package daemon

import (
	"context"
	"sort"
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
	// said is the last reason and result of each decision (cluster, node,
	// kind): a decision repeated at every pass is kept once.
	said  map[[3]string]string
	queue chan reconcile.Event
	log   EventLog // nil: kept in memory only
}

func newHistory() *history {
	return &history{recent: map[string][]reconcile.Event{}, lastOf: map[string]map[string]reconcile.Event{},
		queue: make(chan reconcile.Event, historyQueue), said: map[[3]string]string{}}
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
	h := d.history
	h.mu.Lock()
	if e.Duration == "" {
		k, v := [3]string{e.Cluster, e.Node, e.Kind}, e.Reason+"\x00"+e.Result
		if h.said[k] == v {
			h.mu.Unlock()
			return
		}
		h.said[k] = v
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
	d.m.countEvent(e)
	if e.Duration != "" && e.Node != "" {
		// An action on the node ended: the long work its progress lines
		// showed (a base backup, a rewind, an image pull) is over.
		d.workDone(e.Node)
	}
	select {
	case h.queue <- e:
	default:
		d.m.eventsDropped.Inc()
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
