package reconcile

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// switchRuntime is the engine of a switchover whose target never catches
// up: the old primary stops cleanly, and each start is recorded with
// whether its context was already cancelled.
type switchRuntime struct {
	Runtime
	mu      sync.Mutex
	calls   []string
	starts  []error // ctx.Err() of each ContainerStart
	stopped map[string]bool
	// seenUp counts inspections of a running container after a start.
	seenUp int
}

func (f *switchRuntime) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *switchRuntime) ContainerInspect(_ context.Context, name, _, _ string) (*ContainerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped["id-"+name] {
		return &ContainerState{ID: "id-" + name, Name: name, Status: "exited"}, nil
	}
	if len(f.starts) > 0 {
		f.seenUp++
	}
	return &ContainerState{ID: "id-" + name, Name: name, Running: true, Addr: name + ":5432"}, nil
}

func (f *switchRuntime) ContainerStop(_ context.Context, id string, _ time.Duration) error {
	f.record("stop " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped == nil {
		f.stopped = map[string]bool{}
	}
	f.stopped[id] = true
	return nil
}

func (f *switchRuntime) ContainerStart(ctx context.Context, id string) error {
	f.record("start " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, ctx.Err())
	if ctx.Err() == nil {
		delete(f.stopped, id)
	}
	return ctx.Err()
}

func (f *switchRuntime) EngineID(context.Context) (string, error) { return "", nil }

func (f *switchRuntime) NodeContainers(context.Context, string, string) ([]string, error) {
	return nil, nil
}

func (f *switchRuntime) WriteFiles(_ context.Context, id string, files []FileWrite) error {
	for _, fw := range files {
		f.record("write " + id + " " + fw.Path)
	}
	return nil
}

func (f *switchRuntime) ReadFiles(context.Context, string, []string) (map[string][]byte, error) {
	b := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1300)
	le.PutUint32(b[16:], uint32(DBShutdowned))
	le.PutUint64(b[32:], 0x3000000)
	le.PutUint32(b[48:], 1)
	return map[string][]byte{ControlPath: b}, nil
}

// laggingDB is a target that stays behind the old primary's checkpoint.
type laggingDB struct{}

func (laggingDB) Connect(context.Context, string, string, spec.Secret, string) (DBConn, error) {
	return laggingConn{}, nil
}

type laggingConn struct{ DBConn }

func (laggingConn) State(context.Context) (*DBState, error) {
	return &DBState{InRecovery: true, Receiver: "streaming", WAL: 0x1000000}, nil
}
func (laggingConn) Checkpoint(context.Context) error { return nil }
func (laggingConn) Close()                           {}

// TestSwitchoverCancelledRestores stops pacsd (cancels the context) while a
// switchover's target catches up: the switchover must end at once, start
// the old primary again with a context that is not cancelled, and record
// nothing; before, it waited out CatchUpTimeout and then tried to start the
// old primary with the cancelled context, which left no primary.
func TestSwitchoverCancelledRestores(t *testing.T) {
	c := testCluster(t, "")
	defer func(d time.Duration) { CatchUpTimeout = d }(CatchUpTimeout)
	CatchUpTimeout = 20 * time.Second
	rt := &switchRuntime{}
	store := &MemoryStore{}
	var log bytes.Buffer
	x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}, DB: laggingDB{}, Store: store},
		obs: &Observed{}, log: slog.New(slog.NewTextHandler(&log, nil)), ids: map[string]string{"db1": "id-pacs-db1"}, acting: "db1"}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	err := x.switchover(ctx, Action{Kind: Switchover, Node: "db2", From: "db1"})
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "was started again and is still the primary") {
		t.Fatalf("switchover cancelled while catching up: %v; want the old primary started again", err)
	}
	if took > 5*time.Second {
		t.Errorf("the cancelled switchover took %s; want it to end at once", took)
	}
	if len(rt.starts) != 1 || rt.starts[0] != nil {
		t.Errorf("starts of the old primary with their context errors: %v; want one, not cancelled", rt.starts)
	}
	if store.Saves != 0 {
		t.Errorf("the state was saved %d times; a switchover that did not happen records nothing", store.Saves)
	}
}

