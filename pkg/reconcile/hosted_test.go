package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

// twoOnB is hostsCluster with db2 and db3 both on host b: db1 on a
// (10.0.0.11:15431), db2 on b (10.0.0.12:15432), db3 on b (10.0.0.12:15433).
func twoOnB(t *testing.T) *spec.Cluster {
	t.Helper()
	return testClusterWith(t, "", `
  node "db1" {
    volume = "pacs-db1"
    host   = "a"
    port   = 15431
  }
  node "db2" {
    volume = "pacs-db2"
    host   = "b"
    port   = 15432
  }
  node "db3" {
    volume = "pacs-db3"
    host   = "b"
    port   = 15433
  }
}
host "a" {
  docker  = "unix:///run/a.sock"
  address = "10.0.0.11"
}
host "b" {
  docker  = "unix:///run/b.sock"
  address = "10.0.0.12"
}
`)
}

// problemLines lists problems as "node summary" (with " node-only" when
// NodeOnly), for comparisons.
func problemLines(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		line := p.Node + " " + p.Summary
		if p.NodeOnly {
			line += " node-only"
		}
		if p.Warning {
			line += " warning"
		}
		out = append(out, line)
	}
	return out
}

// TestScopeEveryHost: of a plan, the pacsd of one host keeps the actions
// on its own engine and nodes, holds back every action of a node whose
// run needs what it does not have (the primary's lease, a primary to build
// from), and says so with one problem of that node alone.
func TestScopeEveryHost(t *testing.T) {
	node := func(k Kind, n string) Action { return Action{Kind: k, Cluster: "pacs", Node: n, Target: n} }
	wide := func(k Kind, host string) Action { return Action{Kind: k, Cluster: "pacs", Host: host, Target: "pacs"} }
	problem := func(n, summary string, nodeOnly bool) Problem {
		return Problem{Cluster: "pacs", Node: n, Summary: summary, Detail: "the detail of " + summary, NodeOnly: nodeOnly}
	}
	tests := []struct {
		name string
		// twoOnB: the cluster is twoOnB (db2 and db3 on b), else
		// hostsCluster (one node per host). db1 acts as primary.
		twoOnB    bool
		host      string
		mayRun    bool
		primaryUp bool
		// switchWaits: why a switchover waits (SwitchoverWaits).
		switchWaits string
		actions     []Action
		problems    []Problem
		kept        []string // kinds() of the kept actions
		want        []string // problemLines() of the problems
	}{
		{
			name:      "the actions of other hosts are dropped: by the node's host, and by Action.Host for the network and the image",
			host:      "b",
			primaryUp: true,
			actions: []Action{
				wide(CreateNetwork, "a"), wide(CreateNetwork, "b"), wide(PullImage, "c"), wide(PullImage, "b"),
				node(WriteFile, "db3"), node(WriteFile, "db2"), node(Reload, "db3"), node(Reload, "db2"),
			},
			kept: []string{"create-network @b pacs", "pull-image @b pacs", "write-file db2@ db2", "reload db2@ db2"},
		},
		{
			name:      "problems that keep Apply off another host's node are dropped; the others are kept",
			host:      "b",
			primaryUp: true,
			problems: []Problem{
				problem("db1", "Engine Unreachable", true),
				problem("db3", "Engine Unreachable", true),
				problem("db2", "Data Directory Taken", true),
				problem("db1", "Primary Differs From File", false),
				problem("", "Network Not Owned", false),
			},
			want: []string{"db2 Data Directory Taken node-only", "db1 Primary Differs From File", " Network Not Owned"},
		},
		{
			name:      "a switchover is left to the acting primary's host: another host keeps only a warning",
			host:      "b",
			primaryUp: true,
			actions:   []Action{node(WriteFile, "db2"), {Kind: Switchover, Cluster: "pacs", Node: "db2", From: "db1", Target: "db1 -> db2"}, node(Reload, "db2")},
			kept:      []string{"write-file db2@ db2", "reload db2@ db2"},
			want:      []string{"db1 Switchover Waits warning"},
		},
		{
			name:      "the acting primary's host with its lease, every host's file naming the target: the switchover is kept",
			host:      "a",
			mayRun:    true,
			primaryUp: true,
			actions:   []Action{{Kind: Switchover, Cluster: "pacs", Node: "db2", From: "db1", Target: "db1 -> db2"}},
			kept:      []string{"switchover db2@ db1 -> db2"},
		},
		{
			name:      "the acting primary's host without its lease: the switchover waits, a problem of the acting primary alone",
			host:      "a",
			primaryUp: true,
			actions:   []Action{{Kind: Switchover, Cluster: "pacs", Node: "db2", From: "db1", Target: "db1 -> db2"}},
			want:      []string{"db1 Switchover Waits node-only"},
		},
		{
			name:        "a host's file names another primary: the switchover waits",
			host:        "a",
			mayRun:      true,
			primaryUp:   true,
			switchWaits: "the file of host \"c\" names \"db1\" (edit it there too)",
			actions:     []Action{{Kind: Switchover, Cluster: "pacs", Node: "db2", From: "db1", Target: "db1 -> db2"}},
			want:        []string{"db1 Switchover Waits node-only"},
		},
		{
			name:      "while another host's acting primary does not take writes, a standby is not repointed to it, and it is no problem of this host",
			host:      "b",
			primaryUp: false,
			actions:   []Action{{Kind: WriteFile, Cluster: "pacs", Node: "db2", Target: ParamsPath}, node(Reload, "db2"), node(WriteFile, "db3")},
			problems:  []Problem{problem("db1", "Primary In Recovery", false)},
			want:      []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "the acting primary's own host keeps its Primary In Recovery",
			host:      "a",
			primaryUp: false,
			problems:  []Problem{problem("db1", "Primary In Recovery", false)},
			want:      []string{"db1 Primary In Recovery"},
		},
		{
			name:      "with another host's acting primary up, a standby is repointed",
			host:      "b",
			primaryUp: true,
			actions:   []Action{{Kind: WriteFile, Cluster: "pacs", Node: "db2", Target: ParamsPath}, node(Reload, "db2")},
			kept:      []string{"write-file db2@ " + ParamsPath, "reload db2@ db2"},
		},
		{
			name:      "without the lease, no action of the acting primary is kept when one of them starts it",
			host:      "a",
			primaryUp: false,
			actions: []Action{
				wide(CreateNetwork, "a"), node(WriteFile, "db1"), node(CreateContainer, "db1"), node(StartContainer, "db1"),
				node(Promote, "db1"), node(SetAliases, "db1"), node(WriteFile, "db2"),
			},
			kept: []string{"create-network @a pacs"},
			want: []string{"db1 Primary Lease Not Held node-only"},
		},
		{
			name:      "without the lease, no action of the acting primary is kept when one of them restarts it (the restart comes last)",
			host:      "a",
			primaryUp: true,
			actions:   []Action{node(WriteFile, "db1"), node(SetRole, "db1"), node(Restart, "db1")},
			want:      []string{"db1 Primary Lease Not Held node-only"},
		},
		{
			name:      "without the lease, a promotion of the acting primary is held back",
			host:      "a",
			primaryUp: false,
			actions:   []Action{node(Promote, "db1")},
			want:      []string{"db1 Primary Lease Not Held node-only"},
		},
		{
			name:      "without the lease, the acting primary's actions that do not run it are kept",
			host:      "a",
			primaryUp: true,
			actions:   []Action{node(WriteFile, "db1"), node(Reload, "db1"), node(SetRole, "db1")},
			kept:      []string{"write-file db1@ db1", "reload db1@ db1", "set-role db1@ db1"},
		},
		{
			name:      "with the lease, the acting primary is created, started and promoted",
			host:      "a",
			mayRun:    true,
			primaryUp: false,
			actions:   []Action{node(CreateContainer, "db1"), node(StartContainer, "db1"), node(Promote, "db1"), node(SetAliases, "db1")},
			kept:      []string{"create-container db1@ db1", "start-container db1@ db1", "promote db1@ db1", "set-aliases db1@ db1"},
		},
		{
			name:      "while the primary is not up, a standby to build keeps none of its actions: its container is neither created nor started",
			host:      "b",
			primaryUp: false,
			actions: []Action{
				wide(CreateNetwork, "b"), wide(PullImage, "b"),
				node(CreateContainer, "db2"), node(StartContainer, "db2"), node(MoveAside, "db2"), node(BaseBackup, "db2"),
				node(WriteFile, "db2"), node(SetAliases, "db2"),
			},
			kept: []string{"create-network @b pacs", "pull-image @b pacs"},
			want: []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "while the acting primary has work on its own host, a standby to rewind keeps none of its actions",
			host:      "b",
			primaryUp: true,
			actions:   []Action{node(StartContainer, "db1"), node(Rewind, "db2"), node(StartContainer, "db2"), node(SetAliases, "db2")},
			want:      []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "while the acting primary has any work on its own host, a base backup waits",
			host:      "b",
			primaryUp: true,
			actions:   []Action{node(BaseBackup, "db2"), node(CreateContainer, "db2"), node(StartContainer, "db2"), node(Reload, "db1")},
			want:      []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "a standby with a base backup and a rewind waits with one problem",
			host:      "b",
			primaryUp: false,
			actions:   []Action{node(Rewind, "db2"), node(BaseBackup, "db2"), node(StartContainer, "db2")},
			want:      []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "while the primary is not up, a standby with nothing to build keeps its actions",
			host:      "b",
			primaryUp: false,
			actions:   []Action{node(WriteFile, "db2"), node(Restart, "db2")},
			kept:      []string{"write-file db2@ db2", "restart db2@ db2"},
		},
		{
			name:      "a standby that waits does not hold back another node of its host",
			twoOnB:    true,
			host:      "b",
			primaryUp: false,
			actions:   []Action{node(BaseBackup, "db2"), node(WriteFile, "db3"), node(CreateContainer, "db2"), node(StartContainer, "db2"), node(Reload, "db3")},
			kept:      []string{"write-file db3@ db3", "reload db3@ db3"},
			want:      []string{"db2 Waits For The Primary node-only"},
		},
		{
			name:      "with the primary up and no work on it, every action of this host is kept, in order",
			host:      "b",
			primaryUp: true,
			actions: []Action{
				wide(CreateNetwork, "b"), wide(PullImage, "b"), node(MoveAside, "db2"), node(BaseBackup, "db2"),
				node(CreateContainer, "db2"), node(StartContainer, "db2"), node(WriteFile, "db3"), node(SetAliases, "db2"),
				node(CreateSlot, "db2"),
			},
			problems: []Problem{problem("db1", "Primary Differs From File", false)},
			kept: []string{"create-network @b pacs", "pull-image @b pacs", "move-aside db2@ db2", "base-backup db2@ db2",
				"create-container db2@ db2", "start-container db2@ db2", "set-aliases db2@ db2", "create-slot db2@ db2"},
			want: []string{"db1 Primary Differs From File"},
		},
		{
			name:      "with the lease and the primary up, the primary's host keeps its files and its restart",
			host:      "a",
			mayRun:    true,
			primaryUp: true,
			actions:   []Action{node(WriteFile, "db1"), node(Restart, "db1"), node(Reload, "db2")},
			kept:      []string{"write-file db1@ db1", "restart db1@ db1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hostsCluster(t)
			if tt.twoOnB {
				c = twoOnB(t)
			}
			in := append([]Action(nil), tt.actions...)
			kept, problems := Scope(c, tt.host, "db1", tt.mayRun, tt.primaryUp, tt.switchWaits, tt.actions, tt.problems)
			if diff := cmp.Diff(tt.kept, kinds(kept), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("actions kept on host %q (-want +got):\n%s", tt.host, diff)
			}
			if diff := cmp.Diff(tt.want, problemLines(problems), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems on host %q (-want +got):\n%s", tt.host, diff)
			}
			for _, p := range problems {
				if p.Cluster != c.Name || p.Detail == "" {
					t.Errorf("problem %q of node %q: cluster %q, detail %q; want cluster %q, a detail", p.Summary, p.Node, p.Cluster, p.Detail, c.Name)
				}
				if p.Detail != "the detail of "+p.Summary && !strings.Contains(p.Detail, fmt.Sprintf("%q", p.Node)) {
					t.Errorf("problem %q does not name node %q in its detail: %s", p.Summary, p.Node, p.Detail)
				}
			}
			if diff := cmp.Diff(kinds(in), kinds(tt.actions)); diff != "" {
				t.Errorf("Scope changed the plan it was given (-before +after):\n%s", diff)
			}
		})
	}
}

