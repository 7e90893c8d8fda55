package state_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestE2EEtcdRequests: a request of the command line, against a real
// etcd: the pacsd watching sees it, one take only succeeds, its updates
// keep the asker's lease, a taken request is not cancelled, an untaken one
// is, and a request goes when its asker's session ends.
func TestE2EEtcdRequests(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	cli, a, b := openEtcd(t, ep, "command line"), openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	ctx := context.Background()
	var mu sync.Mutex
	var seen []string
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go a.WatchRequests(wctx, "pacs", func(r reconcile.Request) {
		mu.Lock()
		seen = append(seen, r.ID)
		mu.Unlock()
	})
	r := reconcile.Request{ID: "r1", Cluster: "pacs", Command: reconcile.CommandRestart, Node: "db2", Host: "a", By: "test"}
	if err := cli.PutRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e2e.Poll(10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return context.DeadlineExceeded
		}
		return nil
	}); err != nil {
		t.Fatal("the watch did not see the request")
	}
	took, ok, err := a.TakeRequest(ctx, "pacs", "r1")
	if err != nil || !ok || took.State != reconcile.RequestRunning || took.TakenBy != "a" {
		t.Fatalf("the first take: %+v, %v, %v", took, ok, err)
	}
	if _, ok, err := b.TakeRequest(ctx, "pacs", "r1"); err != nil || ok {
		t.Fatalf("a second take: %v, %v; want it refused", ok, err)
	}
	took.Say("restarting")
	if err := a.UpdateRequest(ctx, took); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := cli.GetRequest(ctx, "pacs", "r1"); err != nil || !ok || got.Said != 1 || got.Lines[0] != "restarting" {
		t.Fatalf("the request as the command line reads it: %+v, %v, %v", got, ok, err)
	}
	if ok, err := cli.CancelRequest(ctx, "pacs", "r1"); err != nil || ok {
		t.Fatalf("a cancel of a taken request: %v, %v; want it refused", ok, err)
	}
	if err := cli.PutRequest(ctx, reconcile.Request{ID: "r2", Cluster: "pacs", Command: reconcile.CommandReinit, Node: "db3", Host: "b"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := cli.CancelRequest(ctx, "pacs", "r2"); err != nil || !ok {
		t.Fatalf("a cancel of a request not taken: %v, %v", ok, err)
	}
	if _, ok, _ := b.TakeRequest(ctx, "pacs", "r2"); ok {
		t.Fatal("a cancelled request was taken")
	}
	// The asker goes: its session's lease takes its request with it, also
	// after the pacsd that took it updated it.
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.GetRequest(ctx, "pacs", "r1"); err != nil || ok {
		t.Fatalf("the request after its asker's session ended: %v, %v; want it gone", ok, err)
	}
	if err := a.UpdateRequest(ctx, took); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.GetRequest(ctx, "pacs", "r1"); ok {
		t.Error("an update put back a request whose asker went")
	}
}
