package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// recordOf reads the cluster's record in the daemon's state directory.
func (b *failoverBed) recordOf(t *testing.T) (reconcile.ClusterState, error) {
	t.Helper()
	var st reconcile.ClusterState
	raw, err := os.ReadFile(filepath.Join(b.r.stateDir, "cluster-"+b.tp.name+".json"))
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	return st, err
}

// noFailoverSince fails the test when the daemon's log, after mark bytes,
// shows a primary taken for lost or a failover.
func (b *failoverBed) noFailoverSince(t *testing.T, mark int, what string) {
	t.Helper()
	for _, l := range strings.Split(b.r.log.String()[mark:], "\n") {
		if strings.Contains(l, `"msg":"primary lost"`) || strings.Contains(l, `"msg":"failover`) || strings.Contains(l, `"msg":"old primary fenced"`) {
			t.Errorf("%s: the daemon took a primary for lost: %s", what, l)
		}
	}
}

// TestE2ERecordLostAfterSwitchover removes everything in the state
// directory but the cluster's certificate authority after a switchover (the
// record, the last sight of the primary, the lock), while a writer runs and the daemon supervises with automatic
// failover: the file still names db1, now a standby. pacsd must not take
// db1 for the primary (before: the supervisor found "db1" in recovery and
// failed over; a pass would have switched back to it). The record is
// rebuilt from the nodes (db2, the one writable node on the newest
// timeline), nothing is fenced or promoted, no acknowledged write is lost.
// Then each kind of damaged record (empty, cut short, not JSON) is rebuilt
// the same way, the damaged file kept beside it; and automatic failover
// still works from the rebuilt record.
func TestE2ERecordLostAfterSwitchover(t *testing.T) {
	b := newFailoverBed(t, true)
	tp := b.tp
	b.switchoverBesideDaemon(t, "db2")
	before, err := b.recordOf(t)
	if err != nil || before.Acting != "db2" {
		t.Fatalf("record after the switchover: %+v, %v", before, err)
	}

	mark := len(b.r.log.String())
	// The CA is kept: without it pacsd makes a new one and can verify no
	// node's certificate until it has issued them anew, which it does not
	// while the acting primary is unknown (an open defect; with the CA
	// gone this test passed only by timing).
	entries, err := os.ReadDir(b.r.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), "ca-") {
			if err := os.RemoveAll(filepath.Join(b.r.stateDir, en.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, time.Minute, "the record rebuilt", func() error {
		st, err := b.recordOf(t)
		if err == nil && (st.Acting != "db2" || st.Keep != "db1") {
			t.Fatalf("rebuilt record: %+v; want db2 acting, the file's db1 kept from a switchover back", st)
		}
		return err
	})
	time.Sleep(3 * time.Second) // passes and checks go on: time for a wrong failover or switchover (after = 1s)
	if n, err := b.writable(); err != nil || n != "db2" {
		t.Errorf("after the state directory was removed: writable %q, %v; want db2 alone", n, err)
	}
	b.noFailoverSince(t, mark, "state directory removed")
	if log := b.r.log.String()[mark:]; !strings.Contains(log, "rebuilt from the nodes") {
		t.Errorf("the daemon did not say that it rebuilt the record:\n%s", log)
	}

	// Damaged records: each is set aside and rebuilt, nothing else happens.
	path := filepath.Join(b.r.stateDir, "cluster-"+tp.name+".json")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"empty": nil, "cut short": good[:len(good)/2], "not JSON": []byte("acting = db1\n")} {
		mark := len(b.r.log.String())
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the "+name+" record rebuilt", func() error {
			_, err := b.recordOf(t)
			return err
		})
		if st, _ := b.recordOf(t); st.Acting != "db2" {
			t.Errorf("%s record rebuilt as %+v; want db2 acting", name, st)
		}
		b.noFailoverSince(t, mark, name+" record")
		if n, err := b.writable(); err != nil || n != "db2" {
			t.Errorf("after the %s record: writable %q, %v; want db2 alone", name, n, err)
		}
	}
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) == 0 {
		t.Error("no damaged record was kept beside the rebuilt one")
	}

	// The supervisor watches the rebuilt record's primary: a killed db2 is
	// failed over.
	start := time.Now()
	if err := tp.e.Docker.ContainerKill(tp.e.Ctx(time.Minute), tp.container("db2"), "KILL"); err != nil {
		t.Fatal(err)
	}
	now := b.failedOver(t, "db2", start)
	b.rejoined(t, now)
	b.finish(t, now)
}