// caughtUpDB is a target that has replayed past the old primary's
// checkpoint; it records promotions.
type caughtUpDB struct{ promoted *int }

func (d caughtUpDB) Connect(context.Context, string, string, spec.Secret, string) (DBConn, error) {
	return caughtUpConn{promoted: d.promoted}, nil
}

type caughtUpConn struct {
	DBConn
	promoted *int
}

func (caughtUpConn) State(context.Context) (*DBState, error) {
	return &DBState{InRecovery: true, Receiver: "streaming", WAL: 0x4000000}, nil
}
func (caughtUpConn) Checkpoint(context.Context) error { return nil }
func (c caughtUpConn) Promote(context.Context) error  { *c.promoted++; return nil }
func (caughtUpConn) Close()                           {}

// errDiskFull is what a write to a full disk returns.
var errDiskFull = errors.New("write state/cluster-pacs.json: no space left on device")

// TestSwitchoverRecordFails: when the new acting primary cannot be
// recorded, nothing is promoted and the old primary is started again.
func TestSwitchoverRecordFails(t *testing.T) {
	c := testCluster(t, "")
	rt := &switchRuntime{}
	promoted := 0
	x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}, DB: caughtUpDB{&promoted}, Store: &MemoryStore{SaveErr: errDiskFull}},
		obs: &Observed{}, log: slog.New(slog.DiscardHandler), ids: map[string]string{"db1": "id-pacs-db1"}, acting: "db1"}
	err := x.switchover(context.Background(), Action{Kind: Switchover, Node: "db2", From: "db1"})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "was started again") {
		t.Fatalf("switchover with a failing state store: %v; want the write's error and the old primary started again", err)
	}
	if promoted != 0 {
		t.Errorf("%d promotions although the new acting primary was not recorded", promoted)
	}
	if len(rt.starts) != 1 {
		t.Errorf("the old primary was started %d times, want once", len(rt.starts))
	}
	// It answers before the switchover lets the cluster's lock go: the
	// failover supervisor, which saw it stopped, would take it for lost.
	if rt.seenUp == 0 {
		t.Error("the switchover returned before it saw the old primary answer again")
	}
}

// fullStore is a store whose state directory is full: CheckWrite fails.
type fullStore struct{ *MemoryStore }

func (fullStore) CheckWrite(string) error { return errDiskFull }

// TestSwitchoverRecordNotWritableStopsNothing: when a copy of the record
// does not fit, the switchover refuses before it stops the old primary.
func TestSwitchoverRecordNotWritableStopsNothing(t *testing.T) {
	c := testCluster(t, "")
	rt := &switchRuntime{}
	promoted := 0
	x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}, DB: caughtUpDB{&promoted}, Store: fullStore{&MemoryStore{SaveErr: errDiskFull}}},
		obs: &Observed{}, log: slog.New(slog.DiscardHandler), ids: map[string]string{"db1": "id-pacs-db1"}, acting: "db1"}
	err := x.switchover(context.Background(), Action{Kind: Switchover, Node: "db2", From: "db1"})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "was not stopped") {
		t.Fatalf("switchover with a full state directory: %v; want the write's error and the old primary not stopped", err)
	}
	for _, call := range rt.calls {
		if strings.Contains(call, "stop") {
			t.Errorf("the runtime was asked to %s although the record could not be written", call)
		}
	}
	if promoted != 0 || len(rt.starts) != 0 {
		t.Errorf("promoted %d, started %d; want nothing done", promoted, len(rt.starts))
	}
}

// TestFailoverRecordFails: when the new acting primary cannot be recorded,
// the failover promotes nothing and says why.
func TestFailoverRecordFails(t *testing.T) {
	c := testCluster(t, "failover {\n automatic = true\n }")
	rt := &switchRuntime{}
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": rt}, DB: healthDB{promoted: &promoted}, Store: recorded("db1", errDiskFull)}
	_, err := Failover(context.Background(), c, d, LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("failover with a failing state store: %v; want the write's error", err)
	}
	if promoted != 0 {
		t.Errorf("%d promotions although the new acting primary was not recorded", promoted)
	}
	want := []string{"write id-pacs-db1 " + SignalPath, "stop id-pacs-db1"}
	if len(rt.calls) < 2 || rt.calls[0] != want[0] || rt.calls[1] != want[1] {
		t.Errorf("engine calls %q; want the fence first: standby.signal, then the stop: %q", rt.calls, want)
	}
}

