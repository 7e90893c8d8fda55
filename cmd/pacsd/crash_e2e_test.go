package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
)

// crashBed is pacsd run as a process of its own on a cluster of three nodes
// with synchronous replication and automatic failover, under writes and the
// probe, to be killed with SIGKILL at seeded random moments of its work.
type crashBed struct {
	tp    *topology
	r     *daemonRun
	p     *process
	w     *e2e.Writer
	probe *e2e.Probe
	seed  int64
	rnd   *rand.Rand
	// extra is the cluster's HCL but for the setting crashApply changes.
	extra   string
	buffers int // shared_buffers in the file, in MB
	runs    int
}

// crashKind is one kind of work pacsd is killed in: inject starts it and
// returns the message of pacsd's log after which the random delay counts
// ("" counts from the injection); maxDelay bounds the delay (about as long
// as the work takes); rows are the matrix's rows a run proves.
type crashKind struct {
	name     string
	maxDelay time.Duration
	rows     []string
	inject   func(b *crashBed, t *testing.T) string
}

// crashKinds are the kinds of work, in the order a round runs them.
var crashKinds = []crashKind{
	{name: "apply", maxDelay: 4 * time.Second, rows: []string{faults.PacsdKilledAtRandom}, inject: (*crashBed).restartSetting},
	{name: "base backup", maxDelay: 2 * time.Second, rows: []string{faults.PacsdKilledAtRandom, faults.PacsdKilledMidWork}, inject: (*crashBed).rebuildStandby},
	{name: "switchover", maxDelay: 3 * time.Second, rows: []string{faults.PacsdKilledAtRandom}, inject: (*crashBed).switchOver},
	{name: "failover", maxDelay: 3 * time.Second, rows: []string{faults.PacsdKilledAtRandom, faults.PacsdKilledMidWork}, inject: (*crashBed).killPrimary},
	{name: "rewind", maxDelay: 2 * time.Second, rows: []string{faults.PacsdKilledAtRandom}, inject: (*crashBed).rewindOldPrimary},
}

// faultSeed returns PACSD_FAULT_SEED, or a new seed.
func faultSeed(t *testing.T) int64 {
	t.Helper()
	if s := os.Getenv(faults.SeedEnv); s != "" {
		seed, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q is not a number", faults.SeedEnv, s)
		}
		return seed
	}
	return time.Now().UnixNano()
}

func newCrashBed(t *testing.T) *crashBed {
	t.Helper()
	e := e2e.Require(t)
	seed := faultSeed(t)
	t.Logf("seed %d (replay with %s=%d)", seed, faults.SeedEnv, seed)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.replication = "    synchronous = true"
	b := &crashBed{tp: tp, seed: seed, rnd: rand.New(rand.NewPCG(uint64(seed), uint64(seed))), buffers: 128,
		extra: "  failover {\n    automatic = true\n    after     = \"1s\"\n  }\n"}
	tp.extra = b.extraHCL()
	tp.noDaemon = true
	b.r = &daemonRun{tp: tp, path: filepath.Join(tp.dir, "pacs-run.hcl"), stateDir: filepath.Join(tp.dir, "state"), listen: freePort(t), resync: "2s"}
	b.r.save(t, "")
	b.p = startProcess(t, b.r.path)
	b.r.waitReady(t, 3*time.Minute)
	tp.checkStreaming(t)
	b.r.watching(t, tp, "db1")
	b.w = e.StartWriter(tp.followNodes(), "crash_writes")
	b.probe = e.StartProbe(tp.followNodes())
	time.Sleep(time.Second)
	return b
}

// followNodes returns, at each call, handles on the nodes of tp (on the
// machine's engine) that have a container, for the writer and the probe:
// unlike nodesOf, a node whose container pacsd makes anew (a rebuild) is
// followed to its new container. Safe from any goroutine.
func (tp *topology) followNodes() func() []*e2e.Node {
	return func() []*e2e.Node {
		var out []*e2e.Node
		for _, n := range tp.nodes {
			if h, err := tp.tryNode(n); err == nil {
				out = append(out, h)
			}
		}
		return out
	}
}

func (b *crashBed) extraHCL() string {
	return b.extra + fmt.Sprintf("  settings = { shared_buffers = \"%dMB\" }\n", b.buffers)
}

