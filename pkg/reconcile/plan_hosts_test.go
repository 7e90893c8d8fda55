package reconcile

import (
	"context"
	"strings"
	"testing"

	"github.com/pacsd/pacsd/pkg/spec"
)

// hostsCluster is testCluster with each node on a host of its own: db1 on a
// (10.0.0.11), db2 on b (10.0.0.12), db3 on c (10.0.0.13), each published on
// a port of its own.
func hostsCluster(t *testing.T) *spec.Cluster {
	t.Helper()
	return testClusterWith(t, "", hostsTail)
}

// hostsTail is the nodes and hosts of hostsCluster.
const hostsTail = `
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
    host   = "c"
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
host "c" {
  docker  = "unix:///run/c.sock"
  address = "10.0.0.13"
}
`

// kinds lists the actions as "kind node@host target", for comparisons.
func kinds(actions []Action) []string {
	var out []string
	for _, a := range actions {
		out = append(out, string(a.Kind)+" "+a.Node+"@"+a.Host+" "+a.Target)
	}
	return out
}

func TestReachAcrossHosts(t *testing.T) {
	c := hostsCluster(t)
	if h, p := Reach(c, "db2", "db1"); h != "10.0.0.11" || p != 15431 {
		t.Errorf("db2 reaches db1 at %s:%d, want 10.0.0.11:15431 (db1's host address and published port)", h, p)
	}
	if h, p := Reach(c, "db1", "db3"); h != "10.0.0.13" || p != 15433 {
		t.Errorf("db1 reaches db3 at %s:%d, want 10.0.0.13:15433", h, p)
	}
	one := testCluster(t, "")
	if h, p := Reach(one, "db2", "db1"); h != "pacs-db1" || p != 5432 {
		t.Errorf("on one engine db2 reaches db1 at %s:%d, want its container name and 5432", h, p)
	}
}

// TestFilesAcrossHosts: a standby on another host follows the primary at its
// host's address and published port, and pg_hba.conf lets replication and
// pacsd's superuser in from the cluster network and from the hosts'
// addresses only, with scram-sha-256.
func TestFilesAcrossHosts(t *testing.T) {
	c := hostsCluster(t)
	files := NodeFiles(c, "db2", "db1")
	params := string(files[ParamsPath])
	if !strings.Contains(params, "host=10.0.0.11") || !strings.Contains(params, "port=15431") {
		t.Errorf("db2's primary_conninfo does not name db1's host address and published port:\n%s", params)
	}
	if strings.Contains(params, "pacs-db1") {
		t.Errorf("db2's parameters name db1's container, which another engine cannot resolve:\n%s", params)
	}
	hba := string(files[HBAPath])
	for _, want := range []string{"10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32", "samenet"} {
		found := false
		for _, line := range strings.Split(hba, "\n") {
			f := strings.Fields(line)
			if len(f) == 5 && f[0] == "hostssl" && f[1] == "replication" && f[3] == want && f[4] == "scram-sha-256" {
				found = true
			}
		}
		if !found {
			t.Errorf("pg_hba.conf has no scram-sha-256 replication rule for %s:\n%s", want, hba)
		}
	}
	for _, line := range strings.Split(hba, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == "host" && (f[4] == "trust" || f[1] == "replication" && f[3] == "all") {
			t.Errorf("pg_hba.conf has a host rule that lets anyone in: %q", line)
		}
	}
	// One engine: no host addresses at all.
	one := NodeFiles(testCluster(t, ""), "db2", "db1")
	if strings.Contains(string(one[HBAPath]), "/32") {
		t.Errorf("a one-engine cluster's pg_hba.conf names host addresses:\n%s", one[HBAPath])
	}
}

