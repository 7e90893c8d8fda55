package daemon

import (
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestWorkInProgress: pg_basebackup's and pg_rewind's progress lines show
// as the node's work with its percent and time left; the work ends with the
// node's base backup or rewind event; /status carries it on the node.
func TestWorkInProgress(t *testing.T) {
	f := mustFixture(t)
	d := f.d
	d.observed(d.file.Clusters[0], nil, nil)
	d.progressed("db2", "pg_basebackup: initiating base backup, waiting for checkpoint to complete")
	d.views.mu.Lock()
	d.views.begun["db2"] = time.Now().Add(-30 * time.Second)
	d.views.mu.Unlock()
	d.progressed("db2", "  12345/61725 kB (20%), 0/1 tablespace")
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
// is kept once while it stays the same, and again when it changes.
func TestDecisionsKeptOnce(t *testing.T) {
	f := mustFixture(t)
	d := f.d
	p := reconcile.Event{Cluster: "pacs", Node: "db1", Kind: "problem", Reason: "Primary Differs From Spec: ...", Result: "not acted on: warning"}
	for range 5 {
		d.record(p)
	}
	p.Reason = "another"
	d.record(p)
	es, err := d.Events("pacs", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Checksum == "" {
		t.Errorf("events: %+v; want the decision once, then the changed one, with the file's checksum", es)
	}
}
