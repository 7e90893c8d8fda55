package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// hostedTopology is a cluster of pacsd on every host: db1 (the file's
// primary) on host a, db2 on host b, each published on its host's address.
const hostedTopology = `cluster "pacs" {
  image    = "postgres:17"
  primary  = "db1"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "pacs.password"
  }
  replication {
    password_file = "replicator.password"
  }
  failover {
    automatic = true
  }
  node "db1" {
    host   = "a"
    port   = 15431
    volume = "pacs-db1"
  }
  node "db2" {
    host   = "b"
    port   = 15432
    volume = "pacs-db2"
  }
}
host "a" {
  address = "10.0.0.11"
}
host "b" {
  address = "10.0.0.12"
}
daemon {
  etcd {
    endpoints = ["http://127.0.0.1:2379"]
  }
}
`

// fakeCoord is etcd as the daemon sees it in the mode "every host": who
// holds the primary's lease and for which node and epoch it was last taken
// are what the test sets; AcquireLease hands out the lease the test gave
// it. Every call is recorded; the calls the daemon's lease and failover
// code never makes fail the test.
type fakeCoord struct {
	t    *testing.T
	host string

	mu sync.Mutex
	// holder and holderHost are LeaseHolder's answer, holderErr its error.
	holder, holderHost string
	holderErr          error
	// leased and leasedEpoch are Leased's answer.
	leased      string
	leasedEpoch int64
	// lease is what AcquireLease returns (acquireErr when set).
	lease      *fakeLease
	acquireErr error
	acquiredAt time.Time
	calls      []string
}

func (co *fakeCoord) record(call string) {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.calls = append(co.calls, call)
}

// take returns the calls recorded so far and forgets them.
func (co *fakeCoord) take() []string {
	co.mu.Lock()
	defer co.mu.Unlock()
	calls := co.calls
	co.calls = nil
	return calls
}

// count returns how many recorded calls begin with method.
func (co *fakeCoord) count(method string) int {
	co.mu.Lock()
	defer co.mu.Unlock()
	n := 0
	for _, c := range co.calls {
		if strings.HasPrefix(c, method+" ") {
			n++
		}
	}
	return n
}

func (co *fakeCoord) set(f func(co *fakeCoord)) {
	co.mu.Lock()
	defer co.mu.Unlock()
	f(co)
}

func (co *fakeCoord) unexpected(call string) error {
	co.record(call)
	co.t.Errorf("unexpected call %s: the code under test does not use it", call)
	return fmt.Errorf("unexpected call %s", call)
}

func (co *fakeCoord) Host() string { return co.host }

func (co *fakeCoord) Campaign(_ context.Context, cluster string) (<-chan struct{}, func(), error) {
	return nil, nil, co.unexpected("Campaign " + cluster)
}

func (co *fakeCoord) Leader(_ context.Context, cluster string) (string, error) {
	return "", co.unexpected("Leader " + cluster)
}

func (co *fakeCoord) LeaseHolder(_ context.Context, cluster string) (string, string, error) {
	co.record("LeaseHolder " + cluster)
	co.mu.Lock()
	defer co.mu.Unlock()
	return co.holder, co.holderHost, co.holderErr
}

func (co *fakeCoord) Leased(_ context.Context, cluster string) (string, int64, error) {
	co.record("Leased " + cluster)
	co.mu.Lock()
	defer co.mu.Unlock()
	return co.leased, co.leasedEpoch, nil
}

func (co *fakeCoord) AcquireLease(_ context.Context, cluster, node, fileprimary string, ttl time.Duration) (PrimaryLease, error) {
	co.record(fmt.Sprintf("AcquireLease %s %s %s %s", cluster, node, fileprimary, ttl))
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.acquireErr != nil {
		return nil, co.acquireErr
	}
	if co.lease == nil {
		co.t.Errorf("AcquireLease %s %s: the test gave no lease to hand out", cluster, node)
		return nil, errors.New("no lease")
	}
	co.acquiredAt = time.Now()
	return co.lease, nil
}

func (co *fakeCoord) Watch(_ context.Context, cluster string, _ func()) {
	_ = co.unexpected("Watch " + cluster)
}

func (co *fakeCoord) PutReport(_ context.Context, cluster string, r reconcile.HostReport) error {
	co.record("PutReport " + cluster + " " + r.Host)
	return nil
}

func (co *fakeCoord) Hosts(_ context.Context, cluster string) (map[string]reconcile.HostReport, error) {
	return nil, co.unexpected("Hosts " + cluster)
}

func (co *fakeCoord) MoveLeaderOff(_ context.Context, address string, _ func(string) int) (string, error) {
	co.record("MoveLeaderOff " + address)
	return "", nil
}

// fakeLease is a primary's lease in etcd: Renew answers renewErr, or
// waits until its context is done when hang is set (etcd does not
// answer).
type fakeLease struct {
	mu       sync.Mutex
	renewErr error
	hang     bool
	renewals int
	releases int
	// releaseErr is what Release answers.
	releaseErr error
}

func (l *fakeLease) Renew(ctx context.Context) error {
	l.mu.Lock()
	l.renewals++
	hang, err := l.hang, l.renewErr
	l.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return err
}

func (l *fakeLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releases++
	return l.releaseErr
}

func (l *fakeLease) counts() (renewals, releases int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewals, l.releases
}

// hostedEnv is the daemon of one host's pacsd over hostedTopology: its
// engine is a checkWorld on which pacs-db1 runs as the primary and pacs-db2
// as a standby (nothing allowed yet: every engine call fails the test
// unless allowed), its etcd a fakeCoord, and the record names db1 in epoch
// 1.
type hostedEnv struct {
	f     *fixture
	co    *fakeCoord
	w     *checkWorld
	c     *spec.Cluster
	store *reconcile.MemoryStore
}