// TestScopeOfAPlan runs Scope over what Plan makes of a cluster whose
// primary is down and one of whose standbys has no data: on the standby's
// host nothing of it runs until the primary does (a standby started on
// empty data would initialise a second, empty primary); on the primary's
// host the primary starts only under its lease.
func TestScopeOfAPlan(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	db1 := obs.Nodes["db1"]
	db1.Container.Running, db1.Container.Status, db1.DB = false, "exited", nil
	obs.Nodes["db3"] = &NodeState{} // no container, no data: needs a base backup
	actions, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 0 {
		t.Fatalf("Plan: problems %v", problems)
	}
	all := strings.Join(kinds(actions), "\n")
	for _, want := range []string{"start-container db1@", "base-backup db3@", "create-container db3@", "start-container db3@"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the plan lacks %q, which this test is about:\n%s", want, all)
		}
	}

	kept, ps := Scope(c, "c", "db1", false, false, "", actions, problems)
	for _, a := range kept {
		if a.Node == "db3" {
			t.Errorf("host c keeps %s while the primary is down; want none of db3's actions", a)
		}
	}
	if diff := cmp.Diff([]string{"db3 Waits For The Primary node-only"}, problemLines(ps)); diff != "" {
		t.Errorf("host c's problems (-want +got):\n%s", diff)
	}

	kept, ps = Scope(c, "a", "db1", false, false, "", actions, problems)
	for _, a := range kept {
		if a.Node != "" {
			t.Errorf("host a keeps %s without the primary's lease", a)
		}
	}
	if diff := cmp.Diff([]string{"db1 Primary Lease Not Held node-only"}, problemLines(ps)); diff != "" {
		t.Errorf("host a's problems without the lease (-want +got):\n%s", diff)
	}

	kept, ps = Scope(c, "a", "db1", true, false, "", actions, problems)
	if !strings.Contains(strings.Join(kinds(kept), "\n"), "start-container db1@") || len(ps) != 0 {
		t.Errorf("host a with the lease keeps %v, problems %v; want db1 started, no problem", kinds(kept), ps)
	}
	for _, a := range kept {
		if a.Node != "" && a.Node != "db1" || a.Host != "" && a.Host != "a" {
			t.Errorf("host a keeps %s, an action of another host", a)
		}
	}
}

