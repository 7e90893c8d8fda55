package reconcile

import (
	"context"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/plan")

// testCluster parses a three-node cluster (db1 primary, db2 and db3
// standbys) with extra HCL inserted into the cluster block.
func testCluster(t *testing.T, extra string) *spec.Cluster {
	t.Helper()
	return testClusterWith(t, extra, `
  node "db1" { volume = "pacs-db1" }
  node "db2" { volume = "pacs-db2" }
  node "db3" { volume = "pacs-db3" }
}
`)
}

// testClusterWith parses the cluster of testCluster with extra HCL in the
// cluster block and tail after it: the node blocks, the closing brace of the
// cluster block, and any host blocks.
func testClusterWith(t *testing.T, extra, tail string) *spec.Cluster {
	t.Helper()
	dir := t.TempDir()
	for name, pw := range map[string]string{"pacs.pw": "pacs-secret", "repl.pw": "repl-secret", "viewer.pw": "viewer-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(extra, "settings") {
		extra += "\n  settings = { shared_buffers = \"128MB\", work_mem = \"8MB\" }\n"
	}
	src := `
cluster "pacs" {
  image    = "pacsd-postgres:15"
  primary  = "db1"
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "pacs.pw"
  }
  replication {
    password_file = "repl.pw"
  }
  role "viewer" {
    login         = true
    password_file = "viewer.pw"
  }
` + extra + tail
	path := filepath.Join(dir, "pacs.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	f, diags := spec.ParseFile(path)
	if diags.HasErrors() {
		t.Fatalf("test spec is invalid: %v", diags)
	}
	return f.Clusters[0]
}

// fakeMatches treats "v:" + password as the verifier of password.
// sum is the SHA-256 of b, as Observe records a passfile; nil for nil.
func sum(b []byte) []byte {
	if b == nil {
		return nil
	}
	s := sha256.Sum256(b)
	return s[:]
}

func fakeMatches(verifier, password string) bool { return verifier == "v:"+password }

// converged returns what a fully converged cluster c looks like.
func converged(c *spec.Cluster) *Observed {
	ca, err := planCAs.Authority(context.Background(), c.Name)
	if err != nil {
		panic(err)
	}
	obs := &Observed{
		Engines: map[string]*EngineState{},
		State:   ClusterState{Acting: c.Primary},
		Nodes:   map[string]*NodeState{},
		CA:      ca.CertPEM(),
		Now:     planNow,
	}
	for _, n := range c.Nodes {
		obs.Engines[n.Host] = &EngineState{Network: &NetworkState{ID: "net", Owned: true}, Image: &ImageState{ID: "img", Major: 15}}
	}
	for _, n := range c.Nodes {
		primary := n.Name == c.Primary
		cs := ContainerSpecFor(c, n, primary)
		files := NodeFiles(c, n.Name, c.Primary)
		tlsFiles := testCertsAt(panicTB{}, planCAs, c, n, planNow)
		conf, _ := pgconf.EnsureInclude([]byte("# postgresql.conf\n"))
		_, signal := files[SignalPath]
		db := &DBState{Version: 150000, InRecovery: !primary, Timeline: 1, Settings: map[string]Setting{
			"shared_buffers": {Value: "128MB", Context: "postmaster", SourceFile: ParamsPath},
		}}
		if primary {
			db.Roles = map[string]RoleState{
				"pacs":       {Login: true, Superuser: true, Verifier: "v:pacs-secret"},
				"replicator": {Login: true, Replication: true, Verifier: "v:repl-secret"},
				"viewer":     {Login: true, Verifier: "v:viewer-secret"},
				"undeclared": {Login: true, Verifier: "v:whatever"},
			}
			db.Slots = map[string]bool{}
			for _, s := range c.Nodes {
				if s.Name != c.Primary {
					db.Slots[pgconf.SlotName(c.Name, s.Name)] = true
				}
			}
		} else {
			db.Receiver = "streaming"
		}
		obs.Nodes[n.Name] = &NodeState{
			Container: &ContainerState{ID: "id-" + n.Name, Name: cs.Name, Owned: true, Running: true, Status: "running", Labels: cs.Labels, Addr: n.Name + ":5432", Aliases: slices.Sorted(slices.Values(cs.Aliases)), Mount: &Mount{Volume: n.Volume, HostDir: n.Data}},
			Data:      DataState{Exists: true, Major: 15},
			Files: &Files{HBA: files[HBAPath], Params: files[ParamsPath], PostgresConf: conf, StandbySignal: signal, PassfileSum: sum(files[PassfilePath]),
				ServerCert: tlsFiles[ServerCertPath], RootCert: tlsFiles[RootCertPath], KeyMatches: true},
			DB: db,
		}
	}
	return obs
}

func TestPlanGolden(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		edit  func(o *Observed)
	}{
		{name: "from-nothing", edit: func(o *Observed) {
			for _, e := range o.Engines {
				e.Network, e.Image = nil, nil
			}
			for _, n := range o.Nodes {
				*n = NodeState{}
			}
		}},
		{name: "converged"},
		{name: "reloadable-setting", extra: `settings = { shared_buffers = "128MB", work_mem = "16MB" }`},
		{name: "restart-setting", extra: `settings = { shared_buffers = "256MB", work_mem = "8MB" }`},
		{name: "hba-edited", edit: func(o *Observed) {
			o.Nodes["db2"].Files.HBA = append(o.Nodes["db2"].Files.HBA, "host all all 0.0.0.0/0 trust\n"...)
		}},
		{name: "include-line-removed", edit: func(o *Observed) {
			o.Nodes["db1"].Files.PostgresConf = []byte("# postgresql.conf\n")
		}},
		{name: "standby-signal-removed", edit: func(o *Observed) { o.Nodes["db3"].Files.StandbySignal = false }},
		// TLS: a missing certificate, one due for renewal, a key that is
		// not the certificate's, a CA certificate edited: each is written
		// and the server reloaded before any SQL of the pass (phaseCerts).
		{name: "cert-missing", edit: func(o *Observed) { o.Nodes["db2"].Files.ServerCert = nil }},
		{name: "cert-due", edit: func(o *Observed) { o.Now = o.Now.Add(61 * 24 * time.Hour) }},
		{name: "cert-key-mismatch", edit: func(o *Observed) { o.Nodes["db3"].Files.KeyMatches = false }},
		{name: "cert-ca-edited", edit: func(o *Observed) { o.Nodes["db1"].Files.RootCert = []byte("edited") }},
		// A renewal whose reload failed: the certificate in place is good,
		// the server presents an older one: reloaded.
		{name: "cert-not-served", edit: func(o *Observed) { o.Nodes["db2"].DB.ServedCert = []byte("older certificate") }},
		// A primary pacsd cannot log in to over TLS (it does not speak it
		// yet): its files are written and it is reloaded over its socket
		// first, then the roles and slots.
		{name: "primary-without-tls", edit: func(o *Observed) {
			n := o.Nodes["db1"]
			n.DB, n.DBError = nil, "failed to connect: server refused TLS connection"
			n.Files.HBA = []byte(strings.ReplaceAll(string(n.Files.HBA), "hostssl", "host"))
			n.Files.Params = []byte(strings.Replace(string(n.Files.Params), "ssl = on", "ssl = off", 1))
		}},
		{name: "alter-system", edit: func(o *Observed) {
			o.Nodes["db1"].DB.Settings["work_mem"] = Setting{Value: "1GB", Context: "user", SourceFile: PGDATA + "/postgresql.auto.conf"}
			o.Nodes["db1"].DB.Settings["jit"] = Setting{Value: "off", Context: "user", SourceFile: PGDATA + "/postgresql.auto.conf"}
		}},
		{name: "alter-system-on-standby", edit: func(o *Observed) {
			o.Nodes["db2"].DB.Settings["primary_slot_name"] = Setting{Value: "elsewhere", Context: "sighup", SourceFile: PGDATA + "/postgresql.auto.conf"}
			o.Nodes["db2"].DB.Receiver = "waiting"
		}},
		{name: "pending-restart", edit: func(o *Observed) {
			o.Nodes["db2"].DB.Settings["shared_buffers"] = Setting{Value: "128MB", Context: "postmaster", PendingRestart: true}
		}},
		// A slot PostgreSQL invalidated while the standby can still stream
		// (the primary still has the WAL it asks for): the slot is made
		// anew, the standby's data is left alone.
		{name: "slot-lost", edit: func(o *Observed) {
			db := o.Nodes["db1"].DB
			db.Slots[pgconf.SlotName("pacs", "db2")] = false
			db.SlotInfo = map[string]SlotState{pgconf.SlotName("pacs", "db2"): {WALStatus: "lost"}, pgconf.SlotName("pacs", "db3"): {Active: true, WALStatus: "reserved"}}
			db.OldestWAL = 0x5000000
			o.Nodes["db2"].DB.Receiver = "waiting"
			o.Nodes["db2"].DB.ReceivedWAL = 0x5000000
			o.Nodes["db2"].DB.Settings["restore_command"] = Setting{Value: "", Context: "sighup"}
		}},
		// A standby that asks for WAL the primary no longer has (its slot
		// invalidated past max_slot_wal, then made anew, so it reads
		// reserved): its data moved aside and it is built anew from a base
		// backup.
		{name: "wal-gone", edit: func(o *Observed) {
			db := o.Nodes["db1"].DB
			db.Slots[pgconf.SlotName("pacs", "db2")] = false
			db.SlotInfo = map[string]SlotState{pgconf.SlotName("pacs", "db2"): {WALStatus: "reserved"}, pgconf.SlotName("pacs", "db3"): {Active: true, WALStatus: "reserved"}}
			db.OldestWAL = 0x7000000
			o.Nodes["db2"].DB.Receiver = "waiting"
			o.Nodes["db2"].DB.ReceivedWAL = 0x5000000
			o.Nodes["db2"].DB.Settings["restore_command"] = Setting{Value: "", Context: "sighup"}
		}},
		{name: "roles-drifted", edit: func(o *Observed) {
			delete(o.Nodes["db1"].DB.Roles, "replicator")
			o.Nodes["db1"].DB.Roles["viewer"] = RoleState{Login: false, Verifier: "v:other"}
		}},
		{name: "role-absent", extra: `role "legacy" { ensure = "absent" }`, edit: func(o *Observed) {
			o.Nodes["db1"].DB.Roles["legacy"] = RoleState{Login: true}
		}},
		{name: "slot-dropped", edit: func(o *Observed) { delete(o.Nodes["db1"].DB.Slots, pgconf.SlotName("pacs", "db3")) }},
		{name: "standby-stopped", edit: func(o *Observed) {
			ct := o.Nodes["db2"].Container
			ct.Running, ct.Status, o.Nodes["db2"].DB = false, "exited", nil
		}},
		{name: "standby-removed", edit: func(o *Observed) {
			o.Nodes["db2"].Container, o.Nodes["db2"].Files, o.Nodes["db2"].DB = nil, nil, nil
		}},
		{name: "standby-volume-removed", edit: func(o *Observed) { *o.Nodes["db3"] = NodeState{} }},
		{name: "standby-partial", edit: func(o *Observed) {
			o.Nodes["db3"].Data.Partial = true
			o.Nodes["db3"].Container = nil
		}},
		{name: "config-changed", edit: func(o *Observed) {
			o.Nodes["db2"].Container.Labels = map[string]string{LabelCluster: "pacs", LabelNode: "db2", LabelRole: "standby", LabelConfig: "0000"}
		}},
		{name: "not-owned", edit: func(o *Observed) {
			o.Nodes["db2"].Container.Owned = false
			o.Engines[""].Network.Owned = true
		}},
		{name: "network-removed", edit: func(o *Observed) {
			o.Engines[""].Network = nil
			for _, n := range o.Nodes {
				n.Container.Running, n.Container.Status, n.DB = false, "exited", nil
			}
		}},
		{name: "superuser-password-changed", edit: func(o *Observed) {
			o.Nodes["db1"].DB = nil
			o.Nodes["db1"].DBError = "failed to connect: FATAL: password authentication failed for user \"pacs\" (SQLSTATE 28P01)"
		}},
		{name: "switchover-requested", edit: func(o *Observed) {
			// The state says db2 acts; the file names db1, and no failover keeps it.
			o.State = ClusterState{Acting: "db2", Epoch: 4}
			o.Nodes["db1"].DB.InRecovery, o.Nodes["db1"].DB.Receiver = true, "streaming"
			o.Nodes["db2"].DB.InRecovery, o.Nodes["db2"].DB.Receiver = false, ""
		}},
		{name: "switchover-target-not-streaming", edit: func(o *Observed) {
			o.State = ClusterState{Acting: "db2", Epoch: 4}
			o.Nodes["db1"].DB.InRecovery, o.Nodes["db1"].DB.Receiver = true, "starting"
			o.Nodes["db2"].DB.InRecovery, o.Nodes["db2"].DB.Receiver = false, ""
		}},
		{name: "after-failover", edit: func(o *Observed) {
			// db2 was promoted; db1, the file's primary, was fenced and is kept.
			o.State = ClusterState{Acting: "db2", Epoch: 5, Keep: "db1"}
			o.Nodes["db2"].DB = &DBState{Version: 150000, Roles: o.Nodes["db1"].DB.Roles, Slots: map[string]bool{}, Settings: map[string]Setting{}}
			db1 := o.Nodes["db1"]
			db1.Container.Running, db1.Container.Status, db1.DB = false, "exited", nil
			db1.Data.Control = &Control{State: DBInProduction, Timeline: 1}
		}},
		{name: "two-primaries", edit: func(o *Observed) {
			o.Nodes["db3"].DB.InRecovery, o.Nodes["db3"].DB.Receiver = false, ""
			o.Nodes["db3"].Data.Control = &Control{State: DBInProduction, Timeline: 2}
		}},
		{name: "record-lost-after-switchover", edit: func(o *Observed) {
			// The state directory was lost after a switchover to db2: the
			// one writable node, on the newest timeline, acts; the file's
			// db1 does not start a switchover back.
			o.State = ClusterState{}
			for _, ns := range o.Nodes {
				ns.DB.Timeline = 2
			}
			o.Nodes["db1"].DB.InRecovery, o.Nodes["db1"].DB.Receiver = true, "streaming"
			o.Nodes["db2"].DB.InRecovery, o.Nodes["db2"].DB.Receiver = false, ""
			o.Nodes["db2"].DB.Roles, o.Nodes["db2"].DB.Slots = o.Nodes["db1"].DB.Roles, map[string]bool{}
		}},
		{name: "record-stale", edit: func(o *Observed) {
			// A record restored from a backup names db1, which follows db2,
			// promoted since: nothing is fenced, nothing promoted.
			for _, ns := range o.Nodes {
				ns.DB.Timeline = 2
			}
			o.Nodes["db1"].DB.InRecovery, o.Nodes["db1"].DB.Receiver = true, "streaming"
			o.Nodes["db2"].DB.InRecovery, o.Nodes["db2"].DB.Receiver = false, ""
		}},
		{name: "record-lost-two-primaries", edit: func(o *Observed) {
			// Without a record, two writable nodes leave the acting primary
			// in doubt: nothing is fenced, nothing acts.
			o.State = ClusterState{}
			o.Nodes["db3"].DB.InRecovery, o.Nodes["db3"].DB.Receiver = false, ""
		}},
		{name: "record-damaged-all-stopped", edit: func(o *Observed) {
			o.State, o.RecordError = ClusterState{}, "while reading the state of cluster \"pacs\": state/cluster-pacs.json is empty (a write cut short?)"
			for _, ns := range o.Nodes {
				ns.Container.Running, ns.Container.Status, ns.DB = false, "exited", nil
				ns.Data.Control = &Control{State: DBShutdowned, Timeline: 1}
			}
		}},
		{name: "acting-not-promoted", edit: func(o *Observed) {
			// pacsd stopped after recording db2 as acting, before promoting it.
			o.State = ClusterState{Acting: "db2", Epoch: 6, Keep: "db1"}
			db1 := o.Nodes["db1"]
			db1.Container.Running, db1.Container.Status, db1.DB = false, "exited", nil
			db1.Data.Control = &Control{State: DBShutdowned, Timeline: 1}
		}},
		{name: "automatic-primary-down", extra: "failover {\n automatic = true\n }", edit: func(o *Observed) {
			db1 := o.Nodes["db1"]
			db1.Container.Running, db1.Container.Status, db1.DB = false, "exited", nil
		}},
		{name: "standby-diverged", edit: func(o *Observed) {
			o.Nodes["db1"].DB.Timeline = 3
			o.Nodes["db2"].DB.Timeline, o.Nodes["db2"].DB.Receiver = 2, "waiting"
		}},
		{name: "automatic-primary-paused", extra: "failover {\n automatic = true\n }", edit: func(o *Observed) {
			db1 := o.Nodes["db1"]
			db1.Container.Paused, db1.Container.Status, db1.DB = true, "paused", nil
		}},
		{name: "primary-paused", edit: func(o *Observed) {
			db1 := o.Nodes["db1"]
			db1.Container.Paused, db1.Container.Status, db1.DB = true, "paused", nil
		}},
		{name: "automatic-all-down", extra: "failover {\n automatic = true\n }", edit: func(o *Observed) {
			// An engine restart stopped every container: the acting primary
			// starts again, then the standbys; nobody fails over.
			for _, ns := range o.Nodes {
				ns.Container.Running, ns.Container.Status, ns.DB = false, "exited", nil
			}
		}},
		{name: "network-not-owned", edit: func(o *Observed) { o.Engines[""].Network.Owned = false }},
		// An image declaring VOLUME at PGDATA (the official ones) would keep
		// the data in an anonymous volume: nothing is done with it.
		{name: "image-hides-data", edit: func(o *Observed) { o.Engines[""].Image.Volumes = []string{"/var/lib/postgresql/data"} }},
		{name: "version-mismatch", edit: func(o *Observed) { o.Nodes["db3"].Data.Major = 14 }},
		{name: "primary-volume-changed", edit: func(o *Observed) {
			// The file's volume of db1 was edited: the container still holds the data on the old one.
			o.Nodes["db1"].Container.Mount = &Mount{Volume: "pacs-db1-before"}
			o.Nodes["db1"].Container.Labels = map[string]string{LabelCluster: "pacs", LabelNode: "db1", LabelRole: "primary", LabelConfig: "0000"}
		}},
		{name: "standby-data-changed", edit: func(o *Observed) {
			o.Nodes["db3"].Container.Mount = &Mount{HostDir: "/srv/pacs/db3"}
			o.Nodes["db3"].Container.Labels = map[string]string{LabelCluster: "pacs", LabelNode: "db3", LabelRole: "standby", LabelConfig: "0000"}
		}},
		{name: "primary-data-missing", edit: func(o *Observed) {
			// db1's container was removed and its location is empty (edited,
			// or lost), while the standbys hold the cluster's data.
			o.State = ClusterState{Acting: "db1", Epoch: 1}
			*o.Nodes["db1"] = NodeState{Data: DataState{Exists: true}}
		}},
		{name: "standby-build-failed-twice", edit: func(o *Observed) {
			o.Nodes["db3"].Data = DataState{Exists: true, Partial: true, Major: 15, BuildAttempts: 2}
			o.Nodes["db3"].Container, o.Nodes["db3"].DB, o.Nodes["db3"].Files = nil, nil, nil
		}},
		{name: "standby-build-failed-three-times", edit: func(o *Observed) {
			o.Nodes["db3"].Data = DataState{Exists: true, Partial: true, Major: 15, BuildAttempts: 3}
			o.Nodes["db3"].Container, o.Nodes["db3"].DB, o.Nodes["db3"].Files = nil, nil, nil
		}},
		{name: "container-renamed", edit: func(o *Observed) {
			// db1's container was renamed by hand (or container_name edited):
			// none has the file's name, one labelled db1 has another.
			o.Nodes["db1"].Container, o.Nodes["db1"].DB, o.Nodes["db1"].Files = nil, nil, nil
			o.Nodes["db1"].Strays = []string{"pacs-db1-renamed"}
		}},
		{name: "primary-data-unknown", edit: func(o *Observed) {
			// db1's container is gone and its data could not be inspected.
			o.State = ClusterState{Acting: "db1", Epoch: 1}
			*o.Nodes["db1"] = NodeState{Data: DataState{Unknown: true}}
		}},
		{name: "primary-in-recovery", edit: func(o *Observed) { o.Nodes["db1"].DB.InRecovery = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := testCluster(t, "")
			c := base
			if tt.extra != "" {
				c = testCluster(t, tt.extra)
			}
			if strings.Contains(tt.extra, "failover") {
				base = c // the failover block is not the change under test
			}
			obs := converged(base)
			if tt.edit != nil {
				tt.edit(obs)
			}
			actions, problems := Plan(c, obs, fakeMatches)
			var b strings.Builder
			for _, a := range actions {
				b.WriteString(a.String() + "\n")
			}
			for _, p := range problems {
				b.WriteString("! " + p.Error() + "\n")
			}
			got := b.String()
			for _, secret := range []string{"pacs-secret", "repl-secret", "viewer-secret"} {
				if strings.Contains(got, secret) {
					t.Fatalf("plan output shows a password:\n%s", got)
				}
			}
			golden := filepath.Join("testdata", "plan", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./pkg/reconcile -update' to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("plan differs from %s (-want +got):\n%s", golden, diff)
			}
			// Plan is pure: the same inputs give the same plan.
			again, _ := Plan(c, obs, fakeMatches)
			if diff := cmp.Diff(actions, again, cmp.AllowUnexported(Action{}, spec.Secret{})); diff != "" {
				t.Errorf("a second Plan differs:\n%s", diff)
			}
		})
	}
}

// TestPlanRestartOrderOfHotStandbyParams: a standby does not start with a
// max_connections (or another of hotStandbyParams) lower than its
// primary's. Raised, the standbys restart first; lowered, the primary
// first, so that no standby ever runs with less than its primary.
func TestPlanRestartOrderOfHotStandbyParams(t *testing.T) {
	before := testCluster(t, `settings = { max_connections = 100 }`)
	for _, tc := range []struct {
		value string
		want  []string // the nodes restarted, in order
	}{
		{"200", []string{"db2", "db3", "db1"}},
		{"50", []string{"db1", "db2", "db3"}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c := testCluster(t, `settings = { max_connections = `+tc.value+` }`)
			obs := converged(before)
			for _, ns := range obs.Nodes {
				ns.DB.Settings["max_connections"] = Setting{Value: "100", Context: "postmaster", SourceFile: ParamsPath}
			}
			actions, problems := Plan(c, obs, fakeMatches)
			if len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			var got []string
			for _, a := range actions {
				if a.Kind == Restart {
					got = append(got, a.Node)
					if a.Node == "db1" && tc.value == "50" && !strings.Contains(a.Reason, "before the standbys, as it lowers max_connections") {
						t.Errorf("the primary's restart does not say why it comes first: %s", a.Reason)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("restarts %v, want %v:\n%v", got, tc.want, actions)
			}
		})
	}
}