// healthDB answers health checks: db1 (the lost primary) refuses
// connections, the others are standbys that have everything.
type healthDB struct{ promoted *int }

func (d healthDB) Connect(_ context.Context, addr string, _ string, _ spec.Secret, _ string) (DBConn, error) {
	if strings.HasPrefix(addr, "pacs-db1:") {
		return nil, errors.New("connection refused")
	}
	return caughtUpConn{promoted: d.promoted}, nil
}

func (caughtUpConn) Health(context.Context) (*DBState, error) {
	return &DBState{InRecovery: true, WAL: 0x4000000, ReceivedWAL: 0x4000000}, nil
}

// TestFailoverFencesNothingWithoutCandidate: when no standby qualifies (here:
// asynchronous replication and the primary's last position unknown), the
// primary is not touched at all: no standby.signal, no stop.
func TestFailoverFencesNothingWithoutCandidate(t *testing.T) {
	c := testCluster(t, "failover {\n automatic = true\n }")
	rt := &switchRuntime{}
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": rt}, DB: healthDB{promoted: &promoted}, Store: recorded("db1", nil)}
	_, err := Failover(context.Background(), c, d, LastSeen{}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("failover with no qualifying standby: %v; want ErrNoCandidate", err)
	}
	if len(rt.calls) != 0 || promoted != 0 {
		t.Errorf("engine calls %q and %d promotions; want none", rt.calls, promoted)
	}
}

// renamedRuntime is an engine on which node db1's container runs under
// another name ("renamed-db1"): none has the file's name.
type renamedRuntime struct{ switchRuntime }

func (f *renamedRuntime) NodeContainers(_ context.Context, _, node string) ([]string, error) {
	if node == "db1" {
		return []string{"renamed-db1"}, nil
	}
	return nil, nil
}

func (f *renamedRuntime) ContainerInspect(ctx context.Context, name, cluster, node string) (*ContainerState, error) {
	if name == "pacs-db1" {
		return nil, nil
	}
	return f.switchRuntime.ContainerInspect(ctx, name, cluster, node)
}

// TestFenceFindsRenamedContainer: a primary whose container was renamed is
// still fenced (before, no container by the file's name counted as fenced,
// and a standby was promoted beside the running primary).
func TestFenceFindsRenamedContainer(t *testing.T) {
	c := testCluster(t, "")
	rt := &renamedRuntime{}
	if err := fenceNode(context.Background(), rt, c, c.Node("db1"), time.Second); err != nil {
		t.Fatalf("fence: %v", err)
	}
	want := []string{"write id-renamed-db1 " + SignalPath, "stop id-renamed-db1"}
	if len(rt.calls) != 2 || rt.calls[0] != want[0] || rt.calls[1] != want[1] {
		t.Errorf("engine calls %q, want %q", rt.calls, want)
	}
}

// savedButFailingStore is a state store whose write takes effect and then
// reports an error (its directory could not be synced).
type savedButFailingStore struct{ MemoryStore }

func (f *savedButFailingStore) Save(cluster string, s ClusterState) error {
	_ = f.MemoryStore.Save(cluster, s)
	return errors.New("while syncing the state directory: input/output error")
}

// TestSwitchoverRecordInPlaceDespiteError: when the write of the new acting
// primary reports an error but may have taken effect, the switchover neither
// promotes the target (the record may not survive a crash) nor starts the old
// primary again (the record may name the target): it stops and says so.
func TestSwitchoverRecordInPlaceDespiteError(t *testing.T) {
	c := testCluster(t, "")
	rt := &switchRuntime{}
	promoted := 0
	x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}, DB: caughtUpDB{&promoted}, Store: &savedButFailingStore{}},
		obs: &Observed{}, log: slog.New(slog.DiscardHandler), ids: map[string]string{"db1": "id-pacs-db1"}, acting: "db1"}
	err := x.switchover(context.Background(), Action{Kind: Switchover, Node: "db2", From: "db1"})
	if err == nil || !strings.Contains(err.Error(), "neither was started or promoted") {
		t.Fatalf("switchover with a write that may have taken effect: %v; want it to stop and say so", err)
	}
	if promoted != 0 || len(rt.starts) != 0 {
		t.Errorf("%d promotions and %d starts of the old primary; want neither", promoted, len(rt.starts))
	}
}

