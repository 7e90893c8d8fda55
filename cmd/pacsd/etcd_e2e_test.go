package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pacsd/pacsd/internal/e2e"
	"github.com/pacsd/pacsd/internal/faults"
	"github.com/pacsd/pacsd/pkg/daemon"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// everyHostBed is a cluster of three nodes on three test hosts, each host
// running an etcd member and its own pacsd process (pacsd on every host),
// with synchronous replication, automatic failover and a short lease; a
// writer outside the hosts records every acknowledged commit and a probe
// inside each host's namespace checks every 100 ms that at most one node
// accepts writes.
type everyHostBed struct {
	*failoverBed
	hosts []*e2e.TestHost
	etcd  *e2e.EtcdCluster
	pacsd []*e2e.Proc
	names []string // host block names
	// view reads the cluster's leader and lease in etcd.
	view *state.Etcd
	ttl  time.Duration
	// handles are made once: they keep working while a host is down.
	handles map[string]*e2e.Node
	// http is what the pacsd's HTTP endpoints serve with (they listen on
	// every address: TLS and a token) and what the test asks them with.
	http e2e.HTTPTLS
}

const everyHostTTL = 5 * time.Second

func newEveryHostBed(t *testing.T) *everyHostBed {
	t.Helper()
	return newEveryHostBedWith(t, true, "")
}

