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
	primaryIs := func(want string) func() error {
		return func() error {
			n, err := onePrimary(tp)
			if err == nil && n != want {
				err = fmt.Errorf("%s is the primary", n)
			}
			return err
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
	disk.fill(t)
	code, stdout, stderr := runCLI(t, nil, "switchover", "db2", "-f", b.r.path)
	if code == exitOK || !strings.Contains(stderr, "no space left on device") || !strings.Contains(stderr, "unchanged") {
		t.Errorf("pacsd switchover db2 with the state directory full: exit %d, want a refusal that says the disk is full and the record unchanged\n%s%s", code, stdout, stderr)
	}
	unchanged("after the refused switchover")
	waitFor(t, time.Minute, "db1 the one primary again, db2 streaming from it", primaryIs("db1"))
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
	time.Sleep(10 * time.Second) // passes every 2 s: time for more tries
	if n := strings.Count(b.r.log.String()[mark:], `"action":"switchover"`); n != 1 {
		t.Errorf("the daemon tried the switchover %d times with the state directory full; want once, then the cluster held", n)
	}
	if err := held(); err != nil {
		t.Error(err)
	}
	if err := primaryIs("db1")(); err != nil {
		t.Errorf("with the switchover undone: %v", err)
	}
	unchanged("after the switchover the daemon could not record")
	disk.free(t)
	waitFor(t, 2*time.Minute, "db2 the one primary once there is space, db1 streaming from it", primaryIs("db2"))
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
	time.Sleep(5 * time.Second) // time for a wrong promotion, or more tries
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