// deadEngine is an engine that does not answer: no fence can be confirmed.
type deadEngine struct{ switchRuntime }

func (*deadEngine) EngineID(context.Context) (string, error) {
	return "", errors.New("Cannot connect to the Docker daemon")
}

func (*deadEngine) NodeContainers(context.Context, string, string) ([]string, error) {
	return nil, errors.New("Cannot connect to the Docker daemon")
}

// TestManualFailoverConfirmFenced: with the old primary's engine gone,
// 'pacsd failover NODE' refuses, and promotes with --confirm-fenced, but
// only where containers do not restart with their engine (automatic
// failover: restart policy no).
func TestManualFailoverConfirmFenced(t *testing.T) {
	last := LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}
	log := slog.New(slog.DiscardHandler)
	manual := testCluster(t, "")
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": &deadEngine{}}, DB: healthDB{promoted: &promoted}, Store: recorded("db1", nil)}
	_, err := ManualFailover(context.Background(), manual, d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if !errors.Is(err, ErrNotFenced) || !strings.Contains(err.Error(), "restart policy") || promoted != 0 {
		t.Fatalf("--confirm-fenced on a cluster whose containers restart with their engine: %v, %d promotions; want a refusal", err, promoted)
	}
	c := testCluster(t, "failover {\n automatic = true\n }")
	_, err = ManualFailover(context.Background(), c, d, "db2", ManualOptions{}, last, log)
	if !errors.Is(err, ErrNotFenced) || !strings.Contains(err.Error(), "--confirm-fenced") || promoted != 0 {
		t.Fatalf("manual failover with the engine gone: %v, %d promotions; want ErrNotFenced naming --confirm-fenced", err, promoted)
	}
	to, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if err != nil || to != "db2" || promoted != 1 {
		t.Errorf("manual failover with --confirm-fenced: %q, %v, %d promotions; want db2 promoted", to, err, promoted)
	}
}

// recorded is a store whose record names acting as the acting primary
// (epoch 1); its later saves fail with saveErr, when set.
func recorded(acting string, saveErr error) *MemoryStore {
	m := &MemoryStore{}
	_ = m.Save("pacs", ClusterState{Acting: acting, Epoch: 1})
	m.SaveErr = saveErr
	return m
}

