package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/pgconf"
)

// driftRepair bounds the wait for one repair: with resync 2s a drift that
// sends no engine event is seen at the latest at the next pass.
const driftRepair = time.Minute

// driftBed is a running daemon on a primary and one standby, and what the
// subtests of TestE2EDrift share.
type driftBed struct {
	e  *e2e.Env
	tp *topology
	r  *daemonRun
	// viewerPW is the password of the declared role viewer, in its file.
	viewerPW string
}

// psql runs statements on the primary as the superuser over the container's
// own socket (trusted), which works whatever the superuser's password is.
func (b *driftBed) psql(t *testing.T, node string, sqls ...string) string {
	t.Helper()
	args := []string{"psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "pacs", "-d", "pacsdb"}
	for _, s := range sqls {
		args = append(args, "-c", s)
	}
	out, code := b.tp.node(node).Exec("postgres", args...)
	// The daemon may be writing the same catalogue row at that moment
	// (repairing the drift of the case before): the injection is tried
	// again, as an operator would.
	for try := 0; code != 0 && strings.Contains(out, "tuple concurrently updated") && try < 10; try++ {
		time.Sleep(200 * time.Millisecond)
		out, code = b.tp.node(node).Exec("postgres", args...)
	}
	if code != 0 {
		t.Fatalf("node %s: psql %q: exit %d: %s", node, sqls, code, out)
	}
	return strings.TrimSpace(out)
}

// started returns the start time of every node's container.
func (b *driftBed) started(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, n := range b.tp.nodes {
		m[n] = startedAt(t, b.e, b.tp.container(n))
	}
	return m
}

// notRestarted fails unless the nodes other than except kept their start time.
func (b *driftBed) notRestarted(t *testing.T, before map[string]string, except ...string) {
	t.Helper()
	for _, n := range b.tp.nodes {
		if contains(except, n) {
			continue
		}
		if after := startedAt(t, b.e, b.tp.container(n)); after != before[n] {
			t.Errorf("node %s was restarted (started %s, now %s); the repair needs no restart of it", n, before[n], after)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// repaired waits for cond with the drift deadline and logs how long it took.
func repaired(t *testing.T, what string, cond func() error) {
	t.Helper()
	took := waitFor(t, driftRepair, what, cond)
	t.Logf("%s: %.2fs", what, took.Seconds())
}

// confLoad returns pg_conf_load_time() of node: it changes at every reload.
func (b *driftBed) confLoad(node string) (string, error) {
	var s string
	err := b.tp.node(node).TryQueryRow("SELECT pg_conf_load_time()::text", []any{&s})
	return s, err
}

// read returns a file of node's PGDATA; unlike Node.ReadFile it never fails
// the test, for conditions polled while the node may restart.
func (b *driftBed) read(node, rel string) (string, error) {
	out, code, err := b.tp.node(node).TryExec("postgres", "cat", e2e.PGDATA+"/"+rel)
	if err == nil && code != 0 {
		err = fmt.Errorf("cat %s: exit %d: %s", rel, code, out)
	}
	return out, err
}

// streamingAgain returns nil when node's container runs and its server
// streams from the primary. It never fails the test: the container may be
// gone for a while.
func (b *driftBed) streamingAgain(node string) error {
	c, err := b.e.Docker.ContainerInspect(b.e.Ctx(time.Minute), b.tp.container(node))
	if err != nil {
		return err
	}
	if !c.State.Running {
		return fmt.Errorf("container %s is %s", c.Name, c.State.Status)
	}
	return b.tp.node(node).Streaming()
}

func (b *driftBed) mustConfLoad(t *testing.T, node string) string {
	t.Helper()
	s, err := b.confLoad(node)
	if err != nil {
		t.Fatalf("node %s: %v", node, err)
	}
	return s
}

// fileAndReload returns a condition: rel on node holds want again and the
// server reloaded its configuration since load.
func (b *driftBed) fileAndReload(node, rel, want, load string) func() error {
	return func() error {
		got, err := b.read(node, rel)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s is still:\n%s", rel, got)
		}
		if now, err := b.confLoad(node); err != nil || now == load {
			return fmt.Errorf("not reloaded since the edit (%v)", err)
		}
		return nil
	}
}

func (b *driftBed) viewerLogin(pw string) error {
	n := b.tp.node("db1")
	n.User, n.Password = "viewer", pw
	return n.TryExecSQL("SELECT 1")
}

// TestE2EDrift runs the daemon (resync 2s) on a primary and a standby and
// proves that each kind of drift is put back by it within a pass or two:
// hand edits of pacsd's files, ALTER SYSTEM (on the primary and on a
// standby), roles, slots, the standby's
// container removed, stopped or killed, and the cluster network removed.
func TestE2EDrift(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	b := &driftBed{e: e, tp: tp, viewerPW: "viewer-" + e.RunID}
	tp.secret(t, "viewer.password", b.viewerPW)
	tp.extra = `  settings = { work_mem = "8MB" }
  role "viewer" {
    login         = true
    password_file = "viewer.password"
  }
`
	b.r = startDaemon(t, tp, "2s")
	took := b.r.waitReady(t, 5*time.Minute)
	t.Logf("from nothing to /readyz 200: %.1fs", took.Seconds())
	tp.checkStreaming(t)
	tp.writeAndRead(t, "D0")
	slot := pgconf.SlotName(tp.name, "db2")
	w := e.StartWriter(tp.nodesOf(), "drift_writes")
	probe := e.StartProbe(tp.nodesOf())

	t.Run("pg_hba.conf edited", func(t *testing.T) {
		run := e2e.Fault(t, "pg_hba.conf edited", faults.ConfigEdited)
		before, load := b.started(t), b.mustConfLoad(t, "db1")
		want := tp.node("db1").ReadFile("pg_hba.conf")
		tp.node("db1").AppendPGDATA("pg_hba.conf", "host all all 0.0.0.0/0 trust\n")
		repaired(t, "pg_hba.conf restored and reloaded", b.fileAndReload("db1", "pg_hba.conf", want, load))
		run.Converged()
		b.notRestarted(t, before)
	})

	t.Run("pacsd.conf edited", func(t *testing.T) {
		run := e2e.Fault(t, "pacsd.conf edited", faults.ConfigEdited)
		before, load := b.started(t), b.mustConfLoad(t, "db2")
		want := tp.node("db2").ReadFile("pacsd.conf")
		tp.node("db2").AppendPGDATA("pacsd.conf", "work_mem = '1GB'\n")
		repaired(t, "pacsd.conf restored and reloaded", b.fileAndReload("db2", "pacsd.conf", want, load))
		run.Converged()
		if got := tp.node("db2").QueryString("SHOW work_mem"); got != "8MB" {
			t.Errorf("db2: work_mem %s, want 8MB", got)
		}
		b.notRestarted(t, before)
	})

	t.Run("ALTER SYSTEM of a managed parameter", func(t *testing.T) {
		run := e2e.Fault(t, "ALTER SYSTEM of a managed parameter", faults.ConfigEdited)
		before := b.started(t)
		b.psql(t, "db1", "ALTER SYSTEM SET work_mem = '1GB'", "SELECT pg_reload_conf()")
		repaired(t, "ALTER SYSTEM override reset", func() error {
			var value, source string
			if err := tp.node("db1").TryQueryRow("SELECT setting || unit, coalesce(sourcefile, '') FROM pg_settings WHERE name = 'work_mem'", []any{&value, &source}); err != nil {
				return err
			}
			if value != "8192kB" || strings.HasSuffix(source, "postgresql.auto.conf") {
				return fmt.Errorf("work_mem %s from %q", value, source)
			}
			return nil
		})
		run.Converged()
		if auto := tp.node("db1").ReadFile("postgresql.auto.conf"); strings.Contains(auto, "work_mem") {
			t.Errorf("postgresql.auto.conf still sets work_mem:\n%s", auto)
		}
		b.notRestarted(t, before)
	})

	t.Run("declared role dropped", func(t *testing.T) {
		run := e2e.Fault(t, "declared role dropped", faults.RoleChanged)
		before := b.started(t)
		b.psql(t, "db1", "DROP ROLE viewer")
		repaired(t, "viewer re-created, logs in with the file's password", func() error { return b.viewerLogin(b.viewerPW) })
		run.Converged()
		b.notRestarted(t, before)
	})

	t.Run("declared role's password changed", func(t *testing.T) {
		run := e2e.Fault(t, "declared role's password changed", faults.RoleChanged)
		b.psql(t, "db1", "ALTER ROLE viewer PASSWORD 'changed-by-hand'")
		repaired(t, "viewer's password reset", func() error { return b.viewerLogin(b.viewerPW) })
		run.Converged()
		if err := b.viewerLogin("changed-by-hand"); err == nil {
			t.Error("viewer still logs in with the password set by hand")
		}
	})

	t.Run("declared role's attributes changed", func(t *testing.T) {
		run := e2e.Fault(t, "declared role's attributes changed", faults.RoleChanged)
		b.psql(t, "db1", "ALTER ROLE viewer NOLOGIN")
		repaired(t, "viewer may log in again", func() error {
			if got := tp.node("db1").QueryString("SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'viewer'"); got != "true" {
				return fmt.Errorf("rolcanlogin %s", got)
			}
			return b.viewerLogin(b.viewerPW)
		})
		run.Converged()
	})

	t.Run("superuser's password changed", func(t *testing.T) {
		run := e2e.Fault(t, "superuser's password changed", faults.RoleChanged)
		before := b.started(t)
		b.psql(t, "db1", "ALTER ROLE pacs PASSWORD 'changed-by-hand'")
		repaired(t, "the superuser logs in with the file's password", func() error { return tp.node("db1").TryExecSQL("SELECT 1") })
		run.Converged()
		b.notRestarted(t, before)
	})

	t.Run("replication password changed; standby reconnects", func(t *testing.T) {
		run := e2e.Fault(t, "replication password changed; standby reconnects", faults.RoleChanged)
		before := b.started(t)
		// The standby stops streaming: its reconnection is refused until the
		// password is put back.
		b.psql(t, "db1", "ALTER ROLE replicator PASSWORD 'changed-by-hand'", "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
		repaired(t, "db2 streaming again", func() error { return b.streamingAgain("db2") })
		run.Converged()
		tp.checkStreaming(t)
		b.notRestarted(t, before)
	})

	t.Run("walsender terminated; standby reconnects", func(t *testing.T) {
		// The standby reconnects by itself: this shows only that nothing
		// pacsd does gets in the way.
		b.psql(t, "db1", "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
		repaired(t, "db2 streaming again", func() error { return b.streamingAgain("db2") })
		tp.checkStreaming(t)
	})

	t.Run("ALTER SYSTEM on the standby stops it streaming", func(t *testing.T) {
		run := e2e.Fault(t, "ALTER SYSTEM on the standby stops it streaming", faults.ConfigEdited)
		before := b.started(t)
		// A slot name that does not exist: the WAL receiver restarts with it
		// and the primary refuses it, so the standby no longer streams.
		b.psql(t, "db2", "ALTER SYSTEM SET primary_slot_name = 'nowhere'", "SELECT pg_reload_conf()")
		repaired(t, "override reset and db2 streaming", func() error {
			if auto, err := b.read("db2", "postgresql.auto.conf"); err != nil || strings.Contains(auto, "primary_slot_name") {
				return fmt.Errorf("postgresql.auto.conf still sets primary_slot_name (%v)", err)
			}
			return b.streamingAgain("db2")
		})
		run.Converged()
		b.notRestarted(t, before)
		tp.checkStreaming(t)
	})

	t.Run("standby.signal removed", func(t *testing.T) {
		run := e2e.Fault(t, "standby.signal removed", faults.ConfigEdited)
		before := b.started(t)
		tp.node("db2").Exec("postgres", "rm", "-f", e2e.PGDATA+"/standby.signal")
		repaired(t, "standby.signal back and db2 streaming", func() error {
			if _, code, err := tp.node("db2").TryExec("postgres", "test", "-f", e2e.PGDATA+"/standby.signal"); err != nil || code != 0 {
				return fmt.Errorf("standby.signal missing (%v, exit %d)", err, code)
			}
			return b.streamingAgain("db2")
		})
		run.Converged()
		if got := tp.node("db2").QueryString("SELECT pg_is_in_recovery()::text"); got != "true" {
			t.Fatalf("db2 is not in recovery after standby.signal was removed")
		}
		b.notRestarted(t, before, "db2")
		tp.checkStreaming(t)
	})

	t.Run("include line removed", func(t *testing.T) {
		run := e2e.Fault(t, "include line removed", faults.ConfigEdited)
		before := b.started(t)
		tp.node("db2").Exec("postgres", "sed", "-i", "/^include_if_exists = 'pacsd.conf'/d", e2e.PGDATA+"/postgresql.conf")
		repaired(t, "include line back and db2 streaming", func() error {
			conf, err := b.read("db2", "postgresql.conf")
			if err != nil {
				return err
			}
			conf = strings.TrimRight(conf, "\n")
			if !strings.HasSuffix(conf, pgconf.IncludeLine) || strings.Count(conf, pgconf.IncludeLine) != 1 {
				return fmt.Errorf("postgresql.conf does not end with the one include line")
			}
			return b.streamingAgain("db2")
		})
		run.Converged()
		if got := tp.node("db2").QueryString("SELECT coalesce(sourcefile, '') FROM pg_settings WHERE name = 'work_mem'"); !strings.HasSuffix(got, "pacsd.conf") {
			t.Errorf("db2: work_mem comes from %q, want pacsd.conf", got)
		}
		b.notRestarted(t, before, "db2")
	})

	t.Run("slot dropped", func(t *testing.T) {
		before := b.started(t)
		// An active slot cannot be dropped. Its walsender is ended instead of
		// stopping the standby: the standby's WAL receiver comes back only
		// after wal_retrieve_retry_interval (5s), and no engine event starts
		// a pass that could observe the slot before it is dropped.
		var dropped bool
		for i := 0; i < 5 && !dropped; i++ {
			_, code := tp.node("db1").Exec("postgres", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", "pacs", "-d", "pacsdb",
				"-c", "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '"+slot+"' AND active_pid IS NOT NULL",
				"-c", "SELECT pg_sleep(0.5)",
				"-c", "SELECT pg_drop_replication_slot('"+slot+"')")
			dropped = code == 0
		}
		if !dropped {
			t.Fatal("could not drop the standby's slot")
		}
		repaired(t, "slot re-created and db2 streaming", func() error {
			if got := tp.node("db1").QueryString("SELECT coalesce((SELECT active::text FROM pg_replication_slots WHERE slot_name = $1), 'missing')", slot); got != "true" {
				return fmt.Errorf("slot %s: %s", slot, got)
			}
			return b.streamingAgain("db2")
		})
		b.notRestarted(t, before)
		tp.writeAndRead(t, "D1")
	})

	standbyFault := func(name string, fault func() error, recreated bool) {
		t.Run("standby "+name, func(t *testing.T) {
			run := e2e.Fault(t, "standby "+name, faults.StandbyGone)
			before := b.started(t)
			c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container("db2"))
			if err != nil {
				t.Fatal(err)
			}
			if err := fault(); err != nil {
				t.Fatal(err)
			}
			repaired(t, "db2 streaming again after "+name, func() error { return b.streamingAgain("db2") })
			run.Converged()
			after, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container("db2"))
			if err != nil {
				t.Fatal(err)
			}
			if recreated == (after.ID == c.ID) {
				t.Errorf("container of db2: id %s before, %s after; re-created %v expected", c.ID[:12], after.ID[:12], recreated)
			}
			b.notRestarted(t, before, "db2")
			tp.checkStreaming(t)
			tp.writeAndRead(t, "D-"+name)
		})
	}
	standbyFault("stopped", func() error {
		return e.Docker.ContainerStop(e.Ctx(time.Minute), tp.container("db2"), container.StopOptions{})
	}, false)
	standbyFault("killed", func() error { return e.Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db2"), "KILL") }, false)
	standbyFault("removed", func() error {
		return e.Docker.ContainerRemove(e.Ctx(time.Minute), tp.container("db2"), container.RemoveOptions{Force: true})
	}, true)

	t.Run("network removed", func(t *testing.T) {
		net0, err := e.Docker.NetworkInspect(e.Ctx(time.Minute), tp.name, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Every container must be stopped before the network can go; the
		// daemon starts them again on the engine's events, so try again.
		var removed bool
		for i := 0; i < 10 && !removed; i++ {
			var wg sync.WaitGroup
			for _, n := range tp.nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = e.Docker.ContainerStop(e.Ctx(time.Minute), tp.container(n), container.StopOptions{})
				}()
			}
			wg.Wait()
			removed = e.Docker.NetworkRemove(e.Ctx(time.Minute), net0.ID) == nil
		}
		if !removed {
			t.Fatal("could not remove the cluster network")
		}
		repaired(t, "network re-created, primary writable, db2 streaming", func() error {
			net1, err := e.Docker.NetworkInspect(e.Ctx(time.Minute), tp.name, network.InspectOptions{})
			if err != nil {
				return err
			}
			if net1.ID == net0.ID {
				return fmt.Errorf("network %s is still the old one", tp.name)
			}
			for _, n := range tp.nodes {
				c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container(n))
				if err != nil {
					return err
				}
				if !c.State.Running {
					return fmt.Errorf("node %s is %s", n, c.State.Status)
				}
			}
			if err := tp.node("db1").Writable(); err != nil {
				return fmt.Errorf("db1: %w", err)
			}
			return tp.node("db2").Streaming()
		})
		// On their data: what was written before is there on both nodes.
		for _, n := range tp.nodes {
			tp.node(n).WaitRow(30*time.Second, "SELECT EXISTS (SELECT 1 FROM patient WHERE pat_id = 'D0')")
		}
		tp.checkStreaming(t)
		tp.writeAndRead(t, "D2")
	})

	report := w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, tp.node("db1"))
	probe.Check(t)

	// Whatever was repaired, the daemon ends converged: plan is empty.
	b.r.settled(t)
	code, stdout, stderr := runCLI(t, nil, "plan", "--json", "-f", b.r.path)
	if code != exitOK || strings.TrimSpace(stdout) != "[]" {
		t.Errorf("pacsd plan after the repairs: exit %d, want %d and no actions:\n%s%s", code, exitOK, stdout, stderr)
	}
}