// reportWorld is what host b's pacsd observes of twoOnB: db1 on a (the
// primary, through a's report), db2 on b (a standby that runs, with a
// stray container), db3 on b (stopped); the servers know the roles'
// verifiers and settings with secrets in them, and the files hold the
// passwords.
func reportWorld(c *spec.Cluster) *Observed {
	obs := converged(c)
	obs.Engines["a"].ID = "engine-a"
	obs.Engines["b"].ID = "engine-b"
	roles := map[string]RoleState{
		"pacs":       {Login: true, Superuser: true, Verifier: "SCRAM-SHA-256$4096:cGFjcy1zYWx0$pacs-stored:pacs-server"},
		"replicator": {Login: true, Replication: true, Verifier: "SCRAM-SHA-256$4096:cmVwbC1zYWx0$repl-stored:repl-server"},
		"viewer":     {Login: true, Verifier: "SCRAM-SHA-256$4096:dmlld2VyLXNhbHQ=$viewer-stored:viewer-server"},
	}
	for _, ns := range obs.Nodes {
		ns.DB.Roles = roles
		ns.DB.Settings["primary_conninfo"] = Setting{Value: "host=10.0.0.11 user=replicator password=repl-secret", Context: "sighup"}
		ns.Files.Params = append(ns.Files.Params, "# password=pacs-secret viewer-secret\n"...)
	}
	db2 := obs.Nodes["db2"]
	db2.Strays = []string{"pacs-db2-old"}
	db2.Data.Control = &Control{}
	db2.DB.Slots = map[string]bool{"pacs_db9": false}
	db2.DB.Timeline, db2.DB.WAL, db2.DB.ReceivedWAL = 3, 0x3000060, 0x3000100
	db2.DB.Streaming, db2.DB.SyncStandbys = []string{"db9"}, []string{"db9"}
	db3 := obs.Nodes["db3"]
	db3.Container.Running, db3.Container.Status = false, "exited"
	db3.DB, db3.DBError = nil, "dial tcp 10.0.0.12:15433: connect: connection refused"
	return obs
}

