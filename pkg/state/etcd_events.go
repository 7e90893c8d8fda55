package state

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// etcdEventsSlack is how many events beyond reconcile.EventsKept etcd keeps
// before the oldest are deleted: a deletion every so many appends, not one
// on each.
const etcdEventsSlack = 100

// eventsPrefix is where cluster's events are kept: one key each,
// clusters/C/events/ID, whose IDs sort as the events were appended.
func (e *Etcd) eventsPrefix(cluster string) (string, error) {
	if !safeName.MatchString(cluster) {
		return "", fmt.Errorf("cluster name %q cannot name an etcd key of events", cluster)
	}
	return e.key("clusters", cluster, "events") + "/", nil
}

// eventHost is what an event's key names of the pacsd that appended it: its
// host block, else the machine's host name.
func (e *Etcd) eventHost() string {
	if e.o.Host != "" {
		return e.o.Host
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return strings.ReplaceAll(h, "/", "_")
	}
	return "unknown"
}

// AppendEvent adds ev to the event history of its cluster (ev.Cluster),
// shared by the pacsd of every host: one key under clusters/C/events/, named
// by the time of the append (nanoseconds, zero-padded, so that keys sort as
// the events were appended) and this pacsd's host; a key is never
// overwritten. Once more than reconcile.EventsKept+100 events are kept, the
// oldest are deleted down to reconcile.EventsKept.
func (e *Etcd) AppendEvent(ev reconcile.Event) error {
	pfx, err := e.eventsPrefix(ev.Cluster)
	if err != nil {
		return err
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("while encoding an event of cluster %q: %w", ev.Cluster, err)
	}
	ctx, cancel := e.ctx()
	defer cancel()
	host := e.eventHost()
	ns := time.Now().UnixNano()
	var count int64
	for put := false; !put; ns++ {
		k := pfx + fmt.Sprintf("%020d-%s", ns, host)
		resp, err := e.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(b)), clientv3.OpGet(pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())).
			Commit()
		if err != nil {
			return unreachable(fmt.Sprintf("recording an event of cluster %q", ev.Cluster), err)
		}
		if put = resp.Succeeded; put {
			count = resp.Responses[1].GetResponseRange().Count
		}
	}
	if count <= reconcile.EventsKept+etcdEventsSlack {
		return nil
	}
	// The newest EventsKept stay: the key just older than them, read now
	// (another host may have trimmed since the count above), is the newest
	// that goes. Trimming by a count read before another host's trim would
	// delete too many.
	kept, err := e.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend),
		clientv3.WithLimit(reconcile.EventsKept+1), clientv3.WithKeysOnly())
	if err != nil {
		return unreachable(fmt.Sprintf("looking for the oldest events of cluster %q", ev.Cluster), err)
	}
	if len(kept.Kvs) <= reconcile.EventsKept {
		return nil
	}
	last := string(kept.Kvs[len(kept.Kvs)-1].Key)
	if _, err := e.cli.Delete(ctx, pfx, clientv3.WithRange(last+"\x00")); err != nil {
		return unreachable(fmt.Sprintf("deleting the oldest events of cluster %q", ev.Cluster), err)
	}
	return nil
}

// Events returns the event history of cluster from since on (the zero time:
// all of it), oldest first: the newest reconcile.EventsKept at most. A key
// that holds no event is skipped.
func (e *Etcd) Events(cluster string, since time.Time) ([]reconcile.Event, error) {
	pfx, err := e.eventsPrefix(cluster)
	if err != nil {
		return nil, err
	}
	ctx, cancel := e.ctx()
	defer cancel()
	resp, err := e.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, unreachable(fmt.Sprintf("reading the events of cluster %q", cluster), err)
	}
	evs := make([]reconcile.Event, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ev reconcile.Event
		if json.Unmarshal(kv.Value, &ev) != nil {
			continue
		}
		evs = append(evs, ev)
	}
	return newestSince(evs, since), nil
}
