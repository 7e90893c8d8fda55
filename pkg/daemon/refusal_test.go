package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// clusterJSON returns the cluster's object of /status, decoded.
func (f *fixture) clusterJSON(cluster string) map[string]any {
	f.t.Helper()
	_, body := f.get("/status")
	var st struct {
		Clusters map[string]map[string]any `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		f.t.Fatalf("/status: %v\n%s", err, body)
	}
	return st.Clusters[cluster]
}

// TestFailoverRefusalKept: a failover refused because the old primary's
// engine does not answer is kept in the cluster's status (failover_refused)
// and in pacsd_failover_refused across the passes that follow, whatever
// they find, and across a check while the primary is still lost; it is
// cleared, and the gauge is 0, once the primary is seen healthy again.
func TestFailoverRefusalKept(t *testing.T) {
	f := mustFixture(t)
	c := f.d.file.Clusters[0]
	c.Failover.Automatic, c.Failover.After = true, spec.Duration{Duration: 100 * time.Millisecond}
	ctx := context.Background()
	f.d.pass(ctx) // the cluster's first pass
	refused := `pacsd_failover_refused{cluster="pacs"} 1`
	notRefused := `pacsd_failover_refused{cluster="pacs"} 0`
	if !f.metric(notRefused) {
		t.Errorf("/metrics has no line %q after the first pass", notRefused)
	}

	// db1, the primary, is on an engine of its own (host h1), which stops
	// answering after the first check.
	store := f.recorded(t, c)
	w := newCheckWorld(t, c.Name, store)
	w.allow(append([]string{"NodeContainers"}, healthCalls...)...)
	w.set(func(cts map[string]*checkCt) {
		cts["pacs-db1"] = &checkCt{running: true, health: reconcile.DBState{WAL: 0x3000000}}
		cts["pacs-db2"] = &checkCt{running: true, health: reconcile.DBState{InRecovery: true, WAL: 0x3000000, ReceivedWAL: 0x3000000}}
	})
	db1 := &checkEngine{w: w}
	c.Node("db1").Host = "h1"
	deps := reconcile.Deps{Runtimes: map[string]reconcile.Runtime{"": &checkEngine{w: w}, "h1": db1}, DB: checkDB{w}, Store: store, CAs: &reconcile.MemoryStore{}}
	ws := &watchState{}
	f.d.check(ctx, c, deps, ws)
	db1.unreachable = true
	before := time.Now()
	f.d.check(ctx, c, deps, ws)
	time.Sleep(150 * time.Millisecond)
	f.d.check(ctx, c, deps, ws)
	if acts := acting(w.take()); len(acts) != 0 {
		t.Fatalf("a failover without a confirmed fence acted: %q", acts)
	}

	r := f.d.Status().Clusters["pacs"].FailoverRefused
	if r.Node != "db1" || r.Attempts != 1 || r.Since.Before(before) || !r.Last.Equal(r.Since) ||
		!strings.Contains(r.Error, "cannot be confirmed stopped") || !strings.Contains(r.Error, "engine does not answer") {
		t.Fatalf("failover_refused after the refusal: %+v; want db1, 1 attempt, since the refusal, with its reason", r)
	}
	if !f.metric(refused) {
		t.Errorf("/metrics has no line %q after the refusal", refused)
	}
	if n := strings.Count(f.log.String(), `level=ERROR msg="failover refused"`); n != 1 {
		t.Errorf("the refusal was logged %d times at ERROR, want once:\n%s", n, f.log)
	}
	for _, s := range []string{"host=h1", "node=db1"} {
		if !strings.Contains(f.log.String(), s) {
			t.Errorf("the refusal's log line does not say %s:\n%s", s, f.log)
		}
	}

	// A check while db1 is still lost (the next failover is held back) and
	// passes, failed or not, leave it as it is.
	f.d.check(ctx, c, deps, ws)
	w.take()
	fail := errors.New(`cluster "pacs": Engine Unreachable: the Docker engine of host "h1" could not be asked about node "db1"`)
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, fail })
	f.d.pass(ctx)
	st := f.d.Status().Clusters["pacs"]
	if st.Result != "error" || st.Error != fail.Error() {
		t.Errorf("the pass after the refusal: result %q, error %q; want its own error", st.Result, st.Error)
	}
	if diff := cmp.Diff(r, st.FailoverRefused); diff != "" {
		t.Errorf("failover_refused after a failed pass (-before +after):\n%s", diff)
	}
	f.setApply(nil)
	f.d.Reload() // no backoff
	f.d.pass(ctx)
	if st := f.d.Status().Clusters["pacs"]; st.Result != "ok" || !cmp.Equal(r, st.FailoverRefused) {
		t.Errorf("after a pass that succeeded: result %q, failover_refused %+v; want ok and %+v", st.Result, st.FailoverRefused, r)
	}
	if !f.metric(refused) {
		t.Errorf("/metrics has no line %q after two passes", refused)
	}
	got := f.clusterJSON("pacs")["failover_refused"]
	m, _ := got.(map[string]any)
	for _, key := range []string{"node", "error", "since", "last", "attempts"} {
		if _, ok := m[key]; !ok {
			t.Errorf("/status failover_refused has no %q: %v", key, got)
		}
	}

	// The primary answers again: cleared.
	db1.unreachable = false
	f.d.check(ctx, c, deps, ws)
	if r := f.d.Status().Clusters["pacs"].FailoverRefused; r != (FailoverRefusal{}) {
		t.Errorf("failover_refused after the primary answered again: %+v, want none", r)
	}
	if !f.metric(notRefused) {
		t.Errorf("/metrics has no line %q after the primary answered again", notRefused)
	}
	f.d.pass(ctx)
	if _, ok := f.clusterJSON("pacs")["failover_refused"]; ok {
		t.Error("/status still has failover_refused after the primary answered again")
	}
	if !strings.Contains(f.log.String(), "primary reachable again") {
		t.Errorf("the log does not say that the primary answers again:\n%s", f.log)
	}
	if t.Failed() {
		t.Logf("log:\n%s", f.log)
	}
}

// TestFailoverRefusalRepeats: a refusal repeated for the same reason keeps
// its start and counts; a new reason is news (logged again); another lost
// primary starts anew.
func TestFailoverRefusalRepeats(t *testing.T) {
	f := mustFixture(t)
	t0 := time.Now()
	notFenced := errors.New("the old primary cannot be confirmed stopped: the node's engine does not answer")
	noCandidate := errors.New("no standby qualifies for promotion: db2 is 40MB behind")
	steps := []struct {
		node string
		err  error
		news bool
		want FailoverRefusal
	}{
		{"db1", notFenced, true, FailoverRefusal{Node: "db1", Error: notFenced.Error(), Since: t0, Last: t0, Attempts: 1}},
		{"db1", notFenced, false, FailoverRefusal{Node: "db1", Error: notFenced.Error(), Since: t0, Last: t0.Add(time.Second), Attempts: 2}},
		{"db1", noCandidate, true, FailoverRefusal{Node: "db1", Error: noCandidate.Error(), Since: t0, Last: t0.Add(2 * time.Second), Attempts: 3}},
		{"db2", noCandidate, true, FailoverRefusal{Node: "db2", Error: noCandidate.Error(), Since: t0.Add(3 * time.Second), Last: t0.Add(3 * time.Second), Attempts: 1}},
	}
	for i, s := range steps {
		if news := f.d.refuseFailover("pacs", s.node, s.err, t0.Add(time.Duration(i)*time.Second)); news != s.news {
			t.Errorf("refusal %d: news %v, want %v", i+1, news, s.news)
		}
		if diff := cmp.Diff(s.want, f.d.Status().Clusters["pacs"].FailoverRefused); diff != "" {
			t.Errorf("after refusal %d (-want +got):\n%s", i+1, diff)
		}
	}
}

// TestFailoverRefusalForgotten: a refusal is forgotten when the cluster's
// automatic failover is turned off (nothing would clear it), and its gauge
// goes with a cluster removed from the file.
func TestFailoverRefusalForgotten(t *testing.T) {
	f := mustFixture(t)
	c := f.d.file.Clusters[0]
	c.Failover.Automatic = true
	ctx := context.Background()
	f.d.pass(ctx)
	f.d.refuseFailover("pacs", "db1", errors.New("the old primary cannot be confirmed stopped"), time.Now())
	f.d.pass(ctx)
	if !f.metric(`pacsd_failover_refused{cluster="pacs"} 1`) || f.d.Status().Clusters["pacs"].FailoverRefused.Node != "db1" {
		t.Fatalf("the refusal did not survive a pass:\n%+v", f.d.Status().Clusters["pacs"])
	}
	c.Failover.Automatic = false
	f.d.pass(ctx)
	if r := f.d.Status().Clusters["pacs"].FailoverRefused; r != (FailoverRefusal{}) || !f.metric(`pacsd_failover_refused{cluster="pacs"} 0`) {
		t.Errorf("with automatic failover turned off: failover_refused %+v; want none, and the gauge 0", r)
	}

	f.write(strings.Replace(topology("4MB", "db1-data"), `cluster "pacs"`, `cluster "archive"`, 1))
	f.d.pass(ctx)
	if f.d.Status().ReloadError != "" {
		t.Fatalf("the renamed cluster's file was refused: %s\n%s", f.d.Status().ReloadError, f.log)
	}
	_, body := f.get("/metrics")
	if strings.Contains(body, `pacsd_failover_refused{cluster="pacs"}`) || !strings.Contains(body, `pacsd_failover_refused{cluster="archive"} 0`) {
		t.Errorf("pacsd_failover_refused after cluster pacs was replaced by archive: want archive only:\n%s", body)
	}
}