// TestManualFailoverWithoutRecord: with no record (or a damaged one) and the
// primary lost, so that no pass can rebuild the record, 'pacsd failover'
// refuses and names --from; with --from it fences the named node like any
// old primary and promotes; with a record, --from must name the recorded
// primary.
func TestManualFailoverWithoutRecord(t *testing.T) {
	last := LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}
	log := slog.New(slog.DiscardHandler)
	c := testCluster(t, "failover {\n automatic = true\n }")
	for _, store := range []*MemoryStore{{}, {LoadErr: fmt.Errorf("%w: state/cluster-pacs.json is empty", ErrRecordDamaged)}} {
		rt := &switchRuntime{}
		promoted := 0
		d := Deps{Runtimes: map[string]Runtime{"": rt}, DB: healthDB{promoted: &promoted}, Store: store}
		_, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{}, last, log)
		if !errors.Is(err, ErrActingUnknown) || !strings.Contains(err.Error(), "--from NODE") || promoted != 0 || len(rt.calls) != 0 {
			t.Fatalf("failover without a record (load error %v): %v, %d promotions, calls %q; want a refusal naming --from", store.LoadErr, err, promoted, rt.calls)
		}
		store.LoadErr = nil
		to, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{From: "db1"}, last, log)
		if err != nil || to != "db2" || promoted != 1 {
			t.Fatalf("failover --from db1 without a record: %q, %v, %d promotions; want db2 promoted", to, err, promoted)
		}
		if len(rt.calls) < 2 || rt.calls[0] != "write id-pacs-db1 "+SignalPath || rt.calls[1] != "stop id-pacs-db1" {
			t.Errorf("engine calls %q; want db1 fenced first", rt.calls)
		}
		if st, _ := store.Load("pacs"); st.Acting != "db2" || st.Epoch != 1 || st.Keep != "db1" {
			t.Errorf("record after failover --from: %+v", st)
		}
	}
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": &switchRuntime{}}, DB: healthDB{promoted: &promoted}, Store: recorded("db1", nil)}
	if _, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{From: "db3"}, last, log); err == nil || !strings.Contains(err.Error(), `names "db1"`) || promoted != 0 {
		t.Errorf("--from against the record: %v, %d promotions; want a refusal", err, promoted)
	}
	// A --from that names no node (or carries shell metacharacters) is
	// refused before anything is touched.
	rt := &switchRuntime{}
	d = Deps{Runtimes: map[string]Runtime{"": rt}, DB: healthDB{promoted: &promoted}, Store: &MemoryStore{}}
	for _, from := range []string{"db9", "db1; docker rm -f pacs-db2", "$(reboot)"} {
		if _, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{From: from}, last, log); err == nil || !strings.Contains(err.Error(), "has no node") || promoted != 0 || len(rt.calls) != 0 {
			t.Errorf("--from %q: %v, %d promotions, calls %q; want a refusal naming the node", from, err, promoted, rt.calls)
		}
	}
}

// writerDB is db3 answering as a primary (promoted by hand), the others as
// standbys that qualify.
type writerDB struct{ healthDB }

func (d writerDB) Connect(ctx context.Context, addr string, user string, pw spec.Secret, db string) (DBConn, error) {
	if strings.HasPrefix(addr, "pacs-db3:") {
		return writerConn{}, nil
	}
	return d.healthDB.Connect(ctx, addr, user, pw, db)
}

type writerConn struct{ caughtUpConn }

func (writerConn) Health(context.Context) (*DBState, error) { return &DBState{WAL: 0x5000000}, nil }

// TestFailoverRefusedBesideAnotherPrimary: when a node other than the one
// taken for the lost primary accepts writes (a promotion by hand, a stale
// record, --from naming a standby), neither the daemon's failover nor
// 'pacsd failover' fences or promotes anything.
func TestFailoverRefusedBesideAnotherPrimary(t *testing.T) {
	last := LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}
	log := slog.New(slog.DiscardHandler)
	c := testCluster(t, "failover {\n automatic = true\n }")
	for _, tt := range []struct {
		name  string
		store *MemoryStore
		run   func(d Deps) (string, error)
	}{
		{"automatic", recorded("db1", nil), func(d Deps) (string, error) { return Failover(context.Background(), c, d, last, log) }},
		{"by hand", recorded("db1", nil), func(d Deps) (string, error) {
			return ManualFailover(context.Background(), c, d, "db2", ManualOptions{AcceptLoss: true}, last, log)
		}},
		{"by hand, --from a standby without a record", &MemoryStore{}, func(d Deps) (string, error) {
			return ManualFailover(context.Background(), c, d, "db2", ManualOptions{AcceptLoss: true, From: "db1"}, last, log)
		}},
	} {
		rt := &switchRuntime{}
		promoted := 0
		d := Deps{Runtimes: map[string]Runtime{"": rt}, DB: writerDB{healthDB{promoted: &promoted}}, Store: tt.store}
		_, err := tt.run(d)
		if !errors.Is(err, ErrActingUnknown) || !strings.Contains(err.Error(), `"db3" accepts writes`) {
			t.Errorf("%s: %v; want a refusal naming db3", tt.name, err)
		}
		if promoted != 0 || len(rt.calls) != 0 {
			t.Errorf("%s: %d promotions, engine calls %q; want none", tt.name, promoted, rt.calls)
		}
	}
}

