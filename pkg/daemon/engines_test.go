package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// hostsTopology is a cluster with a node on each of two host blocks, a and
// b; the local engine runs no node.
const hostsTopology = `cluster "pacs" {
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
  node "db1" {
    host = "a"
    port = 15432
  }
  node "db2" {
    host = "b"
    port = 15432
  }
}

host "a" {
  docker  = "unix:///run/pacsd-test/a.sock"
  address = "192.0.2.11"
}

host "b" {
  docker  = "unix:///run/pacsd-test/b.sock"
  address = "192.0.2.12"
}
`

// pingEngine is an engine that answers Ping as the test says; any other
// call fails the test (its checkWorld allows none).
type pingEngine struct {
	*checkEngine

	mu    sync.Mutex
	err   error         // what Ping returns
	hang  chan struct{} // when set, Ping waits for it to close, whatever its context
	pings int
	// during runs inside Ping.
	during func()
}

func newPingEngine(w *checkWorld) *pingEngine { return &pingEngine{checkEngine: &checkEngine{w: w}} }

func (e *pingEngine) Ping(ctx context.Context) error {
	e.mu.Lock()
	e.pings++
	err, hang, during := e.err, e.hang, e.during
	e.mu.Unlock()
	if during != nil {
		during()
	}
	if hang != nil {
		<-hang
	}
	return err
}

func (e *pingEngine) set(f func(e *pingEngine)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

func (e *pingEngine) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pings
}

// ignoreTimes compares EngineStatus without its times.
var ignoreTimes = cmpopts.IgnoreFields(EngineStatus{}, "Since", "CheckedAt")

// setRuntimes puts runtimes in force, as a reload that made new adapters
// would (the engines' check reads them from the snapshot).
func (f *fixture) setRuntimes(runtimes map[string]reconcile.Runtime) {
	f.d.deps.Runtimes = runtimes
	f.d.snap.Store(&snapshot{file: f.d.file, deps: f.d.deps, shared: f.d.shared})
}

// poked reports whether a pass was asked for (the trigger has a signal
// pending), and takes the signal.
func (f *fixture) poked() bool {
	select {
	case <-f.d.trigger.C():
		return true
	default:
		return false
	}
}

