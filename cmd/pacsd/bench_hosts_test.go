package main

import (
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/bench"
	"github.com/pacsd/pacsd/internal/e2e"
)

// benchPorts gives each measured cluster on the test hosts ports of its own:
// the clusters of earlier runs stay on the hosts until the hosts go.
var benchPorts = 16000

func nextBenchPorts() int {
	benchPorts += 10
	return benchPorts
}

// TestBenchConvergeHosts measures `pacsd apply` from nothing to a primary
// and two streaming standbys spread over three hosts (each a network
// namespace with its own engine, reached over TLS), against the same
// topology on one of those hosts, in the same run. Target: at most 1.2 times
// the one-host time.
func TestBenchConvergeHosts(t *testing.T) {
	bench.Require(t)
	hosts := e2e.RequireTestHosts(t, 3)
	converge := func(place []*e2e.TestHost) func(t *testing.T) time.Duration {
		return func(t *testing.T) (d time.Duration) {
			e := e2e.Require(t)
			tp := hostsTopology(t, benchTopology(t, e, "db1", "db2", "db3"), place, nextBenchPorts())
			start := time.Now()
			code, stdout, stderr := runCLI(t, nil, "apply", "-f", tp.path)
			if code != exitOK {
				t.Fatalf("pacsd apply: exit %d\n%s%s", code, stdout, stderr)
			}
			benchStreaming(t, tp)
			d = time.Since(start)
			t.Logf("%.2fs; where the time went (offsets from the start of apply):\n%s", d.Seconds(), timeline(stderr, start))
			return d
		}
	}
	spread, one := converge(hosts), converge([]*e2e.TestHost{hosts[0], hosts[0], hosts[0]})
	const scenario = "converge across 3 hosts: pacsd apply from nothing until two standbys stream, nodes on three hosts"
	s, o := bench.Compare(t, scenario, bench.Runs(3),
		func(t *testing.T) (d time.Duration) {
			t.Run("three-hosts", func(t *testing.T) { d = spread(t) })
			return d
		},
		func(t *testing.T) (d time.Duration) { t.Run("one-host", func(t *testing.T) { d = one(t) }); return d })
	oneHost := bench.NewSide("the same topology on one host", o.Seconds())
	bench.Record(t, bench.NewRow("converge-hosts", scenario, "s", bench.NewSide("pacsd apply, one node per host", s.Seconds()), &oneHost, bench.Ratio("<=", 1.2)))
}

// TestBenchFailoverHosts measures the time from `docker kill` of the primary
// on one host until a write commits on the new primary on another host, with
// pacsd's automatic failover (failover.after = 1s, asynchronous
// replication), against killing it and at once promoting the standby by
// hand. Target: a median under 2 s.
func TestBenchFailoverHosts(t *testing.T) {
	bench.Require(t)
	hosts := e2e.RequireTestHosts(t, 2)
	pacsd := func(t *testing.T) (d time.Duration) {
		t.Run("pacsd", func(t *testing.T) {
			e := e2e.Require(t)
			tp := benchTopology(t, e, "db1", "db2")
			tp.extra = "  failover {\n    automatic = true\n    after     = \"1s\"\n  }\n"
			hostsTopology(t, tp, hosts, nextBenchPorts())
			r := startDaemon(t, tp, "30s")
			r.waitReady(t, 3*time.Minute)
			db2 := tp.node("db2")
			db2.WaitStreaming(time.Minute)
			time.Sleep(time.Second) // the supervisor has seen a healthy primary
			start := time.Now()
			if err := hosts[0].Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db1"), "KILL"); err != nil {
				t.Fatal(err)
			}
			d = untilWritable(t, db2, start)
			t.Logf("pacsd: %.2fs; where the time went (offsets from docker kill):\n%s", d.Seconds(), timeline(r.log.String(), start))
		})
		return d
	}
	oracle := func(t *testing.T) (d time.Duration) {
		t.Run("oracle", func(t *testing.T) {
			e := e2e.Require(t)
			tp := hostsTopology(t, benchTopology(t, e, "db1", "db2"), hosts, nextBenchPorts())
			tp.apply(t)
			db2 := tp.node("db2")
			db2.WaitStreaming(time.Minute)
			start := time.Now()
			if err := hosts[0].Docker.ContainerKill(e.Ctx(time.Minute), tp.container("db1"), "KILL"); err != nil {
				t.Fatal(err)
			}
			db2.ExecSQL("SELECT pg_promote(true, 60)")
			d = untilWritable(t, db2, start)
		})
		return d
	}
	const scenario = "docker kill of the primary on one host until a write commits on the new primary on another (failover.after = 1s)"
	p, o := bench.Compare(t, scenario, bench.Runs(5), pacsd, oracle)
	kill := bench.NewSide("kill and promote by hand at once (pg_promote)", o.Seconds())
	bench.Record(t, bench.NewRow("failover-hosts", scenario, "s", bench.NewSide("pacsd run, automatic failover", p.Seconds()), &kill, bench.Max("<", 2)))
}
