package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// ProbeInterval is how often the probe looks at every node.
	ProbeInterval = 100 * time.Millisecond
	// ProbeTimeout bounds one look at one node: address, connect and the
	// write. A node that does not answer in time counts as unreachable.
	ProbeTimeout = 300 * time.Millisecond
)

// Node states as the probe sees them.
const (
	// StateWritable: a read-write transaction that wrote WAL committed (a
	// commit record written and flushed, through synchronous replication
	// when it is on).
	StateWritable = "writable"
	// StateReadOnly: the node answered but refused the write (a standby:
	// "cannot set transaction read-write mode during recovery").
	StateReadOnly = "read-only"
	// StateUnreachable: no address, no connection, or no answer within
	// ProbeTimeout (stopped, paused, cut off, starting, on a frozen engine).
	StateUnreachable = "unreachable"
)

// probeWrite is what "accepts writes" means to the probe: a transaction
// explicitly read-write (so default_transaction_read_only cannot hide a node
// that any client could write to) that writes WAL and commits. It writes a
// transactional logical message (WAL only: no rows, no catalog entries), so
// that its commit waits for synchronous replication when that is on, as any
// client's write does: a transaction that only takes a transaction ID
// writes no WAL before its commit record, and PostgreSQL commits such a
// transaction without waiting for a synchronous standby, so a primary cut
// off from its standbys would count as writable although none of its
// clients' writes could be acknowledged.
const probeWrite = "BEGIN READ WRITE; SELECT pg_logical_emit_message(true, 'pacsd-probe', ''); COMMIT"

// Probe checks every ProbeInterval, for every node, whether it accepts writes,
// and records every tick at which two or more nodes did (safety invariant 1 of
// the design: never two writable primaries, not even for a moment).
//
// Each tick looks at all nodes concurrently, each bounded by ProbeTimeout, and
// ticks start on time even while an earlier one still waits for a node that
// hangs; a node still busy with an earlier tick counts as unreachable. The
// probe keeps one connection per node and opens a new one after any error.
//
// A node on a test host (started through its Env, or a handle from
// TestHost.Container) is reached from inside that host's network namespace,
// as a process of the host would reach it (design: "a probe runs inside each
// host's namespace"), so a node on a partitioned host is still watched; the
// address it asks the host's engine for is the container's own. A node on
// the machine's engine is reached from the test process's namespace.
//
// The probe sees only what it can reach: a paused or cut-off primary counts as
// unreachable although, from its own point of view, it still accepts writes
// once thawed or reconnected. Such a node shows up as writable again at the
// first tick that reaches it, which is when a split brain becomes visible.
type Probe struct {
	nodes func() []*Node
	addrs addrBook
	stop  chan struct{}
	done  chan struct{}
	start time.Time

	mu    sync.Mutex
	conns map[string]*probeConn // container ID -> its connection
	ticks []ProbeTick

	stopOnce sync.Once
	report   ProbeReport
}

// probeConn is the probe's connection to one node; busy while a tick uses it.
type probeConn struct {
	busy sync.Mutex
	conn *pgx.Conn
}

// ProbeTick is what one tick saw.
type ProbeTick struct {
	At time.Time
	// States maps node name to StateWritable, StateReadOnly or StateUnreachable.
	States map[string]string
	// Errors maps node name to why it was not writable.
	Errors map[string]string
}

// WritableNodes returns the names of the nodes writable at this tick, sorted.
func (k ProbeTick) WritableNodes() []string {
	var w []string
	for name, st := range k.States {
		if st == StateWritable {
			w = append(w, name)
		}
	}
	sort.Strings(w)
	return w
}

// ProbeTransition is a node changing state between two ticks.
type ProbeTransition struct {
	At    time.Time
	Node  string
	State string
}

// ProbeReport is what a probe saw from start to Stop.
type ProbeReport struct {
	Start, End time.Time
	// Ticks is the number of ticks taken.
	Ticks int
	// Writable, ReadOnly and Unreachable count, per node name, the ticks at
	// which the node was in that state.
	Writable, ReadOnly, Unreachable map[string]int
	// Overlaps are the ticks at which two or more nodes were writable.
	Overlaps []ProbeTick
	// Transitions lists every change of a node's state, in tick order; the
	// first tick of each node counts as a change.
	Transitions []ProbeTransition
	// LastErrors maps node name to the last reason it was not writable.
	LastErrors map[string]string
}

// StartProbe starts a probe of the nodes nodes returns (asked at every tick,
// so a test can add the nodes pacsd creates). Stop it with Stop or Check;
// it is also stopped when the test ends.
func (e *Env) StartProbe(nodes func() []*Node) *Probe {
	p := &Probe{
		nodes: nodes,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		conns: map[string]*probeConn{},
		start: time.Now(),
	}
	e.T.Cleanup(func() { p.Stop() })
	go p.loop()
	return p
}

