package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
)

// untilWritable polls a node every 20 ms until a write commits on it and
// returns the time since start.
func untilWritable(t *testing.T, n *e2e.Node, start time.Time) time.Duration {
	t.Helper()
	deadline := start.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if n.Writable() == nil {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s accepted no write within 2 minutes", n.Name)
	return 0
}

// TestBenchFailover measures the time from `docker kill` of the primary until
// a write commits on the new primary, with pacsd's automatic failover
// (failover.after = 1s, asynchronous replication), against an oracle that
// kills and at once promotes the standby by hand. Target: a median under 2 s.
func TestBenchFailover(t *testing.T) {
	bench.Require(t)
	measureFailover(t, "failover", "docker kill of the primary until a write commits on the new primary (failover.after = 1s)", nil)
}

// measureFailover runs the failover scenario (see TestBenchFailover) on a
// primary db1 and a standby db2, placed by place (nil: on the machine's
// engine), and records it as row.
func measureFailover(t *testing.T, row, scenario string, place func(t *testing.T, tp *topology)) {
	t.Helper()
	cluster := func(t *testing.T, extra string) *topology {
		tp := benchTopology(t, e2e.Require(t), "db1", "db2")
		tp.extra = extra
		if place != nil {
			place(t, tp)
		}
		return tp
	}
	kill := func(t *testing.T, tp *topology) time.Time {
		start := time.Now()
		if err := tp.docker("db1").ContainerKill(tp.e.Ctx(time.Minute), tp.container("db1"), "KILL"); err != nil {
			t.Fatal(err)
		}
		return start
	}
	pacsd := func(t *testing.T) (d time.Duration) {
		t.Run("pacsd", func(t *testing.T) {
			tp := cluster(t, "  failover {\n    automatic = true\n    after     = \"1s\"\n  }\n")
			r := startDaemon(t, tp, "30s")
			r.waitReady(t, 3*time.Minute)
			db2 := tp.node("db2")
			db2.WaitStreaming(time.Minute)
			time.Sleep(time.Second) // the supervisor has seen a healthy primary
			start := kill(t, tp)
			d = untilWritable(t, db2, start)
			t.Logf("pacsd: %.2fs; where the time went (offsets from docker kill):\n%s", d.Seconds(), timeline(r.log.String(), start))
		})
		return d
	}
	oracle := func(t *testing.T) (d time.Duration) {
		t.Run("oracle", func(t *testing.T) {
			tp := cluster(t, "")
			tp.apply(t)
			db2 := tp.node("db2")
			db2.WaitStreaming(time.Minute)
			start := kill(t, tp)
			db2.ExecSQL("SELECT pg_promote(true, 60)")
			d = untilWritable(t, db2, start)
		})
		return d
	}
	p, o := bench.Compare(t, scenario, bench.Runs(5), pacsd, oracle)
	byHand := bench.NewSide("kill and promote by hand at once (pg_promote)", o.Seconds())
	bench.Record(t, bench.NewRow(row, scenario, "s", bench.NewSide("pacsd run, automatic failover", p.Seconds()), &byHand, bench.Max("<", 2)))
}

// TestBenchSwitchover measures how long no node accepts writes during a
// planned switchover (`pacsd switchover`, back and forth on one cluster): the
// longest gap between two acknowledged commits of a writer that keeps
// inserting. Target: a median under 3 s.
func TestBenchSwitchover(t *testing.T) {
	bench.Require(t)
	e := e2e.Require(t)
	tp := benchTopology(t, e, "db1", "db2")
	tp.apply(t)
	tp.node("db2").WaitStreaming(time.Minute)
	var gaps bench.Sample
	for i := 0; i < bench.Runs(5); i++ {
		to := []string{"db2", "db1"}[i%2]
		w := e.StartWriter(tp.nodesOf(), fmt.Sprintf("bench_switchover_%d", i))
		time.Sleep(500 * time.Millisecond)
		tp.applyOutput(t, "switchover", to)
		time.Sleep(500 * time.Millisecond)
		r := w.Stop()
		r.CheckNoLoss(t, tp.node(to))
		t.Logf("switchover to %s: no write for %s (%d acknowledged)", to, r.LongestGap, len(r.Acked))
		gaps = append(gaps, r.LongestGap)
	}
	bench.Record(t, bench.NewRow("switchover", "planned switchover: the longest time without an acknowledged write", "s",
		bench.NewSide("pacsd switchover, back and forth, a writer inserting", gaps.Seconds()), nil, bench.Max("<", 3)))
}
