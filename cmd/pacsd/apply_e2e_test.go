package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// topology is a cluster of this run written to a file, with its passwords.
type topology struct {
	e       *e2e.Env
	dir     string
	path    string
	name    string // cluster name, unique to the run
	pacsPW  string
	replPW  string
	nodes   []string
	extra   string // HCL added to the cluster block
	primary string
	image   string
	// replication is added to the replication block.
	replication string
	// noDaemon leaves the daemon block out (pacs run's tests write their own);
	// otherwise the state directory is the test's own.
	noDaemon bool
	// nodeBody maps a node to the HCL of its block; top is HCL after the
	// cluster block (host blocks).
	nodeBody map[string]string
	top      string
	// hostOf maps the nodes that run on a test host to it; the others run
	// on the machine's engine.
	hostOf map[string]*e2e.TestHost
}

func newTopology(t *testing.T, e *e2e.Env, nodes ...string) *topology {
	t.Helper()
	tp := &topology{e: e, dir: t.TempDir(), name: "e2e" + e.RunID, pacsPW: "pacs-" + e.RunID, replPW: "repl-" + e.RunID, nodes: nodes, primary: nodes[0], image: e.Image}
	e.Own(reconcile.LabelCluster, tp.name)
	tp.path = filepath.Join(tp.dir, "pacs.hcl")
	tp.secret(t, "pacs.password", tp.pacsPW)
	tp.secret(t, "replicator.password", tp.replPW)
	tp.write(t)
	return tp
}

func (tp *topology) secret(t *testing.T, name, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tp.dir, name), []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// write saves the topology file the way an operator saves an edit.
func (tp *topology) write(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `cluster %q {
  image    = %q
  primary  = %q
  database = "pacsdb"
  superuser {
    name          = "pacs"
    password_file = "pacs.password"
  }
  replication {
    password_file = "replicator.password"
%s
  }
%s
`, tp.name, tp.image, tp.primary, tp.replication, tp.extra)
	for _, n := range tp.nodes {
		fmt.Fprintf(&b, "  node %q {%s}\n", n, tp.nodeBody[n])
	}
	b.WriteString("}\n" + tp.top)
	if !tp.noDaemon {
		fmt.Fprintf(&b, "daemon {\n  state_dir = %q\n}\n", filepath.Join(tp.dir, "state"))
	}
	if err := os.WriteFile(tp.path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (tp *topology) container(node string) string { return tp.name + "-" + node }

// as returns a handle on node that logs in as user with password.
func (tp *topology) as(node, user, password string) *e2e.Node {
	n := tp.node(node)
	n.User, n.Password = user, password
	return n
}

// docker returns the client of the engine node runs on.
func (tp *topology) docker(node string) *client.Client {
	if h := tp.hostOf[node]; h != nil {
		return h.Docker
	}
	return tp.e.Docker
}

// addViewer declares a login role "viewer" whose password file holds pw.
func (tp *topology) addViewer(t *testing.T, pw string) {
	t.Helper()
	tp.secret(t, "viewer.password", pw)
	tp.extra += "\n  role \"viewer\" {\n    login = true\n    password_file = \"viewer.password\"\n  }\n"
}

// node returns a harness handle on a node pacsd made.
func (tp *topology) node(node string) *e2e.Node {
	if h := tp.hostOf[node]; h != nil {
		return h.Container(tp.container(node), "pacs", tp.pacsPW, "pacsdb")
	}
	return tp.e.Container(tp.container(node), tp.name, "pacs", tp.pacsPW, "pacsdb")
}

// apply runs pacsd apply and fails the test unless it converges; it returns
// the number of actions done.
func (tp *topology) apply(t *testing.T) int {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if code != exitOK {
		t.Fatalf("pacsd apply: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, secret := range []string{tp.pacsPW, tp.replPW} {
		if strings.Contains(stdout+stderr, secret) {
			t.Fatalf("pacsd apply printed a password:\n%s%s", stdout, stderr)
		}
	}
	var n int
	if _, err := fmt.Sscanf(stdout[strings.Index(stdout, "converged"):], "converged (%d actions)", &n); err != nil {
		t.Fatalf("pacsd apply: unexpected output %q: %v", stdout, err)
	}
	t.Logf("apply: %d actions in %.1fs", n, time.Since(start).Seconds())
	return n
}

// plan runs pacsd plan --json and returns its exit code and actions.
func (tp *topology) plan(t *testing.T) (int, []jsonAction) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, "plan", "--json", "-f", tp.path)
	var actions []jsonAction
	if code != exitProblem {
		if err := json.Unmarshal([]byte(stdout), &actions); err != nil {
			t.Fatalf("pacsd plan --json: %v\n%s%s", err, stdout, stderr)
		}
	}
	return code, actions
}

