package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
)

// failoverBed is a running daemon on a three-node cluster with automatic
// failover, a writer recording every acknowledged commit and a probe checking
// every 100 ms that at most one node accepts writes.
type failoverBed struct {
	tp    *topology
	r     *daemonRun
	w     *e2e.Writer
	probe *e2e.Probe
}

func newFailoverBed(t *testing.T, synchronous bool) *failoverBed {
	t.Helper()
	e := e2e.Require(t)
	return failoverBedOn(t, newTopology(t, e, "db1", "db2", "db3"), synchronous)
}

// failoverBedOn is newFailoverBed on the nodes of tp.
func failoverBedOn(t *testing.T, tp *topology, synchronous bool) *failoverBed {
	t.Helper()
	e := tp.e
	if synchronous {
		tp.replication = "    synchronous = true"
	}
	tp.extra = `  failover {
    automatic = true
    after     = "1s"
    max_lag   = "16MB"
  }
`
	r := startDaemon(t, tp, "2s")
	r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	r.watching(t, tp, "db1")
	b := &failoverBed{tp: tp, r: r}
	b.w = e.StartWriter(tp.nodesOf(), "failover_writes")
	b.probe = e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)
	return b
}

// writable returns the one node that accepts writes, or an error.
func (b *failoverBed) writable() (string, error) {
	var ws []string
	for _, n := range b.tp.nodes {
		if b.tp.node(n).Writable() == nil {
			ws = append(ws, n)
		}
	}
	if len(ws) != 1 {
		return "", fmt.Errorf("writable nodes: %v", ws)
	}
	return ws[0], nil
}

// failedOver waits until a node other than old accepts writes and returns it
// and how long that took from start.
func (b *failoverBed) failedOver(t *testing.T, old string, start time.Time) string {
	t.Helper()
	var now string
	waitFor(t, time.Minute, "a standby promoted in place of "+old, func() error {
		n, err := b.writable()
		if err == nil && n == old {
			err = errors.New("the old primary still accepts writes")
		}
		now = n
		return err
	})
	t.Logf("failover from %s to %s: a write commits on the new primary %.2fs after the fault", old, now, time.Since(start).Seconds())
	for _, l := range strings.Split(b.r.log.String(), "\n") {
		for _, m := range []string{`"primary lost"`, `"old primary fenced"`, `"failover: standby promoted"`, `"failover done"`} {
			if strings.Contains(l, `"msg":`+m) {
				t.Log(l)
			}
		}
	}
	return now
}