// newHostedEnv builds the daemon of host's pacsd; db is its Database
// (nil: the world's servers).
func newHostedEnv(t *testing.T, host string, db reconcile.Database) *hostedEnv {
	t.Helper()
	f := fileFixture(t, hostedTopology)
	store := &reconcile.MemoryStore{}
	if err := store.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	w := newCheckWorld(t, "pacs", store)
	w.set(func(cts map[string]*checkCt) {
		cts["pacs-db1"] = &checkCt{running: true, health: reconcile.DBState{WAL: 0x3000000}}
		cts["pacs-db2"] = &checkCt{running: true, health: reconcile.DBState{InRecovery: true, WAL: 0x3000000, ReceivedWAL: 0x3000000}}
	})
	if db == nil {
		db = checkDB{w}
	}
	co := &fakeCoord{t: t, host: host}
	d, err := New(Options{
		Path:   f.path,
		Logger: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Deps: func(*spec.File) (reconcile.Deps, error) {
			return reconcile.Deps{Runtimes: map[string]reconcile.Runtime{host: &checkEngine{w: w}}, DB: db, Store: store, CAs: &reconcile.MemoryStore{}}, nil
		},
		Apply: func(context.Context, *spec.Cluster, reconcile.Deps, *slog.Logger) (reconcile.Result, error) {
			return reconcile.Result{}, nil
		},
		Notify:       func(string) {},
		Coordination: co,
	})
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	f.d = d
	select { // what New started with is not the test's
	case <-d.trigger.C():
	default:
	}
	return &hostedEnv{f: f, co: co, w: w, c: d.file.Clusters[0], store: store}
}

// held returns the lease the daemon holds for cluster pacs, nil when none.
func (e *hostedEnv) held() *heldLease {
	h := e.f.d.hosted
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leases["pacs"]
}

// gaveUp returns the node and epoch this pacsd gave up for cluster pacs.
func (e *hostedEnv) gaveUp() gaveUp {
	h := e.f.d.hosted
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gaveUp["pacs"]
}

// fenceCalls are the engine calls of the fence of a running primary.
var fenceCalls = []string{"NodeContainers", "ContainerInspect", "WriteFiles", "ContainerStop"}

// fenceActs are the calls that change something in the fence of pacs-db1
// while it runs: standby.signal placed, then the container stopped.
var fenceActs = []string{"WriteFiles id-pacs-db1 " + reconcile.SignalPath, "ContainerStop id-pacs-db1"}

// pollUntil polls cond every few milliseconds until it holds or within
// passes; it reports whether it held.
func pollUntil(within time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// fenceDone reports whether this host's primary was fenced, to the end
// (the fence is counted once the engine confirmed it).
func (e *hostedEnv) fenceDone() bool {
	return e.f.metric(`pacsd_self_fences_total{cluster="pacs"} 1`)
}

func stopped(w *checkWorld, name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ct := w.cts[name]
	return ct != nil && !ct.running
}

// TestHostedMayRunPrimary: this pacsd may run the acting primary only while
// it holds the cluster's lease for that very node and renewed it less than
// ttl/2 ago.
func TestHostedMayRunPrimary(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name          string
		lease         *heldLease // renewed is set back by ago
		ago           time.Duration
		cluster, node string
		want          bool
	}{
		{name: "no lease", cluster: "pacs", node: "db1"},
		{name: "just renewed, its node", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, cluster: "pacs", node: "db1", want: true},
		{name: "just renewed, another node", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, cluster: "pacs", node: "db2"},
		{name: "just renewed, another cluster", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, cluster: "other", node: "db1"},
		{name: "renewed well within ttl/2", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, ago: ttl/2 - 500*time.Millisecond, cluster: "pacs", node: "db1", want: true},
		{name: "renewed ttl/2 ago", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, ago: ttl / 2, cluster: "pacs", node: "db1"},
		{name: "renewed longer ago than the ttl", lease: &heldLease{node: "db1", epoch: 1, ttl: ttl}, ago: ttl + time.Second, cluster: "pacs", node: "db1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHosted(&fakeCoord{t: t, host: "a"})
			if tt.lease != nil {
				tt.lease.renewed = time.Now().Add(-tt.ago)
				h.leases["pacs"] = tt.lease
			}
			if got := h.mayRunPrimary(tt.cluster, tt.node); got != tt.want {
				t.Errorf("mayRunPrimary(%q, %q) = %t, want %t", tt.cluster, tt.node, got, tt.want)
			}
		})
	}
}