// TestEngineReachability: each engine that can be pinged is checked,
// without a cluster's lock or the status's lock held; one that does not
// answer shows in /status (reachable false, its error) and in
// pacsd_engine_up (0), is logged once, and comes back (1, logged once, a
// pass asked for at once since a node runs on it); an engine that cannot be
// pinged is not reported, and one no longer in the adapters is dropped. A
// pass does not check the engines: they have their own ticker.
func TestEngineReachability(t *testing.T) {
	f, err := newFixture(t, hostsTopology)
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	w := newCheckWorld(t, "pacs", f.d.snap.Load().deps.Store) // allows no call but Ping
	local, a := newPingEngine(w), newPingEngine(w)
	b := &checkEngine{w: w} // cannot be pinged
	a.during = func() {
		// Only a checks the locks: the pings run at once.
		unlock, ok := f.d.tryLock("pacs")
		if !ok {
			t.Error("the cluster's lock is held while the engines are checked")
		} else {
			unlock()
		}
		if !f.d.mu.TryLock() {
			t.Error("the status's lock is held while the engines are checked")
		} else {
			f.d.mu.Unlock()
		}
	}
	f.setRuntimes(map[string]reconcile.Runtime{"": local, "a": a, "b": b})
	ctx := context.Background()
	const (
		unreachableLog = `msg="Docker engine unreachable`
		backLog        = `msg="Docker engine answers again; observing its nodes at once"`
	)
	check := func(wantSilent int) {
		t.Helper()
		silent, again := f.d.checkEngines(ctx)
		if silent != wantSilent || again {
			t.Errorf("checkEngines = %d silent, again %v; want %d silent, not again", silent, again, wantSilent)
		}
	}

	check(0)
	first := f.d.Status().Engines
	want := map[string]EngineStatus{"local": {Reachable: true}, "a": {Reachable: true}}
	if diff := cmp.Diff(want, first, ignoreTimes); diff != "" {
		t.Fatalf("engines after the first check (-want +got):\n%s", diff)
	}
	for key, es := range first {
		if es.Since.IsZero() || !es.Since.Equal(es.CheckedAt) {
			t.Errorf("engine %s after its first check: since %v, checked at %v; want both the time of the check", key, es.Since, es.CheckedAt)
		}
	}
	for _, line := range []string{`pacsd_engine_up{host="local"} 1`, `pacsd_engine_up{host="a"} 1`} {
		if !f.metric(line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	if _, body := f.get("/metrics"); strings.Contains(body, `host="b"`) {
		t.Errorf("an engine that cannot be pinged is reported:\n%s", body)
	}
	if strings.Contains(f.log.String(), unreachableLog) {
		t.Errorf("engines that answer were logged unreachable:\n%s", f.log)
	}
	if f.poked() {
		t.Error("the first check of engines that answer asked for a pass")
	}

	// A pass does not check the engines.
	f.d.pass(ctx)
	if n := a.count(); n != 1 {
		t.Errorf("a was pinged %d times after one check and a pass; want once (passes do not check the engines)", n)
	}

	// a stops answering.
	a.set(func(e *pingEngine) { e.err = errUnreachable })
	before := time.Now()
	check(1)
	down := f.d.Status().Engines
	want["a"] = EngineStatus{Reachable: false, Error: errUnreachable.Error()}
	if diff := cmp.Diff(want, down, ignoreTimes); diff != "" {
		t.Errorf("engines after a stopped answering (-want +got):\n%s", diff)
	}
	if since := down["a"].Since; since.Before(before) {
		t.Errorf("a unreachable since %v, before the check that found it (%v)", since, before)
	}
	if !down["local"].Since.Equal(first["local"].Since) || !down["local"].CheckedAt.After(first["local"].CheckedAt) {
		t.Errorf("local, still reachable: since %v -> %v, checked at %v -> %v; want since unchanged, checked later",
			first["local"].Since, down["local"].Since, first["local"].CheckedAt, down["local"].CheckedAt)
	}
	if !f.metric(`pacsd_engine_up{host="a"} 0`) || !f.metric(`pacsd_engine_up{host="local"} 1`) {
		_, body := f.get("/metrics")
		t.Errorf("pacsd_engine_up: want a 0 and local 1:\n%s", body)
	}
	if f.poked() {
		t.Error("an engine that stopped answering asked for a pass")
	}
	f.takeNotified()
	f.d.pass(ctx)
	if st := strings.Join(f.takeNotified(), "\n"); !strings.Contains(st, "engines unreachable: [a]") {
		t.Errorf("systemd's STATUS does not name the unreachable engine: %q", st)
	}
	var line string
	for _, l := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(l, unreachableLog) {
			line = l
		}
	}
	for _, s := range []string{"level=ERROR", "host=a", "no route to host", "nodes=[pacs/db1]", "check that the host is up"} {
		if !strings.Contains(line, s) {
			t.Errorf("the log line of the unreachable engine does not say %q: %s", s, line)
		}
	}

	// Still silent: reported, not logged again, no pass asked for.
	check(1)
	again := f.d.Status().Engines
	if !again["a"].Since.Equal(down["a"].Since) || !again["a"].CheckedAt.After(down["a"].CheckedAt) {
		t.Errorf("a still unreachable: since %v -> %v, checked at %v -> %v; want since unchanged, checked later",
			down["a"].Since, again["a"].Since, down["a"].CheckedAt, again["a"].CheckedAt)
	}
	if n := strings.Count(f.log.String(), unreachableLog); n != 1 {
		t.Errorf("the unreachable engine was logged %d times over two checks, want once:\n%s", n, f.log)
	}
	if f.poked() {
		t.Error("an engine still silent asked for a pass")
	}

	// /status names the fields so.
	_, body := f.get("/status")
	var st struct {
		Engines map[string]map[string]any `json:"engines"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	if got := st.Engines["a"]; got["reachable"] != false || got["error"] != errUnreachable.Error() || got["since"] == nil || got["checked_at"] == nil {
		t.Errorf("/status engines.a = %v; want reachable false, its error, since and checked_at\n%s", got, body)
	}

	// a answers again: a pass is asked for at once, once.
	a.set(func(e *pingEngine) { e.err = nil })
	check(0)
	if !f.poked() {
		t.Error("a, on which db1 runs, answers again and no pass was asked for")
	}
	check(0)
	if f.poked() {
		t.Error("a pass was asked for again while a keeps answering")
	}
	back := f.d.Status().Engines
	want["a"] = EngineStatus{Reachable: true}
	if diff := cmp.Diff(want, back, ignoreTimes); diff != "" {
		t.Errorf("engines after a answered again (-want +got):\n%s", diff)
	}
	if !back["a"].Since.After(down["a"].Since) {
		t.Errorf("a reachable since %v, not after it went unreachable (%v)", back["a"].Since, down["a"].Since)
	}
	if !f.metric(`pacsd_engine_up{host="a"} 1`) {
		t.Error(`/metrics has no line pacsd_engine_up{host="a"} 1 after a answered again`)
	}
	if n := strings.Count(f.log.String(), backLog); n != 1 {
		t.Errorf("the engine answering again was logged %d times over two checks, want once:\n%s", n, f.log)
	}
	for _, l := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(l, backLog) && (!strings.Contains(l, "host=a") || !strings.Contains(l, "nodes=[pacs/db1]") || !strings.Contains(l, "unreachable_for=")) {
			t.Errorf("the log line of the engine answering again does not name its host, its nodes and how long it was silent: %s", l)
		}
	}
	if n := strings.Count(f.log.String(), unreachableLog); n != 1 {
		t.Errorf("the unreachable engine was logged %d times, want once:\n%s", n, f.log)
	}
	if n := a.count(); n != 5 {
		t.Errorf("a was pinged %d times in 5 checks", n)
	}

	// An engine that runs no node of the file comes back: logged, no pass.
	local.set(func(e *pingEngine) { e.err = errUnreachable })
	check(1)
	if !strings.Contains(f.log.String(), `level=WARN msg="Docker engine unreachable; no node of the file runs on it`) {
		t.Errorf("the local engine, which runs no node, was not logged as a warning when it stopped answering:\n%s", f.log)
	}
	local.set(func(e *pingEngine) { e.err = nil })
	check(0)
	if f.poked() {
		t.Error("an engine that runs no node answers again and a pass was asked for")
	}
	if !strings.Contains(f.log.String(), `msg="Docker engine answers again; no node of the file runs on it" host=local`) {
		t.Errorf("the local engine answering again was not logged:\n%s", f.log)
	}

	// An engine no longer among the adapters is dropped.
	f.setRuntimes(map[string]reconcile.Runtime{"": local, "b": b})
	check(0)
	if diff := cmp.Diff(map[string]EngineStatus{"local": {Reachable: true}}, f.d.Status().Engines, ignoreTimes); diff != "" {
		t.Errorf("engines after a was dropped from the adapters (-want +got):\n%s", diff)
	}
	if _, body := f.get("/metrics"); strings.Contains(body, `pacsd_engine_up{host="a"}`) {
		t.Errorf("/metrics still reports a, no longer among the adapters:\n%s", body)
	}
	if calls := w.take(); len(calls) != 0 {
		t.Errorf("the check called the engines for more than Ping: %q", calls)
	}
}

// TestEngineCheckOfReplacedAdapters: a check during which a new file was
// taken (its adapters may have closed the ones asked) records nothing and
// asks to be made again at once.
func TestEngineCheckOfReplacedAdapters(t *testing.T) {
	f, err := newFixture(t, hostsTopology)
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	w := newCheckWorld(t, "pacs", f.d.snap.Load().deps.Store)
	closed, fresh := newPingEngine(w), newPingEngine(w)
	closed.set(func(e *pingEngine) {
		e.err = errors.New("the client is closed")
		e.during = func() { f.setRuntimes(map[string]reconcile.Runtime{"a": fresh}) }
	})
	f.setRuntimes(map[string]reconcile.Runtime{"a": closed})
	if silent, again := f.d.checkEngines(context.Background()); silent != 0 || !again {
		t.Errorf("check over replaced adapters = %d silent, again %v; want 0, again", silent, again)
	}
	if es := f.d.Status().Engines; len(es) != 0 {
		t.Errorf("a check over replaced adapters was recorded: %v", es)
	}
	if strings.Contains(f.log.String(), "Docker engine unreachable") {
		t.Errorf("a closed adapter was logged as an unreachable engine:\n%s", f.log)
	}
	if silent, again := f.d.checkEngines(context.Background()); silent != 0 || again {
		t.Errorf("check over the new adapters = %d silent, again %v; want 0, not again", silent, again)
	}
	if diff := cmp.Diff(map[string]EngineStatus{"a": {Reachable: true}}, f.d.Status().Engines, ignoreTimes); diff != "" {
		t.Errorf("engines after the check of the new adapters (-want +got):\n%s", diff)
	}
}

// TestEngineCheckBounded: an engine whose Ping does not return (not even
// when its context is done) holds the check for a bounded time only, and
// counts as unreachable; the other engines are checked meanwhile.
func TestEngineCheckBounded(t *testing.T) {
	defer func(d time.Duration) { engineTimeout = d }(engineTimeout)
	engineTimeout = 100 * time.Millisecond
	f, err := newFixture(t, hostsTopology)
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	w := newCheckWorld(t, "pacs", f.d.snap.Load().deps.Store)
	a, b := newPingEngine(w), newPingEngine(w)
	hang := make(chan struct{})
	defer close(hang)
	a.set(func(e *pingEngine) { e.hang = hang })
	f.setRuntimes(map[string]reconcile.Runtime{"a": a, "b": b})
	start := time.Now()
	silent, _ := f.d.checkEngines(context.Background())
	if took := time.Since(start); took > time.Second {
		t.Errorf("a check with a hung engine took %s; want about %s", took, engineTimeout+engineTimeout/2)
	}
	if silent != 1 {
		t.Errorf("a check with a hung engine found %d silent, want 1", silent)
	}
	want := map[string]EngineStatus{
		"a": {Reachable: false, Error: "the engine did not answer within 100ms"},
		"b": {Reachable: true},
	}
	if diff := cmp.Diff(want, f.d.Status().Engines, ignoreTimes); diff != "" {
		t.Errorf("engines (-want +got):\n%s", diff)
	}
}

// TestEngineKey: the local engine is "local", unless a host block has that
// name.
func TestEngineKey(t *testing.T) {
	for _, tc := range []struct {
		host  string
		hosts []string
		want  string
	}{
		{"", []string{"", "a"}, "local"},
		{"a", []string{"", "a"}, "a"},
		{"", []string{"", "local"}, "(local)"},
		{"local", []string{"", "local"}, "local"},
	} {
		if got := engineKey(tc.host, tc.hosts); got != tc.want {
			t.Errorf("engineKey(%q, %q) = %q, want %q", tc.host, tc.hosts, got, tc.want)
		}
	}
}
