package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// cli runs pacsd with args on the bed's file, from outside the hosts (the
// command line reaches etcd only), and returns what it printed; it fails
// the test unless the exit code is want.
func (b *everyHostBed) cli(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runCLI(t, nil, append(args, "-f", b.tp.path)...)
	t.Logf("pacsd %s: exit %d in %.1fs\n%s%s", strings.Join(args, " "), code, time.Since(start).Seconds(), stdout, stderr)
	if code != want {
		t.Fatalf("pacsd %s: exit %d, want %d", strings.Join(args, " "), code, want)
	}
	return stdout, stderr
}

// startedAt returns when node's container last started, on its host.
func (b *everyHostBed) startedAt(t *testing.T, node string) string {
	t.Helper()
	c, err := b.tp.docker(node).ContainerInspect(context.Background(), b.tp.container(node))
	if err != nil {
		t.Fatal(err)
	}
	return c.State.StartedAt
}

// received returns how far node, a standby, has received WAL.
func (b *everyHostBed) received(t *testing.T, node string) int64 {
	t.Helper()
	conn, ctx, cancel, err := b.conn(node)
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	defer cancel()
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint").Scan(&n); err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	return n
}

// maintenance runs the maintenance commands from the command line with
// pacsd on every host, each carried out by the pacsd of the right host
// through a request in etcd, under the writer and the probe: a standby
// restarted, the acting primary restarted in place under its lease (no
// failover), then with --switchover (its lease handed over), a standby
// rebuilt by reinit; then, the cluster paused so that
// nothing fails over by itself, the acting primary killed and 'pacsd
// failover' carried out by the holder of its lease (fenced through its own
// engine, the lease given up, the standby recorded and promoted). It
// returns the new primary.
func (b *everyHostBed) maintenance(t *testing.T, acting string) string {
	t.Helper()
	began := time.Now()
	_, epoch := b.record(t)
	var standbys []string
	for _, n := range b.tp.nodes {
		if n != acting {
			standbys = append(standbys, n)
		}
	}
	name := b.tp.name

	s := standbys[0]
	before := b.startedAt(t, s)
	out, errOut := b.cli(t, exitOK, "restart", s)
	host := b.names[b.hostIndex(s)]
	if !strings.Contains(out, s+" was restarted and streams again") || !strings.Contains(errOut, fmt.Sprintf("the pacsd of host %q took it", host)) {
		t.Errorf("pacsd restart %s: not carried out by the pacsd of its host %s", s, host)
	}
	if b.startedAt(t, s) == before {
		t.Errorf("%s's container was not restarted", s)
	}

	before = b.startedAt(t, acting)
	out, _ = b.cli(t, exitOK, "restart", acting)
	if !strings.Contains(out, acting+", the primary, was restarted in place and takes writes again: writes were refused for") {
		t.Errorf("pacsd restart %s said:\n%s", acting, out)
	}
	if b.startedAt(t, acting) == before {
		t.Errorf("%s's container was not restarted", acting)
	}
	b.noFailover(t, b.ttl, acting, epoch, "after the primary's restart in place")

	old := acting
	out, _ = b.cli(t, exitOK, "restart", acting, "--switchover")
	sw := regexp.MustCompile(`handed its role to (db[0-9]) by a switchover`).FindStringSubmatch(out)
	if sw == nil {
		t.Fatalf("pacsd restart %s --switchover said:\n%s", acting, out)
	}
	acting, epoch = sw[1], epoch+1
	b.streamingFrom(t, acting)
	b.noFailover(t, b.ttl, acting, epoch, "after the primary's restart with switchover")
	standbys = nil
	for _, n := range b.tp.nodes {
		if n != acting {
			standbys = append(standbys, n)
		}
	}

	r := standbys[1]
	out, _ = b.cli(t, exitOK, "reinit", r)
	m := regexp.MustCompile(`kept in directory (data\.aside-[0-9TZ]+) in volume (\S+) on the Docker engine of host`).FindStringSubmatch(out)
	if m == nil {
		t.Errorf("pacsd reinit %s said:\n%s", r, out)
	}
	b.streamingFrom(t, acting)
	b.cli(t, exitProblem, "reinit", acting)

	t.Log("the cluster paused, its primary killed, and failed over by hand")
	b.cli(t, exitOK, "pause", name)
	time.Sleep(2 * time.Second) // every pacsd reads the pause within a second
	if err := b.tp.docker(acting).ContainerKill(context.Background(), b.tp.container(acting), "KILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(3 * time.Second) // failover.after is 1s: held back by the pause
	if n, err := b.writableNode(); err == nil {
		t.Fatalf("%s accepts writes while the cluster is paused and its primary was killed", n)
	}
	// The standby that received the most: another one ahead of it would
	// make the failover refuse without --accept-loss.
	to := standbys[0]
	if b.received(t, standbys[1]) > b.received(t, to) {
		to = standbys[1]
	}
	out, errOut = b.cli(t, exitOK, "failover", to)
	holder := b.names[b.hostIndex(acting)]
	if !strings.Contains(out, fmt.Sprintf("%q is the primary", to)) || !strings.Contains(errOut, fmt.Sprintf("the pacsd of host %q took it", holder)) {
		t.Errorf("pacsd failover %s: not carried out by the holder of the lease, the pacsd of %s", to, holder)
	}
	if a, ep := b.record(t); a != to || ep != epoch+1 {
		t.Errorf("the record names %s at epoch %d, want %s at %d", a, ep, to, epoch+1)
	}
	// Resumed: the other hosts' pacsd repoint their standbys, and the new
	// primary's commits are acknowledged (synchronous replication).
	b.cli(t, exitOK, "resume", name)
	now := b.promoted(t, acting, killed)
	if now != to {
		t.Errorf("%s takes writes after 'pacsd failover %s'", now, to)
	}
	b.streamingFrom(t, to)

	out, _ = b.cli(t, exitOK, "events", name, "--json")
	var evs []reconcile.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if strings.Contains(ev.Reason, "asked for on the command line (pacsd ") {
			seen[ev.Kind+" "+ev.Node+" "+strings.SplitN(ev.Result, ":", 2)[0]] = true
		}
	}
	for _, want := range []string{"restart " + s + " ok", "restart " + old + " ok", "switchover " + acting + " ok", "reinit " + r + " ok", "reinit " + acting + " refused", "failover " + acting + " ok"} {
		if !seen[want] {
			t.Errorf("no event %q in the history: %v", want, seen)
		}
	}
	t.Logf("maintenance commands with pacsd on every host: %.1fs", time.Since(began).Seconds())
	return to
}
