package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
)

// TestBenchStandbyRemoved measures a standby removed with `docker rm -f`
// until it streams again: pacsd run keeping one cluster, against the floor of
// re-creating the same container by hand on its data (same image, env,
// mounts, network and aliases, the same password file placed before start)
// on a second cluster that no daemon watches. Both sides are polled every
// 20 ms until the standby streams. Target: a ratio of at most 1.3.
func TestBenchStandbyRemoved(t *testing.T) {
	bench.Require(t)
	eP, eH := e2e.Require(t), e2e.Require(t)
	// The daemon's cluster; resync as shipped: the repair comes from the event.
	tpP := benchTopology(t, eP, "db1", "db2")
	r := startDaemon(t, tpP, "30s")
	r.waitReady(t, 5*time.Minute)
	benchStreaming(t, tpP)
	// The cluster repaired by hand: converged once by apply, then left alone.
	tpH := benchTopology(t, eH, "db1", "db2")
	tpH.apply(t)
	benchStreaming(t, tpH)

	pacsd := func(t *testing.T) time.Duration {
		b := &driftBed{e: eP, tp: tpP}
		settle(t, tpP)
		start := time.Now()
		if err := eP.Docker.ContainerRemove(eP.Ctx(time.Minute), tpP.container("db2"), container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		d := pollFast(t, 3*time.Minute, "db2 streaming again (pacsd)", func() error { return b.streamingAgain("db2") }).Sub(start)
		t.Logf("where the time went (offsets from docker rm -f):\n%s", timeline(r.log.String(), start))
		return d
	}
	byHand := func(t *testing.T) time.Duration {
		b := &driftBed{e: eH, tp: tpH}
		settle(t, tpH)
		ctx := eH.Ctx(3 * time.Minute)
		name := tpH.container("db2")
		// Before the fault: what `docker run` needs to make the same container.
		old, err := eH.Docker.ContainerInspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		secrets := copyOut(t, eH, old.ID, "/run/pacsd")
		endpoints := map[string]*network.EndpointSettings{}
		for net, ep := range old.NetworkSettings.Networks {
			aliases := slices.DeleteFunc(slices.Clone(ep.Aliases), func(a string) bool { return a == old.ID[:12] })
			endpoints[net] = &network.EndpointSettings{Aliases: aliases}
		}

		start := time.Now()
		if err := eH.Docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		c, err := eH.Docker.ContainerCreate(ctx, old.Config, old.HostConfig, &network.NetworkingConfig{EndpointsConfig: endpoints}, nil, name)
		if err != nil {
			t.Fatalf("while re-creating %s by hand: %v", name, err)
		}
		if err := eH.Docker.CopyToContainer(ctx, c.ID, "/run", bytes.NewReader(secrets), container.CopyToContainerOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := eH.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		return pollFast(t, 3*time.Minute, "db2 streaming again (by hand)", func() error { return b.streamingAgain("db2") }).Sub(start)
	}
	const scenario = "a standby removed with docker rm -f until it streams again, pacsd run watching"
	p, h := bench.Compare(t, scenario, bench.Runs(5), pacsd, byHand)
	hand := bench.NewSide("re-creating the same container by hand on its data (docker create, cp, start)", h.Seconds())
	bench.Record(t, bench.NewRow("standby-rm", scenario, "s", bench.NewSide("pacsd run, repair from the engine's event", p.Seconds()), &hand, bench.Ratio("<=", 1.3)))
}

// timeline returns the daemon's log lines since start, each with its offset
// from start and what it says, one a line.
func timeline(log string, start time.Time) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Time                                      time.Time
			Msg, Action, Target, Node, Type, Duration string
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Time.Before(start) {
			continue
		}
		fmt.Fprintf(&b, "  +%.3fs %s %s %s %s %s %s\n", l.Time.Sub(start).Seconds(), l.Msg, l.Type, l.Action, l.Node, l.Target, l.Duration)
	}
	return b.String()
}

// settle lets the last repair finish on both sides alike before a run: the
// standbys stream and nothing is left over from the previous run.
func settle(t *testing.T, tp *topology) {
	t.Helper()
	benchStreaming(t, tp)
	time.Sleep(3 * time.Second)
}