// TestHostedTakeLease: the lease is taken for the acting primary when the
// record names a node of this host, with the file's primary and the ttl,
// and not for a node this pacsd fenced in the same epoch.
func TestHostedTakeLease(t *testing.T) {
	tests := []struct {
		name       string
		host       string
		record     reconcile.ClusterState
		gaveUp     gaveUp
		acquireErr error
		calls      []string // of the coordination
		mayRun     string   // the node this pacsd may run after, "" none
	}{
		{name: "the record names this host's node", host: "a", record: reconcile.ClusterState{Acting: "db1", Epoch: 1},
			calls: []string{"AcquireLease pacs db1 db1 10s"}, mayRun: "db1"},
		{name: "the record names another host's node", host: "a", record: reconcile.ClusterState{Acting: "db2", Epoch: 2, Keep: "db1"}},
		{name: "the other host: the record names a node of host a", host: "b", record: reconcile.ClusterState{Acting: "db1", Epoch: 1}},
		{name: "the other host: the record names its node", host: "b", record: reconcile.ClusterState{Acting: "db2", Epoch: 2, Keep: "db1"},
			calls: []string{"AcquireLease pacs db2 db1 10s"}, mayRun: "db2"},
		{name: "this pacsd fenced the node in this epoch", host: "a", record: reconcile.ClusterState{Acting: "db1", Epoch: 3},
			gaveUp: gaveUp{node: "db1", epoch: 3}},
		{name: "this pacsd fenced the node in an earlier epoch", host: "a", record: reconcile.ClusterState{Acting: "db1", Epoch: 3},
			gaveUp: gaveUp{node: "db1", epoch: 1}, calls: []string{"AcquireLease pacs db1 db1 10s"}, mayRun: "db1"},
		{name: "etcd refuses the lease", host: "a", record: reconcile.ClusterState{Acting: "db1", Epoch: 1},
			acquireErr: errors.New("the primary's lease is not for this host: the pacsd of host \"b\" holds it"),
			calls:      []string{"AcquireLease pacs db1 db1 10s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostedEnv(t, tt.host, nil)
			if err := e.store.Save("pacs", tt.record); err != nil {
				t.Fatal(err)
			}
			e.co.set(func(co *fakeCoord) { co.lease, co.acquireErr = &fakeLease{}, tt.acquireErr })
			if tt.gaveUp.node != "" {
				e.f.d.hosted.gaveUp["pacs"] = tt.gaveUp
			}
			e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
			if diff := cmp.Diff(tt.calls, e.co.take(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("calls of etcd (-want +got):\n%s", diff)
			}
			for _, n := range []string{"db1", "db2"} {
				if got := e.f.d.hosted.mayRunPrimary("pacs", n); got != (n == tt.mayRun) {
					t.Errorf("after takeLease, may run %s as the primary: %t, want %t", n, got, n == tt.mayRun)
				}
			}
			held := tt.mayRun != ""
			if got := e.f.metric(`pacsd_primary_lease_held{cluster="pacs"} 1`); got != held {
				t.Errorf("pacsd_primary_lease_held is 1: %t, want %t", got, held)
			}
			poked := false
			select {
			case <-e.f.d.trigger.C():
				poked = true
			default:
			}
			if poked != held {
				t.Errorf("takeLease started a pass: %t, want %t (a primary held back for the lease starts)", poked, held)
			}
			if tt.acquireErr != nil {
				e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
				if n := strings.Count(e.f.log.String(), "level=WARN msg=\"cannot take the primary's lease"); n != 1 {
					t.Errorf("the same refusal twice was logged as a warning %d times, want once:\n%s", n, e.f.log)
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", e.f.log)
			}
		})
	}
}

// TestHostedLeaseNotRenewedFencesPrimary: etcd stops answering the
// renewals (they hang). Once the lease has not been renewed for ttl/2, and
// before etcd could let it expire (ttl), this pacsd fences its primary
// through its own engine; it does not take the lease again for that node
// in that epoch (the leader fails over), only in a later one.
func TestHostedLeaseNotRenewedFencesPrimary(t *testing.T) {
	defer func(d time.Duration) { leaseTick = d }(leaseTick)
	leaseTick = 5 * time.Millisecond
	const ttl = time.Second
	e := newHostedEnv(t, "a", nil)
	e.c.Failover.TTL = spec.Duration{Duration: ttl}
	e.w.allow(fenceCalls...)
	lease := &fakeLease{hang: true}
	e.co.set(func(co *fakeCoord) { co.lease = lease })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.f.d.keepLease(ctx, "pacs") }()
	stop := func() {
		cancel()
		<-done
	}
	defer stop()

	if !pollUntil(time.Second, func() bool { return e.co.count("AcquireLease") == 1 }) {
		t.Fatalf("the lease was not taken:\n%s", e.f.log)
	}
	e.co.mu.Lock()
	acquired := e.co.acquiredAt
	e.co.mu.Unlock()
	if !pollUntil(2*ttl, func() bool { return stopped(e.w, "pacs-db1") }) {
		t.Fatalf("the primary was not fenced within %s of the lease's last renewal:\n%s", 2*ttl, e.f.log)
	}
	fencedAfter := time.Since(acquired)
	if !pollUntil(time.Second, e.fenceDone) {
		t.Fatalf("the fence did not end:\n%s", e.f.log)
	}
	// The lease counts from the renewal sent just before it was taken.
	if fencedAfter < fenceAt(ttl)-10*time.Millisecond {
		t.Errorf("the primary was fenced %s after the lease was taken, before ttl/2 (%s) without renewal", fencedAfter, fenceAt(ttl))
	}
	if fencedAfter >= ttl {
		t.Errorf("the primary was fenced %s after the lease was taken, not before etcd may let the lease expire (%s)", fencedAfter, ttl)
	}
	if renewals, _ := lease.counts(); renewals == 0 {
		t.Error("no renewal was tried before the fence")
	}
	if diff := cmp.Diff(fenceActs, acting(e.w.take())); diff != "" {
		t.Errorf("the fence's calls that change something (-want +got):\n%s", diff)
	}
	if e.f.d.hosted.mayRunPrimary("pacs", "db1") || e.held() != nil {
		t.Error("the lost lease is still held")
	}
	if got := e.gaveUp(); got != (gaveUp{node: "db1", epoch: 1}) {
		t.Errorf("gave up %+v, want db1 in epoch 1", got)
	}
	if !e.f.metric(`pacsd_primary_lease_held{cluster="pacs"} 0`) {
		t.Errorf("metrics after the fence: want one self-fence and no lease held")
	}
	if !strings.Contains(e.f.log.String(), "fencing this host's primary: the primary's lease is lost") {
		t.Errorf("the log does not say why the primary was fenced:\n%s", e.f.log)
	}

	// etcd answers again: the lease is not taken again for db1 in epoch 1.
	lease2 := &fakeLease{}
	e.co.set(func(co *fakeCoord) { co.lease = lease2 })
	time.Sleep(3 * renewEvery(ttl))
	if n := e.co.count("AcquireLease"); n != 1 {
		t.Errorf("the lease was taken %d times; want once: not again for the node this pacsd fenced, in the same epoch", n)
	}
	stop()
	if calls := e.w.take(); len(calls) != 0 {
		t.Errorf("engine calls after the fence: %v", calls)
	}

	// A later epoch naming db1 again (a failover back): taken again.
	if err := e.store.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: 3, Keep: "db2"}); err != nil {
		t.Fatal(err)
	}
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	if !e.f.d.hosted.mayRunPrimary("pacs", "db1") {
		t.Errorf("the lease for db1 in epoch 3 was not taken:\n%s", e.f.log)
	}
}

