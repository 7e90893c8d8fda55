package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns a libpq URL for the node over the run's network, as the superuser
// unless user and password are given.
func (n *Node) DSN(user, password string) string {
	return n.dsnAt(n.IP(), user, password)
}

// dsnAt is DSN for the node at address ip.
func (n *Node) dsnAt(ip, user, password string) string {
	if user == "" {
		user, password = n.User, n.Password
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(ip, "5432"),
		Path:     "/" + n.Database,
		RawQuery: "sslmode=prefer&connect_timeout=3",
	}
	return u.String()
}

// Conn opens a connection to the node as the superuser over TCP.
func (n *Node) Conn(ctx context.Context) (*pgx.Conn, error) {
	ip := n.IP()
	if ip == "" {
		return nil, fmt.Errorf("node %s is not attached to network %s", n.Name, n.Network)
	}
	return pgx.Connect(ctx, n.DSN("", ""))
}

// withConn runs f on a fresh superuser connection, bounded by 15 s.
func (n *Node) withConn(f func(ctx context.Context, conn *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return f(ctx, conn)
}

// TryExecSQL runs one statement on the node and returns the error, if any.
func (n *Node) TryExecSQL(sql string, args ...any) error {
	return n.withConn(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql, args...)
		return err
	})
}

// ExecSQL runs one statement on the node and fails the test on error.
func (n *Node) ExecSQL(sql string, args ...any) {
	n.env.T.Helper()
	if err := n.TryExecSQL(sql, args...); err != nil {
		n.env.T.Fatalf("node %s: while running %q: %v", n.Name, sql, err)
	}
}

// TryQueryRow runs a query returning one row and scans it into dest.
func (n *Node) TryQueryRow(sql string, dest []any, args ...any) error {
	return n.withConn(func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql, args...).Scan(dest...)
	})
}

// QueryString runs a query returning one text value and fails the test on error.
func (n *Node) QueryString(sql string, args ...any) string {
	n.env.T.Helper()
	var s string
	if err := n.TryQueryRow(sql, []any{&s}, args...); err != nil {
		n.env.T.Fatalf("node %s: while running %q: %v", n.Name, sql, err)
	}
	return s
}

// Eventually polls cond every 100 ms until it returns nil or timeout passes,
// then fails the test naming what was awaited and the last error.
func (e *Env) Eventually(timeout time.Duration, what string, cond func() error) {
	e.T.Helper()
	if err := Poll(timeout, cond); err != nil {
		e.T.Fatalf("waited %s for %s: %v", timeout, what, err)
	}
}

// Poll calls cond every 100 ms until it returns nil or timeout passes, and
// returns its last error (nil on success). It never fails the test, so it may
// run anywhere.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Writable returns nil when the node accepts a write: it is reachable, not in
// recovery, and a transaction that writes commits.
func (n *Node) Writable() error {
	var inRecovery bool
	if err := n.TryQueryRow("SELECT pg_is_in_recovery()", []any{&inRecovery}); err != nil {
		return err
	}
	if inRecovery {
		return errors.New("in recovery (a standby)")
	}
	return n.TryExecSQL("CREATE TEMP TABLE pacsd_probe(x int); INSERT INTO pacsd_probe VALUES (1)")
}

// WaitWritable waits until the node accepts writes.
func (n *Node) WaitWritable(timeout time.Duration) {
	n.env.T.Helper()
	n.env.Eventually(timeout, "node "+n.Name+" to accept writes", n.Writable)
}

// Streaming returns nil when the node is a standby whose WAL receiver streams.
func (n *Node) Streaming() error {
	var status string
	err := n.TryQueryRow("SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')", []any{&status})
	if err != nil {
		return err
	}
	if status != "streaming" {
		return fmt.Errorf("WAL receiver status is %q", status)
	}
	return nil
}

// WaitStreaming waits until the node is a standby streaming from its primary.
func (n *Node) WaitStreaming(timeout time.Duration) {
	n.env.T.Helper()
	n.env.Eventually(timeout, "node "+n.Name+" to stream WAL", n.Streaming)
}

// WaitRow waits until query (returning one boolean) is true on the node, e.g.
// that a row written on the primary is visible on a standby.
func (n *Node) WaitRow(timeout time.Duration, query string, args ...any) {
	n.env.T.Helper()
	n.env.Eventually(timeout, fmt.Sprintf("node %s: %s", n.Name, query), func() error {
		var ok bool
		if err := n.TryQueryRow(query, []any{&ok}, args...); err != nil {
			return err
		}
		if !ok {
			return errors.New("not yet true")
		}
		return nil
	})
}
