package main

import (
	"context"
	"errors"
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

// TestBenchEveryHostPowerOff measures, with pacsd on every host (three test
// hosts, an etcd member and a pacsd on each, failover.ttl = 5s, synchronous
// replication), the time from powering off the primary's host until a write
// commits on the new primary; against the floor: the same power-off with
// the standby promoted by hand at once (synchronous replication turned off
// on it, so that its first write needs no standby). Target: a median under
// 7 s (Patroni's defaults take about 30 s).
func TestBenchEveryHostPowerOff(t *testing.T) {
	bench.Require(t)
	powerOff := func(t *testing.T, b *everyHostBed) (string, time.Time) {
		acting, _ := b.record(t)
		waitFor(t, time.Minute, "the primary's lease held", func() error {
			h, err := b.view.PrimaryLease(context.Background(), b.tp.name)
			if err == nil && h == nil {
				err = errors.New("no holder")
			}
			return err
		})
		time.Sleep(2 * time.Second) // the lease renewed at its pace, the last sight saved
		start := time.Now()
		b.hosts[b.hostIndex(acting)].PowerOff()
		return acting, start
	}
	committed := func(t *testing.T, b *everyHostBed, old string, start time.Time) time.Duration {
		var d time.Duration
		waitFor(t, 2*time.Minute, "a write committed on a new primary", func() error {
			for _, n := range b.tp.nodes {
				if n != old && b.writable(n) == nil {
					d = time.Since(start)
					return nil
				}
			}
			return errors.New("none yet")
		})
		return d
	}
	pacsd := func(t *testing.T) (d time.Duration) {
		t.Run("pacsd", func(t *testing.T) {
			b := newEveryHostBedWith(t, false, "")
			old, start := powerOff(t, b)
			d = committed(t, b, old, start)
			t.Logf("pacsd: %.2fs; where the time went (offsets from the power-off):\n%s", d.Seconds(), b.timeline(t, start))
		})
		return d
	}
	byHand := func(t *testing.T) (d time.Duration) {
		t.Run("by-hand", func(t *testing.T) {
			b := newEveryHostBedWith(t, false, "")
			for _, p := range b.pacsd {
				p.Kill()
			}
			old, start := powerOff(t, b)
			to := b.tp.nodes[(b.hostIndex(old)+1)%len(b.tp.nodes)]
			conn, ctx, cancel, err := b.conn(to)
			if err != nil {
				t.Fatal(err)
			}
			defer cancel()
			defer conn.Close(context.Background())
			for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()", "SELECT pg_promote(true, 60)"} {
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			d = committed(t, b, old, start)
		})
		return d
	}
	p, o := bench.Compare(t, "power-off of the primary's host until a write commits on the new primary (pacsd on every host, etcd, failover.ttl = 5s)", bench.Runs(3), pacsd, byHand)
	floor := bench.NewSide("power off and promote by hand at once (pg_promote)", o.Seconds())
	bench.Record(t, bench.NewRow("every-host-power-off", "power-off of the primary's host until a write commits on the new primary (pacsd on every host, etcd, ttl 5s)", "s", bench.NewSide("pacsd run on every host, automatic failover", p.Seconds()), &floor, bench.Max("<", 7)))
}
