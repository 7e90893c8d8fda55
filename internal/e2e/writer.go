package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// WriterInterval is the pause between two commits of the writer: about a
	// hundred commits a second, fine enough to measure a window of write
	// unavailability, light enough for a small machine.
	WriterInterval = 10 * time.Millisecond
	// WriterTimeout bounds each step of the writer: finding a node's address,
	// connecting, creating the table, one insert.
	WriterTimeout = time.Second
	// writerErrorSamples is how many distinct errors the report keeps.
	writerErrorSamples = 20
)

// Writer inserts rows, one committed transaction each, into a table on
// whichever node accepts writes, and records every commit the server
// acknowledged. On any error it drops the connection and tries the nodes in
// turn, starting with the one after the node that failed, so it carries on
// across a restart, a failover or a switchover. A commit that returned an
// error is not acknowledged: it may or may not have happened, and the writer
// moves on to the next sequence number.
type Writer struct {
	nodes func() []*Node
	table string
	addrs addrBook
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	r       WriterReport
	lastAck time.Time

	stopOnce sync.Once
}

// WriterReport is what a writer did from start to Stop.
type WriterReport struct {
	Table      string
	Start, End time.Time
	// Acked are the sequence numbers of acknowledged commits, ascending.
	Acked []int64
	// Failed counts inserts that returned an error: their outcome is unknown.
	Failed int
	// Errors counts every error (finding a node, connecting, creating the
	// table, inserting); ErrorSamples keeps the first distinct ones with the
	// time they were first seen.
	Errors       int
	ErrorSamples []string
	// ByNode counts acknowledged commits per node name.
	ByNode map[string]int
	// Switches lists, in order, the nodes the writer settled on, with when.
	Switches []string
	// LongestGap is the longest time between two consecutive acknowledged
	// commits (the window of write unavailability), from GapStart to GapEnd.
	LongestGap       time.Duration
	GapStart, GapEnd time.Time
	// Tail is the time from the last acknowledged commit to Stop (the whole
	// run when nothing was acknowledged): a writer that never recovered shows
	// here, not in LongestGap.
	Tail time.Duration
}

// StartWriter creates table (seq bigint primary key, at timestamptz, node
// text) on the first of nodes that accepts writes and keeps inserting into it
// every WriterInterval. nodes is asked again whenever the writer looks for a
// node, so a test can hand it the nodes pacsd creates. Each node is reached as
// its own superuser (Node.User, Node.Password, Node.Database). Stop the writer
// with Stop; it is also stopped when the test ends.
func (e *Env) StartWriter(nodes func() []*Node, table string) *Writer {
	w := &Writer{
		nodes: nodes,
		table: table,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		r:     WriterReport{Table: table, Start: time.Now(), ByNode: map[string]int{}},
	}
	e.T.Cleanup(func() { w.Stop() })
	go w.loop()
	return w
}

func (w *Writer) loop() {
	defer close(w.done)
	var (
		conn *pgx.Conn
		cur  *Node
		next int // index in nodes() to try first
		seq  int64
	)
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-pause.C:
		}
		pause.Reset(WriterInterval)
		if conn == nil {
			conn, cur, next = w.connect(next)
			if conn == nil {
				pause.Reset(100 * time.Millisecond)
				continue
			}
		}
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), WriterTimeout)
		at := time.Now()
		_, err := conn.Exec(ctx, "INSERT INTO "+pgx.Identifier{w.table}.Sanitize()+" (seq, at, node) VALUES ($1, $2, $3)", seq, at, cur.Name)
		cancel()
		acked := time.Now()
		w.mu.Lock()
		if err != nil {
			w.r.Failed++
			w.noteLocked(fmt.Errorf("while inserting %d on node %s: %w", seq, cur.Name, err))
			w.mu.Unlock()
			closeConn(conn)
			conn = nil
			continue
		}
		w.r.Acked = append(w.r.Acked, seq)
		w.r.ByNode[cur.Name]++
		if !w.lastAck.IsZero() {
			if gap := acked.Sub(w.lastAck); gap > w.r.LongestGap {
				w.r.LongestGap, w.r.GapStart, w.r.GapEnd = gap, w.lastAck, acked
			}
		}
		w.lastAck = acked
		w.mu.Unlock()
	}
}

// connect tries the nodes in turn from index first and returns a connection
// to the first that takes the table, the node, and the index to try first
// next time (the one after it).
func (w *Writer) connect(first int) (*pgx.Conn, *Node, int) {
	nodes := w.nodes()
	for i := range nodes {
		select {
		case <-w.stop:
			return nil, nil, first
		default:
		}
		k := (first + i) % len(nodes)
		n := nodes[k]
		conn, err := w.open(n)
		if err != nil {
			w.note(err)
			continue
		}
		w.mu.Lock()
		w.r.Switches = append(w.r.Switches, time.Now().Format("15:04:05.000")+" "+n.Name)
		w.mu.Unlock()
		return conn, n, (k + 1) % len(nodes)
	}
	return nil, nil, first
}