// wantPlan checks that plan is pending with at least the kinds and classes
// given as "kind/class" (class may be empty), and nothing of another class.
func (tp *topology) wantPlan(t *testing.T, want ...string) {
	t.Helper()
	code, actions := tp.plan(t)
	if code != exitPending {
		t.Fatalf("pacsd plan: exit %d, want %d (changes pending); actions %v", code, exitPending, actions)
	}
	have := map[string]bool{}
	for _, a := range actions {
		have[a.Kind+"/"+a.Class] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("pacsd plan: no %s action in %+v", w, actions)
		}
	}
}

// converged checks that plan is empty and a second apply does nothing.
func (tp *topology) converged(t *testing.T) {
	t.Helper()
	if code, actions := tp.plan(t); code != exitOK || len(actions) != 0 {
		t.Fatalf("pacsd plan after apply: exit %d, actions %+v; want 0 and none", code, actions)
	}
	if n := tp.apply(t); n != 0 {
		t.Fatalf("a second apply did %d actions; want none", n)
	}
}

// writeAndRead writes a row on the primary and waits for it on every standby.
func (tp *topology) writeAndRead(t *testing.T, id string) {
	t.Helper()
	tp.node(tp.primary).ExecSQL("INSERT INTO patient (pat_id, pat_name) VALUES ($1, 'DOE^JOHN')", id)
	for _, n := range tp.nodes {
		if n != tp.primary {
			tp.node(n).WaitRow(30*time.Second, "SELECT EXISTS (SELECT 1 FROM patient WHERE pat_id = $1)", id)
		}
	}
}

func (tp *topology) checkStreaming(t *testing.T) {
	t.Helper()
	p := tp.node(tp.primary)
	for _, n := range tp.nodes {
		if n == tp.primary {
			continue
		}
		tp.node(n).WaitStreaming(30 * time.Second)
		// A standby that just reconnected may still read "streaming" while
		// the primary has not yet seen it back on its slot.
		var slot string
		_ = e2e.Poll(30*time.Second, func() error {
			slot = p.QueryString("SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = $1), 'missing')", "pacsd_"+tp.name+"_"+n)
			if slot != "true" {
				return fmt.Errorf("slot active: %s", slot)
			}
			return nil
		})
		if slot != "true" {
			t.Errorf("primary: slot of standby %s: %s, want active", n, slot)
		}
	}
}

// TestE2EApplyOneStandby converges a primary and one standby from nothing:
// streaming with a slot, a row written on the primary read on the standby,
// then plan is empty and a second apply does nothing.
func TestE2EApplyOneStandby(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.wantPlan(t, "create-network/", "create-container/", "base-backup/rebuild", "create-slot/")
	tp.apply(t)
	tp.checkStreaming(t)
	tp.writeAndRead(t, "P1")
	tp.converged(t)

	for _, n := range tp.nodes {
		c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container(n))
		if err != nil {
			t.Fatal(err)
		}
		if env := strings.Join(c.Config.Env, " "); strings.Contains(env, tp.pacsPW) || strings.Contains(env, tp.replPW) {
			t.Errorf("node %s: a password shows in docker inspect", n)
		}
		if c.HostConfig.RestartPolicy.Name != "unless-stopped" {
			t.Errorf("node %s: restart policy %q, want unless-stopped (failover is manual)", n, c.HostConfig.RestartPolicy.Name)
		}
	}
	if hba := tp.node("db1").ReadFile("pg_hba.conf"); strings.Contains(hba, "trust") && hbaHostTrust(hba) {
		t.Errorf("pg_hba.conf trusts a host line:\n%s", hba)
	}
}

// hbaHostTrust reports a host line with method trust.
func hbaHostTrust(hba string) bool {
	for _, line := range strings.Split(hba, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && strings.HasPrefix(f[0], "host") && f[len(f)-1] == "trust" {
			return true
		}
	}
	return false
}

func startedAt(t *testing.T, e *e2e.Env, name string) string {
	t.Helper()
	c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.State.StartedAt
}

