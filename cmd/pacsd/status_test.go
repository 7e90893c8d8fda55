package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestStatusCommand: 'pacsd status' asks the daemon at daemon.listen and
// prints the leader, the primary's lease and each host's pacsd; --json
// prints the status as the daemon gave it; a daemon that does not answer is
// exit 1 with what to do.
func TestStatusCommand(t *testing.T) {
	lag, secs := int64(1024), 0.5
	st := daemon.Status{Passed: true, Clusters: map[string]*daemon.ClusterStatus{"pacs": {
		ClusterView: reconcile.ClusterView{Cluster: "pacs", Acting: "db1", Declared: "db1", Epoch: 2, Nodes: []reconcile.NodeView{
			{Node: "db1", Container: "running", Role: "primary", Timeline: 3, LSN: "0/3000400"},
			{Node: "db2", Container: "running", Role: "standby", Timeline: 3, LSN: "0/3000000", LagBytes: &lag, LagSeconds: &secs,
				Replication: reconcile.ReplNotConnected, Why: "its WAL receiver is waiting",
				Work:       &reconcile.WorkView{Kind: "base backup", Percent: 40, Left: "1m30s"},
				LastAction: &reconcile.Event{At: time.Now().Add(-time.Minute), Kind: "base-backup", Result: "ok"}},
		}},
		LastPass: time.Now(), Duration: "120ms", Result: "ok",
		Coordination: &daemon.CoordinationStatus{Host: "a", Leader: "b", Lease: &daemon.LeaseStatus{Node: "db1", Host: "a"},
			Hosts: map[string]daemon.HostStatus{
				"a": {ReportedAt: time.Now(), Nodes: map[string]string{"db1": "primary"}},
				"b": {ReportedAt: time.Now(), Nodes: map[string]string{"db2": "standby, streaming"}},
			}},
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pacs.password")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "pacs.hcl")
	write := func(listen string) {
		src := `cluster "pacs" {
  image    = "pacsd-postgres:15"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "pacs.password"
  }
  node "db1" {}
}
daemon {
  listen = "` + listen + `"
}
`
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.TrimPrefix(srv.URL, "http://"))
	code, out, errOut := runCLI(t, nil, "status", "-f", file)
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"cluster pacs: acting primary db1, epoch 2", "last pass ok", "leader: b",
		"NODE  HOST   CONTAINER  ROLE     TL  LSN        LAG", "db2   local  running    standby  3   0/3000000  1.0 KiB, 0.5s  not connected",
		"db2: its WAL receiver is waiting", "base backup 40%, 1m30s left", "base-backup ok, ", "primary's lease: db1, held by the pacsd of a", "db1: primary", "db2: standby, streaming"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, nil, "status", "--json", "-f", file)
	var got daemon.Status
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Clusters["pacs"].Coordination.Leader != "b" {
		t.Errorf("status --json: exit %d, %s", code, out)
	}
	// Nothing listens there any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String()
	ln.Close()
	write(free)
	// Without a daemon the nodes are observed directly (whether the local
	// engine answers here or not, the output says how the status was had).
	code, out, errOut = runCLI(t, nil, "status", "-f", file)
	if code == exitUsage || !strings.Contains(out, "does not answer: observed directly") || !strings.Contains(out, "start it") {
		t.Errorf("status without a daemon: exit %d, %s%s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, nil, "status", "nope", "-f", file); code != exitUsage || !strings.Contains(errOut, `"pacs"`) {
		t.Errorf("status of a cluster the file does not declare: exit %d, %s", code, errOut)
	}
}