// stopFailsEngine answers every call but fails to stop a container, which
// it then reports still running.
type stopFailsEngine struct{ switchRuntime }

func (f *stopFailsEngine) ContainerStop(_ context.Context, id string, _ time.Duration) error {
	f.record("stop " + id)
	return errors.New("tried to kill container, but did not receive an exit event")
}

// TestManualFailoverStopFailsOnAnsweringEngine: an engine that answers and
// fails to stop the old primary is no unreachable engine: --confirm-fenced
// does not promote beside a primary its engine reports running.
func TestManualFailoverStopFailsOnAnsweringEngine(t *testing.T) {
	last := LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}
	c := testCluster(t, "failover {\n automatic = true\n }")
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": &stopFailsEngine{}}, DB: healthDB{promoted: &promoted}, Store: recorded("db1", nil)}
	_, err := ManualFailover(context.Background(), c, d, "db2", ManualOptions{ConfirmFenced: true}, last, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrNotFenced) || errors.Is(err, ErrEngineUnreachable) || promoted != 0 || !strings.Contains(err.Error(), "running") {
		t.Fatalf("--confirm-fenced with the old primary's engine answering 'running': %v, %d promotions; want a refusal that says it runs", err, promoted)
	}
}

// TestManualFailoverPlacement: the record's sight of the old primary
// decides: a node the file moved to another engine is never taken for
// fenced, and --confirm-fenced goes by the restart policy its container
// was seen with, not by the file's failover.automatic.
func TestManualFailoverPlacement(t *testing.T) {
	last := LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}
	log := slog.New(slog.DiscardHandler)
	store := func(pl Placement) *MemoryStore {
		m := &MemoryStore{}
		_ = m.Save("pacs", ClusterState{Acting: "db1", Epoch: 1, Placed: map[string]Placement{"db1": pl}})
		return m
	}
	auto := testCluster(t, "failover {\n automatic = true\n }")
	promoted := 0
	d := Deps{Runtimes: map[string]Runtime{"": &deadEngine{}}, DB: healthDB{promoted: &promoted}, Store: testStore}

	d.Store = store(Placement{Host: "x", Docker: "tcp://10.0.0.9:2376", Restart: "no"})
	_, err := ManualFailover(context.Background(), auto, d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if !errors.Is(err, ErrNotFenced) || !strings.Contains(err.Error(), `last seen on the Docker engine of host "x"`) || promoted != 0 {
		t.Fatalf("failover of a primary the file moved: %v, %d promotions; want a refusal naming where it was", err, promoted)
	}

	d.Store = store(Placement{Restart: "unless-stopped"})
	_, err = ManualFailover(context.Background(), auto, d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if !errors.Is(err, ErrNotFenced) || !strings.Contains(err.Error(), "restart policy unless-stopped") || promoted != 0 {
		t.Fatalf("--confirm-fenced for a container seen with unless-stopped: %v, %d promotions; want a refusal", err, promoted)
	}

	// Seen with no, but the file (no automatic failover) has pacsd give it
	// unless-stopped since: it may have been re-created so.
	d.Store = store(Placement{Restart: "no"})
	_, err = ManualFailover(context.Background(), testCluster(t, ""), d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if !errors.Is(err, ErrNotFenced) || !strings.Contains(err.Error(), "unless-stopped in the file") || promoted != 0 {
		t.Fatalf("--confirm-fenced for a container seen with no that the file gives unless-stopped: %v, %d promotions; want a refusal", err, promoted)
	}

	d.Store = store(Placement{Restart: "no"})
	to, err := ManualFailover(context.Background(), auto, d, "db2", ManualOptions{ConfirmFenced: true}, last, log)
	if err != nil || to != "db2" || promoted != 1 {
		t.Fatalf("--confirm-fenced for a container seen with restart policy no: %q, %v, %d promotions; want db2 promoted", to, err, promoted)
	}
	if st, _ := d.Store.Load("pacs"); st.Confirmed != "db1" || st.Acting != "db2" {
		t.Errorf("record after --confirm-fenced: %+v; want db2 acting and db1 confirmed stopped", st)
	}
}

// TestSwitchoverEveryHostHandOverFails: with pacsd on every host and
// automatic failover, once the primary's lease may be gone (its release or
// the record's write failed), the old primary is never started again by
// the switchover: it stays stopped, with standby.signal, and nothing is
// promoted. Without automatic failover no lease is handed over, and a
// record that surely did not change starts it again, as with one
// controller.
func TestSwitchoverEveryHostHandOverFails(t *testing.T) {
	for _, tt := range []struct {
		name      string
		automatic bool
		handOver  error
		saveErr   error
		undone    bool
		started   int
	}{
		{name: "the release fails", automatic: true, handOver: errors.New("context deadline exceeded")},
		{name: "the record's write fails", automatic: true, saveErr: errDiskFull, undone: true},
		{name: "no automatic failover, the record's write fails", saveErr: errDiskFull, started: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.automatic {
				extra = "failover {\n automatic = true\n }"
			}
			c := testCluster(t, extra)
			rt := &switchRuntime{}
			promoted, handed, undone := 0, 0, false
			hosted := &Hosted{Host: "", HandOver: func(context.Context, string, string) (func(), error) {
				handed++
				if tt.handOver != nil {
					return nil, tt.handOver
				}
				return func() { undone = true }, nil
			}}
			x := &executor{c: c, d: Deps{Runtimes: map[string]Runtime{"": rt}, DB: caughtUpDB{&promoted}, Store: &MemoryStore{SaveErr: tt.saveErr}, Hosted: hosted},
				obs: &Observed{}, log: slog.New(slog.DiscardHandler), ids: map[string]string{"db1": "id-pacs-db1"}, acting: "db1"}
			err := x.switchover(context.Background(), Action{Kind: Switchover, Node: "db2", From: "db1"})
			if err == nil || promoted != 0 {
				t.Fatalf("switchover: %v, %d promotions; want an error and none", err, promoted)
			}
			if len(rt.starts) != tt.started {
				t.Errorf("the old primary was started %d times, want %d (%v)", len(rt.starts), tt.started, err)
			}
			if tt.automatic {
				if handed != 1 || undone != tt.undone {
					t.Errorf("hand-overs %d, undone %t; want 1, %t", handed, undone, tt.undone)
				}
				if !slices.Contains(rt.calls, "write id-pacs-db1 "+SignalPath) || !strings.Contains(err.Error(), "stays stopped") {
					t.Errorf("engine calls %q, error %v; want standby.signal placed and the old primary left stopped", rt.calls, err)
				}
			} else if handed != 0 {
				t.Errorf("%d hand-overs without automatic failover, want none", handed)
			}
		})
	}
}

// startedDuringFence is a stopped primary that a restart starts right
// after the fence looked at it and before the fence placed standby.signal.
type startedDuringFence struct {
	switchRuntime
	started bool
}

func (f *startedDuringFence) WriteFiles(ctx context.Context, id string, files []FileWrite) error {
	f.mu.Lock()
	if !f.started && f.stopped[id] {
		f.started, f.stopped[id] = true, false // the restart's ContainerStart
	}
	f.mu.Unlock()
	return f.switchRuntime.WriteFiles(ctx, id, files)
}

// TestFenceCatchesStartDuringFence: a fence that finds the primary stopped
// and places standby.signal looks again; the primary started meanwhile
// (without the signal, so as a primary) is stopped, the signal in place.
func TestFenceCatchesStartDuringFence(t *testing.T) {
	c := testCluster(t, "")
	rt := &startedDuringFence{switchRuntime: switchRuntime{stopped: map[string]bool{"id-pacs-db1": true}}}
	if err := fenceNode(context.Background(), rt, c, c.Node("db1"), time.Second); err != nil {
		t.Fatalf("fence: %v", err)
	}
	if st, _ := rt.ContainerInspect(context.Background(), "pacs-db1", "pacs", "db1"); st.Running {
		t.Errorf("the primary started during the fence still runs; engine calls %q", rt.calls)
	}
	if n := len(rt.calls); n == 0 || rt.calls[n-1] != "stop id-pacs-db1" {
		t.Errorf("engine calls %q; want the primary stopped last", rt.calls)
	}
}
