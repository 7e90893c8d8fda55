package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// maint runs pacsd with args against the daemon's file and returns what
// it printed; it fails the test unless it succeeds.
func (b *failoverBed) maint(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, append(args, "-f", b.r.path)...)
	if code != exitOK {
		t.Fatalf("pacsd %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	t.Logf("pacsd %s took %.1fs:\n%s", strings.Join(args, " "), time.Since(start).Seconds(), stdout)
	if os.Getenv("PACSD_E2E_DUMP") != "" {
		t.Logf("stderr:\n%s", stderr)
	}
	return stdout, stderr
}

// noFailover checks that the daemon beside the commands never failed over
// and that the record names acting at epoch.
func (b *failoverBed) noFailover(t *testing.T, acting string, epoch int64, what string) {
	t.Helper()
	if strings.Contains(b.r.log.String(), `"msg":"failing over"`) || strings.Contains(b.r.log.String(), `"msg":"primary lost"`) {
		t.Errorf("%s: the daemon took the primary for lost (it logged a failover or a lost primary)", what)
	}
	st := b.record(t)
	if st.Acting != acting || st.Epoch != epoch {
		t.Errorf("%s: the record names %q at epoch %d, want %q at %d", what, st.Acting, st.Epoch, acting, epoch)
	}
}

// record reads the cluster's record in the daemon's state directory.
func (b *failoverBed) record(t *testing.T) reconcile.ClusterState {
	t.Helper()
	st, err := (&state.Store{Dir: b.r.stateDir}).Load(b.tp.name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestE2EMaintenance runs the maintenance commands on one cluster of three
// nodes (synchronous replication) beside the daemon with automatic
// failover, under a writer and the probe: a standby restarted; the primary
// restarted in place (no failover, the write gap said); the whole cluster
// restarted with --switchover (standbys first, then a switchover: no
// acknowledged commit lost, never two writable nodes, no failover); a
// standby rebuilt by reinit (its old data kept aside and intact, a row
// written before there, streaming), the acting primary refused. Every
// command is in the event history.
func TestE2EMaintenance(t *testing.T) {
	b := newFailoverBed(t, true)
	e := b.tp.e
	name := b.tp.name
	epoch := b.record(t).Epoch

	t.Run("restart a standby", func(t *testing.T) {
		before := startedAt(t, e, b.tp.container("db3"))
		out, _ := b.maint(t, "restart", "db3")
		if !strings.Contains(out, "db3 was restarted and streams again") {
			t.Errorf("pacsd restart db3 said:\n%s", out)
		}
		if startedAt(t, e, b.tp.container("db3")) == before {
			t.Error("db3's container was not restarted")
		}
		if err := b.tp.node("db3").Streaming(); err != nil {
			t.Errorf("db3 after its restart: %v", err)
		}
		b.noFailover(t, "db1", epoch, "after a standby's restart")
	})

	t.Run("restart the primary in place", func(t *testing.T) {
		before := startedAt(t, e, b.tp.container("db1"))
		out, _ := b.maint(t, "restart", "db1")
		if !regexp.MustCompile(`db1, the primary, was restarted in place and takes writes again: writes were refused for [0-9.]+m?s`).MatchString(out) {
			t.Errorf("pacsd restart db1 said:\n%s", out)
		}
		if startedAt(t, e, b.tp.container("db1")) == before {
			t.Error("db1's container was not restarted")
		}
		if err := b.tp.node("db1").Writable(); err != nil {
			t.Errorf("db1 after its restart: %v", err)
		}
		time.Sleep(2 * time.Second) // failover.after is 1s: a failover would have begun by now
		b.noFailover(t, "db1", epoch, "after the primary's restart in place")
	})

	var now string
	t.Run("restart the whole cluster with switchover", func(t *testing.T) {
		out, _ := b.maint(t, "restart", name, "--switchover")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		m := regexp.MustCompile(`db1, the primary, handed its role to (db[23]) by a switchover`).FindStringSubmatch(out)
		if len(lines) < 3 || !strings.Contains(lines[0], "db2 was restarted") || !strings.Contains(lines[1], "db3 was restarted") || m == nil {
			t.Fatalf("pacsd restart %s --switchover said:\n%s", name, out)
		}
		now = m[1]
		if !strings.Contains(out, `the file still names "db1" as primary`) {
			t.Errorf("the output does not say that the file names another primary:\n%s", out)
		}
		b.rejoined(t, now)
		time.Sleep(2 * time.Second)
		b.noFailover(t, now, epoch+1, "after the restart with switchover")
	})
	if now == "" {
		t.FailNow()
	}

	t.Run("reinit a standby", func(t *testing.T) {
		target := "db3"
		if now == "db3" {
			target = "db2"
		}
		b.tp.node(now).ExecSQL("INSERT INTO patient (pat_id, pat_name) VALUES ('BEFORE-REINIT', 'DOE^JANE')")
		b.tp.node(target).WaitRow(30*time.Second, "SELECT EXISTS (SELECT 1 FROM patient WHERE pat_id = 'BEFORE-REINIT')")
		code, _, stderr := runCLI(t, nil, "reinit", now, "-f", b.r.path)
		if code != exitProblem || !strings.Contains(stderr, "it is the acting primary") || !strings.Contains(stderr, "'pacsd switchover ") {
			t.Errorf("pacsd reinit of the acting primary: exit %d\n%s", code, stderr)
		}
		out, _ := b.maint(t, "reinit", target)
		m := regexp.MustCompile(`kept in directory (data\.aside-[0-9TZ]+) in volume (\S+) on the local Docker engine;`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "docker run --rm -v '"+m[2]+":/var/lib/postgresql' --entrypoint rm") {
			t.Fatalf("pacsd reinit %s said:\n%s", target, out)
		}
		n := b.tp.node(target)
		if err := n.Streaming(); err != nil {
			t.Errorf("%s after its rebuild: %v", target, err)
		}
		if got := n.QueryString("SELECT count(*)::text FROM patient WHERE pat_id = 'BEFORE-REINIT'"); got != "1" {
			t.Errorf("%s after its rebuild lacks the row written before: count %s", target, got)
		}
		// The old data is there, whole: a standby's data shut down cleanly.
		ctl, code := n.Exec("postgres", "pg_controldata", "-D", "/var/lib/postgresql/"+m[1])
		if code != 0 || !strings.Contains(ctl, "shut down in recovery") {
			t.Errorf("the old data aside: pg_controldata exit %d:\n%s", code, ctl)
		}
		b.noFailover(t, now, epoch+1, "after the reinit")
	})

	b.finish(t, now)
	code, out, _ := runCLI(t, nil, "events", name, "-f", b.r.path, "--json")
	var evs []reconcile.Event
	if code != exitOK || json.Unmarshal([]byte(out), &evs) != nil {
		t.Fatalf("pacsd events: exit %d\n%s", code, out)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		if (ev.Kind == "restart" || ev.Kind == "reinit" || ev.Kind == "switchover") && strings.Contains(ev.Reason, "asked for on the command line (pacsd ") {
			seen[ev.Kind+" "+ev.Node+" "+strings.SplitN(ev.Result, ":", 2)[0]]++
		}
	}
	for _, want := range []string{"restart db3 ok", "restart db1 ok", "restart db2 ok", "switchover " + now + " ok", "reinit " + now + " refused"} {
		if seen[want] == 0 {
			t.Errorf("no event %q in the history: %v", want, seen)
		}
	}
}

// TestE2EFailoverByHand: automatic failover off, synchronous replication;
// the daemon has seen the primary healthy with its synchronous standby,
// then stops (so that nothing starts the primary again) and the primary is
// killed: 'pacsd failover db2' promotes the synchronous standby without
// --accept-loss (the same rules as the automatic failover), nothing
// acknowledged is lost, never two writable nodes, and the old primary
// rejoins as a standby.
func TestE2EFailoverByHand(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2")
	tp.replication = "    synchronous = true"
	r := startDaemon(t, tp, "2s")
	r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	r.watching(t, tp, "db1")
	w := e.StartWriter(tp.nodesOf(), "byhand_writes")
	probe := e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)
	r.stop(t)
	tp.node("db1").Kill()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, "failover", "db2", "-f", r.path)
	if code != exitOK || !strings.Contains(stdout, `"db2" is the primary`) {
		t.Fatalf("pacsd failover db2: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("pacsd failover db2 took %.1fs", time.Since(start).Seconds())
	waitFor(t, 2*time.Minute, "db2 primary, db1 streaming from it", func() error {
		p, err := onePrimary(tp)
		if err == nil && p != "db2" {
			err = fmt.Errorf("%s is the primary", p)
		}
		return err
	})
	report := w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, tp.node("db2"))
	probe.Check(t)
	code, out, _ := runCLI(t, nil, "events", tp.name, "-f", r.path, "--json")
	var evs []reconcile.Event
	if code != exitOK || json.Unmarshal([]byte(out), &evs) != nil {
		t.Fatalf("pacsd events: exit %d\n%s", code, out)
	}
	found := false
	for _, ev := range evs {
		found = found || ev.Kind == "failover" && ev.Node == "db1" && ev.Target == "db2" && ev.Result == "ok: db2 promoted" && strings.Contains(ev.Reason, "pacsd failover db2")
	}
	if !found {
		t.Errorf("no event of the failover by hand in the history:\n%s", out)
	}
}
