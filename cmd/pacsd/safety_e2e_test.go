package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// TestE2EDataLocationChanged edits the acting primary's volume in the file,
// as an operator might, and proves that no command re-creates the primary on
// the new, empty volume: plan, apply and switchover refuse with what to do,
// the primary keeps its container and its rows, and nothing was created on
// the new location.
func TestE2EDataLocationChanged(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.apply(t)
	tp.writeAndRead(t, "KEEP1")
	before := containerID(t, e, tp.container("db1"))

	moved := tp.container("db1") + "-moved"
	tp.nodeBody = map[string]string{"db1": " volume = \"" + moved + "\" "}
	tp.write(t)
	for _, args := range [][]string{
		{"plan", "-f", tp.path},
		{"apply", "-f", tp.path},
		{"switchover", "db2", "-f", tp.path},
	} {
		code, stdout, stderr := runCLI(t, nil, args...)
		if code != exitProblem || !strings.Contains(stderr+stdout, "Data Location Changed") || !strings.Contains(stderr+stdout, `node "db1"`) {
			t.Fatalf("pacsd %s with the primary's volume edited: exit %d, want %d and Data Location Changed on db1\n%s%s", args[0], code, exitProblem, stdout, stderr)
		}
	}
	if after := containerID(t, e, tp.container("db1")); after != before {
		t.Fatalf("the primary's container was re-created (%s -> %s)", before, after)
	}
	if got := tp.node("db1").QueryString("SELECT count(*)::text FROM patient WHERE pat_id = 'KEEP1'"); got != "1" {
		t.Fatalf("the primary lost its row: count %s", got)
	}
	if _, err := e.Docker.VolumeInspect(e.Ctx(time.Minute), moved); err == nil {
		t.Errorf("volume %s was created although every command refused", moved)
	}
}

func containerID(t *testing.T, e *e2e.Env, name string) string {
	t.Helper()
	c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), name)
	if err != nil {
		t.Fatalf("while inspecting %s: %v", name, err)
	}
	return c.ID
}