// newEveryHostBedWith is newEveryHostBed, with the writer and the probe
// only when load is set, and more HCL in the failover block.
func newEveryHostBedWith(t *testing.T, load bool, failover string) *everyHostBed {
	t.Helper()
	e := e2e.Require(t)
	hosts := e2e.RequireTestHosts(t, 3)
	ec := e2e.StartEtcdCluster(t, hosts)
	tp := newTopology(t, e, "db1", "db2", "db3")
	tp.noDaemon = true
	tp.replication = "    synchronous = true"
	tp.extra = fmt.Sprintf(`  failover {
    automatic = true
    after     = "1s"
    max_lag   = "16MB"
    ttl       = "%s"
%s  }
`, everyHostTTL, failover)
	tp.nodeBody, tp.hostOf = map[string]string{}, map[string]*e2e.TestHost{}
	b := &everyHostBed{hosts: hosts, etcd: ec, ttl: everyHostTTL}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, h := range hosts {
		ips = append(ips, net.ParseIP(h.Address))
	}
	b.http = e2e.WriteHTTPTLS(t, filepath.Join(tp.dir, "http-tls"), ips...)
	var top strings.Builder
	for i, n := range tp.nodes {
		name := fmt.Sprintf("h%d", i+1)
		b.names = append(b.names, name)
		fmt.Fprintf(&top, "host %q {\n  address = %q\n}\n", name, hosts[i].Address)
		tp.hostOf[n] = hosts[i]
		tp.nodeBody[n] = fmt.Sprintf("\n    host = %q\n    port = %d\n  ", name, 15432+i)
	}
	prefix := "/pacsd-" + e.RunID
	fmt.Fprintf(&top, "daemon {\n  state_dir = %q\n  listen = \"0.0.0.0:19187\"\n  resync = \"5s\"\n%s  etcd {\n    endpoints = [%s]\n    prefix = %q\n  }\n}\n",
		tp.dir+"/state", b.http.Block(false), quoteList(ec.Endpoints()), prefix)
	tp.top = top.String()
	tp.write(t)
	bin := pacsdBinary(t)
	for i, h := range hosts {
		b.pacsd = append(b.pacsd, h.StartProcess(t, "pacsd-"+b.names[i], []string{bin, "run", "-f", tp.path, "--host", b.names[i], "--log-level", "debug"}, h.LocalDockerEnv()))
	}
	view, err := state.OpenEtcd(state.EtcdOptions{Endpoints: ec.Endpoints(), Prefix: prefix, Host: "test", SessionTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = view.Close() })
	b.view = view
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("etcd's keys under %s:\n%s", prefix, etcdDump(ec.Endpoints(), prefix))
			for _, p := range b.pacsd {
				if p.Running() {
					_ = syscall.Kill(p.Pid(), syscall.SIGQUIT) // its goroutines, into its log
				}
			}
			time.Sleep(time.Second)
			for i, p := range b.pacsd {
				t.Logf("log of pacsd on %s:\n%s", b.names[i], tail(p.Log(), 12000))
				_ = os.WriteFile(filepath.Join(os.TempDir(), fmt.Sprintf("pacsd-everyhost-%s.log", b.names[i])), []byte(p.Log()), 0o600)
			}
		}
	})
	b.failoverBed = &failoverBed{tp: tp}
	waitFor(t, 5*time.Minute, "the cluster converged by the three pacsd", func() error {
		for _, n := range tp.nodes[1:] {
			if _, err := tp.docker(n).ContainerInspect(context.Background(), tp.container(n)); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			if err := tp.node(n).Streaming(); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	})
	tp.checkStreaming(t)
	b.handles = map[string]*e2e.Node{}
	for _, n := range tp.nodes {
		b.handles[n] = tp.node(n)
	}
	if load {
		nodes := tp.nodesOf()
		b.w = e.StartWriter(nodes, "everyhost_writes")
		b.probe = e.StartProbe(nodes)
	}
	time.Sleep(time.Second)
	return b
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// leader returns the host whose pacsd leads the cluster.
func (b *everyHostBed) leader(t *testing.T) string {
	t.Helper()
	var l string
	waitFor(t, time.Minute, "a leader", func() error {
		var err error
		l, err = b.view.Leader(context.Background(), b.tp.name)
		if err == nil && l == "" {
			err = errors.New("none")
		}
		return err
	})
	return l
}

// record returns the acting primary and the epoch the record names.
func (b *everyHostBed) record(t *testing.T) (string, int64) {
	t.Helper()
	var acting string
	var epoch int64
	waitFor(t, 30*time.Second, "the record", func() error {
		st, err := b.view.Load(b.tp.name)
		acting, epoch = st.Acting, st.Epoch
		return err
	})
	return acting, epoch
}

// hostIndex returns the index of the host of node.
func (b *everyHostBed) hostIndex(node string) int {
	for i, n := range b.tp.nodes {
		if n == node {
			return i
		}
	}
	return -1
}

// noFailover checks for d that the record keeps acting at epoch and that
// no other node accepts writes.
func (b *everyHostBed) noFailover(t *testing.T, d time.Duration, acting string, epoch int64, what string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if a, ep := b.record(t); a != acting || ep != epoch {
			t.Fatalf("%s: the record changed to %s at epoch %d (was %s at %d)", what, a, ep, acting, epoch)
		}
		for _, n := range b.tp.nodes {
			if n != acting && b.writable(n) == nil {
				t.Fatalf("%s: %s accepts writes beside %s", what, n, acting)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// logLine returns the first line of the pacsd log of host i, from offset
// from, with msg.
func logLine(log string, from int, msg string) string {
	if from > len(log) {
		from = len(log)
	}
	for _, l := range strings.Split(log[from:], "\n") {
		if strings.Contains(l, `"msg":"`+msg) {
			return l
		}
	}
	return ""
}

var logTime = regexp.MustCompile(`"time":"([^"]+)"`)

// lineTime returns the time of a JSON log line.
func lineTime(t *testing.T, l string) time.Time {
	t.Helper()
	m := logTime.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no time in log line %q", l)
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestE2EEveryHostPowerOff: the primary's host powered off (every process
// of its namespace killed, its link down): after the lease's TTL the leader
// promotes the synchronous standby; no acknowledged commit is lost, never
// two nodes accept writes; the host powered on again, its pacsd and etcd
// member started, the old primary rejoins as a standby.
func TestE2EEveryHostPowerOff(t *testing.T) {
	b := newEveryHostBed(t)
	acting, epoch := b.record(t)
	if acting != "db1" || epoch != 0 {
		t.Fatalf("record: %s at epoch %d, want db1 at 0", acting, epoch)
	}
	t.Logf("leader: %s", b.leader(t))
	pi := b.hostIndex(acting)
	run := e2e.Fault(t, "the primary's host powered off", faults.HostPoweredOff)
	start := time.Now()
	b.hosts[pi].PowerOff()
	now := b.promoted(t, acting, start)
	if took := time.Since(start); took < b.ttl/2 {
		t.Errorf("promoted %s after the power-off, before the lease could expire (ttl %s)", took, b.ttl)
	}
	b.hosts[pi].PowerOn()
	b.etcd.Member(pi).Start()
	b.pacsd[pi].Restart()
	b.streamingFrom(t, now)
	run.Converged()
	b.finish(t, now)
}

// promoted waits until a node other than old accepts writes and returns it,
// logging how long that took from start and what each pacsd said.
func (b *everyHostBed) promoted(t *testing.T, old string, start time.Time) string {
	t.Helper()
	var now string
	waitFor(t, time.Minute, "a standby promoted in place of "+old, func() error {
		n, err := b.writableNode()
		if err == nil && n == old {
			err = errors.New("the old primary still accepts writes")
		}
		now = n
		return err
	})
	t.Logf("failover from %s to %s: a write commits on the new primary %.2fs after the fault", old, now, time.Since(start).Seconds())
	for i, p := range b.pacsd {
		for _, l := range strings.Split(p.Log(), "\n") {
			for _, m := range []string{"fencing this host's primary", "this host's primary is fenced", "no pacsd holds the primary's lease", "failing over", "failover: standby promoted", "failover done", "this pacsd leads", "this pacsd holds the primary's lease"} {
				if strings.Contains(l, `"msg":"`+m) {
					t.Logf("%s: %s", b.names[i], l)
				}
			}
		}
	}
	return now
}

// writableNode returns the one node that accepts writes, or an error.
func (b *everyHostBed) writableNode() (string, error) {
	var ws []string
	for _, n := range b.tp.nodes {
		if b.writable(n) == nil {
			ws = append(ws, n)
		}
	}
	if len(ws) != 1 {
		return "", fmt.Errorf("writable nodes: %v", ws)
	}
	return ws[0], nil
}

// streamingFrom waits until every node but primary streams from it.
func (b *everyHostBed) streamingFrom(t *testing.T, primary string) {
	t.Helper()
	waitFor(t, 3*time.Minute, "every other node streaming from "+primary, func() error {
		for _, n := range b.tp.nodes {
			if n == primary {
				continue
			}
			if err := b.streaming(n); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	})
}

// conn connects to node at its host's address and published port, for a
// check that must not fail the test while the host is down.
func (b *everyHostBed) conn(node string) (*pgx.Conn, context.Context, context.CancelFunc, error) {
	i := b.hostIndex(node)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	u := url.URL{Scheme: "postgres", User: url.UserPassword("pacs", b.tp.pacsPW), Host: net.JoinHostPort(b.hosts[i].Address, strconv.Itoa(15432+i)),
		Path: "/pacsdb", RawQuery: "sslmode=prefer&connect_timeout=2"}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return conn, ctx, cancel, nil
}

// writable returns nil when node accepts a write.
func (b *everyHostBed) writable(node string) error {
	conn, ctx, cancel, err := b.conn(node)
	if err != nil {
		return err
	}
	defer cancel()
	defer conn.Close(context.Background())
	var rec bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		return err
	}
	if rec {
		return errors.New("in recovery (a standby)")
	}
	_, err = conn.Exec(ctx, "CREATE TEMP TABLE pacsd_probe(x int); INSERT INTO pacsd_probe VALUES (1)")
	return err
}

// streaming returns nil when node is a standby whose WAL receiver streams.
func (b *everyHostBed) streaming(node string) error {
	conn, ctx, cancel, err := b.conn(node)
	if err != nil {
		return err
	}
	defer cancel()
	defer conn.Close(context.Background())
	var status string
	if err := conn.QueryRow(ctx, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')").Scan(&status); err != nil {
		return err
	}
	if status != "streaming" {
		return fmt.Errorf("WAL receiver status is %q", status)
	}
	return nil
}

// logAt returns the time of the first line with msg in the log of the
// pacsd of host i after offset from; zero when there is none.
func (b *everyHostBed) logAt(t *testing.T, i, from int, msg string) time.Time {
	t.Helper()
	if l := logLine(b.pacsd[i].Log(), from, msg); l != "" {
		return lineTime(t, l)
	}
	return time.Time{}
}

// marks returns the length of each pacsd's log now.
func (b *everyHostBed) marks() []int {
	m := make([]int, len(b.pacsd))
	for i, p := range b.pacsd {
		m[i] = len(p.Log())
	}
	return m
}

// TestE2EEveryHostSwitchover: primary edited in the file (the same file on
// every host): the pacsd of the acting primary's host stops it, gives its
// lease up once the target has replayed everything, records the target and
// promotes it; the target's host takes the lease. No acknowledged commit is
// lost, never two nodes accept writes, no failover runs (the epoch moves by
// one), and the old primary streams from the new one. Then the maintenance
// commands from the command line on the same bed (see maintenance).
func TestE2EEveryHostSwitchover(t *testing.T) {
	b := newEveryHostBed(t)
	acting, epoch := b.record(t)
	if acting != "db1" {
		t.Fatalf("record: %s at epoch %d, want db1", acting, epoch)
	}
	b.hostRoutes(t, "db1")
	marks := b.marks()
	run := e2e.Fault(t, "primary edited in the file on every host", faults.Switchover)
	start := time.Now()
	b.tp.primary = "db2"
	b.tp.write(t)
	waitFor(t, 2*time.Minute, "db2 recorded and taking writes", func() error {
		st, err := b.view.Load(b.tp.name)
		if err != nil {
			return err
		}
		if st.Acting != "db2" {
			return fmt.Errorf("the record names %s at epoch %d", st.Acting, st.Epoch)
		}
		return b.writable("db2")
	})
	t.Logf("switchover: db2 takes writes %.2fs after the edit", time.Since(start).Seconds())
	if _, ep := b.record(t); ep != epoch+1 {
		t.Errorf("epoch %d after the switchover, want %d (one change of the acting primary)", ep, epoch+1)
	}
	if b.logAt(t, 0, marks[0], "the primary's lease given up for a switchover").IsZero() {
		t.Error("the pacsd of db1's host did not give its lease up for the switchover")
	}
	b.waitLog(t, 1, marks[1], "this pacsd holds the primary's lease", "the lease taken by db2's host")
	b.streamingFrom(t, "db2")
	run.Converged()
	b.hostRoutes(t, "db2")
	b.noFailover(t, 2*b.ttl, "db2", epoch+1, "after the switchover")
	for i := range b.pacsd {
		if !b.logAt(t, i, marks[i], "failing over").IsZero() {
			t.Errorf("the pacsd of %s failed over during the switchover", b.names[i])
		}
	}
	now := b.maintenance(t, "db2")
	b.finish(t, now)
}

// TestE2EEveryHostPartition: the primary's host partitioned with its pacsd
// alive: that pacsd fences its primary before the leader, on another host,
// promotes a standby once the lease has expired (the log times show the
// order, the probe no tick with two writable nodes); healed, the old primary
// rejoins as a standby. Then the new primary's pacsd frozen (SIGSTOP) and
// its host partitioned: its primary is not fenced, but synchronous
// replication holds its commits, so no acknowledged commit is lost when the
// leader promotes another node; thawed and healed, its pacsd fences it and
// it rejoins.
func TestE2EEveryHostPartition(t *testing.T) {
	b := newEveryHostBed(t)
	acting, _ := b.record(t)
	pi := b.hostIndex(acting)
	marks := b.marks()
	run := e2e.Fault(t, "the primary's host partitioned", faults.HostPartitioned)
	start := time.Now()
	b.hosts[pi].Partition()
	now := b.promoted(t, acting, start)
	fenced := b.logAt(t, pi, marks[pi], "this host's primary is fenced")
	if fenced.IsZero() {
		t.Fatalf("the pacsd of the partitioned primary's host did not fence it")
	}
	var promoted time.Time
	for i := range b.pacsd {
		if at := b.logAt(t, i, marks[i], "failover: standby promoted"); !at.IsZero() {
			promoted = at
		}
	}
	if promoted.IsZero() || !fenced.Before(promoted) {
		t.Fatalf("the old primary was fenced at %s, the new one promoted at %s: the fence must come first", fenced.Format(time.RFC3339Nano), promoted.Format(time.RFC3339Nano))
	}
	t.Logf("partition: old primary fenced %s after the cut, new one promoted %s after the fence (gap)", fenced.Sub(start).Round(time.Millisecond), promoted.Sub(fenced).Round(time.Millisecond))
	b.hosts[pi].Heal()
	b.streamingFrom(t, now)
	run.Converged()

	t.Log("the new primary's pacsd frozen and its host partitioned")
	acting = now
	pi = b.hostIndex(acting)
	run = e2e.Fault(t, "the primary's pacsd frozen, its host partitioned", faults.PacsdFrozen)
	b.pacsd[pi].Freeze()
	start = time.Now()
	b.hosts[pi].Partition()
	now = b.promoted(t, acting, start)
	b.pacsd[pi].Thaw()
	b.hosts[pi].Heal()
	b.streamingFrom(t, now)
	run.Converged()
	b.finish(t, now)
}

// TestE2EEveryHostNoFailover: what must not fail over: every pacsd
// restarted one by one; the leader's pacsd killed (another leads within the
// TTL); a standby's host partitioned; etcd without quorum (the primary's
// pacsd fences its primary: read-only, and nothing is promoted anywhere
// while it lasts). Once etcd has its quorum again the cluster is writable
// again and nothing acknowledged is lost.
func TestE2EEveryHostNoFailover(t *testing.T) {
	b := newEveryHostBed(t)
	acting, epoch := b.record(t)

	t.Log("every pacsd restarted, one by one")
	for i, p := range b.pacsd {
		p.Stop()
		p.Restart()
		time.Sleep(2 * time.Second)
		if i == b.hostIndex(acting) {
			waitFor(t, time.Minute, "the restarted pacsd holds the lease again", func() error {
				h, err := b.view.PrimaryLease(context.Background(), b.tp.name)
				if err == nil && (h == nil || h.Host != b.names[i]) {
					err = fmt.Errorf("lease: %+v", h)
				}
				return err
			})
		}
	}
	b.noFailover(t, 2*b.ttl, acting, epoch, "after every pacsd restarted")
	if err := b.writable(acting); err != nil {
		t.Fatalf("the primary does not accept writes after the restarts: %v", err)
	}

	t.Log("each host's /status shows the leader, the lease and every host's pacsd")
	for i, h := range b.hosts {
		waitFor(t, 30*time.Second, "/status of "+b.names[i], func() error {
			st, err := b.status(t, h)
			if err != nil {
				return err
			}
			cs := st.Clusters[b.tp.name]
			if cs == nil || cs.Coordination == nil {
				return fmt.Errorf("no coordination in /status: %+v", st)
			}
			co := cs.Coordination
			if co.Host != b.names[i] || co.Leader == "" || co.Lease == nil || co.Lease.Node != acting || co.Lease.Host != b.names[b.hostIndex(acting)] || len(co.Hosts) != 3 || co.Error != "" {
				return fmt.Errorf("coordination: %+v", *co)
			}
			for j, n := range b.tp.nodes {
				want := "standby, streaming"
				if n == acting {
					want = "primary"
				}
				if got := co.Hosts[b.names[j]].Nodes[n]; got != want {
					return fmt.Errorf("host %s reports %s %q, want %q", b.names[j], n, got, want)
				}
			}
			// The operator's view: the leader as controller, every node
			// (another host's through its report and its server) in its role.
			if !strings.Contains(cs.Controller, "the pacsd of host "+co.Leader+" leads") || cs.Acting != acting || len(cs.Nodes) != len(b.tp.nodes) {
				return fmt.Errorf("view: %+v", cs.ClusterView)
			}
			for _, n := range cs.Nodes {
				want := "standby"
				if n.Node == acting {
					want = "primary"
				}
				if n.Role != want || (want == "standby" && n.Replication != reconcile.ReplStreaming) {
					return fmt.Errorf("host %s's view of %s: %+v", b.names[i], n.Node, n)
				}
			}
			return nil
		})
	}

	code, out, errOut := runCLI(t, nil, "status", "-f", b.tp.path, "--host", b.names[0])
	if code != exitOK || !strings.Contains(out, "primary's lease: "+acting+", held by the pacsd of "+b.names[b.hostIndex(acting)]) || !strings.Contains(out, acting+": primary") {
		t.Errorf("pacsd status --host %s: exit %d\n%s%s", b.names[0], code, out, errOut)
	}

	t.Log("the leader's pacsd killed")
	old := b.leader(t)
	li := slices.Index(b.names, old)
	b.pacsd[li].Kill()
	killed := time.Now()
	var next string
	waitFor(t, 3*b.ttl, "another leader", func() error {
		l, err := b.view.Leader(context.Background(), b.tp.name)
		if err == nil && (l == "" || l == old) {
			err = fmt.Errorf("leader %q", l)
		}
		next = l
		return err
	})
	took := time.Since(killed)
	t.Logf("leader %s killed; %s leads %s later", old, next, took.Round(time.Millisecond))
	if took > b.ttl+2*time.Second {
		t.Errorf("a new leader after %s, want within the TTL %s", took, b.ttl)
	}
	b.noFailover(t, 2*b.ttl, acting, epoch, "after the leader's pacsd was killed")
	b.pacsd[li].Restart()

	t.Log("a standby's host partitioned")
	si := (b.hostIndex(acting) + 1) % len(b.hosts)
	b.hosts[si].Partition()
	b.noFailover(t, 3*b.ttl, acting, epoch, "with a standby's host partitioned")
	b.hosts[si].Heal()
	b.streamingFrom(t, acting)

	t.Log("etcd without quorum")
	pi := b.hostIndex(acting)
	marks := b.marks()
	run := e2e.Fault(t, "two etcd members of three stopped", faults.EtcdQuorumLost)
	stopped := b.stopEtcdBut(pi)
	b.waitLog(t, pi, marks[pi], "this host's primary is fenced", "the primary fenced by its own pacsd")
	end := time.Now().Add(3 * b.ttl)
	for time.Now().Before(end) {
		if n, err := b.writableNode(); err == nil {
			t.Fatalf("%s accepts writes while etcd has no quorum", n)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for i := range b.pacsd {
		if at := b.logAt(t, i, marks[i], "failover: standby promoted"); !at.IsZero() {
			t.Fatalf("the pacsd of %s promoted a standby while etcd had no quorum", b.names[i])
		}
	}
	now := b.quorumBack(t, stopped)
	t.Logf("after the etcd outage %s is the primary", now)
	b.streamingFrom(t, now)
	run.Converged()
	b.finish(t, now)
}

// get asks path of the pacsd on host h, over https with the token.
func (b *everyHostBed) get(t *testing.T, h *e2e.TestHost, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(h.Address, "19187")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+b.http.Token)
	return b.http.Client(t, "", "").Do(req)
}

// status returns the /status of the pacsd on host h.
func (b *everyHostBed) status(t *testing.T, h *e2e.TestHost) (daemon.Status, error) {
	var st daemon.Status
	resp, err := b.get(t, h, "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// TestE2EEveryHostFailsafe: with failover.failsafe, etcd without quorum
// leaves the primary running while the pacsd of every other host confirms
// it (writes go on); one standby's host cut off as well, and the primary's
// pacsd fences it. Once etcd has its quorum again the cluster is writable
// again and nothing acknowledged is lost.
func TestE2EEveryHostFailsafe(t *testing.T) {
	b := newEveryHostBedWith(t, true, "    failsafe  = true\n")
	acting, _ := b.record(t)
	pi := b.hostIndex(acting)
	marks := b.marks()
	run := e2e.Fault(t, "two etcd members of three stopped (failsafe), then a host cut off", faults.EtcdQuorumLost)
	stopped := b.stopEtcdBut(pi)
	b.waitLog(t, pi, marks[pi], "etcd cannot be renewed from this host; the primary keeps running", "failsafe confirmed by the other hosts")
	end := time.Now().Add(3 * b.ttl)
	for time.Now().Before(end) {
		if err := b.writable(acting); err != nil {
			t.Fatalf("the primary stopped taking writes in failsafe, with every host answering: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !b.logAt(t, pi, marks[pi], "this host's primary is fenced").IsZero() {
		t.Fatal("the primary was fenced although every host confirmed failsafe")
	}
	t.Log("a standby's host cut off as well")
	si := stopped[0]
	b.hosts[si].Partition()
	cut := time.Now()
	b.waitLog(t, pi, marks[pi], "this host's primary is fenced", "the primary fenced once a host no longer confirms")
	t.Logf("primary fenced %s after a standby's host was cut off", time.Since(cut).Round(time.Millisecond))
	if err := b.writable(acting); err == nil {
		t.Fatal("the fenced primary still takes writes")
	}
	b.hosts[si].Heal()
	now := b.quorumBack(t, stopped)
	b.streamingFrom(t, now)
	run.Converged()
	b.finish(t, now)
}

// timeline returns the lines of every pacsd's log from start on, each with
// its host and its offset from start.
func (b *everyHostBed) timeline(t *testing.T, start time.Time) string {
	t.Helper()
	type line struct {
		at   time.Time
		text string
	}
	var ls []line
	for i, p := range b.pacsd {
		for _, l := range strings.Split(p.Log(), "\n") {
			m := logTime.FindStringSubmatch(l)
			if m == nil || strings.Contains(l, `"level":"DEBUG"`) && !strings.Contains(l, `"msg":"observed"`) && !strings.Contains(l, `"msg":"the cluster's lock taken"`) {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil || at.Before(start) {
				continue
			}
			msg := l
			if j := strings.Index(l, `"msg":`); j >= 0 {
				msg = l[j:]
			}
			ls = append(ls, line{at, fmt.Sprintf("%6.2fs %s %s", at.Sub(start).Seconds(), b.names[i], tail(msg, 300))})
		}
	}
	slices.SortFunc(ls, func(a, b line) int { return a.at.Compare(b.at) })
	var out strings.Builder
	for _, l := range ls {
		out.WriteString(l.text + "\n")
	}
	return out.String()
}

// stopEtcdBut stops the etcd member of every host but host pi (etcd loses
// its quorum) and returns their indexes.
func (b *everyHostBed) stopEtcdBut(pi int) []int {
	var stopped []int
	for i := range b.hosts {
		if i != pi {
			b.etcd.Member(i).Stop()
			stopped = append(stopped, i)
		}
	}
	return stopped
}

// quorumBack starts the stopped etcd members again and returns the node
// that accepts writes once etcd has its quorum.
func (b *everyHostBed) quorumBack(t *testing.T, stopped []int) string {
	t.Helper()
	for _, i := range stopped {
		b.etcd.Member(i).Start()
	}
	var now string
	waitFor(t, 2*time.Minute, "a writable primary once etcd has its quorum", func() error {
		n, err := b.writableNode()
		now = n
		return err
	})
	return now
}

// waitLog waits, 3 TTLs at most, for msg in the log of the pacsd of host i
// after offset from.
func (b *everyHostBed) waitLog(t *testing.T, i, from int, msg, what string) {
	t.Helper()
	waitFor(t, 3*b.ttl, what, func() error {
		if b.logAt(t, i, from, msg).IsZero() {
			return errors.New("not yet")
		}
		return nil
	})
}

// hostRoutes checks, until each answers as it should (a minute at most),
// each host's load balancer checks of its own node, asked without a node
// at the host's address (Patroni's shape): /primary 200 on primary's host
// only, /replica 200 on the others.
func (b *everyHostBed) hostRoutes(t *testing.T, primary string) {
	t.Helper()
	waitFor(t, time.Minute, "each host's load balancer checks answering for primary "+primary, func() error {
		for i, h := range b.hosts {
			for _, check := range []string{"primary", "replica"} {
				want := http.StatusOK
				if (check == "primary") != (b.tp.nodes[i] == primary) {
					want = http.StatusServiceUnavailable
				}
				resp, err := b.get(t, h, "/"+check)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					return fmt.Errorf("host %s /%s: %d, want %d", b.names[i], check, resp.StatusCode, want)
				}
			}
		}
		return nil
	})
}

// etcdDump lists the keys under prefix with their lease, creation revision
// and value, for a failed test's log.
func etcdDump(endpoints []string, prefix string) string {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		return err.Error()
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/", clientv3.WithPrefix())
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&out, "%s lease=%x create=%d mod=%d %s\n", kv.Key, kv.Lease, kv.CreateRevision, kv.ModRevision, tail(string(kv.Value), 200))
	}
	return out.String()
}