func (p *Probe) loop() {
	defer close(p.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for {
		wg.Add(1)
		go func(at time.Time) {
			defer wg.Done()
			p.tick(at)
		}(time.Now())
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

// tick looks at every node concurrently and records what it saw.
func (p *Probe) tick(at time.Time) {
	nodes := p.nodes()
	k := ProbeTick{At: at, States: make(map[string]string, len(nodes)), Errors: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state, err := p.look(n)
			mu.Lock()
			defer mu.Unlock()
			k.States[n.Name] = state
			if err != nil {
				k.Errors[n.Name] = err.Error()
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	p.ticks = append(p.ticks, k)
	p.mu.Unlock()
}

// look finds whether n accepts writes, within ProbeTimeout.
func (p *Probe) look(n *Node) (string, error) {
	p.mu.Lock()
	pc := p.conns[n.ID]
	if pc == nil {
		pc = &probeConn{}
		p.conns[n.ID] = pc
	}
	p.mu.Unlock()
	if !pc.busy.TryLock() {
		return StateUnreachable, errors.New("still busy with an earlier tick")
	}
	defer pc.busy.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout)
	defer cancel()
	// Ask the engine every time: a node cut off its network must not be
	// reached through a connection that outlived the cut.
	ip, err := p.addrs.lookup(ctx, n, ProbeTimeout/2)
	if err != nil {
		p.drop(pc)
		return StateUnreachable, err
	}
	if pc.conn != nil && (pc.conn.IsClosed() || pc.conn.PgConn().Conn().RemoteAddr().String() != ip+":5432") {
		p.drop(pc)
	}
	if pc.conn == nil {
		if pc.conn, err = n.probeConnect(ctx, ip); err != nil {
			return StateUnreachable, err
		}
	}
	if _, err := pc.conn.Exec(ctx, probeWrite); err != nil {
		p.drop(pc)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return StateReadOnly, err
		}
		return StateUnreachable, err
	}
	return StateWritable, nil
}

// probeConnect opens the probe's connection to n at ip: from inside the
// network namespace of the test host n runs on, else from the test process.
func (n *Node) probeConnect(ctx context.Context, ip string) (*pgx.Conn, error) {
	h := n.env.host
	if h == nil {
		return n.connectAt(ctx, ip)
	}
	cfg, err := pgx.ParseConfig(n.dsnAt(ip, "", ""))
	if err != nil {
		return nil, fmt.Errorf("while parsing the address of node %s: %w", n.Name, err)
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialInNamespace(ctx, h.Namespace, network, addr)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to node %s from inside test host %s: %w", n.Name, h.Name, err)
	}
	return conn, nil
}

func (p *Probe) drop(pc *probeConn) {
	if pc.conn != nil {
		closeConn(pc.conn)
		pc.conn = nil
	}
}

// Stop stops the probe, waits for its last tick and returns its report. It may
// be called more than once; later calls return the same report.
func (p *Probe) Stop() ProbeReport {
	p.stopOnce.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, pc := range p.conns {
			p.drop(pc)
		}
		p.report = summarize(p.start, time.Now(), p.ticks)
	})
	return p.report
}

// summarize builds the report from the ticks, which may have finished out of
// order.
func summarize(start, end time.Time, ticks []ProbeTick) ProbeReport {
	sort.SliceStable(ticks, func(i, j int) bool { return ticks[i].At.Before(ticks[j].At) })
	r := ProbeReport{
		Start: start, End: end, Ticks: len(ticks),
		Writable: map[string]int{}, ReadOnly: map[string]int{}, Unreachable: map[string]int{},
		LastErrors: map[string]string{},
	}
	last := map[string]string{}
	for _, k := range ticks {
		names := make([]string, 0, len(k.States))
		for name := range k.States {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			st := k.States[name]
			switch st {
			case StateWritable:
				r.Writable[name]++
			case StateReadOnly:
				r.ReadOnly[name]++
			default:
				r.Unreachable[name]++
			}
			if last[name] != st {
				r.Transitions = append(r.Transitions, ProbeTransition{At: k.At, Node: name, State: st})
				last[name] = st
			}
			if msg := k.Errors[name]; msg != "" {
				r.LastErrors[name] = msg
			}
		}
		if len(k.WritableNodes()) > 1 {
			r.Overlaps = append(r.Overlaps, k)
		}
	}
	return r
}

// Check stops the probe and fails the test if two or more nodes were ever
// writable at the same tick, naming the ticks and the nodes.
func (p *Probe) Check(t testing.TB) ProbeReport {
	t.Helper()
	r := p.Stop()
	r.Check(t)
	return r
}

// Check fails the test if two or more nodes were ever writable at the same
// tick, naming the first ticks and the nodes. What it found counts for the
// test's fault runs (Fault).
func (r ProbeReport) Check(t testing.TB) {
	t.Helper()
	noteProbe(t, r)
	if len(r.Overlaps) == 0 {
		return
	}
	var b strings.Builder
	for i, k := range r.Overlaps {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more ticks", len(r.Overlaps)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s (+%s): writable %s",
			k.At.Format("15:04:05.000"), k.At.Sub(r.Start).Round(time.Millisecond), strings.Join(k.WritableNodes(), ", "))
	}
	t.Errorf("two or more nodes accepted writes at once at %d of %d ticks:%s", len(r.Overlaps), r.Ticks, b.String())
}

// String summarizes the report on one line per node, for logs.
func (r ProbeReport) String() string {
	names := map[string]bool{}
	for _, m := range []map[string]int{r.Writable, r.ReadOnly, r.Unreachable} {
		for n := range m {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var b strings.Builder
	fmt.Fprintf(&b, "probe: %d ticks in %s, %d with two or more writable nodes",
		r.Ticks, r.End.Sub(r.Start).Round(time.Millisecond), len(r.Overlaps))
	for _, n := range sorted {
		fmt.Fprintf(&b, "\n  %s: writable %d, read-only %d, unreachable %d", n, r.Writable[n], r.ReadOnly[n], r.Unreachable[n])
	}
	return b.String()
}