// TestPlanCreatesPerHostNetworks: each host's engine gets the cluster
// network and the image; the containers publish on their host's address;
// base backups reach the primary at its host address.
func TestPlanCreatesPerHostNetworks(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.Engines["b"].Network, obs.Engines["c"].Image = nil, nil
	obs.Nodes["db3"] = &NodeState{}
	actions, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	got := strings.Join(kinds(actions), "\n")
	for _, want := range []string{"create-network @b pacs", "pull-image @c pacsd-postgres:15", "base-backup db3@"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	for _, w := range []string{"@a pacs", "@ pacs"} {
		if strings.Contains(got, "create-network "+w) {
			t.Errorf("plan creates the network where it exists (%s):\n%s", w, got)
		}
	}
	for _, a := range actions {
		if a.Kind == BaseBackup && (a.Backup.Host != "10.0.0.11" || a.Backup.Port != 15431) {
			t.Errorf("db3's base backup reaches the primary at %s:%d, want 10.0.0.11:15431", a.Backup.Host, a.Backup.Port)
		}
		if n := c.Node(a.Node); a.Kind == CreateContainer && (a.Container.PortAddress != n.Address || a.Container.Port != n.Port) {
			t.Errorf("%s's container publishes on %s:%d, want %s:%d", a.Node, a.Container.PortAddress, a.Container.Port, n.Address, n.Port)
		}
	}
}

// unreachable marks host's engine and its nodes as not answering.
func unreachable(obs *Observed, c *spec.Cluster, host string) {
	obs.Engines[host] = &EngineState{Unreachable: "dial tcp: i/o timeout"}
	for _, n := range c.Nodes {
		if n.Host == host {
			obs.Nodes[n.Name] = &NodeState{Unreachable: "dial tcp: i/o timeout", Data: DataState{Unknown: true}}
		}
	}
}

// TestPlanStandbyHostUnreachable: the nodes of a host whose engine does not
// answer are left alone (a problem for that node only) and the others are
// still converged.
func TestPlanStandbyHostUnreachable(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	unreachable(obs, c, "c")
	obs.Nodes["db2"].Container.Running, obs.Nodes["db2"].Container.Status, obs.Nodes["db2"].DB = false, "exited", nil
	actions, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 1 || !problems[0].NodeOnly || problems[0].Node != "db3" || problems[0].Summary != "Engine Unreachable" {
		t.Fatalf("problems = %v, want one Engine Unreachable for db3 only", problems)
	}
	if !strings.Contains(problems[0].Detail, `host "c"`) || !strings.Contains(problems[0].Detail, "i/o timeout") {
		t.Errorf("the problem does not name the host and the cause: %s", problems[0].Detail)
	}
	got := kinds(actions)
	if !strings.Contains(strings.Join(got, "\n"), "start-container db2@") {
		t.Errorf("db2 (stopped, on a host that answers) is not started:\n%s", strings.Join(got, "\n"))
	}
	for _, a := range actions {
		if a.Node == "db3" || a.Host == "c" {
			t.Errorf("plan acts on the unreachable host: %s", a)
		}
	}
}

// TestPlanPrimaryHostUnreachable: with the acting primary's engine silent,
// the standbys that answer are kept running as standbys; nothing is
// promoted, fenced, switched over, backed up or rewound.
func TestPlanPrimaryHostUnreachable(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	unreachable(obs, c, "a")
	obs.Nodes["db2"].Container.Running, obs.Nodes["db2"].Container.Status, obs.Nodes["db2"].DB = false, "exited", nil
	obs.Nodes["db3"] = &NodeState{} // no container, no data: needs a base backup
	actions, problems := Plan(c, obs, fakeMatches)
	var errs, warns []string
	for _, p := range problems {
		if p.Warning {
			warns = append(warns, p.Node+" "+p.Summary)
		} else {
			errs = append(errs, p.Node+" "+p.Summary)
			if !p.NodeOnly {
				t.Errorf("a problem stops the whole cluster: %v", p)
			}
		}
	}
	if strings.Join(errs, ",") != "db1 Engine Unreachable" || strings.Join(warns, ",") != "db3 Standby Waits for the Primary" {
		t.Errorf("problems %v, warnings %v; want db1 Engine Unreachable and db3 Standby Waits for the Primary", errs, warns)
	}
	got := strings.Join(kinds(actions), "\n")
	if !strings.Contains(got, "start-container db2@") {
		t.Errorf("db2 is not started:\n%s", got)
	}
	for _, a := range actions {
		switch a.Kind {
		case Promote, Fence, Switchover, BaseBackup, Rewind:
			t.Errorf("plan %s while the primary's engine does not answer", a)
		}
		if a.Node == "db1" || a.Host == "a" {
			t.Errorf("plan acts on the primary's unreachable host: %s", a)
		}
	}

	// A standby that answers as writable while the primary is unseen: no
	// action at all, and a problem that stops the cluster.
	obs = converged(c)
	unreachable(obs, c, "a")
	obs.Nodes["db2"].DB.InRecovery = false
	actions, problems = Plan(c, obs, fakeMatches)
	stop := false
	for _, p := range problems {
		stop = stop || !p.NodeOnly && !p.Warning && p.Summary == "Second Primary Unconfirmed"
	}
	if !stop || len(actions) != 0 {
		t.Errorf("a writable standby beside an unseen primary: problems %v, actions %v; want Second Primary Unconfirmed and nothing done", problems, kinds(actions))
	}
}

// TestPlanPromoteWaitsForUnreachable: the acting primary found in recovery
// is not promoted while another node's engine does not answer (it might run
// as a primary there).
func TestPlanPromoteWaitsForUnreachable(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.State = ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"}
	obs.Nodes["db2"].DB.InRecovery = true
	unreachable(obs, c, "a")
	actions, _ := Plan(c, obs, fakeMatches)
	for _, a := range actions {
		if a.Kind == Promote {
			t.Fatalf("db2 promoted while db1's engine does not answer: %s", a)
		}
	}
}

// TestPlanImageMajorPerHost: each node's data is compared with the image on
// its own host, and an image of another major version on one host stops
// the plan with a problem that names both hosts.
func TestPlanImageMajorPerHost(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	for _, ns := range obs.Nodes {
		ns.Data.Major = 15
	}
	obs.Engines["b"].Image.Major = 17
	actions, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 1 || problems[0].Summary != "Image Differs Between Hosts" || !strings.Contains(problems[0].Detail, `host "b"`) || len(actions) != 0 {
		t.Errorf("image 17 on b beside 15 elsewhere: problems %v, actions %v; want one Image Differs Between Hosts naming b and nothing done", problems, kinds(actions))
	}
}

// TestPlanEmptyPrimaryWaitsForUnreachable: an acting primary with no
// container and no data is not initialised while a node whose engine does
// not answer may hold the cluster's data.
func TestPlanEmptyPrimaryWaitsForUnreachable(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.Nodes["db1"] = &NodeState{Data: DataState{Exists: true}}
	unreachable(obs, c, "b")
	unreachable(obs, c, "c")
	actions, problems := Plan(c, obs, fakeMatches)
	for _, a := range actions {
		if a.Node == "db1" {
			t.Errorf("plan acts on the empty primary while the other nodes cannot be seen: %s", a)
		}
	}
	found := false
	for _, p := range problems {
		found = found || p.Summary == "Primary Data Missing" && !p.NodeOnly && strings.Contains(p.Detail, `host "b"`)
	}
	if !found {
		t.Errorf("problems %v; want Primary Data Missing naming the silent host", problems)
	}
}

// TestPlanNodeMoved: a node the record saw on one host that the file now
// puts on another (where it has no container) is not created there: its
// container, perhaps a primary, may still run where it was.
func TestPlanNodeMoved(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.State.Placed = map[string]Placement{"db1": {Host: "a", Docker: "unix:///run/a.sock"}, "db2": {Host: "x", Docker: "tcp://10.0.0.99:2376"}}
	obs.Nodes["db2"] = &NodeState{Data: DataState{Exists: true}}
	actions, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 1 || problems[0].Summary != "Node Moved" || problems[0].NodeOnly || !strings.Contains(problems[0].Detail, `host "x"`) {
		t.Errorf("problems %v; want one Node Moved for db2 naming where it was", problems)
	}
	for _, a := range actions {
		if a.Node == "db2" {
			t.Errorf("plan acts on the moved node: %s", a)
		}
	}
	// Seen on the engine the file names (its container is there): not moved.
	obs = converged(c)
	obs.State.Placed = map[string]Placement{"db2": {Host: "x", Docker: "tcp://10.0.0.99:2376"}}
	if _, problems := Plan(c, obs, fakeMatches); len(problems) != 0 {
		t.Errorf("a node whose container is where the file says: problems %v, want none", problems)
	}
	st, changed := placedState(c, obs)
	if !changed || st.Placed["db2"] != (Placement{Host: "b", Docker: "unix:///run/b.sock"}) {
		t.Errorf("placed after seeing db2 on b: %v (changed %v), want it recorded on b", st.Placed, changed)
	}
}

// TestPlanPromoteConfirmedUnreachable: the acting primary recorded by
// 'pacsd failover --confirm-fenced' and left in recovery (its promotion
// failed) is promoted by the next pass although the old primary's engine
// still does not answer: the operator confirmed that one stopped; any
// other silent node still holds the promotion back.
func TestPlanPromoteConfirmedUnreachable(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.State = ClusterState{Acting: "db2", Epoch: 2, Keep: "db1", Confirmed: "db1"}
	obs.Nodes["db2"].DB.InRecovery = true
	unreachable(obs, c, "a")
	actions, _ := Plan(c, obs, fakeMatches)
	if !strings.Contains(strings.Join(kinds(actions), "\n"), "promote db2@") {
		t.Errorf("db2 not promoted with db1 confirmed stopped: %v", kinds(actions))
	}
	obs.State.Confirmed = ""
	actions, _ = Plan(c, obs, fakeMatches)
	if strings.Contains(strings.Join(kinds(actions), "\n"), "promote db2@") {
		t.Errorf("db2 promoted while db1's engine is silent and nobody confirmed it stopped")
	}
}

// TestPlanKeepsContainersPublishedEverywhere: a container made before pacsd
// published ports on the host's address is not re-created for that alone.
func TestPlanKeepsContainersPublishedEverywhere(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	for _, n := range c.Nodes {
		old := ContainerSpecFor(c, n, n.Name == c.Primary)
		old.PortAddress = ""
		obs.Nodes[n.Name].Container.Labels[LabelConfig] = configDigest(old)
	}
	if actions, problems := Plan(c, obs, fakeMatches); len(actions) != 0 || len(problems) != 0 {
		t.Errorf("containers published on every address: actions %v, problems %v; want none", kinds(actions), problems)
	}
	obs.Nodes["db2"].Container.Labels[LabelConfig] = "0000"
	if actions, _ := Plan(c, obs, fakeMatches); !strings.Contains(strings.Join(kinds(actions), "\n"), "remove-container db2@") {
		t.Errorf("a container of another configuration is not re-created: %v", kinds(actions))
	}
}

// TestConfirmedCleared: an operator's confirmation that a node stopped is
// forgotten once its engine answers, once the promotion it allowed is done,
// and when the node is no longer declared.
func TestConfirmedCleared(t *testing.T) {
	c := hostsCluster(t)
	for name, edit := range map[string]func(o *Observed){
		"engine answers":  func(o *Observed) {},
		"promotion done":  func(o *Observed) { unreachable(o, c, "a") },
		"node undeclared": func(o *Observed) { o.State.Confirmed = "db9"; o.Nodes["db2"].DB.InRecovery = true },
	} {
		obs := converged(c)
		obs.State = ClusterState{Acting: "db2", Epoch: 2, Keep: "db1", Confirmed: "db1"}
		obs.Nodes["db1"].DB.InRecovery, obs.Nodes["db2"].DB.InRecovery = true, false
		edit(obs)
		if st, _ := placedState(c, obs); st.Confirmed != "" {
			t.Errorf("%s: Confirmed = %q, want it cleared", name, st.Confirmed)
		}
	}
	obs := converged(c)
	obs.State = ClusterState{Acting: "db2", Epoch: 2, Keep: "db1", Confirmed: "db1"}
	obs.Nodes["db2"].DB.InRecovery = true
	unreachable(obs, c, "a")
	if st, _ := placedState(c, obs); st.Confirmed != "db1" {
		t.Errorf("promotion pending, db1 still silent: Confirmed = %q, want db1 kept", st.Confirmed)
	}
}

// TestPlanNodeMovedByEngineID: a container of the node on another engine
// than the one it ran on (their IDs differ) is a stale copy (Node Moved);
// an equal ID alone never clears a move (cloned engines share one).
func TestPlanNodeMovedByEngineID(t *testing.T) {
	c := hostsCluster(t)
	obs := converged(c)
	obs.Engines["b"].ID = "engine-new"
	obs.State.Placed = map[string]Placement{"db2": {Host: "b", Docker: "unix:///run/b.sock", Engine: "engine-old"}}
	_, problems := Plan(c, obs, fakeMatches)
	if len(problems) != 1 || problems[0].Summary != "Node Moved" || problems[0].Node != "db2" {
		t.Errorf("db2's container on another engine than it ran on: problems %v, want Node Moved", problems)
	}

	obs = converged(c)
	obs.Engines["b"].ID = "engine-b"
	obs.State.Placed = map[string]Placement{"db2": {Host: "old-name", Docker: "tcp://10.0.0.12:2376", Engine: "engine-b"}}
	if _, problems := Plan(c, obs, fakeMatches); len(problems) != 0 {
		t.Errorf("db2's container on the same engine under another host name: problems %v, want none", problems)
	}
	obs.Nodes["db2"].Container = nil
	if _, problems := Plan(c, obs, fakeMatches); len(problems) != 1 || problems[0].Summary != "Node Moved" {
		t.Errorf("db2 under another host name, same engine ID, no container: problems %v, want Node Moved (an ID may be shared by cloned engines)", problems)
	}
	obs = converged(c)
	obs.Engines["b"].ID = "engine-b"
	if st, _ := placedState(c, obs); st.Placed["db2"].Engine != "engine-b" {
		t.Errorf("placed %v; want db2's engine ID recorded", st.Placed)
	}
}

// idEngine is an engine that says its ID and may have the node's container.
type idEngine struct {
	Runtime
	id    string
	owned bool
}

func (e idEngine) EngineID(context.Context) (string, error) { return e.id, nil }

func (e idEngine) ContainerInspect(_ context.Context, name, _, _ string) (*ContainerState, error) {
	if !e.owned {
		return nil, nil
	}
	return &ContainerState{ID: "id-" + name, Name: name, Owned: true}, nil
}

// TestFailoverEngineByID: a failover takes a primary whose host block was
// renamed for the same engine as placed only when its container is there,
// and never when the engine's ID differs from the one it ran on.
func TestFailoverEngineByID(t *testing.T) {
	c := hostsCluster(t)
	n := c.Node("db1")
	for _, tt := range []struct {
		id    string
		owned bool
		same  bool
	}{
		{"engine-a", true, true},
		{"engine-a", false, false}, // an ID alone: cloned engines share one
		{"engine-x", true, false},  // a stale copy on another engine
		{"", true, true},           // no ID: the container decides
	} {
		d := Deps{Runtimes: map[string]Runtime{"a": idEngine{id: tt.id, owned: tt.owned}}}
		if got := sameEngineOrOwned(context.Background(), c, n, Placement{Host: "old", Engine: "engine-a"}, d); got != tt.same {
			t.Errorf("engine %q, container there %v: same engine %v, want %v", tt.id, tt.owned, got, tt.same)
		}
	}
}
