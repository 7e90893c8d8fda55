package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// fixture is a daemon on a file in a temporary directory, with a fake Apply,
// the notifications it sent and its log.
type fixture struct {
	t    *testing.T
	dir  string
	path string
	d    *Daemon
	log  *syncBuffer

	mu       sync.Mutex
	applied  []string // "cluster work_mem" per Apply call
	deps     int      // calls of Deps
	notified []string
	apply    func(c *spec.Cluster) (reconcile.Result, error)
}

// syncBuffer is a log sink safe for the loop and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func topology(workMem, volume string) string {
	return fmt.Sprintf(`cluster "pacs" {
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
  settings = { work_mem = %q }
  node "db1" {
    volume = %q
  }
  node "db2" {}
}
`, workMem, volume)
}

// fileFixture writes content as the topology file, with the password
// files it names, into a directory of its own.
func fileFixture(t *testing.T, content string) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), log: &syncBuffer{}}
	f.path = filepath.Join(f.dir, "pacs.hcl")
	for _, name := range []string{"pacs.password", "replicator.password"} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.write(content)
	return f
}

func newFixture(t *testing.T, content string) (*fixture, error) {
	t.Helper()
	f := fileFixture(t, content)
	d, err := New(Options{
		Path:   f.path,
		Logger: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Deps: func(*spec.File) (reconcile.Deps, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.deps++
			return reconcile.Deps{Store: &reconcile.MemoryStore{}}, nil
		},
		Apply: func(ctx context.Context, c *spec.Cluster, _ reconcile.Deps, _ *slog.Logger) (reconcile.Result, error) {
			f.mu.Lock()
			f.applied = append(f.applied, c.Name+" "+c.Settings["work_mem"])
			apply := f.apply
			f.mu.Unlock()
			if apply == nil {
				return reconcile.Result{}, nil
			}
			return apply(c)
		},
		Notify: func(s string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.notified = append(f.notified, s)
		},
		Debounce: 20 * time.Millisecond,
	})
	f.d = d
	return f, err
}

func mustFixture(t *testing.T) *fixture {
	t.Helper()
	f, err := newFixture(t, topology("4MB", "db1-data"))
	if err != nil {
		t.Fatalf("New: %v\nlog:\n%s", err, f.log)
	}
	return f
}