// TestReportOfHost: a host's report holds its own nodes only, each reached
// at the host's address and published port while it runs, with its
// containers (the owned one and the strays) and its server's role and
// positions, and nothing secret.
func TestReportOfHost(t *testing.T) {
	c := twoOnB(t)
	obs := reportWorld(c)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := Report(c, "b", obs, at)

	db2, db3 := obs.Nodes["db2"], obs.Nodes["db3"]
	ct2, ct3 := *db2.Container, *db3.Container
	ct2.Addr, ct3.Addr = "10.0.0.12:15432", ""
	want := HostReport{
		Host:   "b",
		At:     at,
		Engine: *obs.Engines["b"],
		Image:  c.Image, Primary: "db1",
		Nodes: map[string]NodeReport{
			"db2": {
				Container:  &ct2,
				Containers: []string{"pacs-db2", "pacs-db2-old"},
				Mount:      Mount{Volume: "pacs-db2"},
				Data:       db2.Data,
				Health: &DBState{Version: 150000, InRecovery: true, Timeline: 3, Streaming: []string{"db9"}, Receiver: "streaming",
					WAL: 0x3000060, ReceivedWAL: 0x3000100, SyncStandbys: []string{"db9"}},
			},
			"db3": {
				Container:  &ct3,
				Containers: []string{"pacs-db3"},
				Mount:      Mount{Volume: "pacs-db3"},
				Data:       db3.Data,
				DBError:    db3.DBError,
			},
		},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("host b's report (-want +got):\n%s", diff)
	}
	if obs.Nodes["db2"].Container.Addr != "db2:5432" {
		t.Errorf("Report changed the observation: db2's address is now %q", obs.Nodes["db2"].Container.Addr)
	}

	ra := Report(c, "a", obs, at)
	if len(ra.Nodes) != 1 || ra.Nodes["db1"].Container == nil || ra.Nodes["db1"].Container.Addr != "10.0.0.11:15431" || ra.Engine.ID != "engine-a" {
		t.Errorf("host a's report: engine %q, nodes %+v; want engine-a and db1 alone at 10.0.0.11:15431", ra.Engine.ID, ra.Nodes)
	}
	if h := ra.Nodes["db1"].Health; h == nil || h.InRecovery {
		t.Errorf("host a's report of its primary: health %+v; want a primary", h)
	}

	// No secret leaves the host: not the roles' verifiers, nor a password
	// in a setting or a file.
	secrets := []string{"pacs-secret", "repl-secret", "viewer-secret", "SCRAM-SHA-256", "pacs-stored", "repl-stored", "viewer-stored", "primary_conninfo"}
	for _, r := range []HostReport{r, ra} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshalling host %q's report: %v", r.Host, err)
		}
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("host %q's report holds %q:\n%s", r.Host, s, b)
			}
		}
		var back HostReport
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("host %q's report does not read back: %v", r.Host, err)
		}
	}
}