// TestHostedLeaseLostFencesAtOnce: a renewal answered "the lease no longer
// exists" fences the primary at once, long before ttl/2; a renewal that
// fails otherwise (etcd slow) fences nothing; a renewal while the record
// names another primary gives the lease up without a fence.
func TestHostedLeaseLostFencesAtOnce(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name     string
		renewErr error
		// record, when set, replaces the record before the renewal.
		record   *reconcile.ClusterState
		fenced   bool
		held     bool // the lease is still held after the renewal
		releases int
		log      string
	}{
		{name: "the lease expired", renewErr: fmt.Errorf("while renewing the primary's lease: %w", ErrLeaseLost), fenced: true,
			releases: 1, log: "its lease in etcd expired"},
		{name: "etcd is slow", renewErr: errors.New("context deadline exceeded"), held: true, log: "cannot renew the primary's lease"},
		{name: "renewed", held: true},
		{name: "renewed while the record names another primary", record: &reconcile.ClusterState{Acting: "db2", Epoch: 2, Keep: "db1"},
			releases: 1, log: "the primary's lease given up: the record names another acting primary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostedEnv(t, "a", nil)
			e.c.Failover.TTL = spec.Duration{Duration: ttl}
			e.w.allow(fenceCalls...)
			lease := &fakeLease{renewErr: tt.renewErr}
			e.co.set(func(co *fakeCoord) { co.lease = lease })
			ctx := context.Background()
			e.f.d.takeLease(ctx, e.c, e.f.d.snap.Load())
			l := e.held()
			if l == nil {
				t.Fatalf("the lease was not taken:\n%s", e.f.log)
			}
			if tt.record != nil {
				if err := e.store.Save("pacs", *tt.record); err != nil {
					t.Fatal(err)
				}
			}
			e.f.d.hosted.mu.Lock()
			l.renewed = time.Now().Add(-renewEvery(ttl)) // due, far from ttl/2
			e.f.d.hosted.mu.Unlock()
			began := time.Now()
			e.f.d.renewLease(ctx, e.c, l)
			// The renewal runs on its own goroutine; it is over once the
			// lease is no longer being renewed and what follows is done.
			settled := func() bool {
				e.f.d.hosted.mu.Lock()
				renewing := l.renewing
				e.f.d.hosted.mu.Unlock()
				renewals, releases := lease.counts()
				return renewals == 1 && !renewing && (!tt.fenced || e.fenceDone()) && releases == tt.releases &&
					(tt.log == "" || strings.Contains(e.f.log.String(), tt.log))
			}
			if !pollUntil(2*time.Second, settled) {
				t.Fatalf("the renewal did not settle as expected within 2s:\n%s", e.f.log)
			}
			if took := time.Since(began); tt.fenced && took >= fenceAt(ttl)/2 {
				t.Errorf("the fence came %s after the lost renewal; want at once", took)
			}
			time.Sleep(20 * time.Millisecond) // nothing more follows
			wantActs := []string(nil)
			if tt.fenced {
				wantActs = fenceActs
			}
			calls := e.w.take()
			if diff := cmp.Diff(wantActs, acting(calls)); diff != "" {
				t.Errorf("calls that change something (-want +got):\n%s", diff)
			}
			if got := e.held() != nil; got != tt.held {
				t.Errorf("the lease is held after the renewal: %t, want %t", got, tt.held)
			}
			if got := e.f.d.hosted.mayRunPrimary("pacs", "db1"); got != tt.held {
				t.Errorf("may run db1 as the primary: %t, want %t", got, tt.held)
			}
			wantGaveUp := gaveUp{}
			if tt.fenced {
				wantGaveUp = gaveUp{node: "db1", epoch: 1}
			}
			if got := e.gaveUp(); got != wantGaveUp {
				t.Errorf("gave up %+v, want %+v", got, wantGaveUp)
			}
			if tt.fenced {
				e.co.set(func(co *fakeCoord) { co.lease = &fakeLease{} })
				e.f.d.takeLease(ctx, e.c, e.f.d.snap.Load())
				if n := e.co.count("AcquireLease"); n != 1 {
					t.Errorf("the lease was taken %d times; want once: not again for the node fenced on its loss", n)
				}
			}
			if t.Failed() {
				t.Logf("engine calls: %v\nlog:\n%s", calls, e.f.log)
			}
		})
	}
}

// sqlServer is db1's server as the pacsd of another host reaches it over
// SQL at its host's address: answering as a primary or a standby, refusing
// the login, silent, or failing the health query after the login.
type sqlServer struct {
	mode string // "primary", "standby", "refuses", "silent", "health fails"

	mu    sync.Mutex
	addrs []string
}

func (s *sqlServer) Connect(_ context.Context, addr, user string, _ spec.Secret, database string) (reconcile.DBConn, error) {
	s.mu.Lock()
	s.addrs = append(s.addrs, addr)
	s.mu.Unlock()
	switch s.mode {
	case "refuses":
		return nil, fmt.Errorf("%w: FATAL: password authentication failed for user %q (SQLSTATE 28P01)", reconcile.ErrServerRefused, user)
	case "silent":
		return nil, fmt.Errorf("dial tcp %s: i/o timeout", addr)
	}
	return sqlConn{s}, nil
}

func (s *sqlServer) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs
}

// sqlConn is a connection to a sqlServer; calls other than Health and
// Close panic: the fence never makes them.
type sqlConn struct {
	s *sqlServer
}

func (c sqlConn) State(context.Context) (*reconcile.DBState, error) { panic("sql.State") }
func (c sqlConn) SetRole(context.Context, reconcile.RoleSpec) error { panic("sql.SetRole") }
func (c sqlConn) DropRole(context.Context, string) error            { panic("sql.DropRole") }
func (c sqlConn) CreateSlot(context.Context, string) error          { panic("sql.CreateSlot") }
func (c sqlConn) ResetSetting(context.Context, string) error        { panic("sql.ResetSetting") }
func (c sqlConn) Reload(context.Context) error                      { panic("sql.Reload") }
func (c sqlConn) Checkpoint(context.Context) error                  { panic("sql.Checkpoint") }
func (c sqlConn) Promote(context.Context) error                     { panic("sql.Promote") }
func (c sqlConn) DropSlot(context.Context, string) error            { panic("sql.DropSlot") }
func (c sqlConn) ReadFiles(context.Context, []string, []string) (map[string][]byte, error) {
	panic("sql.ReadFiles")
}
func (c sqlConn) Close() {}

func (c sqlConn) Health(context.Context) (*reconcile.DBState, error) {
	switch c.s.mode {
	case "primary":
		return &reconcile.DBState{WAL: 0x3000000}, nil
	case "health fails":
		return nil, errors.New("ERROR: canceling statement due to statement timeout (SQLSTATE 57014)")
	}
	return &reconcile.DBState{InRecovery: true, WAL: 0x3000000, ReceivedWAL: 0x3000000}, nil
}

