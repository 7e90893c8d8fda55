package daemon

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestWorkInProgress: pg_basebackup's and pg_rewind's progress lines show
// as the node's work with its percent and time left; the work ends with the
// node's base backup or rewind event; /status carries it on the node.
func TestWorkInProgress(t *testing.T) {
	f := mustFixture(t)
	d := f.d
	d.observed(d.file.Clusters[0], nil, nil)
	d.progressed("pacs", "db2", "pg_basebackup: initiating base backup, waiting for checkpoint to complete")
	d.views.mu.Lock()
	d.views.begun[[2]string{"pacs", "db2"}] = time.Now().Add(-30 * time.Second)
	d.views.mu.Unlock()
	d.progressed("pacs", "db2", "  12345/61725 kB (20%), 0/1 tablespace")
	d.progressed("other", "db2", "pg_rewind: 5/10 kB (50%) copied") // another cluster's db2
	var w *reconcile.WorkView
	for _, n := range d.Status().Clusters["pacs"].Nodes {
		if n.Node == "db2" {
			w = n.Work
		}
	}
	if w == nil || w.Kind != "base backup" || w.Percent != 20 || w.Left != "2m0s" {
		t.Fatalf("work shown for db2: %+v; want base backup 20%%, 2m0s left", w)
	}
	d.record(reconcile.Event{Cluster: "pacs", Node: "db2", Kind: string(reconcile.BaseBackup), Result: "ok", Duration: "1s"})
	for _, n := range d.Status().Clusters["pacs"].Nodes {
		if n.Node == "db2" && (n.Work != nil || n.LastAction == nil || n.LastAction.Kind != "base-backup") {
			t.Errorf("after the base backup: work %+v, last action %+v", n.Work, n.LastAction)
		}
	}
}

// TestDecisionsKeptOnce: a decision not to act that repeats at every pass
// is kept once while it stays the same (its detail may change: it quotes
// addresses), two problems of one node do not push each other out, a
// problem a pass no longer reports is kept again when it comes back, and
// an action that keeps failing while retried is kept once until it works.
func TestDecisionsKeptOnce(t *testing.T) {
	f := mustFixture(t)
	d := f.d
	differs := reconcile.Event{Cluster: "pacs", Node: "db1", Kind: "problem", Target: "Primary Differs From Spec", Reason: "Primary Differs From Spec: ...", Result: "not acted on: warning"}
	down := reconcile.Event{Cluster: "pacs", Node: "db1", Kind: "problem", Target: "Primary Down", Reason: "Primary Down: read tcp 10.0.0.1:54321", Result: "not acted on: refused"}
	for i := range 5 { // five passes
		d.record(differs)
		down.Reason = fmt.Sprintf("Primary Down: read tcp 10.0.0.1:%d", 50000+i)
		d.record(down)
		d.history.endPass("pacs")
	}
	d.history.endPass("pacs") // a pass that reports neither
	d.record(differs)         // back
	fence := reconcile.Event{Cluster: "pacs", Node: "db1", Kind: "fence", Result: "failed: the engine does not answer", Duration: "1s"}
	for range 5 {
		d.record(fence)
	}
	fence.Result = "ok"
	d.record(fence)
	fence.Result = "failed: again"
	d.record(fence)
	es, err := d.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Target+e.Kind+" "+e.Result)
		if e.Checksum == "" {
			t.Errorf("an event without the file's checksum: %+v", e)
		}
	}
	want := []string{"Primary Differs From Specproblem not acted on: warning", "Primary Downproblem not acted on: refused",
		"Primary Differs From Specproblem not acted on: warning", "fence failed: the engine does not answer", "fence ok", "fence failed: again"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !f.metric(`pacsd_actions_total{cluster="pacs",kind="fence",result="error"} 6`) {
		t.Error("failed actions kept once in the history are still each counted")
	}
}

// pauseStore is a cluster store whose maintenance mode a test sets.
type pauseStore struct {
	reconcile.ClusterStore
	mu  sync.Mutex
	ps  reconcile.Pause
	err error
}

func (s *pauseStore) LoadPause(string) (reconcile.Pause, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps, s.err
}

func (s *pauseStore) set(ps reconcile.Pause, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ps, s.err = ps, err
}

// TestPausedReadFails: a maintenance mode that cannot be read never
// resumes a paused cluster, and holds an unknown one back.
func TestPausedReadFails(t *testing.T) {
	f := mustFixture(t)
	d := f.d
	ps := &pauseStore{ClusterStore: d.snap.Load().shared}
	snap := *d.snap.Load()
	snap.shared = ps
	d.snap.Store(&snap)
	check := func(step string, want bool) {
		t.Helper()
		v, _ := d.pauses.Load("pacs")
		if v != nil {
			s := v.(pauseSeen)
			s.at = time.Time{} // stale: read again
			d.pauses.Store("pacs", s)
		}
		if got := d.paused("pacs"); got != want {
			t.Errorf("%s: paused %v, want %v", step, got, want)
		}
	}
	ps.set(reconcile.Pause{}, errors.New("permission denied"))
	check("never read, unreadable", true)
	ps.set(reconcile.Pause{}, nil)
	check("read: not paused", false)
	ps.set(reconcile.Pause{Paused: true}, nil)
	check("paused", true)
	before := len(f.log.String())
	ps.set(reconcile.Pause{}, errors.New("etcd does not answer"))
	check("paused, then unreadable", true)
	if strings.Contains(f.log.String()[before:], "cluster resumed") {
		t.Errorf("a failed read was logged as a resume:\n%s", f.log)
	}
	ps.set(reconcile.Pause{}, nil)
	check("resumed", false)
}