// open connects to n and makes sure the table exists there, which also
// proves n accepts writes.
func (w *Writer) open(n *Node) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), WriterTimeout)
	defer cancel()
	ip, err := w.addrs.lookup(ctx, n, WriterTimeout/2)
	if err != nil {
		return nil, err
	}
	conn, err := n.connectAt(ctx, ip)
	if err != nil {
		return nil, err
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), WriterTimeout)
	defer cancel2()
	if _, err := conn.Exec(ctx2, "CREATE TABLE IF NOT EXISTS "+pgx.Identifier{w.table}.Sanitize()+
		" (seq bigint PRIMARY KEY, at timestamptz NOT NULL, node text NOT NULL)"); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("while creating table %s on node %s: %w", w.table, n.Name, err)
	}
	return conn, nil
}

func (w *Writer) note(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.noteLocked(err)
}

func (w *Writer) noteLocked(err error) {
	w.r.Errors++
	if len(w.r.ErrorSamples) >= writerErrorSamples {
		return
	}
	msg := err.Error()
	for _, s := range w.r.ErrorSamples {
		if strings.HasSuffix(s, " "+msg) {
			return
		}
	}
	w.r.ErrorSamples = append(w.r.ErrorSamples, time.Now().Format("15:04:05.000")+" "+msg)
}

// Stop stops the writer after its current statement and returns its report.
// It may be called more than once; later calls return the same report.
func (w *Writer) Stop() WriterReport {
	w.stopOnce.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		defer w.mu.Unlock()
		w.r.End = time.Now()
		from := w.r.Start
		if !w.lastAck.IsZero() {
			from = w.lastAck
		}
		w.r.Tail = w.r.End.Sub(from)
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.r
}

// Acked returns how many commits were acknowledged so far.
func (w *Writer) Acked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.r.Acked)
}

// String summarizes the report for logs.
func (r WriterReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "writer %s: %d acknowledged commits in %s, %d failed, %d errors, longest gap %s",
		r.Table, len(r.Acked), r.End.Sub(r.Start).Round(time.Millisecond), r.Failed, r.Errors, r.LongestGap.Round(time.Millisecond))
	if r.LongestGap > 0 {
		fmt.Fprintf(&b, " (%s to %s)", r.GapStart.Format("15:04:05.000"), r.GapEnd.Format("15:04:05.000"))
	}
	names := make([]string, 0, len(r.ByNode))
	for n := range r.ByNode {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\n  on %s: %d", n, r.ByNode[n])
	}
	for _, s := range r.Switches {
		fmt.Fprintf(&b, "\n  writing to %s", s)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(&b, "\n  error %s", s)
	}
	return b.String()
}

// CheckNoLoss fails the test unless every acknowledged commit is present on
// node (the primary after a failover or switchover), naming the missing
// sequence numbers. It also fails when nothing was acknowledged, since then
// nothing was proven. What it found counts for the test's fault runs (Fault).
func (r WriterReport) CheckNoLoss(t testing.TB, node *Node) {
	t.Helper()
	if len(r.Acked) == 0 {
		t.Errorf("writer %s: no commit was acknowledged; errors:\n  %s", r.Table, strings.Join(r.ErrorSamples, "\n  "))
		return
	}
	missing, err := r.Missing(node)
	if err != nil {
		t.Errorf("node %s: while reading table %s: %v", node.Name, r.Table, err)
		return
	}
	noteWriter(t, len(r.Acked), len(missing), node.Name)
	if len(missing) > 0 {
		t.Errorf("node %s: %d of %d acknowledged commits of writer %s are missing: %s",
			node.Name, len(missing), len(r.Acked), r.Table, ranges(missing))
	}
}

// Missing returns the acknowledged commits that node lacks, ascending.
func (r WriterReport) Missing(node *Node) ([]int64, error) {
	present := map[int64]bool{}
	err := node.withConn(func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, "SELECT seq FROM "+pgx.Identifier{r.Table}.Sanitize())
		if err != nil {
			return err
		}
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				return err
			}
			present[s] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	var missing []int64
	for _, s := range r.Acked {
		if !present[s] {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// ranges formats ascending numbers as "1-4, 7, 9-10".
func ranges(xs []int64) string {
	var parts []string
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.FormatInt(xs[i], 10))
		} else {
			parts = append(parts, strconv.FormatInt(xs[i], 10)+"-"+strconv.FormatInt(xs[j], 10))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