// TestE2EApplyTwoStandbysAndChanges converges a primary and two standbys, then
// proves that each kind of edit converges with the right class of action.
func TestE2EApplyTwoStandbysAndChanges(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.extra = `  settings = { work_mem = "4MB", shared_buffers = "32MB" }`
	tp.write(t)
	tp.apply(t)
	tp.checkStreaming(t)
	tp.writeAndRead(t, "P1")
	tp.converged(t)
	// Every node runs the image under test (PACSD_IMAGE: make test runs
	// this test on PostgreSQL 15 and 17).
	want := strconv.Itoa(e.ImageMajor())
	for _, n := range tp.nodes {
		if got := tp.node(n).QueryString("SELECT (current_setting('server_version_num')::int / 10000)::text"); got != want {
			t.Errorf("node %s runs PostgreSQL %s; the image %s declares %s", n, got, e.Image, want)
		}
	}

	t.Run("reloadable setting reloads", func(t *testing.T) {
		before := startedAt(t, e, tp.container("db1"))
		tp.extra = `  settings = { work_mem = "16MB", shared_buffers = "32MB" }`
		tp.write(t)
		tp.wantPlan(t, "write-file/", "reload/reload")
		if _, actions := tp.plan(t); hasClass(actions, "restart") {
			t.Errorf("a reloadable setting planned a restart: %+v", actions)
		}
		tp.apply(t)
		for _, n := range tp.nodes {
			if got := tp.node(n).QueryString("SHOW work_mem"); got != "16MB" {
				t.Errorf("node %s: work_mem %s, want 16MB", n, got)
			}
		}
		if after := startedAt(t, e, tp.container("db1")); after != before {
			t.Errorf("the primary was restarted for a reloadable setting")
		}
		tp.converged(t)
	})
	t.Run("restart-only setting restarts", func(t *testing.T) {
		// max_connections lowered from the default of 100: a standby does
		// not start with less than its primary, so the primary restarts
		// first.
		tp.extra = `  settings = { work_mem = "16MB", shared_buffers = "48MB", max_connections = 50 }`
		tp.write(t)
		tp.wantPlan(t, "write-file/", "restart/restart")
		tp.apply(t)
		for _, n := range tp.nodes {
			if got := tp.node(n).QueryString("SHOW shared_buffers"); got != "48MB" {
				t.Errorf("node %s: shared_buffers %s, want 48MB", n, got)
			}
			if got := tp.node(n).QueryString("SHOW max_connections"); got != "50" {
				t.Errorf("node %s: max_connections %s, want 50", n, got)
			}
		}
		tp.checkStreaming(t)
		tp.converged(t)
	})
	viewer := func(pw string) *e2e.Node { return tp.as("db1", "viewer", pw) }
	t.Run("new role is created", func(t *testing.T) {
		tp.addViewer(t, "viewer-1")
		tp.write(t)
		tp.wantPlan(t, "set-role/")
		tp.apply(t)
		if err := viewer("viewer-1").TryExecSQL("SELECT 1"); err != nil {
			t.Fatalf("viewer cannot log in: %v", err)
		}
		tp.converged(t)
	})
	t.Run("changed password is set", func(t *testing.T) {
		tp.secret(t, "viewer.password", "viewer-2")
		tp.wantPlan(t, "set-role/")
		tp.apply(t)
		if err := viewer("viewer-2").TryExecSQL("SELECT 1"); err != nil {
			t.Fatalf("viewer cannot log in with the new password: %v", err)
		}
		if err := viewer("viewer-1").TryExecSQL("SELECT 1"); err == nil {
			t.Fatal("viewer still logs in with the old password")
		}
		tp.converged(t)
	})
	t.Run("new standby is built", func(t *testing.T) {
		tp.nodes = append(tp.nodes, "db4")
		tp.write(t)
		tp.wantPlan(t, "create-slot/", "base-backup/rebuild", "create-container/")
		tp.apply(t)
		tp.checkStreaming(t)
		tp.writeAndRead(t, "P2")
		tp.converged(t)
	})
	t.Run("standby whose volume is removed is rebuilt", func(t *testing.T) {
		ctx := e.Ctx(time.Minute)
		if err := e.Docker.ContainerRemove(ctx, tp.container("db2"), container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if err := e.Docker.VolumeRemove(ctx, tp.container("db2")+"-data", true); err != nil {
			t.Fatal(err)
		}
		tp.wantPlan(t, "base-backup/rebuild")
		tp.apply(t)
		tp.checkStreaming(t)
		tp.writeAndRead(t, "P3")
		tp.converged(t)
	})
}

func hasClass(actions []jsonAction, class string) bool {
	for _, a := range actions {
		if a.Class == class {
			return true
		}
	}
	return false
}

// TestE2EApplyPartialBaseBackup proves that data left by an interrupted base
// backup is never started: it is moved aside, kept, and the standby rebuilt.
func TestE2EApplyPartialBaseBackup(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.apply(t)
	// An interrupted build: the container gone, the marker left beside PGDATA.
	db2 := tp.node("db2")
	db2.Exec("", "touch", reconcile.BuildingMarker)
	if err := e.Docker.ContainerRemove(e.Ctx(time.Minute), tp.container("db2"), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	tp.wantPlan(t, "move-aside/rebuild", "base-backup/rebuild")
	tp.apply(t)
	tp.checkStreaming(t)
	out, _ := tp.node("db2").Exec("", "sh", "-c", "ls -d "+reconcile.DataMount+"/data.aside-*/PG_VERSION")
	if !strings.Contains(out, "PG_VERSION") {
		t.Errorf("the partial data was not kept aside: %q", out)
	}
	tp.converged(t)
}

// TestE2EApplyRefusesForeignContainer proves that a container pacsd did not
// make is never touched: plan and apply report the clash and what to do.
func TestE2EApplyRefusesForeignContainer(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1")
	ctx := e.Ctx(time.Minute)
	c, err := e.Docker.ContainerCreate(ctx, &container.Config{Image: e.Image, Cmd: []string{"sleep", "600"}, Labels: e.Labels()},
		nil, nil, nil, tp.container("db1"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if code != exitProblem || !strings.Contains(stderr, "Container Not Owned") || !strings.Contains(stderr, `node "db1"`) {
		t.Fatalf("apply over a foreign container: exit %d, stderr:\n%s", code, stderr)
	}
	after, err := e.Docker.ContainerInspect(ctx, tp.container("db1"))
	if err != nil || after.ID != c.ID || after.State.Status != "created" {
		t.Fatalf("the foreign container was touched: %+v %v", after.State, err)
	}
}

// TestE2EApplyRefusesVersionMismatch proves that data of another PostgreSQL
// major version is never started with the image: plan and apply point to
// pg_upgrade and change nothing.
func TestE2EApplyRefusesVersionMismatch(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1")
	vol := tp.container("db1") + "-data"
	if _, err := e.Docker.VolumeCreate(e.Ctx(time.Minute), volume.CreateOptions{Name: vol, Labels: map[string]string{reconcile.LabelCluster: tp.name}}); err != nil {
		t.Fatal(err)
	}
	out, code, err := e.RunOnce("pg14", []string{"sh", "-c", "mkdir -p " + reconcile.PGDATA + " && echo 14 > " + reconcile.PGDATA + "/PG_VERSION"}, []string{vol + ":" + reconcile.DataMount})
	if err != nil || code != 0 {
		t.Fatalf("while preparing old data: %v %d %s", err, code, out)
	}
	for _, cmd := range []string{"plan", "apply"} {
		code, _, stderr := runCLI(t, nil, cmd, "-f", tp.path)
		if code != exitProblem || !strings.Contains(stderr, "PostgreSQL Version Mismatch") || !strings.Contains(stderr, "pg_upgrade") {
			t.Errorf("pacsd %s over PostgreSQL 14 data: exit %d, stderr:\n%s", cmd, code, stderr)
		}
	}
	if _, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container("db1")); err == nil {
		t.Error("a container was created over data of another major version")
	}
}

// TestE2EApplyImageUnavailable proves that an image that is neither on the
// engine nor pullable stops apply with a message that says what to do.
func TestE2EApplyImageUnavailable(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1")
	tp.image = "pacsd-postgres:15-absent-" + e.RunID
	tp.write(t)
	code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if code != exitProblem || !strings.Contains(stderr, "pull-image") || !strings.Contains(stderr, "could not be pulled") {
		t.Fatalf("apply with an unavailable image: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestE2EApplyRepairsDrift proves that apply puts back what was changed by
// hand: the superuser's password (pacsd then cannot log in over TCP and
// resets it over the container's socket), a dropped slot, an edited pg_hba.conf
// and an ALTER SYSTEM override of a managed parameter.
func TestE2EApplyRepairsDrift(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.extra = `  settings = { work_mem = "8MB" }`
	tp.write(t)
	tp.apply(t)
	db1 := tp.node("db1")
	psql := func(sql string) {
		t.Helper()
		if out, code := db1.Exec("postgres", "psql", "-XAtq", "-U", "pacs", "-d", "pacsdb", "-c", sql); code != 0 {
			t.Fatalf("psql %q: %s", sql, out)
		}
	}
	psql("ALTER ROLE pacs PASSWORD 'changed-by-hand'")
	psql("ALTER SYSTEM SET work_mem = '1GB'")
	psql("SELECT pg_reload_conf()")
	// An active slot cannot be dropped: stop its standby first.
	if err := e.Docker.ContainerStop(e.Ctx(time.Minute), tp.container("db2"), container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	psql("SELECT pg_drop_replication_slot('pacsd_" + tp.name + "_db2')")
	db1.AppendPGDATA("pg_hba.conf", "host all all 0.0.0.0/0 trust\n")
	tp.wantPlan(t, "set-role/", "start-container/restart")
	tp.apply(t)
	if err := db1.TryExecSQL("SELECT 1"); err != nil {
		t.Fatalf("the superuser's password was not put back: %v", err)
	}
	if got := db1.QueryString("SHOW work_mem"); got != "8MB" {
		t.Errorf("work_mem after repair: %s, want 8MB (ALTER SYSTEM override reset)", got)
	}
	if hbaHostTrust(db1.ReadFile("pg_hba.conf")) {
		t.Error("the hand-added trust line is still in pg_hba.conf")
	}
	tp.checkStreaming(t)
	tp.converged(t)
}
