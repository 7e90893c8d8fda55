package state_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// TestE2EEtcdEvents: the events two hosts' pacsd append are seen by both,
// oldest first; since filters; etcd keeps at most EventsKept+100 events of
// a cluster, the newest, and Events returns the newest EventsKept.
func TestE2EEtcdEvents(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	a, b := openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	ev := func(i int, node string) reconcile.Event {
		return reconcile.Event{At: t0.Add(time.Duration(i) * time.Millisecond), Cluster: "pacs", Node: node, Kind: "start-container",
			Reason: fmt.Sprintf("event %d", i), Result: "ok", Duration: "10ms", Checksum: "sha256:abc"}
	}
	if got, err := a.Events("pacs", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("events of a cluster without any: %v, %v", got, err)
	}
	var want []reconcile.Event
	for i := range 6 {
		e, host := ev(i, "db1"), a
		if i%2 == 1 {
			e, host = ev(i, "db2"), b
		}
		want = append(want, e)
		if err := host.AppendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	// Another cluster's events are its own.
	if err := a.AppendEvent(reconcile.Event{At: t0, Cluster: "other", Kind: "drift", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*state.Etcd{a, b} {
		got, err := h.Events("pacs", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("events seen by host %s (-want +got):\n%s", h.Host(), diff)
		}
		got, err = h.Events("pacs", want[4].At)
		if err != nil || !cmp.Equal(got, want[4:]) {
			t.Fatalf("events since the fifth seen by host %s: %v, %v; want %v", h.Host(), got, err, want[4:])
		}
	}
	if _, err := a.Events("../x", time.Time{}); err == nil {
		t.Error("Events of an unsafe cluster name: no error")
	}
	if err := a.AppendEvent(reconcile.Event{Cluster: "a/b", Kind: "drift", Result: "ok"}); err == nil {
		t.Error("AppendEvent of an unsafe cluster name: no error")
	}

	// The bound: both hosts append at once, the oldest are deleted.
	n := reconcile.EventsKept + 150
	var wg sync.WaitGroup
	for w, h := range []*state.Etcd{a, b} {
		wg.Go(func() {
			for i := w; i < n; i += 2 {
				if err := h.AppendEvent(ev(1000+i, h.Host())); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ep})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(context.Background(), "/pacsd-test/clusters/pacs/events/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count > reconcile.EventsKept+100 || resp.Count < reconcile.EventsKept {
		t.Errorf("etcd keeps %d events after %d appends, want between %d and %d", resp.Count, n+len(want), reconcile.EventsKept, reconcile.EventsKept+100)
	}
	got, err := b.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != reconcile.EventsKept {
		t.Fatalf("Events returned %d events, want %d", len(got), reconcile.EventsKept)
	}
	if first, last := got[0].Reason, got[len(got)-1].Reason; first != fmt.Sprintf("event %d", 1000+n-reconcile.EventsKept) || last != fmt.Sprintf("event %d", 1000+n-1) {
		t.Errorf("Events returned %q to %q, want the newest %d (event %d to event %d)", first, last, reconcile.EventsKept, 1000+n-reconcile.EventsKept, 1000+n-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i].At.Before(got[i-1].At) {
			t.Fatalf("event %d (%s) is older than the one before it (%s)", i, got[i].Reason, got[i-1].Reason)
		}
	}
	// The other cluster's event is untouched.
	if got, err := a.Events("other", time.Time{}); err != nil || len(got) != 1 {
		t.Errorf("events of the other cluster: %v, %v; want one", got, err)
	}
}
