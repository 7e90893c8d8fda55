package state_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// locked takes the cluster's lock of e for the rest of the test (Save
// writes only under it).
func locked(t *testing.T, e *state.Etcd, cluster string) func() {
	t.Helper()
	unlock, err := e.Lock(context.Background(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return unlock
}

func openEtcd(t *testing.T, endpoints []string, host string) *state.Etcd {
	t.Helper()
	e, err := state.OpenEtcd(state.EtcdOptions{Endpoints: endpoints, Prefix: "/pacsd-test", Host: host, SessionTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestE2EEtcdRecord: the record is written by compare-and-swap: a pacsd
// that read an older record writes nothing; a damaged record is reported
// as damaged; the last sight round-trips.
func TestE2EEtcdRecord(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	a, b := openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	st, err := a.Load("pacs")
	if err != nil || !st.Same(reconcile.ClusterState{}) {
		t.Fatalf("Load of nothing: %+v, %v", st, err)
	}
	if _, err := b.Load("pacs"); err != nil {
		t.Fatal(err)
	}
	want := reconcile.ClusterState{Acting: "db1", Epoch: 0, Rounds: 1, Placed: map[string]reconcile.Placement{"db1": {Host: "a", Restart: "no"}}}
	if err := a.Save("pacs", want); !errors.Is(err, state.ErrRecordChanged) {
		t.Fatalf("a Save without the cluster's lock: %v, want ErrRecordChanged", err)
	}
	unlockA := locked(t, a, "pacs")
	if err := a.Save("pacs", want); err != nil {
		t.Fatal(err)
	}
	unlockA()
	unlockB := locked(t, b, "pacs")
	// b read the cluster before a wrote it: its write is refused.
	if err := b.Save("pacs", reconcile.ClusterState{Acting: "db2"}); !errors.Is(err, state.ErrRecordChanged) {
		t.Fatalf("a Save over a record written since it was read: %v, want ErrRecordChanged", err)
	}
	got, err := b.Load("pacs")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("record (-want +got):\n%s", diff)
	}
	got.Rounds++
	if err := b.Save("pacs", got); err != nil {
		t.Fatalf("a Save after a Load: %v", err)
	}
	ls := reconcile.LastSeen{Node: "db1", WAL: 42, SyncStandbys: []string{"db2"}, At: time.Now().UTC().Truncate(time.Millisecond)}
	if err := a.SaveSeen("pacs", ls); err != nil {
		t.Fatal(err)
	}
	if seen, err := b.LoadSeen("pacs"); err != nil || !cmp.Equal(seen, ls) {
		t.Fatalf("LoadSeen: %+v, %v; want %+v", seen, err, ls)
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: ep})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, bad := range []string{"", "{", `{"acting":"db1"}`, `{"acting":"db1","epoch":-1}`, `{"acting":"db1","epoch":1,"extra":true}`} {
		if _, err := cli.Put(context.Background(), "/pacsd-test/clusters/pacs/record", bad); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Load("pacs"); !errors.Is(err, reconcile.ErrRecordDamaged) {
			t.Errorf("Load of %q: %v, want ErrRecordDamaged", bad, err)
		}
	}
	// A damaged record seen damaged is replaced by a rebuilt one.
	unlockB()
	defer locked(t, a, "pacs")()
	if _, err := a.Load("pacs"); !errors.Is(err, reconcile.ErrRecordDamaged) {
		t.Fatal(err)
	}
	if err := a.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: 3}); err != nil {
		t.Fatalf("Save over a damaged record that was read: %v", err)
	}
}

// TestE2EEtcdLease: the primary's lease is taken only for the node the
// record names, by one host at a time; a restarted pacsd of the same host
// takes it over; the acting primary is not replaced in the record while the
// lease is held, and is once it expires.
func TestE2EEtcdLease(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	a, b := openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	ctx := context.Background()
	// No record: the file's primary.
	if _, err := b.AcquireLease(ctx, "pacs", "db2", "db1", 2*time.Second); !errors.Is(err, state.ErrLeaseRefused) {
		t.Fatalf("lease for a node that is not the primary: %v", err)
	}
	l, err := a.AcquireLease(ctx, "pacs", "db1", "db1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := b.PrimaryLease(ctx, "pacs"); err != nil || h == nil || h.Node != "db1" || h.Host != "a" {
		t.Fatalf("PrimaryLease: %+v, %v", h, err)
	}
	st, err := a.Load("pacs")
	if err != nil {
		t.Fatal(err)
	}
	st.Acting = "db1"
	ua := locked(t, a, "pacs")
	if err := a.Save("pacs", st); err != nil {
		t.Fatal(err)
	}
	ua()
	defer locked(t, b, "pacs")()
	// Another host cannot take it, even for the node the record names.
	if _, err := b.AcquireLease(ctx, "pacs", "db1", "db1", 2*time.Second); !errors.Is(err, state.ErrLeaseRefused) {
		t.Fatalf("a second host took the lease: %v", err)
	}
	// A failover cannot record another primary while it is held.
	st, err = b.Load("pacs")
	if err != nil {
		t.Fatal(err)
	}
	next := st
	next.Acting, next.Epoch = "db2", st.Epoch+1
	if err := b.Save("pacs", next); !errors.Is(err, state.ErrRecordChanged) || !strings.Contains(err.Error(), "holds the primary's lease") {
		t.Fatalf("the acting primary replaced while its lease is held: %v", err)
	}
	// A restarted pacsd of host a takes the lease over.
	a2 := openEtcd(t, ep, "a")
	l2, err := a2.AcquireLease(ctx, "pacs", "db1", "db1", 2*time.Second)
	if err != nil {
		t.Fatalf("the same host could not take its lease over: %v", err)
	}
	if err := l.Renew(ctx); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("the predecessor's lease renewed: %v", err)
	}
	for range 3 {
		time.Sleep(500 * time.Millisecond)
		if err := l2.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Not renewed: it expires, and the failover may record another primary.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := b.PrimaryLease(ctx, "pacs")
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l2.Renew(ctx); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("an expired lease renewed: %v", err)
	}
	if err := b.Save("pacs", next); err != nil {
		t.Fatalf("the failover's record after the lease expired: %v", err)
	}
	// The old host cannot take the lease for the old primary any more.
	if _, err := a2.AcquireLease(ctx, "pacs", "db1", "db1", 2*time.Second); !errors.Is(err, state.ErrLeaseRefused) {
		t.Fatalf("the old primary's host took the lease after the failover: %v", err)
	}
	l3, err := b.AcquireLease(ctx, "pacs", "db2", "db1", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := l3.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if h, err := a.PrimaryLease(ctx, "pacs"); err != nil || h != nil {
		t.Fatalf("a released lease is still held: %+v, %v", h, err)
	}
}

// TestE2EEtcdLockAndLeader: the lock excludes the other host until it is
// let go or its holder's session ends; one host leads, and another within
// the session's TTL once the leader is gone.
func TestE2EEtcdLockAndLeader(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	a, b := openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	now, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Lock(now, "pacs"); !errors.Is(err, reconcile.ErrLocked) {
		t.Fatalf("one try of a held lock: %v, want ErrLocked", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Lock(short, "pacs")
	cancel()
	if !errors.Is(err, reconcile.ErrLocked) {
		t.Fatalf("a wait for a held lock: %v, want ErrLocked", err)
	}
	unlock()
	u2, err := b.Lock(now, "pacs")
	if err != nil {
		t.Fatalf("the lock let go is not free: %v", err)
	}
	u2()

	lost, _, err := a.Campaign(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := b.Leader(ctx, "pacs"); err != nil || l != "a" {
		t.Fatalf("Leader: %q, %v", l, err)
	}
	elected := make(chan error, 1)
	go func() {
		_, _, err := b.Campaign(ctx, "pacs")
		elected <- err
	}()
	select {
	case <-elected:
		t.Fatal("b leads while a does")
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	_ = a.Close() // the leader's session ends
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("a's leadership did not end with its session")
	}
	select {
	case err := <-elected:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not lead after a's session ended")
	}
	t.Logf("b leads %s after a's session ended", time.Since(start).Round(time.Millisecond))
	if l, err := b.Leader(ctx, "pacs"); err != nil || l != "b" {
		t.Fatalf("Leader: %q, %v", l, err)
	}
}

// TestE2EEtcdRemote: another host's engine is seen through its pacsd's
// report, with its containers' addresses as other hosts reach them, and
// nothing on it can be changed from here; without a report it answers like
// an engine that does not answer.
func TestE2EEtcdRemote(t *testing.T) {
	ep := e2e.StartEtcd(t).Endpoints()
	a, b := openEtcd(t, ep, "a"), openEtcd(t, ep, "b")
	ctx := context.Background()
	r := &state.Remote{E: a, Host: "b"}
	if _, err := r.NetworkInspect(ctx, "pacs", "pacs"); err == nil || !strings.Contains(err.Error(), "reports nothing") {
		t.Fatalf("a host that reports nothing: %v", err)
	}
	ct := &reconcile.ContainerState{ID: "x", Name: "pacs-db2", Owned: true, Running: true, Status: "running", Addr: "10.0.0.12:25432"}
	rep := reconcile.HostReport{Host: "b", At: time.Now().UTC(), Image: "img:15",
		Engine: reconcile.EngineState{Network: &reconcile.NetworkState{ID: "n", Owned: true}, Image: &reconcile.ImageState{ID: "i", Major: 15}, ID: "ENGINE-B"},
		Nodes:  map[string]reconcile.NodeReport{"db2": {Container: ct, Containers: []string{"pacs-db2"}, Mount: reconcile.Mount{Volume: "pacs-db2-data"}, Data: reconcile.DataState{Exists: true, Major: 15}}}}
	if err := b.PutReport(ctx, "pacs", rep); err != nil {
		t.Fatal(err)
	}
	if n, err := r.NetworkInspect(ctx, "pacs", "pacs"); err != nil || n == nil || !n.Owned {
		t.Fatalf("NetworkInspect: %+v, %v", n, err)
	}
	if im, err := r.ImageInspect(ctx, "img:15"); err != nil || im == nil || im.Major != 15 {
		t.Fatalf("ImageInspect: %+v, %v", im, err)
	}
	if got, err := r.ContainerInspect(ctx, "pacs-db2", "pacs", "db2"); err != nil || !cmp.Equal(got, ct) {
		t.Fatalf("ContainerInspect: %+v, %v", got, err)
	}
	if d, err := r.DataInspect(ctx, "img:15", reconcile.Mount{Volume: "pacs-db2-data"}); err != nil || d.Major != 15 {
		t.Fatalf("DataInspect: %+v, %v", d, err)
	}
	if id, err := r.EngineID(ctx); err != nil || id != "ENGINE-B" {
		t.Fatalf("EngineID: %q, %v", id, err)
	}
	if _, err := r.ReadFiles(ctx, "x", nil); !errors.Is(err, reconcile.ErrReportedOnly) {
		t.Fatalf("ReadFiles: %v", err)
	}
	for name, err := range map[string]error{
		"start":  r.ContainerStart(ctx, "x"),
		"stop":   r.ContainerStop(ctx, "x", time.Second),
		"remove": r.ContainerRemove(ctx, "x"),
		"write":  r.WriteFiles(ctx, "x", nil),
	} {
		if !errors.Is(err, state.ErrNotThisHost) {
			t.Errorf("%s on another host: %v, want ErrNotThisHost", name, err)
		}
	}
	reps, err := a.ClusterReports(ctx, "pacs")
	if err != nil || len(reps) != 1 || reps["b"].Host != "b" {
		t.Fatalf("ClusterReports: %+v, %v", reps, err)
	}
	// The report goes with its pacsd's session.
	_ = b.Close()
	if _, err := r.ContainerInspect(ctx, "pacs-db2", "pacs", "db2"); err == nil {
		t.Fatal("a report outlived its pacsd's session")
	}
}

// etcdLeaderAddr returns the address of the member that leads etcd.
func etcdLeaderAddr(t *testing.T, ec *e2e.EtcdCluster) string {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, ec.Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ec.Len(); i++ {
		m := ec.Member(i)
		ms, err := cli.Status(ctx, m.ClientURL)
		if err == nil && ms.Header.MemberId == st.Leader {
			return m.Host.Address
		}
	}
	t.Fatalf("no member leads (leader %x)", st.Leader)
	return ""
}

// TestE2EEtcdMoveLeaderOff: on a three-member etcd across test hosts, the
// leadership is moved off the member at a given address to the member of
// lowest rank; asked again for the same address, nothing moves; asked for
// a member that does not lead, nothing moves.
func TestE2EEtcdMoveLeaderOff(t *testing.T) {
	e2e.Require(t)
	hosts := e2e.RequireTestHosts(t, 3)
	ec := e2e.StartEtcdCluster(t, hosts)
	e := openEtcd(t, ec.Endpoints(), "a")
	from := etcdLeaderAddr(t, ec)
	// The preferred member: the last one that is not the leader.
	var want string
	for i := 0; i < ec.Len(); i++ {
		if a := ec.Member(i).Host.Address; a != from {
			want = a
		}
	}
	rank := func(addr string) int {
		if addr == want {
			return 0
		}
		return 1
	}
	to, err := e.MoveLeaderOff(context.Background(), from, rank)
	if err != nil || to == "" {
		t.Fatalf("MoveLeaderOff(%s): %q, %v", from, to, err)
	}
	var now string
	deadline := time.Now().Add(10 * time.Second)
	for now = etcdLeaderAddr(t, ec); now != want && time.Now().Before(deadline); now = etcdLeaderAddr(t, ec) {
		time.Sleep(100 * time.Millisecond)
	}
	if now != want {
		t.Fatalf("etcd's leader runs at %s after moving it off %s, want %s (rank 0)", now, from, want)
	}
	if to, err := e.MoveLeaderOff(context.Background(), from, rank); err != nil || to != "" {
		t.Errorf("MoveLeaderOff of a member that no longer leads: %q, %v; want nothing moved", to, err)
	}
	t.Logf("etcd's leadership moved from %s to %s (%s)", from, want, to)
}

// TestE2EEtcdLockReleasedAfterOutage: a lock let go of while etcd does not
// answer (the release is not confirmed) is released once etcd answers
// again, while the session that took it lives on: another pacsd takes it.
// Before, it stayed taken for as long as the session lived, and the
// leader's failover waited for it for ever.
func TestE2EEtcdLockReleasedAfterOutage(t *testing.T) {
	e2e.Require(t)
	hosts := e2e.RequireTestHosts(t, 3)
	ec := e2e.StartEtcdCluster(t, hosts)
	open := func(host string, endpoints []string) *state.Etcd {
		e, err := state.OpenEtcd(state.EtcdOptions{Endpoints: endpoints, Prefix: "/pacsd-test", Host: host, SessionTTL: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	// a reaches etcd through one member only: that member stopped, a's
	// release does not reach etcd at all, and its session (60 s) lives on.
	a, b := open("a", ec.Endpoints()[:1]), open("b", ec.Endpoints())
	unlock, err := a.Lock(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	ec.Member(0).Stop()
	unlock() // not confirmed: a's member does not answer
	ec.Member(0).Start()
	if err := ec.Healthy(time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	unlockB, err := b.Lock(ctx, "pacs")
	if err != nil {
		t.Fatalf("the lock let go of during the outage is still taken once etcd answers again: %v", err)
	}
	unlockB()
	// The same pacsd takes the name again: its earlier release does not
	// take the new lock with it.
	unlockA, err := a.Lock(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	tctx, tcancel := context.WithCancel(context.Background())
	tcancel()
	if _, err := b.Lock(tctx, "pacs"); err == nil {
		t.Fatal("b took the lock that a holds")
	}
}
