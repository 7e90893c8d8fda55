package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/daemon"
)

// hostsTopology places node i on hosts[i], each host reached by pacsd over
// its engine's TLS port; node i publishes PostgreSQL on port+i of its host's
// address. Hosts named more than once get one host block.
func hostsTopology(t *testing.T, tp *topology, hosts []*e2e.TestHost, port int) *topology {
	t.Helper()
	tp.nodeBody, tp.hostOf = map[string]string{}, map[string]*e2e.TestHost{}
	names := map[*e2e.TestHost]string{}
	var top strings.Builder
	for i, n := range tp.nodes {
		h := hosts[i]
		if names[h] == "" {
			names[h] = fmt.Sprintf("h%d", len(names)+1)
			fmt.Fprintf(&top, "host %q {\n  docker  = %q\n  address = %q\n  tls {\n    ca   = %q\n    cert = %q\n    key  = %q\n  }\n}\n",
				names[h], h.TLSEndpoint, h.Address, h.TLSFiles.CA, h.TLSFiles.Cert, h.TLSFiles.Key)
		}
		tp.hostOf[n] = h
		tp.nodeBody[n] = fmt.Sprintf("\n    host = %q\n    port = %d\n  ", names[h], port+i)
	}
	tp.top = top.String()
	tp.write(t)
	return tp
}

// hostsBed is a running daemon on three test hosts, one node each, with
// synchronous replication and automatic failover, a writer outside the
// hosts and a probe inside each host's namespace.
type hostsBed struct {
	*failoverBed
	hosts []*e2e.TestHost
}

func newHostsBed(t *testing.T) *hostsBed {
	t.Helper()
	e := e2e.Require(t)
	hosts := e2e.RequireTestHosts(t, 3)
	tp := hostsTopology(t, newTopology(t, e, "db1", "db2", "db3"), hosts, 15432)
	tp.replication = "    synchronous = true"
	tp.extra = `  failover {
    automatic = true
    after     = "1s"
    max_lag   = "16MB"
  }
  settings = { work_mem = "8MB" }
`
	r := startDaemon(t, tp, "2s")
	r.waitReady(t, 4*time.Minute)
	tp.checkStreaming(t)
	r.watching(t, tp, "db1")
	b := &hostsBed{failoverBed: &failoverBed{tp: tp, r: r}, hosts: hosts}
	b.w = e.StartWriter(tp.nodesOf(), "hosts_writes")
	b.probe = e.StartProbe(tp.nodesOf())
	time.Sleep(time.Second)
	return b
}

// senderHost returns the address a standby's WAL receiver streams from.
func senderHost(n *e2e.Node) string {
	return n.QueryString("SELECT coalesce((SELECT sender_host FROM pg_stat_wal_receiver), '')")
}

// status returns the daemon's /status.
func (b *hostsBed) status(t *testing.T) daemon.Status {
	t.Helper()
	_, body, err := b.r.get("/status")
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, body)
	}
	return st
}