// TestHostedLeaseFenced: the failover's fence with pacsd on every host is
// confirmed only when no pacsd holds the primary's lease and the old
// primary does not answer as a primary over SQL at its host's address.
func TestHostedLeaseFenced(t *testing.T) {
	tests := []struct {
		name      string
		holder    string
		holderErr error
		server    string // sqlServer mode
		fenced    bool
		asked     bool   // db1's server was asked
		errHas    string // in the refusal
	}{
		{name: "the pacsd of host a holds the lease", holder: "db1", server: "silent", errHas: `host "a"`},
		{name: "etcd does not answer", holderErr: errors.New("context deadline exceeded"), server: "silent", errHas: "context deadline exceeded"},
		{name: "no lease, the old primary answers as a primary", server: "primary", asked: true, errHas: "answers as a primary"},
		{name: "no lease, the old primary refuses the login", server: "refuses", asked: true, errHas: "refuses the login"},
		{name: "no lease, the old primary answers as a standby", server: "standby", asked: true, fenced: true},
		{name: "no lease, the old primary does not answer", server: "silent", asked: true, fenced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &sqlServer{mode: tt.server}
			e := newHostedEnv(t, "b", server)
			e.co.set(func(co *fakeCoord) {
				co.holderErr = tt.holderErr
				if tt.holder != "" {
					co.holder, co.holderHost = tt.holder, "a"
				}
			})
			err := e.f.d.leaseFenced(context.Background(), e.c, "db1")
			if tt.fenced {
				if err != nil {
					t.Errorf("leaseFenced: %v; want the fence confirmed", err)
				}
			} else if !errors.Is(err, reconcile.ErrNotFenced) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("leaseFenced: %v; want an error wrapping ErrNotFenced saying %q", err, tt.errHas)
			}
			var want []string
			if tt.asked {
				want = []string{"10.0.0.11:15431"}
			}
			if diff := cmp.Diff(want, server.asked()); diff != "" {
				t.Errorf("addresses db1's server was asked at (-want +got):\n%s", diff)
			}
			if calls := e.w.take(); len(calls) != 0 {
				t.Errorf("engine calls: %v; the fence with pacsd on every host uses no engine", calls)
			}
		})
	}
}

// TestHostedLeaseFencedServerAnswersButHealthFails: an old primary that
// accepts pacsd's login answers; when its health query then fails (a
// statement timeout under load, a connection cut) it may still be a
// primary that takes writes, so the fence must not be confirmed, as it is
// not for a server that refuses the login.
func TestHostedLeaseFencedServerAnswersButHealthFails(t *testing.T) {
	server := &sqlServer{mode: "health fails"}
	e := newHostedEnv(t, "b", server)
	err := e.f.d.leaseFenced(context.Background(), e.c, "db1")
	if !errors.Is(err, reconcile.ErrNotFenced) {
		t.Errorf("leaseFenced over a server that accepted the login and failed its health query: %v; want an error wrapping ErrNotFenced (it answers, and may be a primary)", err)
	}
}

// TestHostedLeadFailover: the leader fails over only when no pacsd holds
// the primary's lease and that lease was last taken for the acting primary
// in the record's epoch; a primary whose host never took its lease in this
// epoch (the cluster starts, or it was just promoted) has not lost it. A
// pacsd that does not lead never looks.
func TestHostedLeadFailover(t *testing.T) {
	tests := []struct {
		name        string
		leads       bool
		epoch       int64 // of the record (db1 acts)
		holder      string
		holderErr   error
		leased      string
		leasedEpoch int64
		calls       []string // of the coordination
		goesOn      bool     // the leader takes the lease as lost
		downBefore  bool     // the watch had counted the primary down
		downAfter   bool
	}{
		{name: "not the leader", epoch: 1, leased: "db1", leasedEpoch: 1},
		{name: "a lease holder exists", leads: true, epoch: 1, holder: "db1", leased: "db1", leasedEpoch: 1, downBefore: true,
			calls: []string{"LeaseHolder pacs"}},
		{name: "etcd does not answer", leads: true, epoch: 1, holderErr: errors.New("context deadline exceeded"), leased: "db1", leasedEpoch: 1,
			calls: []string{"LeaseHolder pacs"}},
		{name: "never leased", leads: true, epoch: 1,
			calls: []string{"LeaseHolder pacs", "Leased pacs"}},
		{name: "leased for db1 in an earlier epoch (db1 was promoted again)", leads: true, epoch: 3, leased: "db1", leasedEpoch: 1,
			calls: []string{"LeaseHolder pacs", "Leased pacs"}},
		{name: "leased for another node in this epoch", leads: true, epoch: 2, leased: "db2", leasedEpoch: 2,
			calls: []string{"LeaseHolder pacs", "Leased pacs"}},
		{name: "no holder, leased for db1 in this epoch: the lease is lost", leads: true, epoch: 2, leased: "db1", leasedEpoch: 2,
			calls: []string{"LeaseHolder pacs", "Leased pacs"}, goesOn: true, downAfter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newHostedEnv(t, "b", &sqlServer{mode: "silent"})
			if err := e.store.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: tt.epoch}); err != nil {
				t.Fatal(err)
			}
			e.w.last, _ = e.store.Load("pacs")
			e.f.d.hosted.leads["pacs"] = tt.leads
			e.co.set(func(co *fakeCoord) {
				co.holder, co.holderErr, co.leased, co.leasedEpoch = tt.holder, tt.holderErr, tt.leased, tt.leasedEpoch
				if tt.holder != "" {
					co.holderHost = "a"
				}
			})
			// The cluster's lock is held (a pass acts): a leader that takes
			// the lease as lost counts the primary down and stops short of
			// reconcile.Failover.
			ctx := context.Background()
			unlock, err := e.f.d.lock(ctx, "pacs")
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			ws := &watchState{w: reconcile.PrimaryWatch{Node: "db1"}}
			if tt.downBefore {
				ws.w.DownSince = time.Now().Add(-time.Minute)
			}
			deps := e.f.d.snap.Load().deps
			for range 3 {
				e.f.d.check(ctx, e.c, deps, ws)
			}
			var want []string
			for range 3 {
				want = append(want, tt.calls...)
			}
			if diff := cmp.Diff(want, e.co.take(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("calls of etcd by three checks (-want +got):\n%s", diff)
			}
			if got := !ws.w.DownSince.IsZero(); got != tt.downAfter {
				t.Errorf("the primary counts as down after the checks: %t (since %v), want %t", got, ws.w.DownSince, tt.downAfter)
			}
			said := strings.Contains(e.f.log.String(), "no pacsd holds the primary's lease")
			if said != tt.goesOn {
				t.Errorf("the log says the lease is gone: %t, want %t:\n%s", said, tt.goesOn, e.f.log)
			}
			if strings.Contains(e.f.log.String(), "failing over") || e.f.metric(`pacsd_failovers_total{cluster="pacs",result="refused"} 1`) {
				t.Errorf("a failover was tried:\n%s", e.f.log)
			}
			if calls := e.w.take(); len(calls) != 0 {
				t.Errorf("engine or SQL calls of the checks: %v; want none", calls)
			}
			if st, err := e.store.Load("pacs"); err != nil || !st.Same(reconcile.ClusterState{Acting: "db1", Epoch: tt.epoch}) {
				t.Errorf("the record after the checks: %+v, %v; want db1 in epoch %d", st, err, tt.epoch)
			}
		})
	}
}

