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
// hand (see TestBenchFailover). Target: a median under 2 s.
func TestBenchFailoverHosts(t *testing.T) {
	bench.Require(t)
	hosts := e2e.RequireTestHosts(t, 2)
	measureFailover(t, "failover-hosts", "docker kill of the primary on one host until a write commits on the new primary on another (failover.after = 1s)",
		func(t *testing.T, tp *topology) { hostsTopology(t, tp, hosts, nextBenchPorts()) })
}