// TestReportAddress: a node's address in the report is empty while its
// container is stopped or when it publishes no port; a container not
// labelled as the node's own is not counted among its containers, a stray
// is; a node of the host that was not observed is left out.
func TestReportAddress(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(c *spec.Cluster, ns *NodeState)
		addr       string
		containers []string
		missing    bool
	}{
		{name: "running, published", edit: func(*spec.Cluster, *NodeState) {}, addr: "10.0.0.12:15432", containers: []string{"pacs-db2"}},
		{name: "stopped", edit: func(_ *spec.Cluster, ns *NodeState) { ns.Container.Running, ns.Container.Status = false, "exited" },
			containers: []string{"pacs-db2"}},
		{name: "no published port", edit: func(c *spec.Cluster, _ *NodeState) { c.Node("db2").Port = 0 }, containers: []string{"pacs-db2"}},
		{name: "not owned, with a stray", edit: func(_ *spec.Cluster, ns *NodeState) {
			ns.Container.Owned, ns.Strays = false, []string{"pacs-db2-renamed"}
		}, addr: "10.0.0.12:15432", containers: []string{"pacs-db2-renamed"}},
		{name: "no container", edit: func(_ *spec.Cluster, ns *NodeState) { ns.Container = nil }},
		{name: "not observed", edit: func(_ *spec.Cluster, ns *NodeState) { *ns = NodeState{} }, missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := twoOnB(t)
			obs := reportWorld(c)
			obs.Nodes["db2"].Strays = nil
			tt.edit(c, obs.Nodes["db2"])
			if tt.missing {
				delete(obs.Nodes, "db2")
			}
			r := Report(c, "b", obs, time.Now())
			nr, ok := r.Nodes["db2"]
			if ok == tt.missing {
				t.Fatalf("db2 in the report: %t, want %t", ok, !tt.missing)
			}
			if tt.missing {
				return
			}
			addr := ""
			if nr.Container != nil {
				addr = nr.Container.Addr
			}
			if addr != tt.addr {
				t.Errorf("db2's address in the report: %q, want %q", addr, tt.addr)
			}
			if diff := cmp.Diff(tt.containers, nr.Containers, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("db2's containers (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScopeSecondPrimaryElsewhere: a plan that fences a writable node of
// another host and promotes the acting primary here (the leader recorded
// the promotion but did not finish it, while the old primary still takes
// writes): this host's pacsd promotes nothing until that node's own pacsd
// has fenced it.
func TestScopeSecondPrimaryElsewhere(t *testing.T) {
	c := twoOnB(t)
	actions := []Action{
		{Kind: Fence, Class: ClassRestart, Node: "db1", Target: "pacs-db1"},
		{Kind: Promote, Node: "db2", Target: "pacs-db2"},
		{Kind: Reload, Node: "db3", Target: "pacs-db3"},
	}
	kept, ps := Scope(c, "b", "db2", true, true, "", actions, nil)
	var kinds []string
	for _, a := range kept {
		kinds = append(kinds, string(a.Kind)+" "+a.Node)
	}
	if diff := cmp.Diff([]string{"reload db3"}, kinds); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"db2 Second Primary Elsewhere node-only"}, problemLines(ps)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	// On db1's own host the fence is carried out.
	kept, _ = Scope(c, "a", "db2", false, true, "", actions, nil)
	if len(kept) != 1 || kept[0].Kind != Fence {
		t.Errorf("host a keeps %v, want its fence", kept)
	}
}

// TestScopeDivergedStandbyElsewhere: the stop of a diverged standby on
// another host (a Fence of class rebuild) holds nothing back here.
func TestScopeDivergedStandbyElsewhere(t *testing.T) {
	c := twoOnB(t)
	actions := []Action{
		{Kind: Fence, Class: ClassRebuild, Node: "db1", Target: "pacs-db1"},
		{Kind: Promote, Node: "db2", Target: "pacs-db2"},
	}
	kept, ps := Scope(c, "b", "db2", true, true, "", actions, nil)
	if len(kept) != 1 || kept[0].Kind != Promote || len(ps) != 0 {
		t.Errorf("kept %v, problems %v; want the promotion and no problem", kept, problemLines(ps))
	}
}

// TestHostAddr: another host's node is reached at its host's address and
// published port; an IPv6 address goes in brackets (a bare "fd00::12:15432"
// names no server); no port or no address is no address.
func TestHostAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		port int
		want string
	}{
		{"10.0.0.12", 15432, "10.0.0.12:15432"},
		{"fd00::12", 15432, "[fd00::12]:15432"},
		{"10.0.0.12", 0, ""},
		{"", 15432, ""},
	} {
		if got := HostAddr(&spec.Node{Address: tc.addr, Port: tc.port}); got != tc.want {
			t.Errorf("HostAddr(%q, %d) = %q, want %q", tc.addr, tc.port, got, tc.want)
		}
	}
}

// TestSwitchoverWaits: a switchover with pacsd on every host waits until
// the pacsd of every host of the cluster reports, and reads the target as
// the primary in its own file; the reason names each host that does not.
func TestSwitchoverWaits(t *testing.T) {
	c := hostsCluster(t)
	c.Primary = "db2"
	tests := []struct {
		name string
		prim map[string]string
		err  error
		want string
	}{
		{name: "every host agrees", prim: map[string]string{"a": "db2", "b": "db2", "c": "db2", "x": "db1"}},
		{name: "one host's file names the old primary", prim: map[string]string{"a": "db2", "b": "db1", "c": "db2"},
			want: `the file of host "b" names "db1" (edit it there too; if it was edited, its pacsd kept the last valid file: see its log)`},
		{name: "an older pacsd does not say", prim: map[string]string{"a": "db2", "b": "db2", "c": ""},
			want: `the pacsd of host "c" does not say which primary its file names (an older pacsd: upgrade it)`},
		{name: "one host does not report", prim: map[string]string{"a": "db2", "b": "db2"},
			want: `no pacsd of host "c" reports on the cluster (start it there)`},
		{name: "etcd cannot be read", err: errors.New("context deadline exceeded"),
			want: "what the other hosts' pacsd read in their files cannot be read from etcd (context deadline exceeded)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SwitchoverWaits(c, tt.prim, tt.err); got != tt.want {
				t.Errorf("SwitchoverWaits = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnchangedEveryHost: between a round's observation and its actions,
// another host's round only counted (Rounds): with pacsd on every host
// that leaves the observation valid (it acted on its own nodes only), and
// the observation takes the newest count; a change of the acting primary
// or the epoch makes it stale in both modes. With one controller any
// round of another pacsd process makes it stale.
func TestUnchangedEveryHost(t *testing.T) {
	c := hostsCluster(t)
	seen := ClusterState{Acting: "db1", Epoch: 1, Rounds: 3}
	tests := []struct {
		name   string
		now    ClusterState
		hosted bool
		same   bool
	}{
		{name: "one controller, another round", now: ClusterState{Acting: "db1", Epoch: 1, Rounds: 5}},
		{name: "every host, another host's round", now: ClusterState{Acting: "db1", Epoch: 1, Rounds: 5}, hosted: true, same: true},
		{name: "every host, a failover", now: ClusterState{Acting: "db2", Epoch: 2, Rounds: 5}, hosted: true},
		{name: "every host, nothing", now: seen, hosted: true, same: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &MemoryStore{}
			if err := store.Save(c.Name, tt.now); err != nil {
				t.Fatal(err)
			}
			d := Deps{Store: store}
			if tt.hosted {
				d.Hosted = &Hosted{Host: "b"}
			}
			obs := &Observed{State: seen}
			_, same, err := unchanged(c, d, obs)
			if err != nil || same != tt.same {
				t.Fatalf("unchanged = %t, %v; want %t", same, err, tt.same)
			}
			if same && tt.hosted && obs.State.Rounds != tt.now.Rounds {
				t.Errorf("the observation counts %d rounds, want the newest %d", obs.State.Rounds, tt.now.Rounds)
			}
		})
	}
}

// followersDB is the servers of hostsCluster seen from another host: db1
// (the lost primary) does not answer, the others are caught-up standbys;
// it records promotions and the slots created.
type followersDB struct {
	promoted *int
	slots    *[]string
}

func (d followersDB) Connect(_ context.Context, addr string, _ string, _ spec.Secret, _ string) (DBConn, error) {
	if addr == "10.0.0.11:15431" {
		return nil, errors.New("connection timed out")
	}
	return followerConn{caughtUpConn: caughtUpConn{promoted: d.promoted}, slots: d.slots, addr: addr}, nil
}

type followerConn struct {
	caughtUpConn
	slots *[]string
	addr  string
}

func (c followerConn) CreateSlot(_ context.Context, name string) error {
	*c.slots = append(*c.slots, c.addr+" "+name)
	return nil
}

// TestFailoverEveryHostReadiesFollowers: with pacsd on every host, the
// leader's failover creates every other node's slot on the new primary
// right after promoting it, and counts a round in the record, so that the
// other hosts' pacsd, which follow the record, repoint their standbys at
// once to slots that exist.
func TestFailoverEveryHostReadiesFollowers(t *testing.T) {
	c := testClusterWith(t, "failover {\n automatic = true\n }", hostsTail)
	promoted := 0
	var slots []string
	store := recorded("db1", nil)
	d := Deps{
		Runtimes: map[string]Runtime{"a": &switchRuntime{}, "b": &switchRuntime{}, "c": &switchRuntime{}},
		DB:       followersDB{promoted: &promoted, slots: &slots},
		Store:    store,
		Hosted:   &Hosted{Host: "x", Fenced: func(context.Context, *spec.Cluster, string) error { return nil }},
	}
	to, err := Failover(context.Background(), c, d, LastSeen{Node: "db1", WAL: 0x4000000, At: time.Now(), LostAt: time.Now()}, slog.New(slog.DiscardHandler))
	if err != nil || promoted != 1 {
		t.Fatalf("failover: %q, %v, %d promotions", to, err, promoted)
	}
	addr := map[string]string{"db2": "10.0.0.12:15432", "db3": "10.0.0.13:15433"}[to]
	var want []string
	for _, n := range []string{"db1", "db2", "db3"} {
		if n != to {
			want = append(want, addr+" "+pgconf.SlotName("pacs", n))
		}
	}
	if diff := cmp.Diff(want, slots); diff != "" {
		t.Errorf("slots created (-want +got):\n%s", diff)
	}
	st, _ := store.Load("pacs")
	if st.Acting != to || st.Epoch != 2 || st.Rounds != 1 {
		t.Errorf("record after the failover: %+v; want %s acting at epoch 2 and one round counted", st, to)
	}
}

// reportedRuntime is another host's engine as its pacsd's report shows
// it: every node's container runs; files are known only through the report.
type reportedRuntime struct{ Runtime }

func (reportedRuntime) ContainerInspect(_ context.Context, name, _, _ string) (*ContainerState, error) {
	return &ContainerState{ID: "id-" + name, Name: name, Owned: true, Running: true, Status: "running", Addr: "reported"}, nil
}
func (reportedRuntime) NodeContainers(context.Context, string, string) ([]string, error) {
	return nil, nil
}
func (reportedRuntime) ReadFiles(context.Context, string, []string) (map[string][]byte, error) {
	return nil, ErrReportedOnly
}
func (reportedRuntime) DataInspect(context.Context, string, Mount) (DataState, error) {
	return DataState{Exists: true, Major: 15}, nil
}

// hangingDB takes every connection, and answers no question until it
// is given up (a host that went silent behind a connection kept open).
type hangingDB struct{}

func (hangingDB) Connect(context.Context, string, string, spec.Secret, string) (DBConn, error) {
	return hangingConn{}, nil
}

type hangingConn struct{ DBConn }

func (hangingConn) State(ctx context.Context) (*DBState, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hangingConn) Close() {}

// TestObserveRemoteNodeBounded: with pacsd on every host, another host's
// node whose server stopped answering (its host powered off behind a
// connection kept open) holds the observation for ObserveRemoteSQLTimeout,
// not ObserveSQLTimeout: every pass of this host, the one after a failover
// too, waits for it.
func TestObserveRemoteNodeBounded(t *testing.T) {
	c := hostsCluster(t)
	defer func(r time.Duration) { ObserveRemoteSQLTimeout = r }(ObserveRemoteSQLTimeout)
	ObserveRemoteSQLTimeout = 50 * time.Millisecond
	d := Deps{Runtimes: map[string]Runtime{"b": reportedRuntime{}}, DB: hangingDB{}, Hosted: &Hosted{Host: "a"}, Store: testStore}
	began := time.Now()
	ns, err := ObserveNode(context.Background(), c, c.Node("db2"), d)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if took > ObserveSQLTimeout/2 {
		t.Errorf("observing a silent node of another host took %s; want about ObserveRemoteSQLTimeout (%s)", took, ObserveRemoteSQLTimeout)
	}
	if ns.DB != nil || ns.DBError == "" || !ns.Data.Exists {
		t.Errorf("observed %+v; want no server state, the error, and the data as reported", ns)
	}
}