// TestE2EThreeHosts drives a primary and two standbys on three hosts (each
// a network namespace with its own engine, reached over TLS) from one pacsd,
// with a writer recording every acknowledged commit (synchronous
// replication) and a probe inside each host checking every 100 ms that at
// most one node accepts writes:
//   - converged: each standby streams from the primary's host address;
//   - drift put back on each host (an ALTER SYSTEM on the primary's host, an
//     edited pg_hba.conf on the second, a killed container on the third),
//     also while another host is partitioned;
//   - a switchover across hosts;
//   - automatic failover when the primary's container is killed;
//   - the primary's host partitioned: no promotion, and status, metrics and
//     the log say why; 'pacsd failover --confirm-fenced' promotes; when the
//     partition heals, the old primary is fenced first and rejoins by
//     pg_rewind.
func TestE2EThreeHosts(t *testing.T) {
	b := newHostsBed(t)
	tp := b.tp
	for _, n := range []string{"db2", "db3"} {
		if got := senderHost(tp.node(n)); got != b.hosts[0].Address {
			t.Errorf("%s streams from %q, want db1's host address %s", n, got, b.hosts[0].Address)
		}
	}

	t.Log("drift on each host")
	db1, db2, db3 := tp.node("db1"), tp.node("db2"), tp.node("db3")
	db1.ExecSQL("ALTER SYSTEM SET work_mem = '77MB'")
	db1.ExecSQL("SELECT pg_reload_conf()")
	db2.AppendPGDATA("pg_hba.conf", "host all all 0.0.0.0/0 trust\n")
	db3.Kill()
	waitFor(t, 2*time.Minute, "drift put back on every host", func() error {
		var v string
		if err := db1.TryQueryRow("SHOW work_mem", []any{&v}); err != nil || v != "8MB" {
			return fmt.Errorf("db1: work_mem %q (%v), want 8MB", v, err)
		}
		if strings.Contains(db2.ReadFile("pg_hba.conf"), "trust\n") && hbaHostTrust(db2.ReadFile("pg_hba.conf")) {
			return errors.New("db2: pg_hba.conf still has the trust line")
		}
		if err := db3.Streaming(); err != nil {
			return fmt.Errorf("db3: %w", err)
		}
		return nil
	})

	t.Log("a standby's host partitioned: the other hosts are still converged")
	b.hosts[2].Partition()
	db2.Kill()
	waitFor(t, 2*time.Minute, "db2 restarted while db3's host is partitioned", func() error {
		return db2.Streaming()
	})
	b.hosts[2].Heal()
	waitFor(t, 2*time.Minute, "db3 streaming again after the heal", func() error { return db3.Streaming() })

	t.Log("switchover across hosts")
	run := e2e.Fault(t, "pacsd switchover across hosts", faults.Switchover)
	b.switchoverBesideDaemon(t, "db2")
	b.rejoined(t, "db2")
	run.Converged()
	if got := senderHost(tp.node("db3")); got != b.hosts[1].Address {
		t.Errorf("after the switchover db3 streams from %q, want db2's host address %s", got, b.hosts[1].Address)
	}

	t.Log("the primary's container killed on its host")
	run = e2e.Fault(t, "docker kill of the primary on another host", faults.PrimaryKilled)
	start := time.Now()
	tp.node("db2").Kill()
	now := b.failedOver(t, "db2", start)
	b.rejoined(t, now)
	run.Converged()

	t.Log("the primary's host partitioned")
	var pi int
	for i, n := range tp.nodes {
		if n == now {
			pi = i
		}
	}
	mark := len(b.r.log.String())
	run = e2e.Fault(t, "the primary's host partitioned, failover --confirm-fenced", faults.EngineUnreachable)
	b.hosts[pi].Partition()
	waitFor(t, 2*time.Minute, "a refused failover", func() error {
		if !strings.Contains(b.r.log.String()[mark:], `"msg":"failover refused"`) {
			return errors.New("none yet")
		}
		return nil
	})
	time.Sleep(3 * time.Second)
	for _, n := range tp.nodes {
		if n != now && tp.node(n).Writable() == nil {
			t.Fatalf("%s was promoted while the primary's host was partitioned", n)
		}
	}
	if st := b.status(t).Clusters[tp.name]; st == nil || !strings.Contains(fmt.Sprintf("%+v", *st), "cannot be confirmed stopped") {
		t.Errorf("/status does not say why no failover happened: %+v", st)
	}
	if err := b.r.metric(t, fmt.Sprintf(`pacsd_failovers_total{cluster=%q,result="refused"} 1`, tp.name)); err != nil {
		_, body, _ := b.r.get("/metrics")
		if !strings.Contains(body, fmt.Sprintf(`pacsd_failovers_total{cluster=%q,result="refused"}`, tp.name)) {
			t.Errorf("/metrics counts no refused failover: %v", err)
		}
	}

	// The operator makes sure the old primary cannot take writes (here it
	// cannot: its host is cut off and synchronous replication holds its
	// commits) and promotes another node.
	var target string
	for _, n := range tp.nodes {
		if n != now {
			target = n
			break
		}
	}
	code, stdout, stderr := runCLI(t, nil, "failover", target, "--confirm-fenced", "-f", b.r.path)
	if code != exitOK {
		t.Fatalf("pacsd failover %s --confirm-fenced: exit %d\n%s%s", target, code, stdout, stderr)
	}
	tp.node(target).WaitWritable(time.Minute)
	b.hosts[pi].Heal()
	b.rejoined(t, target)
	run.Converged()
	log := b.r.log.String()[mark:]
	fence, rewind := strings.Index(log, `"node":"`+now+`"`), strings.Index(log, "rewind")
	if rewind < 0 {
		t.Errorf("the old primary %s did not rejoin by pg_rewind; the log since the partition:\n%s", now, log)
	} else if fence < 0 || fence > rewind {
		t.Errorf("the old primary %s was not fenced before it was rewound", now)
	}
	b.finish(t, target)
}