// TestHostedCheckGivesUpLostPrimary: the pacsd that holds the primary's
// lease watches its own primary; once it has been lost for failover.after
// it fences it through its own engine and gives the lease up (the leader
// fails over); it neither promotes nor changes the record itself.
func TestHostedCheckGivesUpLostPrimary(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	e.c.Failover.After = spec.Duration{Duration: 100 * time.Millisecond}
	e.w.allow(append([]string{"NodeContainers", "WriteFiles"}, healthCalls...)...)
	lease := &fakeLease{}
	e.co.set(func(co *fakeCoord) { co.lease = lease })
	ctx := context.Background()
	e.f.d.takeLease(ctx, e.c, e.f.d.snap.Load())
	if !e.f.d.hosted.mayRunPrimary("pacs", "db1") {
		t.Fatalf("the lease was not taken:\n%s", e.f.log)
	}
	e.co.take()
	deps := e.f.d.snap.Load().deps
	ws := &watchState{}
	e.f.d.check(ctx, e.c, deps, ws) // healthy
	e.w.set(func(cts map[string]*checkCt) { cts["pacs-db1"].running = false })
	e.f.d.check(ctx, e.c, deps, ws) // lost
	time.Sleep(150 * time.Millisecond)
	e.f.d.check(ctx, e.c, deps, ws) // lost for failover.after
	calls := e.w.take()
	if diff := cmp.Diff([]string{"WriteFiles id-pacs-db1 " + reconcile.SignalPath}, acting(calls)); diff != "" {
		t.Errorf("calls that change something (-want +got):\n%s", diff)
	}
	if _, releases := lease.counts(); releases != 1 || e.held() != nil {
		t.Errorf("the lease was released %d times and is held: %t; want it given up once", releases, e.held() != nil)
	}
	if got := e.gaveUp(); got != (gaveUp{node: "db1", epoch: 1}) {
		t.Errorf("gave up %+v, want db1 in epoch 1", got)
	}
	if calls := e.co.take(); len(calls) != 0 {
		t.Errorf("calls of etcd: %v; want none (the holder does not fail over)", calls)
	}
	if st, err := e.store.Load("pacs"); err != nil || !st.Same(reconcile.ClusterState{Acting: "db1", Epoch: 1}) {
		t.Errorf("the record after the checks: %+v, %v; want it unchanged", st, err)
	}
	if !e.f.metric(`pacsd_self_fences_total{cluster="pacs"} 1`) {
		t.Error("the self-fence was not counted")
	}
	if t.Failed() {
		t.Logf("engine calls:\n%s\nlog:\n%s", strings.Join(calls, "\n"), e.f.log)
	}
}

// failingStop is host a's engine when it answers but fails to stop the
// primary's container: the fence is not confirmed.
type failingStop struct{ *checkEngine }

func (e failingStop) ContainerStop(_ context.Context, id string, _ time.Duration) error {
	if err := e.do("ContainerStop", id); err != nil {
		return err
	}
	return errors.New("Error response from daemon: cannot stop container: tried to kill container, but did not receive an exit event")
}

// TestHostedGiveUpPrimaryKeepsLeaseWhenFenceFails: the holder gives its
// lost primary up; when its engine fails to stop the container the primary
// may still take writes, so the lease must stay held (the leader must not
// promote another node) until a fence succeeds.
func TestHostedGiveUpPrimaryKeepsLeaseWhenFenceFails(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	e.f.d.deps.Runtimes["a"] = failingStop{&checkEngine{w: e.w}}
	e.w.allow(fenceCalls...)
	lease := &fakeLease{}
	e.co.set(func(co *fakeCoord) { co.lease = lease })
	ctx := context.Background()
	e.f.d.takeLease(ctx, e.c, e.f.d.snap.Load())
	if e.held() == nil {
		t.Fatalf("the lease was not taken:\n%s", e.f.log)
	}
	e.f.d.giveUpPrimary(ctx, e.c, "db1")
	if stopped(e.w, "pacs-db1") {
		t.Fatal("the test's engine stopped the container; it must fail to")
	}
	if _, releases := lease.counts(); releases != 0 || e.held() == nil {
		t.Errorf("after a fence that failed (pacs-db1 still runs), the lease was released %d times and is held: %t; want it kept, so that no other node is promoted while the old primary may take writes\nlog:\n%s",
			releases, e.held() != nil, e.f.log)
	}
}

