package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
)

// nodesOf returns handles on every node of tp, for the writer and the probe.
// Handles are made once (in the test's goroutine) and kept: they must keep
// working from the writer's and the probe's goroutines while the engine is
// down, and pacsd keeps a node's container across failovers.
func (tp *topology) nodesOf() func() []*e2e.Node {
	var ns []*e2e.Node
	for _, n := range tp.nodes {
		ns = append(ns, tp.node(n))
	}
	return func() []*e2e.Node { return ns }
}

// applyOutput runs pacsd apply and returns what it logged; it fails the test
// unless apply converges.
func (tp *topology) applyOutput(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append(args, "-f", tp.path)...)
	if code != exitOK {
		t.Fatalf("pacsd %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pacsd %v said:\n%s%s", args, stdout, stderr)
		}
	})
	return stdout + stderr
}

// aliasesOf returns the aliases of a node's container on the cluster network.
func aliasesOf(t *testing.T, tp *topology, node string) []string {
	t.Helper()
	c, err := tp.e.Docker.ContainerInspect(tp.e.Ctx(time.Minute), tp.container(node))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if ep := c.NetworkSettings.Networks[tp.name]; ep != nil {
		for _, a := range ep.Aliases {
			if a != c.ID[:12] {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestE2ESwitchover switches over under writes, by editing primary and by
// `pacsd switchover`: no acknowledged write is lost, never two nodes accept
// writes, the old primary rejoins by pg_rewind (no base backup), the primary
// alias follows, and pacsd does not switch back to the file's primary after
// a switchover asked for on the command line.
func TestE2ESwitchover(t *testing.T) {
	e := e2e.Require(t)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.apply(t)
	tp.checkStreaming(t)

	w := e.StartWriter(tp.nodesOf(), "switchover_writes")
	probe := e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)

	// 1. By editing the file.
	run := e2e.Fault(t, "primary edited, pacsd apply", faults.Switchover)
	tp.primary = "db2"
	tp.write(t)
	tp.wantPlan(t, "switchover/switchover")
	out := tp.applyOutput(t, "apply")
	if strings.Contains(out, `"action":"base-backup"`) {
		t.Errorf("the switchover rebuilt a node with a base backup:\n%s", out)
	}
	if !strings.Contains(out, `"action":"rewind"`) {
		t.Errorf("the old primary did not rejoin by pg_rewind:\n%s", out)
	}
	tp.node("db2").WaitWritable(30 * time.Second)
	tp.checkStreaming(t)
	run.Converged()
	if got := aliasesOf(t, tp, "db2"); !slices.Contains(got, "db") {
		t.Errorf("the new primary's aliases are %v; want the primary alias db", got)
	}
	if got := aliasesOf(t, tp, "db1"); slices.Contains(got, "db") {
		t.Errorf("the old primary still carries the primary alias: %v", got)
	}
	time.Sleep(time.Second)

	// 2. By command, back to db1, while the file still names db2.
	run = e2e.Fault(t, "pacsd switchover", faults.Switchover)
	out = tp.applyOutput(t, "switchover", "db1")
	if !strings.Contains(out, `"db1" is the primary`) || !strings.Contains(out, `still names "db2"`) {
		t.Errorf("pacsd switchover db1 said:\n%s", out)
	}
	tp.node("db1").WaitWritable(30 * time.Second)
	run.Converged()
	time.Sleep(time.Second)
	report := w.Stop()
	t.Logf("writer: %s", report)
	report.CheckNoLoss(t, tp.node("db1"))
	probe.Check(t)
	if report.LongestGap > 15*time.Second {
		t.Errorf("writes stopped for %s during a switchover", report.LongestGap)
	}
	tp.primary = "db1" // what runs; the file keeps naming db2
	tp.checkStreaming(t)
	tp.primary = "db2"

	// The file's primary (db2) must not start a switchover back.
	code, _, stderr := runCLI(t, nil, "plan", "-f", tp.path)
	if code != exitOK || !strings.Contains(stderr, "Primary Differs From Spec") {
		t.Errorf("plan after a switchover by command: exit %d, stderr:\n%s", code, stderr)
	}
	tp.converged(t)
	if err := tp.node("db1").Writable(); err != nil {
		t.Errorf("db1 is no longer the primary after apply: %v", err)
	}
}