// crash runs one kind: it injects the work, waits for its message in the
// log and a random delay, kills pacsd with SIGKILL, starts a new one and
// waits until it has converged the cluster.
func (b *crashBed) crash(t *testing.T, k crashKind) {
	t.Helper()
	b.runs++
	delay := time.Duration(b.rnd.Int64N(int64(k.maxDelay)))
	run := e2e.Fault(t, fmt.Sprintf("pacsd killed %s into a %s", delay.Round(time.Millisecond), k.name), k.rows...).Seeded(b.seed)
	since := b.p.mark()
	marker := k.inject(b, t)
	if marker != "" {
		waitFor(t, 2*time.Minute, "pacsd to log "+marker, func() error {
			if !strings.Contains(b.p.log.String()[since:], marker) {
				return errors.New("not yet")
			}
			return nil
		})
	}
	time.Sleep(delay)
	if err := b.p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.p.exited
	b.p.exited <- nil
	last := lastLines(b.p.log.String()[since:], 3)
	t.Logf("run %d: pacsd killed %s after %q (seed %d, replay with %s=%d); its last lines:\n%s", b.runs, delay, cmpOr(marker, "the injection"), b.seed, faults.SeedEnv, b.seed, last)
	start := time.Now()
	b.p = startProcess(t, b.r.path)
	now := b.converged(t, start)
	run.Converged()
	b.r.watching(t, b.tp, now)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// converged waits until the new pacsd has converged the cluster: one
// primary, every other node streaming from it, and a pass of the new
// pacsd that found nothing to do; it returns the primary.
func (b *crashBed) converged(t *testing.T, since time.Time) string {
	t.Helper()
	var now string
	waitFor(t, 3*time.Minute, "the new pacsd to converge the cluster", func() error {
		b.p.running(t)
		var err error
		if now, err = onePrimary(b.tp); err != nil {
			return err
		}
		st, err := b.r.status()
		if err != nil {
			return err
		}
		cs := st.Clusters[b.tp.name]
		if cs == nil || !cs.LastPass.After(since) || cs.Result != "ok" || len(cs.Actions) > 0 {
			return fmt.Errorf("last pass of the new pacsd: %+v", cs)
		}
		return nil
	})
	return now
}

// primary returns the node that accepts writes while every other streams
// from it, waiting a minute at most: a standby repointed by a reload may
// reconnect a moment after the pass that repointed it.
func (b *crashBed) primary(t *testing.T) string {
	t.Helper()
	var n string
	waitFor(t, time.Minute, "one primary, the others streaming", func() error {
		var err error
		n, err = onePrimary(b.tp)
		return err
	})
	return n
}

// standby returns a node that is neither the primary nor not.
func (b *crashBed) standby(t *testing.T, not string) string {
	t.Helper()
	p := b.primary(t)
	for _, n := range b.tp.nodes {
		if n != p && n != not {
			return n
		}
	}
	t.Fatalf("no standby but %s and %s", p, not)
	return ""
}

// restartSetting changes a setting that needs a restart of every node
// (standbys first, then the primary). Not one a hot standby needs at least
// as high as its primary's (max_connections and the like): lowering one of
// those leaves the standbys unable to start, since pacsd restarts them
// first (a known fault, not one of a crash).
func (b *crashBed) restartSetting(t *testing.T) string {
	b.buffers = 288 - b.buffers // 128, 160, 128, ...
	b.tp.extra = b.extraHCL()
	b.r.save(t, "")
	return `"msg":"file changed"`
}

// rebuildStandby removes a standby's container and volume: pacsd builds
// it again with a base backup.
func (b *crashBed) rebuildStandby(t *testing.T) string {
	n := b.standby(t, "")
	e := b.tp.e
	if err := e.Docker.ContainerRemove(e.Ctx(time.Minute), b.tp.container(n), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Docker.VolumeRemove(e.Ctx(time.Minute), b.tp.container(n)+"-data", true); err != nil {
		t.Fatal(err)
	}
	return `"work":"base backup"`
}

// switchOver names a standby as the primary in the file.
func (b *crashBed) switchOver(t *testing.T) string {
	b.tp.primary = b.standby(t, b.tp.primary)
	b.r.save(t, "")
	return `"msg":"file changed"`
}

// killPrimary kills the primary's container: pacsd fails over.
func (b *crashBed) killPrimary(t *testing.T) string {
	b.tp.node(b.primary(t)).Kill()
	return ""
}

// rewindOldPrimary kills the primary's container and waits until the
// failover is done: the old primary rejoins by pg_rewind.
func (b *crashBed) rewindOldPrimary(t *testing.T) string {
	b.tp.node(b.primary(t)).Kill()
	return `"work":"rewind"`
}

// finish stops the writer and the probe and checks them: nothing
// acknowledged lost on the primary, and every standby, caught up, holds
// every acknowledged commit too (a standby started on half-built data
// would not).
func (b *crashBed) finish(t *testing.T) {
	t.Helper()
	primary := b.primary(t)
	report := b.w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, b.tp.node(primary))
	for _, n := range b.tp.nodes {
		if n == primary {
			continue
		}
		var missing []int64
		err := e2e.Poll(30*time.Second, func() error {
			var err error
			if missing, err = report.Missing(b.tp.node(n)); err == nil && len(missing) > 0 {
				err = fmt.Errorf("%d acknowledged commits missing", len(missing))
			}
			return err
		})
		if err != nil {
			t.Errorf("standby %s: %v", n, err)
		}
	}
	b.probe.Check(t)
}

// TestE2ECrashPoints kills pacsd run (SIGKILL, its own process) once at a
// seeded random moment of each kind of its work: an apply that restarts
// every node, a standby's base backup, a switchover, a failover, and the old
// primary's pg_rewind after one. Each time a new pacsd converges the cluster
// (one primary, the others streaming, a pass with nothing to do); no
// acknowledged commit is lost (synchronous replication), every standby holds
// every one of them (none was started on half-built data), never two nodes
// accept writes. The seed is logged; PACSD_FAULT_SEED replays it. `make
// faults-long` runs many more (TestFaultCrashPoints).
func TestE2ECrashPoints(t *testing.T) {
	b := newCrashBed(t)
	for _, k := range crashKinds {
		b.crash(t, k)
	}
	b.finish(t)
}

// TestFaultCrashPoints is TestE2ECrashPoints with PACSD_FAULTS_RUNS runs
// (30 by default), the kinds in turn: `make faults` and `make faults-long`
// (100) run it.
func TestFaultCrashPoints(t *testing.T) {
	if os.Getenv(faults.LongEnv) != "1" {
		t.Skipf("the long fault runs: 'make faults' or 'make faults-long' (%s=1) run them", faults.LongEnv)
	}
	runs := 30
	if n, err := strconv.Atoi(os.Getenv(faults.RunsEnv)); err == nil && n > 0 {
		runs = n
	}
	b := newCrashBed(t)
	for i := 0; i < runs; i++ {
		b.crash(t, crashKinds[i%len(crashKinds)])
	}
	b.finish(t)
}
