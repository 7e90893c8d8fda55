package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/pacsd/pacsd/pkg/spec"
)

// adoptSeed is what adopt sees of the seed's installation: mypostgres-master
// (db1) and mypostgres-slave (db2) streaming from it, data in host
// directories mounted as PGDATA, POSTGRES_PASSWORD in the environment.
func adoptSeed() *AdoptObserved {
	legacy := func(name, dir, ip string) *LegacyContainer {
		return &LegacyContainer{ID: name + "-id", Name: name, Running: true, Status: "running", RestartPolicy: "no",
			Env:       map[string]string{"POSTGRES_USER": "pacs", "POSTGRES_DB": "pacsdb"},
			SecretEnv: []string{"POSTGRES_PASSWORD"}, Mount: &Mount{HostDir: dir}, MountAt: PGDATA, IPs: []string{ip}}
	}
	return &AdoptObserved{Images: map[string]*ImageState{"": {ID: "img", Major: 15}}, Nodes: map[string]*AdoptNode{
		"db1": {Current: legacy("mypostgres-master", "/var/local/mypacs/db", "172.17.0.2"),
			Server: &LegacyServer{Version: 150010, SystemID: "7", Timeline: 1, Clients: []string{"172.17.0.3"}, Superuser: true, SuperVerifier: "v:pacs-secret", Replication: "true", SlotWALKeep: "-1"},
			Data:   DataState{Exists: true, Unadopted: true}},
		"db2": {Current: legacy("mypostgres-slave", "/var/local/mypacs/slave_db", "172.17.0.3"),
			Server: &LegacyServer{Version: 150010, InRecovery: true, SystemID: "7", Timeline: 1, Receiver: "streaming", Superuser: true, Replication: "true"},
			Data:   DataState{Exists: true, Unadopted: true}},
	}}
}

// seedCluster is the seed's installation as a file declares it for adopt.
func seedCluster(t *testing.T) *spec.Cluster {
	t.Helper()
	return testClusterWith(t, "", `
  node "db1" {
    container_name = "mypostgres-master"
    data           = "/var/local/mypacs/db"
    port           = 15432
  }
  node "db2" {
    container_name = "mypostgres-slave"
    data           = "/var/local/mypacs/slave_db"
    port           = 25432
  }
}
`)
}

func fakeVerifierMatches(v, pw string) bool { return v == "v:"+pw }

