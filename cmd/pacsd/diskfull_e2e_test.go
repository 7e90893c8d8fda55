package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// smallDisk is a small file system (tmpfs) mounted for a test, that the
// test fills to the last byte and frees again.
type smallDisk struct {
	dir    string
	filler string
}

// mountSmallDisk mounts a tmpfs of size (e.g. "64m") with mode at dir
// (created when missing); it is unmounted when the test ends.
func mountSmallDisk(t *testing.T, dir, size string, mode os.FileMode) *smallDisk {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%s,mode=%04o", size, mode), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("while mounting a tmpfs of %s at %s: %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return &smallDisk{dir: dir, filler: filepath.Join(dir, ".filler")}
}

// fill writes a file until the file system has no byte left.
func (d *smallDisk) fill(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("while filling %s: %v", d.dir, err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size > 0; {
		if _, err := f.Write(chunk[:size]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("while filling %s: %v", d.dir, err)
			}
			size /= 2
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil || st.Bavail != 0 {
		t.Fatalf("%s is not full after filling it: %d blocks free (%v)", d.dir, st.Bavail, err)
	}
}

// free removes what fill wrote.
func (d *smallDisk) free(t *testing.T) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil {
		t.Fatalf("while freeing %s: %v", d.dir, err)
	}
}

// TestE2EStateDirFull fills the file system of the state directory during
// switchovers and a failover, under writes, with synchronous replication.
// The record of the acting primary is written before anything makes a node
// the primary, so none of them goes on: 'pacsd switchover' is undone (the
// old primary takes writes again) and refused with what to do; the
// switchover the daemon starts for an edited file is undone once, and then
// the daemon holds the cluster (no second try, no repair, no failover) and
// says why in its log and /status; the failover fences the lost primary and
// promotes nobody. The record is never half-written: the old one stays, byte
// for byte, with no temporary file beside it. Once there is space again the
// daemon acts again: the switchover and the failover finish and the old
// primaries rejoin. No acknowledged commit is lost, never two nodes accept
// writes, and pacsd says each thing once, not at every check.
func TestE2EStateDirFull(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	disk := mountSmallDisk(t, filepath.Join(tp.dir, "state"), "1m", 0o700)
	b := failoverBedOn(t, tp, true)
	record := filepath.Join(b.r.stateDir, "cluster-"+tp.name+".json")
	var before []byte
	keep := func() {
		t.Helper()
		var err error
		if before, err = os.ReadFile(record); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func(when string) {
		t.Helper()
		now, err := os.ReadFile(record)
		if err != nil || string(now) != string(before) {
			t.Errorf("%s: the record is %q (%v), want it unchanged: %q", when, now, err, before)
		}
		if tmp, _ := filepath.Glob(filepath.Join(b.r.stateDir, ".cluster-*.tmp")); len(tmp) > 0 {
			t.Errorf("%s: temporary files left in the state directory: %v", when, tmp)
		}
	}
	held := func() error {
		st, err := b.r.status()
		if err != nil {
			return err
		}
		cs := st.Clusters[tp.name]
		if cs == nil || cs.Result != "held" || !strings.Contains(cs.Error, "no space left on device") || !strings.Contains(cs.Error, "acts on it again") {
			return fmt.Errorf("/status of the cluster: %+v", cs)
		}
		return nil
	}
	start := len(b.r.log.String())

	t.Log("pacsd switchover with the state directory full")
	run := e2e.Fault(t, "state directory full during pacsd switchover", faults.StateWriteFails)
	keep()
	started := startedAt(t, e, tp.container("db1"))
	disk.fill(t)
	code, stdout, stderr := runCLI(t, nil, "switchover", "db2", "-f", b.r.path)
	if code == exitOK || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, "unchanged") || !strings.Contains(stderr, "was not stopped") {
		t.Errorf("pacsd switchover db2 with the state directory full: exit %d, want a refusal that says the disk is full, the primary not stopped and the record unchanged\n%s%s", code, stdout, stderr)
	}
	if now := startedAt(t, e, tp.container("db1")); now != started {
		t.Errorf("pacsd switchover stopped the primary although the record could not be written (started %s, now %s)", started, now)
	}
	unchanged("after the refused switchover")
	waitFor(t, time.Minute, "db1 the one primary again, db2 streaming from it", primaryOf(tp, "db1"))
	run.Converged()
	disk.free(t)
	waitFor(t, time.Minute, "a pass that converged", func() error {
		st, err := b.r.status()
		if err == nil && st.Clusters[tp.name].Result != "ok" {
			err = fmt.Errorf("last pass: %s %s", st.Clusters[tp.name].Result, st.Clusters[tp.name].Error)
		}
		return err
	})

	t.Log("the file's primary edited with the state directory full")
	run = e2e.Fault(t, "state directory full during a switchover by pacsd run", faults.StateWriteFails)
	disk.fill(t)
	mark := len(b.r.log.String())
	tp.primary = "db2"
	b.r.save(t, "")
	waitFor(t, time.Minute, "the cluster held", held)
	time.Sleep(6 * time.Second) // passes every 2 s: time for more tries
	if n := strings.Count(b.r.log.String()[mark:], `"action":"switchover"`); n != 1 {
		t.Errorf("the daemon tried the switchover %d times with the state directory full; want once, then the cluster held", n)
	}
	if err := held(); err != nil {
		t.Error(err)
	}
	if err := primaryOf(tp, "db1")(); err != nil {
		t.Errorf("with the switchover undone: %v", err)
	}
	unchanged("after the switchover the daemon could not record")
	disk.free(t)
	waitFor(t, 2*time.Minute, "db2 the one primary once there is space, db1 streaming from it", primaryOf(tp, "db2"))
	run.Converged()
	b.r.watching(t, tp, "db2")

	t.Log("the primary killed with the state directory full")
	run = e2e.Fault(t, "state directory full during a failover", faults.StateWriteFails)
	keep()
	disk.fill(t)
	mark = len(b.r.log.String())
	killed := time.Now()
	tp.node("db2").Kill()
	waitFor(t, time.Minute, "the cluster held", held)
	time.Sleep(4 * time.Second) // time for a wrong promotion, or more tries
	if err := tp.node("db1").Writable(); err == nil {
		t.Fatal("db1 was promoted although its record could not be written")
	}
	if n := strings.Count(b.r.log.String()[mark:], `"msg":"old primary fenced"`); n != 1 {
		t.Errorf("the daemon fenced the lost primary %d times with the state directory full; want once, then the cluster held", n)
	}
	unchanged("after the failover that could not record")
	disk.free(t)
	now := b.failedOver(t, "db2", killed)
	b.rejoined(t, now)
	run.Converged()

	// The disk was full three times: each thing is said at most once each
	// time, the hold at least when the daemon acted (the second and third).
	log := b.r.log.String()[start:]
	for msg, least := range map[string]int{"cannot keep what was seen of the primary": 1, "the cluster's record cannot be written; pacsd holds the cluster": 2, "the cluster's record can be written again": 2} {
		if n := strings.Count(log, `"msg":"`+msg); n < least || n > 3 {
			t.Errorf("pacsd said %q %d times; want it said once each time the disk filled (3), at least %d times", msg, n, least)
		}
	}
	if held, released := strings.Count(log, `"msg":"the cluster's record cannot be written; pacsd holds the cluster`), strings.Count(log, `"msg":"the cluster's record can be written again`); held != released {
		t.Errorf("pacsd held the cluster %d times but released it %d times", held, released)
	}
	t.Logf("pacsd said:\n%s", grepLog(b.r.log.String()[start:], "the cluster's record can"))
	b.finish(t, now)
}

// grepLog returns the lines of log that hold s.
func grepLog(log, s string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EDiskFull fills the volume of a standby, then the primary's, under
// writes with synchronous replication (ANY 1 of the two standbys, so that
// the other acknowledges while one is full).
//
// A full standby cannot replay what it receives: its server stops. pacsd
// reports it (the node's server does not run, its container exits), starts
// it again with a backoff, and fails nothing over; once there is space it
// streams again.
//
// A full primary refuses what needs space (writes that extend a file, new
// sessions while its relation cache file must be written anew) and keeps
// answering. pacsd treats it as any primary: while its server answers,
// nothing fails over (a failover makes no space; were the server to stop,
// it would be a lost primary, fenced before a standby with every
// acknowledged commit is promoted, as TestE2EFailover shows), and nothing
// on the full volume is moved, rebuilt or removed. Once there is space the
// cluster converges again: one primary, the others streaming from it, no
// acknowledged commit lost, never two nodes accepting writes.
func TestE2EDiskFull(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	disks := map[string]*smallDisk{}
	tp.nodeBody = map[string]string{}
	for _, n := range []string{"db1", "db2"} {
		disks[n] = mountSmallDisk(t, filepath.Join(tp.dir, n+"-disk"), "256m", 0o755)
		tp.nodeBody[n] = fmt.Sprintf(" data = %q ", disks[n].dir)
	}
	b := failoverBedOn(t, tp, true)

	t.Log("the volume of standby db2 full")
	run := e2e.Fault(t, "a standby's volume full", faults.StandbyDiskFull)
	mark := len(b.r.log.String())
	disks["db2"].fill(t)
	tp.node("db1").ExecSQL("CREATE TABLE bulk_standby AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
	waitFor(t, time.Minute, "pacsd to report that db2's server does not run", func() error {
		st, err := b.r.status()
		if err != nil {
			return err
		}
		if l := grepLog(b.r.log.String()[mark:], `"node":"db2"`); !strings.Contains(l, "the container exited") {
			return fmt.Errorf("the log does not say that db2's container exited:\n%s", l)
		}
		for _, n := range st.Clusters[tp.name].Nodes {
			if n.Node == "db2" && n.Replication != reconcile.ReplStreaming && strings.Contains(n.Why, "does not run") {
				return nil
			}
		}
		return fmt.Errorf("/status: %+v", st.Clusters[tp.name].Nodes)
	})
	if l := b.r.log.String()[mark:]; strings.Contains(l, `"msg":"primary lost"`) || strings.Contains(l, `"msg":"failing over"`) {
		t.Errorf("a full standby was taken for a lost primary:\n%s", grepLog(l, "primary lost"))
	}
	if err := primaryOf(tp, "db1")(); err == nil {
		t.Error("db2 streams with its volume full")
	} else if err := tp.node("db1").Writable(); err != nil {
		t.Errorf("db1 does not accept writes while a standby is full: %v", err)
	}
	disks["db2"].free(t)
	waitFor(t, 3*time.Minute, "db2 streaming again once there is space", primaryOf(tp, "db1"))
	run.Converged()

	t.Log("the primary's volume full")
	run = e2e.Fault(t, "the primary's volume full", faults.PrimaryDiskFull)
	mark = len(b.r.log.String())
	session, err := tp.node("db1").Conn(e.Ctx(time.Minute)) // a new one is refused once the volume is full
	if err != nil {
		t.Fatal(err)
	}
	disks["db1"].fill(t)
	_, err = session.Exec(e.Ctx(time.Minute), "CREATE TABLE bulk_primary AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
	if err == nil {
		t.Fatal("a write that needs space succeeded on a full primary")
	}
	t.Logf("a write that needs space on the full primary: %v", err)
	time.Sleep(5 * time.Second) // what pacsd does while the full primary answers (failover.after = 1s)
	if l := b.r.log.String()[mark:]; strings.Contains(l, `"msg":"failing over"`) || strings.Contains(l, `"msg":"old primary fenced"`) {
		t.Errorf("pacsd failed over a full primary that still answers:\n%s", grepLog(l, `"level":"`))
	}
	for _, msg := range []string{`"action":"move-aside"`, `"action":"base-backup"`, `"action":"rewind"`} {
		if strings.Contains(b.r.log.String()[mark:], msg) {
			t.Errorf("pacsd acted on a full volume (%s):\n%s", msg, grepLog(b.r.log.String()[mark:], msg))
		}
	}
	disks["db1"].free(t)
	var now string
	waitFor(t, 3*time.Minute, "one primary once there is space, the others streaming from it", func() error {
		var err error
		now, err = onePrimary(tp)
		return err
	})
	run.Converged()
	t.Logf("%s is the primary once there is space", now)
	b.finish(t, now)
}

// primaryOf returns a condition: primary is the one node of tp that accepts
// writes and every other node streams from it.
func primaryOf(tp *topology, primary string) func() error {
	return func() error {
		n, err := onePrimary(tp)
		if err == nil && n != primary {
			err = fmt.Errorf("%s is the primary", n)
		}
		return err
	}
}