func (f *fixture) write(content string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) setApply(apply func(c *spec.Cluster) (reconcile.Result, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apply = apply
}

// takeApplied returns the Apply calls since the last call.
func (f *fixture) takeApplied() []string { return f.take(&f.applied) }

// takeNotified returns the notifications since the last call.
func (f *fixture) takeNotified() []string { return f.take(&f.notified) }

func (f *fixture) take(list *[]string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := *list
	*list = nil
	return l
}

// get returns the status code and body of an HTTP endpoint.
func (f *fixture) get(path string) (int, string) {
	rec := httptest.NewRecorder()
	f.d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func (f *fixture) metric(line string) bool {
	return f.metricMatch(func(l string) bool { return l == line })
}

// metricPrefix reports whether a line of /metrics begins with prefix.
func (f *fixture) metricPrefix(prefix string) bool {
	return f.metricMatch(func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func (f *fixture) metricMatch(match func(string) bool) bool {
	_, body := f.get("/metrics")
	return slices.ContainsFunc(strings.Split(body, "\n"), match)
}

func TestBackoffDelay(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 10; n++ {
		got = append(got, backoffDelay(n, MinBackoff, MaxBackoff))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff schedule (-want +got):\n%s", diff)
	}
	if got := backoffDelay(1000, MinBackoff, MaxBackoff); got != MaxBackoff {
		t.Errorf("after 1000 failures: %s, want %s", got, MaxBackoff)
	}
}

func TestNewRefusesInvalidFile(t *testing.T) {
	f, err := newFixture(t, `cluster "pacs" { image = 3 }`)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("New on an invalid file: %v, want an error", err)
	}
	if !strings.Contains(f.log.String(), "level=ERROR") {
		t.Errorf("the diagnostics were not logged:\n%s", f.log)
	}
	if a := f.takeApplied(); len(a) != 0 {
		t.Errorf("Apply was called on an invalid file: %v", a)
	}
}

// TestTriggerCoalesces proves that pokes during a pass make one more pass,
// not one per poke.
func TestTriggerCoalesces(t *testing.T) {
	f := mustFixture(t)
	started, release := make(chan struct{}, 10), make(chan struct{})
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) {
		started <- struct{}{}
		<-release
		return reconcile.Result{}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.d.Run(ctx, nil) }()
	<-started // the first pass runs
	for range 50 {
		f.d.trigger.Poke()
	}
	release <- struct{}{}
	<-started // exactly one more pass
	release <- struct{}{}
	select {
	case <-started:
		t.Fatal("a third pass ran: the pokes were not coalesced")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := len(f.takeApplied()); n != 2 {
		t.Errorf("%d passes, want 2", n)
	}
}

// TestFileChangeReloads runs the whole loop: a saved edit is picked up by the
// watcher, applied, and systemd is told RELOADING then READY.
func TestFileChangeReloads(t *testing.T) {
	f := mustFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.d.Run(ctx, nil) }()
	waitFor(t, "the first pass", func() bool { return f.d.passed() })
	f.write(topology("16MB", "db1-data"))
	waitFor(t, "a pass with the edit", func() bool {
		for _, a := range f.takeApplied() {
			if a == "pacs 16MB" {
				return true
			}
		}
		return false
	})
	waitFor(t, "READY after the reload", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.notified) >= 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := f.takeNotified()
	want := []string{"READY=1", "RELOADING=1", "READY=1"}
	var kinds []string
	for _, n := range got {
		kinds = append(kinds, strings.SplitN(n, "\n", 2)[0])
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("notifications (-want +got):\n%s\nall: %q", diff, got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInvalidReloadKeepsLastGood: an invalid save is not acted on, the last
// good spec is applied, the gauge drops to 0 and comes back with a good save.
func TestInvalidReloadKeepsLastGood(t *testing.T) {
	f := mustFixture(t)
	ctx := context.Background()
	f.d.pass(ctx)
	if !f.metric("pacsd_config_last_reload_successful 1") {
		t.Fatal("the reload gauge is not 1 after a good start")
	}
	f.write(topology("16MB", "db1-data") + "\nbogus {\n")
	f.d.pass(ctx)
	if diff := cmp.Diff([]string{"pacs 4MB", "pacs 4MB"}, f.takeApplied()); diff != "" {
		t.Errorf("Apply calls (-want +got):\n%s", diff)
	}
	if !f.metric("pacsd_config_last_reload_successful 0") {
		t.Error("the reload gauge is not 0 after an invalid save")
	}
	if log := f.log.String(); !strings.Contains(log, "topology file refused") || !strings.Contains(log, "line=") {
		t.Errorf("the refusal and its diagnostics were not logged:\n%s", log)
	}
	if st := f.d.Status(); st.ReloadError == "" {
		t.Error("status does not say the file was refused")
	}

	// The same bad content is not reported again at every resync.
	before := strings.Count(f.log.String(), "topology file refused")
	f.d.pass(ctx)
	if after := strings.Count(f.log.String(), "topology file refused"); after != before {
		t.Errorf("an unchanged invalid file was reported again (%d -> %d)", before, after)
	}

	// Moving a node's data is refused by CheckAgainstPrevious.
	f.write(topology("16MB", "elsewhere"))
	f.d.pass(ctx)
	if !strings.Contains(f.log.String(), "Data Location Changed") {
		t.Errorf("a moved data location was not refused:\n%s", f.log)
	}

	f.write(topology("16MB", "db1-data"))
	f.d.pass(ctx)
	if diff := cmp.Diff([]string{"pacs 4MB", "pacs 4MB", "pacs 16MB"}, f.takeApplied()); diff != "" {
		t.Errorf("Apply calls (-want +got):\n%s", diff)
	}
	if !f.metric("pacsd_config_last_reload_successful 1") {
		t.Error("the reload gauge is not back to 1 after a good save")
	}
}

// TestBackoff: a failed cluster is skipped until its time; a new file and
// Reload reset the backoff; a success clears it.
func TestBackoff(t *testing.T) {
	f := mustFixture(t)
	ctx := context.Background()
	fail := errors.New("engine unreachable")
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, fail })
	f.d.pass(ctx)
	st := f.d.Status().Clusters["pacs"]
	if st.Failures != 1 || st.RetryAt == nil || time.Until(*st.RetryAt) > MinBackoff {
		t.Fatalf("after one failure: %+v, want 1 failure and a retry within %s", st, MinBackoff)
	}
	f.d.pass(ctx)
	if a := f.takeApplied(); len(a) != 1 {
		t.Fatalf("a cluster in backoff was applied again at once: %v", a)
	}
	if code, body := f.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "engine unreachable") {
		t.Errorf("/readyz with a failing cluster: %d %q", code, body)
	}

	time.Sleep(MinBackoff)
	f.d.pass(ctx)
	if st := f.d.Status().Clusters["pacs"]; st.Failures != 2 || time.Until(*st.RetryAt) < MinBackoff {
		t.Fatalf("after two failures: %+v, want 2 failures and a retry in about %s", st, 2*MinBackoff)
	}
	f.takeApplied()

	f.write(topology("8MB", "db1-data"))
	f.d.pass(ctx)
	if a := f.takeApplied(); len(a) != 1 {
		t.Fatalf("a new file did not reset the backoff: %v", a)
	}
	f.d.Reload()
	f.d.pass(ctx)
	if a := f.takeApplied(); len(a) != 1 {
		t.Fatalf("Reload did not reset the backoff: %v", a)
	}

	f.setApply(nil)
	f.d.Reload()
	f.d.pass(ctx)
	if st := f.d.Status().Clusters["pacs"]; st.Failures != 0 || st.RetryAt != nil || st.Result != "ok" {
		t.Errorf("after a success: %+v, want no failures", st)
	}
	if code, _ := f.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after a success: %d", code)
	}
}

// TestDepsOnlyForNewEngines: an edit that names the same engines keeps the
// adapters (and the event streams on them); Reload makes them again.
func TestDepsOnlyForNewEngines(t *testing.T) {
	f := mustFixture(t)
	f.d.pass(context.Background())
	f.write(topology("8MB", "db1-data"))
	f.d.pass(context.Background())
	f.d.Reload()
	f.d.pass(context.Background())
	f.mu.Lock()
	defer f.mu.Unlock()
	if diff := cmp.Diff([]string{"pacs 4MB", "pacs 8MB", "pacs 8MB"}, f.applied); diff != "" {
		t.Errorf("Apply calls (-want +got):\n%s", diff)
	}
	if f.deps != 2 {
		t.Errorf("Deps was called %d times, want 2 (at start and on Reload)", f.deps)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	f := mustFixture(t)
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { panic("nil map") })
	f.d.pass(context.Background())
	st := f.d.Status().Clusters["pacs"]
	if st.Result != "error" || !strings.Contains(st.Error, "panic: nil map") {
		t.Errorf("status after a panic: %+v", st)
	}
	if log := f.log.String(); !strings.Contains(log, "panic in a pass") || !strings.Contains(log, "goroutine") {
		t.Errorf("the panic was not logged with its stack:\n%s", log)
	}
	if !f.metric(`pacsd_reconcile_passes_total{cluster="pacs",result="error"} 1`) {
		t.Error("the panic was not counted as a failed pass")
	}
}

func TestReadyzAndMetrics(t *testing.T) {
	f := mustFixture(t)
	if code, body := f.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "first pass") {
		t.Errorf("/readyz before the first pass: %d %q", code, body)
	}
	act := func(kind reconcile.Kind) reconcile.Action {
		return reconcile.Action{Kind: kind, Cluster: "pacs", Node: "db2", Target: "x"}
	}
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) {
		return reconcile.Result{Done: []reconcile.Action{act(reconcile.CreateContainer), act(reconcile.StartContainer)}}, nil
	})
	f.d.pass(context.Background()) // the first pass: the file's own changes, no drift
	f.d.pass(context.Background()) // a resync that repairs something: drift
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) {
		return reconcile.Result{Done: []reconcile.Action{act(reconcile.WriteFile)}},
			fmt.Errorf(`cluster "pacs", node "db2": while %s %s: %w`, reconcile.Reload, "db2", errors.New("refused"))
	})
	f.d.pass(context.Background())
	// Actions are counted as the executor hands them to the history.
	f.d.record(reconcile.Event{Cluster: "pacs", Node: "db2", Kind: string(reconcile.Reload), Result: "failed: refused", Duration: "1ms"})
	f.d.record(reconcile.Event{Cluster: "pacs", Node: "db2", Kind: string(reconcile.Switchover), Result: "ok", Duration: "2s"})
	for _, line := range []string{
		`pacsd_actions_total{cluster="pacs",kind="reload",result="error"} 1`,
		`pacsd_switchovers_total{cluster="pacs",result="ok"} 1`,
		`pacsd_drift_repairs_total{cluster="pacs",kind="create-container"} 1`,
		`pacsd_drift_repairs_total{cluster="pacs",kind="write-file"} 1`,
		`pacsd_reconcile_passes_total{cluster="pacs",result="ok"} 2`,
		`pacsd_reconcile_pass_duration_seconds_count{cluster="pacs",result="ok"} 2`,
	} {
		if !f.metric(line) {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	code, body := f.get("/status")
	if code != http.StatusOK || !strings.Contains(body, `"result": "error"`) || !strings.Contains(body, "write-file") {
		t.Errorf("/status: %d\n%s", code, body)
	}
	// Every metric's name, type, unit and help pass Prometheus' own linter.
	f.d.m.setNodes(f.d.file.Clusters[0], reconcile.View(f.d.file.Clusters[0], nil), true)
	problems, err := testutil.GatherAndLint(f.d.m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "go_") || strings.HasPrefix(p.Metric, "process_") {
			continue
		}
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	if !f.metric(`pacsd_node_role{cluster="pacs",node="db1",role="unknown"} 1`) || !f.metricPrefix(`pacsd_build_info{goversion="go`) {
		t.Error("/metrics lacks the per-node role or pacsd_build_info")
	}
}

func TestLockRefusesSecond(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, LockFile)
	_, err = Lock(dir)
	want := fmt.Sprintf("another pacsd (pid %d) holds %s; stop it first", os.Getpid(), path)
	if err == nil || err.Error() != want {
		t.Fatalf("second Lock: %v, want %q", err, want)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	l2.Unlock()
}

func TestWorthAPass(t *testing.T) {
	for _, tc := range []struct {
		ev   Event
		want bool
	}{
		{Event{Type: "container", Action: "die"}, true},
		{Event{Type: "container", Action: "destroy"}, true},
		{Event{Type: "container", Action: "oom"}, true},
		{Event{Type: "container", Action: "start"}, true},
		{Event{Type: "container", Action: "unpause"}, true},
		{Event{Type: "container", Action: "restart"}, true},
		{Event{Type: "container", Action: "exec_die"}, false},
		{Event{Type: "network", Action: "disconnect"}, true},
		{Event{Type: "network", Action: "connect"}, false},
		{Event{Type: "volume", Action: "destroy"}, false},
	} {
		if got := worthAPass(tc.ev); got != tc.want {
			t.Errorf("worthAPass(%+v) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}

// TestNodesLeftNoBackoff: a pass that converged everything but the nodes
// of an engine that does not answer is "partial": it is no failure, so the
// next pass runs at once (the other hosts' drift is repaired without a
// backoff), and the status says which nodes were left and why.
func TestNodesLeftNoBackoff(t *testing.T) {
	f := mustFixture(t)
	ctx := context.Background()
	left := &reconcile.NodesLeftError{Problems: []reconcile.Problem{{Cluster: "pacs", Node: "db2", Summary: "Engine Unreachable", Detail: "dial tcp: i/o timeout", NodeOnly: true}}}
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, left })
	for i := 0; i < 3; i++ {
		f.d.pass(ctx)
	}
	if a := f.takeApplied(); len(a) != 3 {
		t.Fatalf("passes with nodes left alone were held back: applied %v, want 3 passes", a)
	}
	st := f.d.Status().Clusters["pacs"]
	if st.Result != "partial" || st.Failures != 0 || st.RetryAt != nil || !strings.Contains(st.Error, `node "db2": Engine Unreachable`) {
		t.Errorf("status after passes that left db2: %+v, want partial, no failures, no retry time, the node named", st)
	}
	if !f.metric(`pacsd_reconcile_passes_total{cluster="pacs",result="partial"} 3`) {
		t.Error("the partial passes are not counted as such")
	}
}