// TestPlanAdopt decides adoption from what is seen: the seed's
// installation, the states an interrupted adopt leaves, and each refusal
// (what failed, on which node, what to do), with nothing planned then.
func TestPlanAdopt(t *testing.T) {
	c := seedCluster(t)
	for _, tc := range []struct {
		name  string
		edit  func(o *AdoptObserved)
		steps []string // per step: node and what it does (slot, replace, move, create)
		// problem is a refusal's summary and a word of its detail; warn a warning's summary.
		problem, detail, warn string
		// settings are the cluster's settings in the file (none when nil).
		settings map[string]string
	}{
		{name: "the seed, fresh", edit: func(*AdoptObserved) {},
			steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		{name: "already adopted", edit: func(o *AdoptObserved) {
			for name, an := range o.Nodes {
				an.Current.Labels = map[string]string{LabelCluster: "pacs", LabelNode: name}
				an.Owned, an.Data = true, DataState{}
				an.Kept = &LegacyContainer{Name: "kept", Status: "exited"}
			}
		}},
		// Stopped before its rename (an interrupted adopt, or by hand): a
		// stopped server cannot say whether it is the standby the file
		// says (it may have been promoted by hand): refused until started.
		{name: "interrupted after the standby's stop, before its rename", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Current.Running, o.Nodes["db2"].Current.Status, o.Nodes["db2"].Server = false, "exited", nil
		}, problem: "Container Not Running", detail: "docker start mypostgres-slave"},
		{name: "pg_wal on a disk of its own", edit: func(o *AdoptObserved) {
			o.Nodes["db1"].Current.Nested = []string{PGDATA + "/pg_wal"}
		}, problem: "Mounts Inside PGDATA", detail: PGDATA + "/pg_wal"},
		{name: "both stopped (a host rebooted)", edit: func(o *AdoptObserved) {
			for _, an := range o.Nodes {
				an.Current.Running, an.Current.Status, an.Server = false, "exited", nil
			}
		}, problem: "Container Not Running", detail: "then adopt again"},
		{name: "interrupted during the standby's move", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Kept, o.Nodes["db2"].Current, o.Nodes["db2"].Server = o.Nodes["db2"].Current, nil, nil
			o.Nodes["db2"].Kept.Running = false
		}, steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB move create", "db1 primary replace=mypostgres-master move create"}},
		{name: "interrupted after the primary's move", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Current.Labels = map[string]string{LabelCluster: "pacs", LabelNode: "db2"}
			o.Nodes["db2"].Owned, o.Nodes["db2"].Data = true, DataState{}
			p := o.Nodes["db1"]
			p.Kept, p.Current, p.Server = p.Current, nil, nil
			p.Kept.Running = false
			p.Data = DataState{Exists: true, Major: 15}
		}, steps: []string{"db1 primary create"}},
		{name: "the primary pacsd's, a standby still to adopt", edit: func(o *AdoptObserved) {
			p := o.Nodes["db1"]
			p.Current.Labels = map[string]string{LabelCluster: "pacs", LabelNode: "db1"}
			p.Owned, p.Data = true, DataState{}
			o.Nodes["db2"].Server.Receiver = "waiting"
		}, steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master replace=mypostgres-slave move create"}},
		// The WAL a slot keeps is bounded only where the primary set up by
		// hand keeps it without bound (PostgreSQL 12 has no bound).
		{name: "the primary bounds slots already", edit: func(o *AdoptObserved) { o.Nodes["db1"].Server.SlotWALKeep = "10GB" },
			steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		{name: "PostgreSQL 12, no bound", edit: func(o *AdoptObserved) { o.Nodes["db1"].Server.SlotWALKeep = "" },
			steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		// A kept container the engine would start again at its next start
		// (renamed by an interrupted adopt before its policy was set, or by
		// hand) is set to no.
		{name: "interrupted, the kept standby restarts always", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Kept, o.Nodes["db2"].Current, o.Nodes["db2"].Server = o.Nodes["db2"].Current, nil, nil
			o.Nodes["db2"].Kept.Running, o.Nodes["db2"].Kept.RestartPolicy = false, "always"
		}, steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB disarm=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		{name: "a replaced container runs again", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Kept, o.Nodes["db2"].Current, o.Nodes["db2"].Server = o.Nodes["db2"].Current, nil, nil
		}, problem: "Replaced Container Runs", detail: "docker stop mypostgres-slave"},
		{name: "the wrong major version", edit: func(o *AdoptObserved) { o.Images[""].Major = 17 },
			problem: "PostgreSQL Version Mismatch", detail: "pg_upgrade"},
		{name: "two writable nodes", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.InRecovery = false },
			problem: "Two Writable Nodes", detail: `"db1", "db2"`},
		{name: "the file's primary is the standby", edit: func(o *AdoptObserved) {
			o.Nodes["db1"].Server.InRecovery, o.Nodes["db2"].Server.InRecovery = true, false
		}, problem: "Primary Differs", detail: `set primary = "db2"`},
		{name: "the standby does not stream", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.Receiver = "" },
			problem: "Standby Not Streaming", detail: "make it stream first"},
		{name: "the standby streams from another server", edit: func(o *AdoptObserved) { o.Nodes["db1"].Server.Clients = []string{"10.0.0.9"} },
			problem: "Standby Not Streaming", detail: "10.0.0.9"},
		{name: "another timeline", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.Timeline = 2 },
			problem: "Timeline Differs", detail: "timeline 2"},
		{name: "another database system", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.SystemID = "8" },
			problem: "Different Database Systems", detail: "system identifiers"},
		{name: "the data location differs from the mount", edit: func(o *AdoptObserved) { o.Nodes["db2"].Current.Mount = &Mount{HostDir: "/srv/slave"} },
			problem: "Data Location Differs", detail: `data = "/srv/slave"`},
		{name: "a container not found", edit: func(o *AdoptObserved) {
			o.Nodes["db1"].Current, o.Nodes["db1"].Server, o.Nodes["db1"].Data = nil, nil, DataState{Exists: true}
		}, problem: "Primary Not Found", detail: "container_name"},
		{name: "pacsd's container of another cluster", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Current.Labels = map[string]string{LabelCluster: "other", LabelNode: "db9"}
		}, problem: "Container Of Another Node", detail: `cluster "other"`},
		{name: "another superuser", edit: func(o *AdoptObserved) { o.Nodes["db1"].Current.Env["POSTGRES_USER"] = "postgres" },
			problem: "Superuser Differs", detail: `"postgres"`},
		{name: "another database", edit: func(o *AdoptObserved) { o.Nodes["db1"].Current.Env["POSTGRES_DB"] = "archive" },
			problem: "Database Differs", detail: `database = "archive"`},
		{name: "PGDATA a subdirectory", edit: func(o *AdoptObserved) { o.Nodes["db2"].Current.Env["PGDATA"] = PGDATA + "/pgdata" },
			problem: "PGDATA Not Supported", detail: "/pgdata"},
		{name: "a server that does not answer", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Server, o.Nodes["db2"].ServerError = nil, "psql exited with code 2"
		}, problem: "Server Not Reachable", detail: "psql exited"},
		// What would start the moved data without a part of it, or stop the
		// move half-way, is refused before anything stops.
		{name: "pg_wal a symbolic link (initdb --waldir)", edit: func(o *AdoptObserved) { o.Nodes["db1"].Server.Links = []string{"pg_wal"} },
			problem: "Symbolic Links In PGDATA", detail: "pg_wal in PGDATA is a symbolic link"},
		{name: "a tablespace", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.Tablespaces = `"fast disk"` },
			problem: "Tablespaces Outside PGDATA", detail: `"fast disk"`},
		{name: "an entry named data in the old PGDATA", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.Taken = []string{"data"} },
			problem: "Name Taken In PGDATA", detail: `"/var/local/mypacs/slave_db" on the local Docker engine holds data`},
		{name: "an entry named data, PGDATA below the mount already", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Server.Taken = []string{"data"}
			o.Nodes["db2"].Current.MountAt, o.Nodes["db2"].Data = DataMount, DataState{Exists: true, Major: 15}
		}, steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB replace=mypostgres-slave create", "db1 primary replace=mypostgres-master move create"}},
		{name: "ALTER SYSTEM disabled", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.AlterSystem = "off" },
			problem: "ALTER SYSTEM Disabled", detail: "set allow_alter_system = on in the cluster's settings"},
		{name: "ALTER SYSTEM disabled, the file allows it", edit: func(o *AdoptObserved) { o.Nodes["db2"].Server.AlterSystem = "off" },
			settings: map[string]string{"Allow_Alter_System": "on"}, steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		{name: "ALTER SYSTEM allowed, the file disables it", edit: func(*AdoptObserved) {},
			settings: map[string]string{"allow_alter_system": "off"}, problem: "ALTER SYSTEM Disabled", detail: "allow_alter_system"},
		{name: "an image with a VOLUME at PGDATA (the official images)", edit: func(o *AdoptObserved) { o.Images[""].Volumes = []string{"/var/lib/postgresql/data/"} },
			problem: "Image Hides The Data", detail: "VOLUME /var/lib/postgresql/data,"},
		{name: "an image with a VOLUME at the mount itself", edit: func(o *AdoptObserved) { o.Images[""].Volumes = []string{DataMount, "/logs"} },
			steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
		// An adopt stopped the primary and failed; the standby was promoted
		// by hand since: adopt does not choose, nor say "set primary".
		{name: "the primary stopped by adopt, the standby promoted by hand", edit: func(o *AdoptObserved) {
			p := o.Nodes["db1"]
			p.Kept, p.Current, p.Server = p.Current, nil, nil
			p.Kept.Running = false
			o.Nodes["db2"].Server.InRecovery = false
		}, problem: "Primary Replaced Half-Way", detail: "adopt does not choose between them"},
		{name: "the image not on the engine", edit: func(o *AdoptObserved) { o.Images[""] = nil },
			problem: "Image Not Found", detail: "make image IMAGE=pacsd-postgres:15"},
		// The parent of PGDATA mounted, but the server's data is not in
		// it (in the container, or in a volume its image declares at
		// PGDATA): nothing would be adopted.
		{name: "the parent mounted, no data in it", edit: func(o *AdoptObserved) {
			o.Nodes["db2"].Current.MountAt, o.Nodes["db2"].Data = DataMount, DataState{Exists: true}
		}, problem: "No Data To Adopt", detail: "keeps its data elsewhere"},
		// Long after adoption, with the kept containers still there: a
		// standby pacsd rebuilds (its container removed, a base backup
		// under way) is not adopt's.
		{name: "adopted, kept containers, a standby being rebuilt", edit: func(o *AdoptObserved) {
			for name, an := range o.Nodes {
				an.Current.Labels = map[string]string{LabelCluster: "pacs", LabelNode: name}
				an.Owned, an.Data, an.Server = true, DataState{}, nil
				an.Kept = &LegacyContainer{Name: "kept", Status: "exited", RestartPolicy: "no"}
			}
			o.Nodes["db2"].Current = nil
			o.Nodes["db2"].Owned = false
			o.Nodes["db2"].Data = DataState{Exists: true, Major: 15, Partial: true}
		}},
		{name: "another superuser password", edit: func(o *AdoptObserved) { o.Nodes["db1"].Server.SuperVerifier = "v:pacsword" },
			warn:  "Superuser Password Changes",
			steps: []string{"db2 slot=pacsd_pacs_db2@mypostgres-master bound=4GB replace=mypostgres-slave move create", "db1 primary replace=mypostgres-master move create"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := adoptSeed()
			tc.edit(o)
			c := *c
			c.Settings = tc.settings
			plan, problems := PlanAdopt(&c, o, fakeVerifierMatches)
			var steps []string
			for _, s := range plan.Steps {
				steps = append(steps, describeStep(s))
			}
			if !slices.Equal(steps, tc.steps) {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(steps, "\n  "), strings.Join(tc.steps, "\n  "))
			}
			var refused, warned []string
			for _, p := range problems {
				if p.Warning {
					warned = append(warned, p.Summary)
					continue
				}
				refused = append(refused, p.Summary)
				if p.Summary == tc.problem && !strings.Contains(p.Error(), tc.detail) {
					t.Errorf("problem %q does not say %q: %v", p.Summary, tc.detail, p)
				}
			}
			if want := cond(tc.problem); !slices.Equal(slices.Compact(refused), want) {
				t.Errorf("refusals %v, want %v: %v", refused, want, problems)
			}
			if want := cond(tc.warn); !slices.Equal(warned, want) {
				t.Errorf("warnings %v, want %v", warned, want)
			}
		})
	}
}