// TestHostedFailsafeAnswer: a pacsd confirms failsafe only for the node
// its record names, on the host it runs on, asked from that host's address,
// while it holds no lease of the cluster; a confirmation holds it back from
// failing over and from taking the lease for the ttl.
func TestHostedFailsafeAnswer(t *testing.T) {
	e := newHostedEnv(t, "b", nil)
	e.c.Failover.Failsafe = true
	h := e.f.d.hosted
	h.started = time.Now().Add(-time.Hour) // not just started
	h.mu.Lock()
	h.seen["pacs"] = "db1"
	h.mu.Unlock()
	for _, tc := range []struct {
		name string
		req  FailsafeRequest
		from string
		ok   bool
	}{
		{"from the primary's host", FailsafeRequest{Cluster: "pacs", Node: "db1", Host: "a"}, "10.0.0.11:40000", true},
		{"from another address", FailsafeRequest{Cluster: "pacs", Node: "db1", Host: "a"}, "10.0.0.99:40000", false},
		{"a node of another host", FailsafeRequest{Cluster: "pacs", Node: "db2", Host: "a"}, "10.0.0.11:40000", false},
		{"not the acting primary", FailsafeRequest{Cluster: "pacs", Node: "db2", Host: "b"}, "10.0.0.12:40000", false},
		{"another cluster", FailsafeRequest{Cluster: "ris", Node: "db1", Host: "a"}, "10.0.0.11:40000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.mu.Lock()
			delete(h.confirmed, "pacs")
			h.mu.Unlock()
			a := e.f.d.failsafeAnswer(tc.req, tc.from)
			if a.OK != tc.ok || !tc.ok && a.Why == "" {
				t.Fatalf("answer %+v, want ok %v", a, tc.ok)
			}
			if got := h.heldBack("pacs", e.c.Failover.TTL.Duration, true); got != tc.ok {
				t.Errorf("held back %v after the answer, want %v", got, tc.ok)
			}
		})
	}
	// Holding the lease itself, it never confirms another's primary.
	h.mu.Lock()
	h.leases["pacs"] = &heldLease{node: "db2", ttl: e.c.Failover.TTL.Duration, renewed: time.Now()}
	h.mu.Unlock()
	if a := e.f.d.failsafeAnswer(FailsafeRequest{Cluster: "pacs", Node: "db1", Host: "a"}, "10.0.0.11:1"); a.OK {
		t.Errorf("confirmed while holding the lease: %+v", a)
	}
	// Just started: held back for the ttl, whatever it confirmed before.
	h.started = time.Now()
	if !h.heldBack("other", e.c.Failover.TTL.Duration, true) || h.heldBack("other", e.c.Failover.TTL.Duration, false) {
		t.Error("a pacsd just started with failsafe is not held back for the ttl")
	}
}

// TestHostedHandOver: in a switchover this pacsd gives up the lease it
// holds for the stopped old primary; until the switchover is given up
// (undo) it does not take the lease for that node again, neither by its
// lease loop nor by a renewal in flight (failsafe's retake), so that the
// record can name the target; after undo it takes it at once. Without the
// lease for that node, nothing is given up.
func TestHostedHandOver(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	lease := &fakeLease{}
	e.co.set(func(co *fakeCoord) { co.lease = lease })
	if _, err := e.f.d.handOver(context.Background(), "pacs", "db1"); err == nil || !strings.Contains(err.Error(), "does not hold the primary's lease") {
		t.Fatalf("hand-over without the lease: %v", err)
	}
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	if _, err := e.f.d.handOver(context.Background(), "pacs", "db2"); err == nil {
		t.Fatal("hand-over for a node the lease is not for: no error")
	}
	l := e.held()
	undo, err := e.f.d.handOver(context.Background(), "pacs", "db1")
	if err != nil {
		t.Fatal(err)
	}
	e.co.take()
	if e.f.d.retake(context.Background(), e.c, l) {
		t.Error("a renewal that found the handed-over lease gone took it again (failsafe's retake)")
	}
	if _, releases := lease.counts(); releases != 1 || e.held() != nil || e.f.d.hosted.mayRunPrimary("pacs", "db1") {
		t.Fatalf("after the hand-over: %d releases, lease held %v", releases, e.held())
	}
	e.co.take()
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	if calls := e.co.take(); len(calls) != 0 {
		t.Errorf("the lease was taken again during the switchover: %v", calls)
	}
	undo()
	select {
	case <-e.f.d.hosted.changes("pacs"):
	default:
		t.Error("undo did not ask for the lease to be taken at once")
	}
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	if !e.f.d.hosted.mayRunPrimary("pacs", "db1") {
		t.Errorf("after undo the lease was not taken again; calls %v\nlog:\n%s", e.co.take(), e.f.log)
	}
}

// TestHostedHandOverReleaseFails: when etcd does not confirm that the
// lease is given up, the hand-over fails and the lease is kept as held
// (renewed on, or lost and fenced like any lease): never a primary without
// a lease that nothing fences.
func TestHostedHandOverReleaseFails(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	lease := &fakeLease{releaseErr: errors.New("context deadline exceeded")}
	e.co.set(func(co *fakeCoord) { co.lease = lease })
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	if _, err := e.f.d.handOver(context.Background(), "pacs", "db1"); err == nil {
		t.Fatal("hand-over with a release that failed: no error")
	}
	if e.held() == nil || !e.f.d.hosted.mayRunPrimary("pacs", "db1") {
		t.Error("after a failed release the lease is no longer held: nothing would renew it or fence the primary when it is lost")
	}
}

// TestHostedHandOverWithoutAutomaticFailover: without automatic failover
// no lease is held, and a switchover gives nothing up.
func TestHostedHandOverWithoutAutomaticFailover(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	e.f.write(strings.Replace(hostedTopology, "automatic = true", "automatic = false", 1))
	e.f.d.reload()
	if c := clusterNamed(e.f.d.snap.Load().file, "pacs"); c == nil || c.Failover.Automatic {
		t.Fatal("the topology without automatic failover was not loaded")
	}
	undo, err := e.f.d.handOver(context.Background(), "pacs", "db1")
	if err != nil || undo == nil {
		t.Fatalf("hand-over without automatic failover: %v", err)
	}
	undo()
}

