package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/pgconf"
)

// TestE2ESlotPastMaxSlotWAL keeps a standby down (stopped while the cluster
// is paused, so that pacsd does not start it) while the primary, under
// writes, writes more WAL than max_slot_wal (32MB): PostgreSQL invalidates
// the standby's slot (wal_status lost) and removes the WAL, and the primary
// keeps running (no restart, writes go on). Resumed, pacsd finds that the
// standby can never stream again: it moves its data aside (kept, never
// deleted), makes its slot anew, builds it from a base backup and says why;
// it streams again. No acknowledged commit is lost, never two nodes accept
// writes. (A frozen standby would not do: the checkpoint that invalidates
// its slot waits for its walsender, stuck on the frozen connection.)
func TestE2ESlotPastMaxSlotWAL(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.replication = `    max_slot_wal = "32MB"`
	r := startDaemon(t, tp, "2s")
	r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	nodes := tp.followNodes()
	w := e.StartWriter(nodes, "slot_writes")
	probe := e.StartProbe(nodes)
	time.Sleep(time.Second)
	primaryStarted := startedAt(t, e, tp.container("db1"))
	slot := pgconf.SlotName(tp.name, "db2")
	walStatus := func() string {
		var st string
		if err := tp.node("db1").TryQueryRow("SELECT coalesce((SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1), 'missing')", []any{&st}, slot); err != nil {
			return err.Error()
		}
		return st
	}

	run := e2e.Fault(t, "a standby frozen while the primary writes past max_slot_wal", faults.SlotPastMax)
	mark := len(r.log.String())
	if code, out, errOut := runCLI(t, nil, "pause", tp.name, "-f", r.path); code != exitOK {
		t.Fatalf("pacsd pause: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, time.Minute, "the cluster paused", func() error {
		st, err := r.status()
		if err == nil && st.Clusters[tp.name].Result != "paused" {
			err = fmt.Errorf("last pass: %s", st.Clusters[tp.name].Result)
		}
		return err
	})
	tp.node("db2").Stop()
	for i := 0; i < 20 && walStatus() != "lost"; i++ {
		tp.node("db1").ExecSQL(fmt.Sprintf("CREATE TABLE bulk%d AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g", i))
		tp.node("db1").ExecSQL("CHECKPOINT")
	}
	if st := walStatus(); st != "lost" {
		t.Fatalf("the frozen standby's slot is %q after writing past max_slot_wal, want lost", st)
	}
	if err := tp.node("db1").Writable(); err != nil {
		t.Fatalf("the primary stopped taking writes: %v", err)
	}
	if code, out, errOut := runCLI(t, nil, "resume", tp.name, "-f", r.path); code != exitOK {
		t.Fatalf("pacsd resume: exit %d\n%s%s", code, out, errOut)
	}
	waitFor(t, 3*time.Minute, "db2 rebuilt and streaming again", func() error {
		if st := walStatus(); st != "reserved" && st != "extended" {
			return fmt.Errorf("the slot is %s", st)
		}
		return primaryOf(tp, "db1")()
	})
	run.Converged()

	log := r.log.String()[mark:]
	for _, want := range []string{`"action":"move-aside"`, `"action":"base-backup"`, "so it can never stream again", "past max_slot_wal, 32MB"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon's log does not say %q:\n%s", want, grepLog(log, `"level":"INFO"`))
		}
	}
	out, _ := tp.node("db2").Exec("", "sh", "-c", "ls -d /var/lib/postgresql/data.aside-*/PG_VERSION")
	if !strings.Contains(out, "PG_VERSION") {
		t.Errorf("the standby's old data was not kept aside: %q", out)
	}
	if after := startedAt(t, e, tp.container("db1")); after != primaryStarted {
		t.Errorf("the primary was restarted (started %s, now %s)", primaryStarted, after)
	}
	report := w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, tp.node("db1"))
	probe.Check(t)
}