// TestE2EFailoverUnknownPosition kills the primary of an asynchronous
// cluster while no pacsd runs, so no pacsd ever saw its last WAL position.
// The daemon, started afterwards, must not promote (a standby's lag cannot
// be bounded by max_lag) and must say why; 'pacsd failover NODE' refuses too
// and names --accept-loss, with which it promotes the standby, and the old
// primary rejoins as a standby.
func TestE2EFailoverUnknownPosition(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.extra = `  failover {
    automatic = true
    after     = "1s"
    max_lag   = "16MB"
  }
`
	tp.write(t)
	tp.apply(t)
	tp.writeAndRead(t, "BEFORE")
	if err := e.Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	r := startDaemon(t, tp, "2s")
	waitFor(t, time.Minute, "the failover to be refused", func() error {
		return r.metric(t, `pacsd_failovers_total{cluster="`+tp.name+`",result="refused"} 1`)
	})
	if log := r.log.String(); !strings.Contains(log, "last WAL position is unknown") || !strings.Contains(log, "pacsd failover NODE") {
		t.Errorf("the refusal does not say why or what to do:\n%s", log)
	}
	if err := tp.node("db2").Writable(); err == nil {
		t.Fatal("db2 was promoted although the primary's last position was unknown")
	}
	r.stop(t)

	code, stdout, stderr := runCLI(t, nil, "failover", "db2", "-f", r.path)
	if code != exitProblem || !strings.Contains(stderr, "may lack acknowledged commits") || !strings.Contains(stderr, "--accept-loss") {
		t.Fatalf("pacsd failover db2 without --accept-loss: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := tp.node("db2").Writable(); err == nil {
		t.Fatal("pacsd failover promoted db2 without --accept-loss")
	}
	code, stdout, stderr = runCLI(t, nil, "failover", "db2", "--accept-loss", "-f", r.path)
	if code != exitOK {
		t.Fatalf("pacsd failover db2 --accept-loss: exit %d\n%s%s", code, stdout, stderr)
	}
	// db1 was killed: its rewind recovers it first, with standby.signal
	// kept in place (pg_rewind's own recovery would refuse the signal).
	if !strings.Contains(stderr, "recovering it as a standby first") || !strings.Contains(stderr, `"action":"rewind"`) {
		t.Errorf("the killed old primary did not rejoin by a rewind that recovered it first:\n%s", stderr)
	}
	waitFor(t, 2*time.Minute, "db2 primary, db1 streaming from it", func() error {
		p, err := onePrimary(tp)
		if err == nil && p != "db2" {
			err = fmt.Errorf("%s is the primary", p)
		}
		return err
	})
	if got := tp.node("db2").QueryString("SELECT count(*)::text FROM patient WHERE pat_id = 'BEFORE'"); got != "1" {
		t.Errorf("db2 lacks the row it had streamed: count %s", got)
	}
}

// TestE2EFencedPrimaryStartedByHand fails over a killed primary, stops
// pacsd right after the failover (before a pass makes the old primary
// rejoin), then starts the fenced old primary by hand again and again for
// 10 s, as an operator might: whenever it answers it must be in recovery
// (its fence placed standby.signal), the probe must never see two writable
// nodes, and once pacsd runs again it must stream from the new primary.
// Replication is asynchronous, so that a second primary would accept
// writes at once rather than wait for a synchronous standby.
func TestE2EFencedPrimaryStartedByHand(t *testing.T) {
	b := newFailoverBed(t, false)
	e := b.tp.e
	b.tp.node("db1").Kill()
	waitFor(t, time.Minute, "the failover", func() error {
		if !strings.Contains(b.r.log.String(), `"msg":"failover done"`) {
			return fmt.Errorf("no failover yet")
		}
		return nil
	})
	b.r.stop(t)
	now := ""
	for _, n := range []string{"db2", "db3"} {
		var rec bool
		if b.tp.node(n).TryQueryRow("SELECT pg_is_in_recovery()", []any{&rec}) == nil && !rec {
			now = n
		}
	}
	if now == "" {
		t.Fatal("no standby was promoted")
	}
	deadline := time.Now().Add(10 * time.Second)
	starts, answered := 0, 0
	for time.Now().Before(deadline) {
		c, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), b.tp.container("db1"))
		if err != nil {
			t.Fatal(err)
		}
		if !c.State.Running {
			if err := e.Docker.ContainerStart(e.Ctx(time.Minute), c.ID, container.StartOptions{}); err == nil {
				starts++
			}
		}
		var rec bool
		if err := b.tp.node("db1").TryQueryRow("SELECT pg_is_in_recovery()", []any{&rec}); err == nil {
			answered++
			if !rec {
				t.Fatalf("the fenced old primary was started by hand as a primary beside %s", now)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("started the old primary by hand %d times; it answered %d times, always in recovery", starts, answered)
	if starts == 0 || answered == 0 {
		t.Fatal("the old primary was never started by hand, or never answered: the test proved nothing")
	}
	b.r = startDaemon(t, b.tp, "2s")
	b.rejoined(t, now)
	b.w.Stop()
	b.probe.Check(t)
}

// TestE2EBaseBackupStopsAfterRepeatedFailures puts a standby's data on a
// small file system that a base backup fills: each try fails, its partial
// data is moved aside (kept), and after MaxBuildAttempts tries pacsd stops
// building the node and says why, instead of filling the disk with copies
// forever. The primary is never touched.
func TestE2EBaseBackupStopsAfterRepeatedFailures(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	small := filepath.Join(tp.dir, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m,mode=0755", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("while mounting a small tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", small).Run() })
	tp.nodeBody = map[string]string{"db2": fmt.Sprintf(" data = %q ", small)}
	tp.write(t)
	for i := 1; i <= reconcile.MaxBuildAttempts; i++ {
		code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
		if code == exitOK || !strings.Contains(stderr, "base-backup") {
			t.Fatalf("apply %d on a full standby location: exit %d, want a failed base backup\n%s%s", i, code, stdout, stderr)
		}
	}
	code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
	if !strings.Contains(stdout+stderr, "Base Backup Failed Repeatedly") || strings.Contains(stderr, "action=base-backup") {
		t.Fatalf("apply after %d failed base backups: exit %d, want no new base backup and the reason\n%s%s", reconcile.MaxBuildAttempts, code, stdout, stderr)
	}
	asides, _ := filepath.Glob(filepath.Join(small, "data.aside-*"))
	if len(asides) > reconcile.MaxBuildAttempts-1 {
		t.Errorf("%d copies of partial data kept aside, want at most %d: %v", len(asides), reconcile.MaxBuildAttempts-1, asides)
	}
	if err := tp.node("db1").Writable(); err != nil {
		t.Errorf("the primary does not accept writes: %v", err)
	}
}

// TestE2EContainerRenamed renames the primary's container by hand: no
// command may create a second container on its data; plan and apply refuse
// and say how to repair.
func TestE2EContainerRenamed(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.apply(t)
	renamed := tp.container("db1") + "-renamed"
	if err := e.Docker.ContainerRename(e.Ctx(time.Minute), tp.container("db1"), renamed); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"plan", "apply"} {
		code, stdout, stderr := runCLI(t, nil, cmd, "-f", tp.path)
		if code != exitProblem || !strings.Contains(stdout+stderr, "Container Renamed") {
			t.Fatalf("pacsd %s after the primary's container was renamed: exit %d, want %d and Container Renamed\n%s%s", cmd, code, exitProblem, stdout, stderr)
		}
	}
	if _, err := e.Docker.ContainerInspect(e.Ctx(time.Minute), tp.container("db1")); err == nil {
		t.Fatal("a second container was created for db1 beside the renamed one")
	}
}