// TestHostedEtcdLeaderOff: the pacsd holding a primary's lease asks etcd
// to move its leadership off this host's address, once per
// etcdLeaderEvery (and at once after taking a lease), preferring a member
// on no host of the file, then one on a host without an acting primary.
func TestHostedEtcdLeaderOff(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	rank := etcdRank(e.f.d.snap.Load().file, map[string]string{"pacs": "db1"})
	for addr, want := range map[string]int{"10.0.0.11": 2, "10.0.0.12": 1, "10.0.0.13": 0} {
		if got := rank(addr); got != want {
			t.Errorf("rank of %s = %d, want %d", addr, got, want)
		}
	}
	e.co.set(func(co *fakeCoord) { co.lease = &fakeLease{} })
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	e.co.take()
	e.f.d.etcdLeaderOff(context.Background())
	if !pollUntil(time.Second, func() bool { return e.co.count("MoveLeaderOff") == 1 }) {
		t.Fatalf("calls after taking the lease: %v; want MoveLeaderOff 10.0.0.11", e.co.take())
	}
	if !pollUntil(time.Second, func() bool { e.f.d.hosted.mu.Lock(); defer e.f.d.hosted.mu.Unlock(); return !e.f.d.hosted.etcdMoving }) {
		t.Fatal("the move did not end")
	}
	e.f.d.etcdLeaderOff(context.Background())
	time.Sleep(20 * time.Millisecond)
	if calls := e.co.take(); len(calls) != 1 || calls[0] != "MoveLeaderOff 10.0.0.11" {
		t.Errorf("calls: %v; want one MoveLeaderOff 10.0.0.11 within etcdLeaderEvery", calls)
	}
}

// TestHostedFollowRecord: after a change in etcd, a cluster in backoff
// runs its next pass at once only when the record names another acting
// primary or epoch (a failover or switchover done elsewhere); a round
// counted leaves the backoff, and its count of failures stays.
func TestHostedFollowRecord(t *testing.T) {
	e := newHostedEnv(t, "b", nil)
	backoff := func() {
		at := time.Now().Add(time.Minute)
		e.f.d.mu.Lock()
		e.f.d.st.Clusters["pacs"] = &ClusterStatus{Failures: 2, RetryAt: &at}
		e.f.d.mu.Unlock()
	}
	backoff()
	e.f.d.followRecord("pacs") // the first sight: nothing to compare
	if err := e.store.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: 1, Rounds: 7}); err != nil {
		t.Fatal(err)
	}
	e.f.d.followRecord("pacs")
	if e.f.d.retryAt("pacs").IsZero() {
		t.Error("a round counted ended the backoff")
	}
	if err := e.store.Save("pacs", reconcile.ClusterState{Acting: "db2", Epoch: 2, Rounds: 8}); err != nil {
		t.Fatal(err)
	}
	e.f.d.followRecord("pacs")
	if !e.f.d.retryAt("pacs").IsZero() || e.f.d.failures("pacs") != 2 {
		t.Errorf("after a failover elsewhere: retry at %s, %d failures; want at once, 2 kept", e.f.d.retryAt("pacs"), e.f.d.failures("pacs"))
	}
}

// TestCheckedNode: a load balancer's check names its node, or, with pacsd
// on every host, is about this host's one node; anything else names no
// node, with what to ask instead.
func TestCheckedNode(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	f := e.f.d.snap.Load().file
	tests := []struct{ cluster, node, host, want, err string }{
		{node: "db2", want: "db2"},
		{cluster: "pacs", node: "db1", want: "db1"},
		{host: "a", want: "db1"},
		{host: "b", want: "db2"},
		{err: "name the node, ?node=NAME"},
		{host: "c", err: `host "c" runs no node`},
		{node: "db9", err: `the file declares no node "db9"`},
		{cluster: "other", node: "db1", err: `no node "db1" in cluster "other"`},
	}
	for _, tt := range tests {
		_, n, err := checkedNode(f, tt.cluster, tt.node, tt.host)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errNoNode)):
			t.Errorf("checkedNode(%q, %q, %q): %v; want an error with %q", tt.cluster, tt.node, tt.host, err, tt.err)
		case tt.err == "" && (err != nil || n.Name != tt.want):
			t.Errorf("checkedNode(%q, %q, %q): %v, %v; want %s", tt.cluster, tt.node, tt.host, n, err, tt.want)
		}
	}
}

// TestServeCheckEveryHost: the pacsd of the primary's host answers its
// load balancer's checks without a node: /primary 200 while it holds the
// primary's lease, 503 as soon as it does not (before it fences), with why.
func TestServeCheckEveryHost(t *testing.T) {
	e := newHostedEnv(t, "a", nil)
	e.w.allow("ContainerInspect", "Connect", "sql.Health", "sql.Close")
	get := func(path string) (int, LBAnswer) {
		rec := httptest.NewRecorder()
		e.f.d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var a LBAnswer
		if rec.Code != http.StatusNotFound {
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
				t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
			}
		}
		return rec.Code, a
	}
	if code, a := get("/primary"); code != http.StatusServiceUnavailable || a.Node != "db1" || !strings.Contains(a.Why, "lease") {
		t.Errorf("/primary without the lease: %d %+v; want 503 saying the lease is not held", code, a)
	}
	e.co.set(func(co *fakeCoord) { co.lease = &fakeLease{} })
	e.f.d.takeLease(context.Background(), e.c, e.f.d.snap.Load())
	for path, want := range map[string]int{"/primary": 200, "/read-write": 200, "/read-only": 200, "/replica": 503, "/primary?node=db9": 404} {
		if code, a := get(path); code != want {
			t.Errorf("%s with the lease: %d %+v; want %d", path, code, a, want)
		}
	}
}

// TestServeCheckOtherHostsNode: asked about another host's node, a pacsd
// answers /primary 200 only while etcd shows that node's host holding the
// primary's lease for it: the record naming it, and its server taking
// writes, are not enough (its host may have lost the lease and not fenced
// it yet).
func TestServeCheckOtherHostsNode(t *testing.T) {
	e := newHostedEnv(t, "b", &sqlServer{mode: "primary"})
	get := func() (int, LBAnswer) {
		rec := httptest.NewRecorder()
		e.f.d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/primary?node=db1", nil))
		var a LBAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return rec.Code, a
	}
	if code, a := get(); code != http.StatusServiceUnavailable || !strings.Contains(a.Why, "lease") {
		t.Errorf("/primary?node=db1 with no lease held: %d %+v; want 503 saying so", code, a)
	}
	e.co.set(func(co *fakeCoord) { co.holder, co.holderHost = "db1", "a" })
	if code, a := get(); code != http.StatusOK || a.Role != "primary" {
		t.Errorf("/primary?node=db1 with host a holding its lease: %d %+v; want 200", code, a)
	}
}
