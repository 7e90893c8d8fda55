package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// checkWorld is what the supervisor's check sees of a cluster: containers
// by name on engines that answer or not, and the health their servers
// report. Every call is recorded; a call of a method the test did not allow
// fails the test with the method and its arguments (the fake fails loudly
// on what it does not expect). Changes of the store's record show among the
// calls as "record ..." entries, where the next call saw them.
type checkWorld struct {
	t       *testing.T
	cluster string
	store   reconcile.ClusterStore

	mu      sync.Mutex
	allowed map[string]bool
	calls   []string
	last    reconcile.ClusterState
	cts     map[string]*checkCt // by container name
}

// checkCt is a container and the health of its server.
type checkCt struct {
	running bool
	// health is what its server reports while the container runs.
	health reconcile.DBState
}

func newCheckWorld(t *testing.T, cluster string, store reconcile.ClusterStore) *checkWorld {
	w := &checkWorld{t: t, cluster: cluster, store: store, allowed: map[string]bool{}, cts: map[string]*checkCt{}}
	w.last, _ = store.Load(cluster)
	return w
}

func (w *checkWorld) allow(methods ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range methods {
		w.allowed[m] = true
	}
}

// set changes the world between checks.
func (w *checkWorld) set(f func(cts map[string]*checkCt)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w.cts)
}

func (w *checkWorld) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	calls := w.calls
	w.calls = nil
	return calls
}

// call records a call; the error is non-nil when the test does not allow it.
func (w *checkWorld) call(method string, args ...string) error {
	text := strings.Join(append([]string{method}, args...), " ")
	w.mu.Lock()
	defer w.mu.Unlock()
	if st, err := w.store.Load(w.cluster); err == nil && !st.Same(w.last) {
		w.calls = append(w.calls, fmt.Sprintf("record acting=%s epoch=%d keep=%s", st.Acting, st.Epoch, st.Keep))
		w.last = st
	}
	w.calls = append(w.calls, text)
	if !w.allowed[method] {
		w.t.Errorf("unexpected call %s: this test does not allow %s", text, method)
		return fmt.Errorf("unexpected call %s", text)
	}
	return nil
}

// checkEngine is one engine of the world; an unreachable one answers every
// call with the error of an engine that cannot be reached.
type checkEngine struct {
	w           *checkWorld
	unreachable bool
}

var errUnreachable = errors.New(`error during connect: Get "https://192.0.2.10:2376/v1.47/containers/json": dial tcp 192.0.2.10:2376: connect: no route to host`)

// do records a call and says whether the engine answers.
func (e *checkEngine) do(method string, args ...string) error {
	if err := e.w.call(method, args...); err != nil {
		return err
	}
	if e.unreachable {
		return errUnreachable
	}
	return nil
}

