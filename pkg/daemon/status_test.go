package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// TestReadyzPartial: a cluster converged but for the nodes of an engine
// that does not answer keeps the daemon not ready, and /readyz says so, not
// that the pass failed; a failed pass says it failed; a converged cluster
// is ready.
func TestReadyzPartial(t *testing.T) {
	f := mustFixture(t)
	ctx := context.Background()
	left := &reconcile.NodesLeftError{Problems: []reconcile.Problem{{Cluster: "pacs", Node: "db2", Summary: "Engine Unreachable", Detail: "dial tcp 192.0.2.12:2376: i/o timeout", NodeOnly: true}}}
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, left })
	f.d.pass(ctx)
	code, body := f.get("/readyz")
	want := fmt.Sprintf("cluster %q: converged but for nodes whose Docker engine does not answer: %s\n", "pacs", left.Error())
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz with a partial cluster: %d %q, want %d %q", code, body, http.StatusServiceUnavailable, want)
	}
	if strings.Contains(body, "failed") {
		t.Errorf("/readyz says a partial pass failed: %q", body)
	}

	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, nil })
	f.d.pass(ctx)
	if code, body := f.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once the cluster converged: %d %q, want 200", code, body)
	}

	fail := errors.New(`cluster "pacs", node "db1": while starting: refused`)
	f.setApply(func(*spec.Cluster) (reconcile.Result, error) { return reconcile.Result{}, fail })
	f.d.pass(ctx)
	code, body = f.get("/readyz")
	want = fmt.Sprintf("cluster %q: last pass failed: %s\n", "pacs", fail)
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz with a failed cluster: %d %q, want %d %q", code, body, http.StatusServiceUnavailable, want)
	}
}