// TestAdoptStepLines: what plan and adopt print of a step says what changes
// and that nothing is deleted.
func TestAdoptStepLines(t *testing.T) {
	c := seedCluster(t)
	plan, _ := PlanAdopt(c, adoptSeed(), fakeVerifierMatches)
	var lines []string
	for _, s := range plan.Steps {
		lines = append(lines, s.Lines(c)...)
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"+ adopt db2: replication slot pacsd_pacs_db2 on mypostgres-master",
		"~ adopt db2: stop container mypostgres-slave and rename it mypostgres-slave-pre-pacsd (kept, never removed",
		"~ adopt db2: move the data in directory \"/var/local/mypacs/slave_db\" on the local Docker engine into data below it",
		"~ adopt db1: checkpoint, then stop container mypostgres-master",
		"+ adopt db1: pacsd's container mypostgres-master on that data, as the primary",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the lines do not say %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "secret") {
		t.Errorf("a line shows a password:\n%s", all)
	}
}

func cond(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// describeStep is a step in a line the table compares.
func describeStep(s AdoptStep) string {
	parts := []string{s.Node}
	if s.Primary {
		parts = append(parts, "primary")
	}
	if s.Slot != "" {
		parts = append(parts, "slot="+s.Slot+"@"+s.SlotOn)
	}
	if s.BoundWAL != "" {
		parts = append(parts, "bound="+s.BoundWAL)
	}
	if s.Disarm != "" {
		parts = append(parts, "disarm="+s.Disarm)
	}
	if s.Replace != "" {
		parts = append(parts, "replace="+s.Replace)
	}
	if s.Move {
		parts = append(parts, "move")
	}
	if s.Create {
		parts = append(parts, "create")
	}
	return strings.Join(parts, " ")
}

// TestParseLegacyServer reads the row legacyServerSQL returns.
func TestParseLegacyServer(t *testing.T) {
	s, err := parseLegacyServer("150010|false|7312|3||172.17.0.3,172.17.0.4|true|absent|SCRAM-SHA-256$4096:x|off|-1|data,pacsd-adopt.tmp|\"a|b\", ts\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.AlterSystem != "off" || s.SlotWALKeep != "-1" || !slices.Equal(s.Taken, []string{"data", "pacsd-adopt.tmp"}) || s.Tablespaces != `"a|b", ts` {
		t.Errorf("got %+v", *s)
	}
	want := LegacyServer{Version: 150010, SystemID: "7312", Timeline: 3, Clients: []string{"172.17.0.3", "172.17.0.4"}, Superuser: true, Replication: "absent", SuperVerifier: "SCRAM-SHA-256$4096:x"}
	if s.Version != want.Version || s.InRecovery || s.SystemID != want.SystemID || s.Timeline != 3 || !slices.Equal(s.Clients, want.Clients) || !s.Superuser || s.Replication != "absent" || s.SuperVerifier != want.SuperVerifier {
		t.Errorf("got %+v, want %+v", *s, want)
	}
	for _, bad := range []string{"", "x|false|1|1||||absent|", "150010|true|1|one|streaming||true|true|"} {
		if _, err := parseLegacyServer(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestPlanRefusesUnadoptedData: a node whose data is in the layout of a
// container set up by hand, or half moved by an interrupted adopt, is never
// started or built on by Plan (an empty primary would start beside it, a
// base backup would go over it): a problem names 'pacsd adopt', and no
// action touches the node.
func TestPlanRefusesUnadoptedData(t *testing.T) {
	c := testCluster(t, "")
	for _, node := range []string{"db1", "db2"} {
		obs := converged(c)
		obs.Nodes[node] = &NodeState{Data: DataState{Exists: true, Unadopted: true}}
		actions, problems := Plan(c, obs, fakeMatches)
		found := false
		for _, p := range problems {
			found = found || p.Summary == "Data Not Adopted" && p.Node == node && strings.Contains(p.Detail, "pacsd adopt")
		}
		if !found {
			t.Errorf("%s: no Data Not Adopted problem naming pacsd adopt: %v", node, problems)
		}
		for _, a := range actions {
			if a.Node == node {
				t.Errorf("%s: an action on the node: %v", node, a)
			}
		}
	}
}