// rejoined waits until every node but primary streams from it.
func (b *failoverBed) rejoined(t *testing.T, primary string) {
	t.Helper()
	b.tp.primary = primary // what runs (the file is not edited)
	defer func() { b.tp.primary = "db1" }()
	var late string
	ok := e2e.Poll(2*time.Minute, func() error {
		for _, n := range b.tp.nodes {
			if n == primary {
				continue
			}
			if err := b.tp.node(n).Streaming(); err != nil {
				late = n
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	})
	if ok != nil {
		logs := b.tp.node(late).Logs()
		if len(logs) > 4000 {
			logs = logs[len(logs)-4000:]
		}
		t.Fatalf("waited 2m for every other node to stream from %s: %v\nlog of %s:\n%s", primary, ok, late, logs)
	}
	b.r.watching(t, b.tp, primary)
}

// watching waits until the daemon's failover supervisor has seen primary
// healthy and, with synchronous replication, every other node of tp among
// its synchronous standbys: until then a lost primary is rightly not failed
// over (no standby is known to hold every acknowledged commit), so a test
// that kills it sooner tests the refusal, not the failover.
func (r *daemonRun) watching(t *testing.T, tp *topology, primary string) {
	t.Helper()
	synchronous := strings.Contains(tp.replication, "synchronous = true")
	waitFor(t, time.Minute, "the supervisor's sight of "+primary+" with its synchronous standbys", func() error {
		st, err := r.status()
		if err != nil {
			return err
		}
		cs := st.Clusters[tp.name]
		if cs == nil || cs.PrimarySeen == nil || cs.PrimarySeen.Node != primary {
			return fmt.Errorf("primary seen: %+v", cs)
		}
		for _, n := range tp.nodes {
			if synchronous && n != primary && !slices.Contains(cs.PrimarySeen.SyncStandbys, n) {
				return fmt.Errorf("%s is not among the synchronous standbys seen: %v", n, cs.PrimarySeen.SyncStandbys)
			}
		}
		return nil
	})
}

func (b *failoverBed) finish(t *testing.T, primary string) {
	t.Helper()
	report := b.w.Stop()
	t.Logf("writer: acknowledged %d, longest gap %s", len(report.Acked), report.LongestGap)
	report.CheckNoLoss(t, b.tp.node(primary))
	b.probe.Check(t)
}

// TestE2EFailover proves automatic failover for a killed, a frozen and a
// cut-off primary, one after the other on the same cluster: each time the
// old primary is fenced, a standby is promoted, no acknowledged write is lost
// (replication is synchronous: with asynchronous replication the last commits
// may be lost, bounded by max_lag),
// never two nodes accept writes, and the old primary rejoins as a standby.
func TestE2EFailover(t *testing.T) {
	b := newFailoverBed(t, true)
	e := b.tp.e
	ctx := e.Ctx(10 * time.Minute)

	b.routes(t, "db1", "db1", "db2", "db3")

	// Killed.
	run := e2e.Fault(t, "docker kill of the primary", faults.PrimaryKilled)
	start := time.Now()
	t.Logf("kill at %s", start.UTC().Format(time.RFC3339Nano))
	if err := e.Docker.ContainerKill(ctx, b.tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	p1 := b.failedOver(t, "db1", start)
	b.rejoined(t, p1)
	run.Converged()
	b.routes(t, p1, b.tp.nodes...)

	// Frozen.
	run = e2e.Fault(t, "docker pause of the primary", faults.PrimaryFrozen)
	start = time.Now()
	if err := e.Docker.ContainerPause(ctx, b.tp.container(p1)); err != nil {
		t.Fatal(err)
	}
	p2 := b.failedOver(t, p1, start)
	if err := e.Docker.ContainerUnpause(ctx, b.tp.container(p1)); err != nil && !strings.Contains(err.Error(), "not paused") && !strings.Contains(err.Error(), "is not running") {
		t.Logf("unpause %s: %v", p1, err)
	}
	b.rejoined(t, p2)
	run.Converged()

	// Cut off from the network.
	run = e2e.Fault(t, "docker network disconnect of the primary", faults.PrimaryCutOff)
	start = time.Now()
	if err := e.Docker.NetworkDisconnect(ctx, b.tp.name, b.tp.container(p2), true); err != nil {
		t.Fatal(err)
	}
	p3 := b.failedOver(t, p2, start)
	b.rejoined(t, p3)
	run.Converged()
	b.finish(t, p3)

	// pacsd never switches back by itself: plan says the file differs.
	code, _, stderr := runCLI(t, nil, "plan", "-f", b.r.path)
	if code != exitOK || !strings.Contains(stderr, "Primary Differs From Spec") {
		t.Errorf("plan after failovers: exit %d, stderr:\n%s", code, stderr)
	}
	if err := b.r.metric(t, `pacsd_failovers_total{cluster="`+b.tp.name+`",result="promoted"} 3`); err != nil {
		t.Error(err)
	}
}

// TestE2EFailoverRefusesLaggingStandby proves that a standby further behind
// than max_lag is never promoted: both standbys are frozen while the primary
// writes more than max_lag, the primary is killed, the standbys are thawed
// (reachable, but behind for good): nobody is promoted, and pacsd says why.
func TestE2EFailoverRefusesLaggingStandby(t *testing.T) {
	b := newFailoverBed(t, false)
	e := b.tp.e
	ctx := e.Ctx(10 * time.Minute)
	report := b.w.Stop()
	// db2 and db3 fall behind: their WAL receivers cannot run while frozen.
	for _, n := range []string{"db2", "db3"} {
		if err := e.Docker.ContainerPause(ctx, b.tp.container(n)); err != nil {
			t.Fatal(err)
		}
	}
	// More than max_lag (16MB) of WAL on the primary.
	b.tp.node("db1").ExecSQL("CREATE TABLE bulk AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 150000) g")
	// The supervisor must have seen the primary's position after that:
	// max_lag bounds the lag behind the last position pacsd saw (a check
	// slowed down by the bulk write may be seconds old).
	written := b.tp.node("db1").QueryString("SELECT pg_current_wal_lsn()::text")
	waitFor(t, time.Minute, "the supervisor to see the primary at "+written, func() error {
		st, err := b.r.status()
		if err != nil {
			return err
		}
		cs := st.Clusters[b.tp.name]
		if cs == nil || cs.PrimarySeen == nil {
			return errors.New("no sight of the primary in /status")
		}
		if lsnOf(cs.PrimarySeen.WAL) < lsnOf(written) {
			return fmt.Errorf("seen at %s", cs.PrimarySeen.WAL)
		}
		return nil
	})
	// Kill the primary while the standbys are frozen, then thaw them: they
	// answer again, but can never receive what the primary wrote.
	run := e2e.Fault(t, "standbys beyond max_lag, primary killed", faults.StandbyBehind)
	if err := e.Docker.ContainerKill(ctx, b.tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"db2", "db3"} {
		if err := e.Docker.ContainerUnpause(ctx, b.tp.container(n)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, "the failover to be refused", func() error {
		return b.r.metric(t, `pacsd_failovers_total{cluster="`+b.tp.name+`",result="refused"} 1`, `pacsd_failovers_total{cluster="`+b.tp.name+`",result="refused"} 2`)
	})
	run.Converged()
	if !strings.Contains(b.r.log.String(), "no standby qualifies for promotion") || !strings.Contains(b.r.log.String(), "max_lag") {
		t.Errorf("the refusal does not say why:\n%s", b.r.log.String())
	}
	for _, n := range []string{"db2", "db3"} {
		if err := b.tp.node(n).Writable(); err == nil {
			t.Errorf("%s was promoted although it was beyond max_lag", n)
		}
	}
	c, err := e.Docker.ContainerInspect(ctx, b.tp.container("db1"))
	if err != nil || c.State.Running {
		t.Errorf("the old primary was started again by pacsd (running %v, err %v)", c.State.Running, err)
	}
	// The old primary was left as it was: started by hand, it is the one
	// primary again with every acknowledged commit.
	if err := e.Docker.ContainerStart(ctx, b.tp.container("db1"), container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	b.tp.node("db1").WaitWritable(time.Minute)
	report.CheckNoLoss(t, b.tp.node("db1"))
	b.probe.Check(t)
}

// restartEngine restarts the local Docker engine the way a host restart or an
// upgrade does: every container stops (none has a restart policy that brings
// it back, with automatic failover). It fails the test when it cannot.
func restartEngine(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("restarting the Docker engine needs root")
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.Command("systemctl", "restart", "docker").CombinedOutput(); err == nil {
			return
		} else {
			t.Logf("systemctl restart docker: %v: %s; trying the engine's pid file", err, out)
		}
	}
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("cannot restart the Docker engine: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("cannot restart the Docker engine: pid file: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("cannot stop the Docker engine (pid %d): %v", pid, err)
	}
	if err := e2e.WaitProcessGone(pid, 3*time.Minute); err != nil {
		t.Fatalf("the Docker engine did not stop: %v", err)
	}
	if out, err := exec.Command("bash", "../../scripts/engine.sh").CombinedOutput(); err != nil {
		t.Fatalf("cannot start the Docker engine again: %v\n%s", err, out)
	}
}

// TestE2EEngineRestart proves that a restart of the Docker engine, which
// stops every container, brings the cluster back converged with the same
// primary: no failover, never two nodes accepting writes.
func TestE2EEngineRestart(t *testing.T) {
	b := newFailoverBed(t, false)
	report := b.w.Stop()
	run := e2e.Fault(t, "dockerd restarted", faults.EngineRestarted)
	restartEngine(t)
	waitFor(t, 3*time.Minute, "db1 to accept writes again", func() error { return b.tp.node("db1").Writable() })
	b.rejoined(t, "db1")
	run.Converged()
	report.CheckNoLoss(t, b.tp.node("db1"))
	b.probe.Check(t)
	st, err := os.ReadFile(filepath.Join(b.r.stateDir, "cluster-"+b.tp.name+".json"))
	if err != nil || !strings.Contains(string(st), `"acting": "db1"`) || !strings.Contains(string(st), `"epoch": 0`) {
		t.Errorf("the acting primary changed across an engine restart: %s (%v)", st, err)
	}
	if strings.Contains(b.r.log.String(), "failover: standby promoted") {
		t.Error("an engine restart caused a failover")
	}
}

// TestE2EEngineRestartMidFailover restarts the Docker engine in the middle
// of an automatic failover, right after pacsd found the killed primary lost:
// every container stops with the engine (restart policy no). Afterwards one
// node is the primary and every other streams from it, no acknowledged write
// is lost (synchronous replication), and never two nodes accepted writes.
func TestE2EEngineRestartMidFailover(t *testing.T) {
	b := newFailoverBed(t, true)
	e := b.tp.e
	run := e2e.Fault(t, "dockerd restarted mid-failover", faults.EngineRestarted)
	if err := e.Docker.ContainerKill(e.Ctx(time.Minute), b.tp.container("db1"), "KILL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "pacsd to find the primary lost", func() error {
		if !strings.Contains(b.r.log.String(), `"msg":"primary lost"`) {
			return errors.New("not yet")
		}
		return nil
	})
	restartEngine(t)
	var now string
	took := waitFor(t, 3*time.Minute, "one primary, every other node streaming from it", func() error {
		var err error
		now, err = onePrimary(b.tp)
		return err
	})
	run.Converged()
	t.Logf("after the engine restart: %s is the primary, the others stream (%.1fs)", now, took.Seconds())
	b.finish(t, now)
}

// TestE2ESwitchoverBesideDaemon runs `pacsd switchover` on the command line
// while pacsd run keeps the cluster with automatic failover after 1 s. The
// two share the cluster's lock: the primary that the switchover stops never
// looks lost to the daemon, so nothing fails over; no acknowledged write is
// lost, never two nodes accept writes, and the daemon rejoins the old
// primary without switching back.
func TestE2ESwitchoverBesideDaemon(t *testing.T) {
	b := newFailoverBed(t, true)
	run := e2e.Fault(t, "pacsd switchover beside pacsd run", faults.Switchover)
	b.switchoverBesideDaemon(t, "db2")
	run.Converged()
	time.Sleep(2 * time.Second) // time enough for a wrong failover (after = 1s)
	if n, err := b.writable(); err != nil || n != "db2" {
		t.Errorf("after the switchover: writable %q, %v; want db2 alone", n, err)
	}
	for _, l := range strings.Split(b.r.log.String(), "\n") {
		if strings.Contains(l, `"msg":"primary lost"`) || strings.Contains(l, `"msg":"failover`) {
			t.Errorf("the daemon took the switchover for a lost primary: %s", l)
		}
	}
	b.finish(t, "db2")
}

// switchoverBesideDaemon runs 'pacsd switchover node' on the daemon's own
// file (the same state directory, as in production) and waits until node is
// the primary and the others stream from it.
func (b *failoverBed) switchoverBesideDaemon(t *testing.T, node string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, "switchover", node, "-f", b.r.path)
	if code != exitOK || !strings.Contains(stdout, strconv.Quote(node)+" is the primary") {
		t.Fatalf("pacsd switchover %s: exit %d\n%s%s", node, code, stdout, stderr)
	}
	b.tp.node(node).WaitWritable(30 * time.Second)
	b.rejoined(t, node)
}

// onePrimary returns the one node of tp that accepts writes when every
// other node streams (from it); otherwise an error says what is not so yet.
func onePrimary(tp *topology) (string, error) {
	nodes := map[string]*e2e.Node{}
	var writable []string
	for _, n := range tp.nodes {
		h, err := tp.tryNode(n)
		if err != nil {
			return "", err
		}
		nodes[n] = h
		if h.Writable() == nil {
			writable = append(writable, n)
		}
	}
	if len(writable) != 1 {
		return "", fmt.Errorf("writable nodes: %v", writable)
	}
	for _, n := range tp.nodes {
		if n != writable[0] {
			if err := nodes[n].Streaming(); err != nil {
				return "", fmt.Errorf("%s: %w", n, err)
			}
		}
	}
	return writable[0], nil
}

// tryNode is node, but a node of the machine's engine without a container
// (being built anew) is an error, not a failed test.
func (tp *topology) tryNode(node string) (*e2e.Node, error) {
	if tp.hostOf[node] != nil {
		return tp.node(node), nil
	}
	return tp.e.TryContainer(tp.container(node), tp.name, "pacs", tp.pacsPW, "pacsdb")
}

// TestE2EFailoverPacsdKilled kills pacsd (SIGKILL, its own process) in the
// middle of automatic failovers: once right after it fenced the old primary
// (before or while it records and promotes a standby), once right after the
// promotion (before it repoints the other standbys). Each time a new pacsd
// takes over. Never two nodes accept writes, no acknowledged write is lost
// (synchronous replication), and the cluster ends with one primary that
// every other node streams from.
func TestE2EFailoverPacsdKilled(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.replication = "    synchronous = true"
	tp.extra = "  failover {\n    automatic = true\n    after     = \"1s\"\n  }\n"
	tp.noDaemon = true
	r := &daemonRun{tp: tp, path: filepath.Join(tp.dir, "pacs-run.hcl"), stateDir: filepath.Join(tp.dir, "state"), listen: freePort(t), resync: "2s"}
	r.save(t, "")
	p := startProcess(t, r.path)
	r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	r.watching(t, tp, "db1")
	w := e.StartWriter(tp.nodesOf(), "killed_writes")
	probe := e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)

	primary := "db1"
	for _, at := range []string{"old primary fenced", "failover: standby promoted"} {
		run := e2e.Fault(t, "pacsd killed at "+at, faults.PacsdKilledMidWork)
		since := p.mark()
		if err := e.Docker.ContainerKill(e.Ctx(time.Minute), tp.container(primary), "KILL"); err != nil {
			t.Fatal(err)
		}
		line := p.killAt(t, at, since, time.Minute)
		t.Logf("primary %s killed; pacsd killed at: %s", primary, line)
		p = startProcess(t, r.path)
		var now string
		took := waitFor(t, 3*time.Minute, "one primary, every other node streaming from it", func() error {
			p.running(t)
			var err error
			now, err = onePrimary(tp)
			return err
		})
		run.Converged()
		t.Logf("after the new pacsd started: %s is the primary, the others stream (%.1fs)", now, took.Seconds())
		r.watching(t, tp, now)
		primary = now
		time.Sleep(time.Second)
	}
	report := w.Stop()
	t.Logf("writer: acknowledged %d, longest gap %s", len(report.Acked), report.LongestGap)
	report.CheckNoLoss(t, tp.node(primary))
	probe.Check(t)
}

// TestE2EFailoverEngineUnreachable puts the primary and its standby on two
// test hosts and cuts the primary's host off (a network partition: its
// engine's calls hang, its server lives on). pacsd sees the primary lost
// but cannot confirm it stopped, so it promotes nothing and says so, again
// and again; once the partition heals, the primary is still the one
// primary and lost no acknowledged write.
func TestE2EFailoverEngineUnreachable(t *testing.T) {
	e := e2e.Require(t)
	hosts := e2e.RequireTestHosts(t, 2)
	tp := newTopology(t, e, "db1", "db2")
	tp.replication = "    synchronous = true"
	tp.extra = "  failover {\n    automatic = true\n    after     = \"1s\"\n  }\n"
	hostsTopology(t, tp, hosts, 15432)
	r := startDaemon(t, tp, "2s")
	r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	w := e.StartWriter(tp.nodesOf(), "unreachable_writes")
	probe := e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)

	run := e2e.Fault(t, "the primary's host partitioned", faults.EngineUnreachable)
	hosts[0].Partition()
	var refused string
	took := waitFor(t, time.Minute, "a refused failover", func() error {
		for _, l := range strings.Split(r.log.String(), "\n") {
			if strings.Contains(l, `"msg":"failover refused"`) {
				refused = l
				return nil
			}
		}
		return errors.New("none yet")
	})
	t.Logf("%.1fs after the cut: %s", took.Seconds(), refused)
	if !strings.Contains(refused, "cannot be confirmed stopped") {
		t.Errorf("the refusal does not say that the old primary cannot be confirmed stopped: %s", refused)
	}
	// It tries again (5 s after a refusal, then the fence times out again)
	// and refuses again.
	waitFor(t, time.Minute, "a second refused failover", func() error {
		if n := strings.Count(r.log.String(), `"msg":"failover refused"`); n < 2 {
			return fmt.Errorf("%d refused", n)
		}
		return nil
	})
	if err := tp.node("db2").Writable(); err == nil {
		t.Fatal("db2 was promoted while the old primary's engine could not be reached")
	}
	if strings.Contains(r.log.String(), `"msg":"failover: standby promoted"`) {
		t.Error("the log says a standby was promoted")
	}
	if _, body, err := r.get("/status"); err != nil || !strings.Contains(body, "cannot be confirmed stopped") {
		t.Errorf("/status does not say why no failover happened (%v):\n%s", err, body)
	}
	if _, body, err := r.get("/metrics"); err != nil || !strings.Contains(body, fmt.Sprintf(`pacsd_failovers_total{cluster=%q,result="refused"} `, tp.name)) ||
		strings.Contains(body, fmt.Sprintf(`pacsd_failovers_total{cluster=%q,result="promoted"} `, tp.name)) {
		t.Errorf("/metrics does not count refused failovers and no promotion (%v)", err)
	}

	// The partition heals: the primary was never fenced, so it stays the
	// primary (the first calls after the heal may fail; that is no reason
	// for a failover).
	hosts[0].Heal()
	waitFor(t, 2*time.Minute, "db1 the one primary again, db2 streaming from it", func() error {
		n, err := onePrimary(tp)
		if err == nil && n != "db1" {
			err = fmt.Errorf("%s is the primary", n)
		}
		return err
	})
	run.Converged()
	report := w.Stop()
	t.Logf("writer: acknowledged %d, longest gap %s", len(report.Acked), report.LongestGap)
	report.CheckNoLoss(t, tp.node("db1"))
	probe.Check(t)
}

// routes checks, until each answers as it should (a minute at most), the
// daemon's load balancer checks of nodes: /primary and /read-write 200 for
// primary only, /replica 200 for the others (streaming standbys),
// /read-only 200 for all.
func (b *failoverBed) routes(t *testing.T, primary string, nodes ...string) {
	t.Helper()
	waitFor(t, time.Minute, "the load balancer's checks answering for primary "+primary, func() error {
		for _, n := range nodes {
			for _, check := range []string{"primary", "read-write", "replica", "read-only"} {
				want := http.StatusOK
				if (check == "replica") == (n == primary) && check != "read-only" {
					want = http.StatusServiceUnavailable
				}
				code, body, err := b.r.get("/" + check + "?node=" + n)
				if err != nil || code != want {
					return fmt.Errorf("/%s?node=%s: %d %v %s, want %d", check, n, code, err, body, want)
				}
			}
		}
		return nil
	})
}

// lsnOf reads a WAL position as PostgreSQL prints it ("16/B374D848"); 0
// for anything else.
func lsnOf(s string) uint64 {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0
	}
	return uint64(hi)<<32 | uint64(lo)
}