// copyOut returns a tar stream of path in the container (as `docker cp`).
func copyOut(t *testing.T, e *e2e.Env, id, path string) []byte {
	t.Helper()
	rc, _, err := e.Docker.CopyFromContainer(e.Ctx(time.Minute), id, path)
	if err != nil {
		t.Fatalf("while copying %s out of %s: %v", path, id[:12], err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBenchReloadEdit measures the time from a saved edit of a reloadable
// setting (work_mem) until SHOW on the primary returns the new value, with
// pacsd run on a primary and a standby. Target: a median under 0.5 s.
func TestBenchReloadEdit(t *testing.T) {
	bench.Require(t)
	e := e2e.Require(t)
	tp := benchTopology(t, e, "db1", "db2")
	tp.extra = `  settings = { work_mem = "8MB" }`
	r := startDaemon(t, tp, "30s")
	r.waitReady(t, 5*time.Minute)
	benchStreaming(t, tp)

	ctx := e.Ctx(10 * time.Minute)
	conn, err := pgx.Connect(ctx, tp.node("db1").DSN("", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	show := func() (string, error) {
		var v string
		err := conn.QueryRow(ctx, "SHOW work_mem").Scan(&v)
		return v, err
	}

	var took bench.Sample
	for i := 0; i < bench.Runs(5); i++ {
		r.settled(t)
		time.Sleep(2 * time.Second)
		want := fmt.Sprintf("%dMB", 9+i)
		tp.extra = fmt.Sprintf("  settings = { work_mem = %q }", want)
		start := time.Now()
		r.save(t, "")
		for {
			v, err := show()
			if err != nil {
				t.Fatal(err)
			}
			if v == want {
				break
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("SHOW work_mem still %s a minute after the edit, want %s", v, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Since(start)
		t.Logf("run %d: saved work_mem = %s to SHOW on the primary: %.3fs; where the time went:\n%s", i+1, want, d.Seconds(), timeline(r.log.String(), start))
		took = append(took, d)
	}
	bench.Record(t, bench.NewRow("reload-edit", "a saved edit of a reloadable setting until SHOW on the primary returns it", "s",
		bench.NewSide("pacsd run, from the file's rename", took.Seconds()), nil, bench.Max("<", 0.5)))
}

// TestBenchIdle measures the daemon's idle footprint as its own process:
// pacsd run (built with go build) on one cluster of three nodes, sampled
// once a second over 60 s after it is ready. Target: RSS under 30 MB and CPU
// under 0.5% of one core.
func TestBenchIdle(t *testing.T) {
	bench.Require(t)
	e := e2e.Require(t)
	tp := benchTopology(t, e, "db1", "db2", "db3")
	tp.noDaemon = true // the daemon block below, with its own listen address
	tp.write(t)
	listen := freePort(t)
	src, err := os.ReadFile(tp.path)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped resync (30s): idle includes its passes.
	daemonBlock := fmt.Sprintf("\ndaemon {\n  listen    = %q\n  state_dir = %q\n}\n", listen, filepath.Join(tp.dir, "state"))
	if err := os.WriteFile(tp.path, append(src, daemonBlock...), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, tp.path)
	r := &daemonRun{listen: listen}
	took := waitFor(t, 8*time.Minute, "/readyz", func() error {
		p.running(t)
		code, body, err := r.get("/readyz")
		if err == nil && code != 200 {
			err = fmt.Errorf("%d %s", code, body)
		}
		return err
	})
	t.Logf("pid %d: from nothing to /readyz 200 on three nodes: %.1fs", p.cmd.Process.Pid, took.Seconds())
	benchStreaming(t, tp)
	time.Sleep(5 * time.Second) // let the converging pass's leftovers go

	tick := clockTicks(t)
	const window = 60 * time.Second
	pid := p.cmd.Process.Pid
	cpu0, start := cpuTicks(t, pid), time.Now()
	var rss []int
	for time.Since(start) < window {
		rss = append(rss, rssKB(t, pid))
		time.Sleep(time.Second)
	}
	cpu1, elapsed := cpuTicks(t, pid), time.Since(start)
	rss = append(rss, rssKB(t, pid))
	var sum int
	for _, v := range rss {
		sum += v
	}
	cpuPct := float64(cpu1-cpu0) / float64(tick) / elapsed.Seconds() * 100
	maxKB := slices.Max(rss)
	p.running(t)
	scenario := fmt.Sprintf("idle pacsd run, one cluster of three nodes, %.0f s", elapsed.Seconds())
	mem := bench.NewRow("idle-rss", scenario+": the largest RSS of samples taken once a second", "MB",
		bench.NewSide("pacsd run (its own process)", []float64{float64(maxKB) * 1024 / 1e6}), nil, bench.Max("<", 30))
	mem.Note = fmt.Sprintf("%d samples, mean %.1f MB", len(rss), float64(sum)/float64(len(rss))*1024/1e6)
	bench.Record(t, mem)
	cpu := bench.NewRow("idle-cpu", scenario+": CPU time over the window, in % of one core", "%",
		bench.NewSide("pacsd run (its own process)", []float64{cpuPct}), nil, bench.Max("<", 0.5))
	cpu.Note = fmt.Sprintf("%d ticks of 1/%d s", cpu1-cpu0, tick)
	bench.Record(t, cpu)
}

// clockTicks returns the kernel's clock ticks per second (USER_HZ).
func clockTicks(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n <= 0 {
		return 100
	}
	return n
}

// cpuTicks returns utime + stime of pid from /proc/<pid>/stat.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which may hold spaces: state is field 3,
	// utime and stime are fields 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.Atoi(f[11])
	stime, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("unexpected /proc/%d/stat: %s", pid, b)
	}
	return utime + stime
}

// rssKB returns VmRSS of pid in kB from /proc/<pid>/status.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("unexpected VmRSS line %q", line)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