func (e *checkEngine) ContainerInspect(_ context.Context, name, cluster, node string) (*reconcile.ContainerState, error) {
	if err := e.do("ContainerInspect", name); err != nil {
		return nil, err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	ct := w.cts[name]
	if ct == nil {
		return nil, nil
	}
	st := &reconcile.ContainerState{ID: "id-" + name, Name: name, Owned: true, Running: ct.running, Status: "exited"}
	if ct.running {
		st.Status, st.Addr = "running", name+":5432"
	}
	return st, nil
}

func (e *checkEngine) NodeContainers(_ context.Context, cluster, node string) ([]string, error) {
	if err := e.do("NodeContainers", node); err != nil {
		return nil, err
	}
	return []string{cluster + "-" + node}, nil
}

func (e *checkEngine) WriteFiles(_ context.Context, id string, files []reconcile.FileWrite) error {
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	return e.do("WriteFiles", id, strings.Join(paths, ","))
}

func (e *checkEngine) ContainerStop(_ context.Context, id string, timeout time.Duration) error {
	if err := e.do("ContainerStop", id); err != nil {
		return err
	}
	w := e.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if ct := w.cts[strings.TrimPrefix(id, "id-")]; ct != nil {
		ct.running = false
	}
	return nil
}

// The engine calls a supervisor's check never makes.

func (e *checkEngine) NetworkInspect(_ context.Context, name, cluster string) (*reconcile.NetworkState, error) {
	return nil, e.do("NetworkInspect", name, cluster)
}
func (e *checkEngine) NetworkCreate(_ context.Context, name string, labels map[string]string) error {
	return e.do("NetworkCreate", name, fmt.Sprint(labels))
}
func (e *checkEngine) EngineID(context.Context) (string, error) { return "", nil }
func (e *checkEngine) ImageInspect(_ context.Context, ref string) (*reconcile.ImageState, error) {
	return nil, e.do("ImageInspect", ref)
}
func (e *checkEngine) ImagePull(_ context.Context, ref string, _ func(string)) error {
	return e.do("ImagePull", ref)
}
func (e *checkEngine) ContainerCreate(_ context.Context, c reconcile.ContainerSpec) (string, error) {
	return "", e.do("ContainerCreate", c.Name)
}
func (e *checkEngine) ContainerStart(_ context.Context, id string) error {
	return e.do("ContainerStart", id)
}
func (e *checkEngine) ContainerRemove(_ context.Context, id string) error {
	return e.do("ContainerRemove", id)
}
func (e *checkEngine) NetworkAliases(_ context.Context, id, netName string, aliases []string) error {
	return e.do("NetworkAliases", id, netName, strings.Join(aliases, ","))
}
func (e *checkEngine) ReadFiles(_ context.Context, id string, paths []string) (map[string][]byte, error) {
	return nil, e.do("ReadFiles", id, strings.Join(paths, ","))
}
func (e *checkEngine) Exec(_ context.Context, id, user string, cmd []string) (string, int, error) {
	return "", -1, e.do("Exec", append([]string{id, user}, cmd...)...)
}
func (e *checkEngine) RunOnce(_ context.Context, o reconcile.OneOff) (int, string, error) {
	return -1, "", e.do("RunOnce", o.Name)
}
func (e *checkEngine) RemoveOneOffs(_ context.Context, cluster, node string) ([]string, error) {
	return nil, e.do("RemoveOneOffs", cluster, node)
}
func (e *checkEngine) DataInspect(_ context.Context, image string, m reconcile.Mount) (reconcile.DataState, error) {
	return reconcile.DataState{}, e.do("DataInspect", image, m.Volume+m.HostDir)
}

// checkDB connects to the world's servers.
type checkDB struct{ w *checkWorld }

func (db checkDB) Connect(_ context.Context, addr, user string, _ spec.Secret, database string) (reconcile.DBConn, error) {
	if err := db.w.call("Connect", addr); err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(addr, ":5432")
	db.w.mu.Lock()
	defer db.w.mu.Unlock()
	if ct := db.w.cts[name]; ct == nil || !ct.running {
		return nil, fmt.Errorf("dial tcp %s: connect: connection refused", addr)
	}
	return &checkConn{w: db.w, name: name}, nil
}

// checkConn is a connection to one server.
type checkConn struct {
	w    *checkWorld
	name string
}

func (c *checkConn) Health(context.Context) (*reconcile.DBState, error) {
	if err := c.w.call("sql.Health", c.name); err != nil {
		return nil, err
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	h := c.w.cts[c.name].health
	return &h, nil
}

func (c *checkConn) Promote(context.Context) error {
	if err := c.w.call("sql.Promote", c.name); err != nil {
		return err
	}
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	c.w.cts[c.name].health.InRecovery = false
	return nil
}

func (c *checkConn) Close() { _ = c.w.call("sql.Close", c.name) }

// The SQL calls a supervisor's check never makes.

func (c *checkConn) State(context.Context) (*reconcile.DBState, error) {
	return nil, c.w.call("sql.State", c.name)
}
func (c *checkConn) SetRole(_ context.Context, r reconcile.RoleSpec) error {
	return c.w.call("sql.SetRole", c.name, r.Name)
}
func (c *checkConn) DropRole(_ context.Context, name string) error {
	return c.w.call("sql.DropRole", c.name, name)
}
func (c *checkConn) CreateSlot(_ context.Context, name string) error {
	return c.w.call("sql.CreateSlot", c.name, name)
}
func (c *checkConn) ResetSetting(_ context.Context, name string) error {
	return c.w.call("sql.ResetSetting", c.name, name)
}
func (c *checkConn) Reload(context.Context) error { return c.w.call("sql.Reload", c.name) }
func (c *checkConn) Checkpoint(context.Context) error {
	return c.w.call("sql.Checkpoint", c.name)
}
func (c *checkConn) DropSlot(_ context.Context, name string) error {
	return c.w.call("sql.DropSlot", c.name, name)
}
func (c *checkConn) ReadFiles(_ context.Context, paths, digests []string) (map[string][]byte, error) {
	return nil, c.w.call("sql.ReadFiles", c.name, strings.Join(paths, ","))
}

// healthCalls are the calls of one health check of a running server.
var healthCalls = []string{"ContainerInspect", "Connect", "sql.Health", "sql.Close"}

// acting picks the calls that change something, and the record's changes.
func acting(calls []string) []string {
	var out []string
	for _, c := range calls {
		method, _, _ := strings.Cut(c, " ")
		switch method {
		case "record", "WriteFiles", "ContainerStop", "ContainerStart", "sql.Promote":
			out = append(out, c)
		}
	}
	return out
}

// TestCheckOverScriptedWorld runs the supervisor's check, a few times in a
// row, over a world that fails the test on any call it does not allow.
func TestCheckOverScriptedWorld(t *testing.T) {
	const wal = 0x3000000
	primary := reconcile.DBState{WAL: wal}
	standby := reconcile.DBState{InRecovery: true, WAL: wal, ReceivedWAL: wal}
	killed := func(cts map[string]*checkCt) { cts["pacs-db1"].running = false }
	type step struct {
		// before changes the world before the check; wait comes before it.
		before func(cts map[string]*checkCt)
		wait   time.Duration
	}
	tests := []struct {
		name string
		// noRecord: the store keeps no record of the cluster.
		noRecord bool
		// unreachable: db1 is on an engine of its own that stops answering
		// after the first check.
		unreachable bool
		after       time.Duration // failover.after
		allow       []string
		steps       []step
		calls       []string // every call, when set
		acts        []string // the calls that change something, and the record's changes
		record      reconcile.ClusterState
		seen        reconcile.LastSeen // Node and WAL of the last sight kept
		metrics     map[string]bool    // lines of /metrics, present or not
		log         []string
		noLog       []string
		// poked: the check started a pass (after a failover, done or
		// refused: the engine's events about the primary leave it to the
		// supervisor)
		poked bool
	}{
		{
			name:   "a healthy primary: no failover, its sight is kept",
			after:  100 * time.Millisecond,
			allow:  healthCalls,
			steps:  []step{{}},
			calls:  []string{"ContainerInspect pacs-db1", "Connect pacs-db1:5432", "sql.Health pacs-db1", "sql.Close pacs-db1"},
			record: reconcile.ClusterState{Acting: "db1", Epoch: 1},
			seen:   reconcile.LastSeen{Node: "db1", WAL: wal},
			metrics: map[string]bool{
				`pacsd_failovers_total{cluster="pacs",result="promoted"} 1`: false,
				`pacsd_failovers_total{cluster="pacs",result="refused"} 1`:  false,
			},
			noLog: []string{"primary lost"},
		},
		{
			name:   "a primary lost for less than failover.after: said so, nothing else",
			after:  time.Hour,
			allow:  append([]string{"ContainerInspect"}, healthCalls...),
			steps:  []step{{}, {before: killed}, {wait: 50 * time.Millisecond}},
			record: reconcile.ClusterState{Acting: "db1", Epoch: 1},
			seen:   reconcile.LastSeen{Node: "db1", WAL: wal},
			metrics: map[string]bool{
				`pacsd_failovers_total{cluster="pacs",result="promoted"} 1`: false,
			},
			log: []string{"primary lost"},
		},
		{
			name:  "a primary lost for failover.after: fenced, a standby recorded and promoted",
			poked: true,
			after: 100 * time.Millisecond,
			allow: append([]string{"NodeContainers", "WriteFiles", "sql.Promote"}, healthCalls...),
			steps: []step{{}, {before: killed}, {wait: 150 * time.Millisecond}},
			acts: []string{
				"WriteFiles id-pacs-db1 " + reconcile.SignalPath,
				"record acting=db2 epoch=2 keep=db1",
				"sql.Promote pacs-db2",
			},
			record:  reconcile.ClusterState{Acting: "db2", Epoch: 2, Keep: "db1"},
			seen:    reconcile.LastSeen{Node: "db1", WAL: wal},
			metrics: map[string]bool{`pacsd_failovers_total{cluster="pacs",result="promoted"} 1`: true},
			log:     []string{"primary lost", "failover done"},
		},
		{
			name:     "no record: nothing is checked at all",
			noRecord: true,
			after:    100 * time.Millisecond,
			steps:    []step{{}, {before: killed}, {wait: 150 * time.Millisecond}},
			calls:    []string{},
			metrics: map[string]bool{
				`pacsd_failovers_total{cluster="pacs",result="promoted"} 1`: false,
				`pacsd_failovers_total{cluster="pacs",result="refused"} 1`:  false,
			},
			log: []string{"automatic failover is suspended"},
		},
		{
			name:        "the primary's engine does not answer: the failover is refused and counted",
			unreachable: true,
			poked:       true,
			after:       100 * time.Millisecond,
			allow:       append([]string{"NodeContainers"}, healthCalls...),
			steps:       []step{{}, {}, {wait: 150 * time.Millisecond}},
			record:      reconcile.ClusterState{Acting: "db1", Epoch: 1},
			seen:        reconcile.LastSeen{Node: "db1", WAL: wal},
			metrics: map[string]bool{
				`pacsd_failovers_total{cluster="pacs",result="refused"} 1`:  true,
				`pacsd_failovers_total{cluster="pacs",result="promoted"} 1`: false,
			},
			log: []string{"failover refused", "the node's engine does not answer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFixture(t)
			c := f.d.file.Clusters[0]
			c.Failover.Automatic, c.Failover.After = true, spec.Duration{Duration: tt.after}
			store := f.d.snap.Load().deps.Store
			if !tt.noRecord {
				store = f.recorded(t, c)
			}
			w := newCheckWorld(t, c.Name, store)
			w.allow(tt.allow...)
			w.set(func(cts map[string]*checkCt) {
				cts["pacs-db1"] = &checkCt{running: true, health: primary}
				cts["pacs-db2"] = &checkCt{running: true, health: standby}
			})
			db1 := &checkEngine{w: w}
			deps := reconcile.Deps{Runtimes: map[string]reconcile.Runtime{"": &checkEngine{w: w}}, DB: checkDB{w}, Store: store, CAs: &reconcile.MemoryStore{}}
			if tt.unreachable {
				c.Node("db1").Host = "h1"
				deps.Runtimes["h1"] = db1
			}
			ws := &watchState{}
			select { // what the fixture started with is not the check's
			case <-f.d.trigger.C():
			default:
			}
			for i, s := range tt.steps {
				time.Sleep(s.wait)
				if s.before != nil {
					w.set(s.before)
				}
				if i == 1 && tt.unreachable {
					db1.unreachable = true
				}
				f.d.check(context.Background(), c, deps, ws)
			}
			calls := w.take()
			if tt.calls != nil {
				if diff := cmp.Diff(tt.calls, calls, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.acts, acting(calls)); diff != "" {
				t.Errorf("calls that change something, and the record's changes (-want +got):\n%s", diff)
			}
			if got, err := store.Load(c.Name); err != nil || !got.Same(tt.record) {
				t.Errorf("the record after the checks: %+v, %v; want %+v", got, err, tt.record)
			}
			seen, err := store.LoadSeen(c.Name)
			if err != nil || seen.Node != tt.seen.Node || seen.WAL != tt.seen.WAL || (tt.seen.Node != "" && seen.At.IsZero()) {
				t.Errorf("the last sight kept: %+v, %v; want node %q at WAL %X, with its time", seen, err, tt.seen.Node, tt.seen.WAL)
			}
			poked := false
			select {
			case <-f.d.trigger.C():
				poked = true
			default:
			}
			if poked != tt.poked {
				t.Errorf("the checks started a pass: %v, want %v", poked, tt.poked)
			}
			for line, want := range tt.metrics {
				if got := f.metric(line); got != want {
					t.Errorf("/metrics has %q: %t, want %t", line, got, want)
				}
			}
			for _, s := range tt.log {
				if !strings.Contains(f.log.String(), s) {
					t.Errorf("the log does not say %q", s)
				}
			}
			for _, s := range tt.noLog {
				if strings.Contains(f.log.String(), s) {
					t.Errorf("the log says %q", s)
				}
			}
			if tt.noRecord && strings.Count(f.log.String(), "automatic failover is suspended") != 1 {
				t.Errorf("the suspended failover was not logged once for %d checks", len(tt.steps))
			}
			if t.Failed() {
				t.Logf("calls:\n%s\nlog:\n%s", strings.Join(calls, "\n"), f.log)
			}
		})
	}
}
