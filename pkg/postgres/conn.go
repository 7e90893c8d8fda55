package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pacsd/pacsd/pkg/postgres/sqltext"
	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/spec"
)

// ApplicationName is the application_name of every connection pacsd opens, as
// pg_stat_activity shows it.
const ApplicationName = "pacsd"

// DefaultConnectTimeout bounds how long Connect waits for a server to answer
// and authenticate, unless the context ends first.
const DefaultConnectTimeout = 10 * time.Second

// closeTimeout bounds the goodbye message of a connection closed.
const closeTimeout = 5 * time.Second

// Database opens connections to PostgreSQL servers and keeps them between
// uses. It implements reconcile.Database and is safe for concurrent use.
// The zero value is not ready for use; call New.
//
// A DBConn's Close does not close its connection but keeps it, idle, for
// the next Connect to the same address as the same user to the same
// database with the same password (one per such key, for at most
// IdleTimeout). A connection that saw an error, or whose session was
// changed (a verifier sent, a transaction left open), is closed instead.
// The first statement on a kept connection that breaks it (a server
// restarted, a container re-created at the same address) is sent once more
// on a new connection within the same call, so that a caller never sees an
// error that only a stale connection caused.
type Database struct {
	// ConnectTimeout bounds each connection attempt (DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// IdleTimeout is how long an unused connection is kept
	// (DefaultIdleTimeout); 0 or less keeps none. Set it before the first
	// Connect.
	IdleTimeout time.Duration

	once sync.Once
	idle *idleSet[*pgx.Conn]
}

var _ reconcile.Database = (*Database)(nil)

// New returns a Database with the default connect and idle timeouts.
func New() *Database {
	return &Database{ConnectTimeout: DefaultConnectTimeout, IdleTimeout: DefaultIdleTimeout}
}

func (d *Database) idleSet() *idleSet[*pgx.Conn] {
	d.once.Do(func() { d.idle = newIdleSet(d.IdleTimeout, closeConn) })
	return d.idle
}

// CloseIdle closes the connections kept idle; connections in use are
// closed, not kept, when their DBConn is closed.
func (d *Database) CloseIdle() { d.idleSet().closeAll(true) }

// Connect returns a connection to the server at addr ("host:port") as user
// to database, over TLS verified as ctx's reconcile.Peer says (no Peer: an
// error matching reconcile.ErrNoPeer; a server without TLS or with a
// certificate that does not verify: an error), with application_name "pacsd": one kept idle
// for the same address, user, database and password, else a new one. The
// libpq environment (PGHOST, PGOPTIONS, ...) does not change any of these.
// The error names addr and user, never the password.
func (d *Database) Connect(ctx context.Context, addr, user string, password spec.Secret, database string) (reconcile.DBConn, error) {
	return d.connect(ctx, addr, user, password, database)
}

// connect is Connect returning the concrete type.
func (d *Database) connect(ctx context.Context, addr, user string, password spec.Secret, database string) (*Conn, error) {
	peer, ok := reconcile.PeerFrom(ctx)
	if !ok {
		return nil, fmt.Errorf("while connecting to %s as %s: %w", addr, user, reconcile.ErrNoPeer)
	}
	cfg, err := d.config(addr, user, password.Reveal(), database)
	if err == nil {
		cfg.TLSConfig, err = tlsConfig(peer)
	}
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s as %s: %w", addr, user, err)
	}
	c := &Conn{d: d, cfg: cfg, key: newConnKey(addr+" "+peer.ServerName, user, database, cfg.Password), addr: addr, user: user}
	// A kept connection is not checked before it is handed out: its first
	// use, which says whether it still works, is sent again on a new
	// connection if it does not (see run).
	if conn, ok := d.idleSet().take(c.key); ok {
		c.conn, c.kept = conn, true
		return c, nil
	}
	if c.conn, err = d.open(ctx, cfg, addr, user); err != nil {
		return nil, err
	}
	c.served = servedCert(c.conn)
	return c, nil
}

// tlsConfig verifies a server as libpq's sslmode=verify-full does: its
// certificate chains to p.RootCA and names p.ServerName. TLS 1.2 at least.
func tlsConfig(p reconcile.Peer) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.RootCA) {
		return nil, errors.New("the cluster's CA certificate does not parse")
	}
	if p.ServerName == "" {
		return nil, errors.New("no server name to verify the server's certificate with")
	}
	return &tls.Config{RootCAs: pool, ServerName: p.ServerName, MinVersion: tls.VersionTLS12}, nil
}

// config checks the address and names and returns the connection's
// configuration, without TLS (Connect adds it).
func (d *Database) config(addr, user, password, database string) (*pgx.ConnConfig, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("port %q is not a TCP port", portText)
	}
	if host == "" || user == "" || database == "" {
		return nil, fmt.Errorf("host, user and database must all be given")
	}
	// No TLS and no fallbacks here: Connect sets the one TLS configuration.
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.User, cfg.Password, cfg.Database = user, password, database
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = d.ConnectTimeout
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	// pacsd's own writes (roles, slots) never wait for a synchronous standby:
	// a primary with synchronous_standby_names and no standby yet must still
	// get the roles and slots its standbys need.
	cfg.RuntimeParams = map[string]string{"application_name": ApplicationName, "synchronous_commit": "local"}
	return cfg, nil
}

// open opens a new connection with cfg.
func (d *Database) open(ctx context.Context, cfg *pgx.ConnConfig, addr, user string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// pgx's errors name host, user and database; make sure that stays so.
		alive := answered(err)
		err = redact(err, cfg.Password)
		if alive {
			err = fmt.Errorf("%w: %w", reconcile.ErrServerRefused, err)
		}
		return nil, fmt.Errorf("while connecting to %s as %s: %w", addr, user, err)
	}
	return conn, nil
}

// servedCert is the certificate (DER) the server of conn presented, nil
// when there is none.
func servedCert(conn *pgx.Conn) []byte {
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return nil
	}
	if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
		return peers[0].Raw
	}
	return nil
}

// closeConn closes conn, waiting at most a few seconds for the server.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// answered reports a connection error that a running server sent: the
// login was refused (SQLSTATE class 28: a wrong password, no pg_hba.conf
// line), too many connections, or the database does not exist; or it
// answered without TLS or with a certificate that does not verify. Such a
// server is alive.
func answered(err error) bool {
	var (
		pe       *pgconn.PgError
		verify   *tls.CertificateVerificationError
		hostname x509.HostnameError
		unknown  x509.UnknownAuthorityError
	)
	var (
		alert  tls.AlertError
		record tls.RecordHeaderError
	)
	// A TLS error comes after the server said it speaks TLS (or that it
	// does not): it answered. A server that says nothing times out instead.
	if errors.As(err, &verify) || errors.As(err, &hostname) || errors.As(err, &unknown) ||
		errors.As(err, &alert) || errors.As(err, &record) ||
		strings.Contains(err.Error(), "server refused TLS connection") || strings.Contains(err.Error(), "tls: ") {
		return true
	}
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "28") || pe.Code == "53300" || pe.Code == "3D000"
}

// redact hides the password should an error ever quote it.
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), password, "[redacted]"))
}

// Conn is one connection to one server. It implements reconcile.DBConn. It is
// not safe for concurrent use.
type Conn struct {
	d    *Database
	cfg  *pgx.ConnConfig // to open a new connection should a kept one be stale
	key  connKey
	conn *pgx.Conn // nil once closed
	addr string    // as given to Connect, for errors
	user string    // the connected role
	// kept says that conn was kept idle and has not been used since.
	kept bool
	// served is the certificate (DER) the server presented when conn was
	// opened by this Connect; nil for a kept connection (the server may
	// have been reloaded since it was opened).
	served []byte
	// spoilt says that conn saw an error or had its session changed: Close
	// closes it instead of keeping it.
	spoilt bool
}

var _ reconcile.DBConn = (*Conn)(nil)

// errClosed is returned by the methods of a closed Conn.
var errClosed = errors.New("the connection was closed")

// Addr returns the address the connection was opened to.
func (c *Conn) Addr() string { return c.addr }

// Close hands the connection back to its Database, which keeps it idle for
// the next Connect, or closes it, waiting at most a few seconds for the
// server, when it saw an error or its session was changed. Close is
// idempotent.
func (c *Conn) Close() {
	conn := c.conn
	if conn == nil {
		return
	}
	c.conn = nil
	pg := conn.PgConn()
	if c.spoilt || conn.IsClosed() || pg.IsBusy() || pg.TxStatus() != 'I' {
		closeConn(conn)
		return
	}
	c.d.idleSet().put(c.key, conn)
}

// run runs f, which uses c.conn. When f is the first use of a kept
// connection and breaks it (a server restarted, a container re-created at
// the same address: the connection is closed afterwards) while ctx still
// runs, f runs once more on a new connection. With split, the first use of
// a kept connection gets half of what is left of ctx's deadline, so that a
// kept connection that hangs leaves time for a new one. An error marks the
// connection spoilt.
func (c *Conn) run(ctx context.Context, split bool, f func(context.Context) error) error {
	if c.conn == nil {
		return errClosed
	}
	if c.kept {
		c.kept = false
		first, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && split {
			first, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		}
		err := f(first)
		cancel()
		if err == nil {
			return nil
		}
		if !stale(ctx, c.conn.IsClosed()) {
			c.spoilt = true
			return err
		}
		closeConn(c.conn) // closed already: returns at once
		conn, oerr := c.d.open(ctx, c.cfg, c.addr, c.user)
		if oerr != nil {
			c.spoilt = true
			return oerr
		}
		c.conn = conn
	}
	err := f(ctx)
	if err != nil {
		c.spoilt = true
	}
	return err
}

// stale reports whether an error on the first use of a kept connection may
// be the connection's own: the connection broke (closed) while the
// caller's ctx still runs. An error the server sent on a connection that
// stays usable (a failed statement) is the server's answer.
func stale(ctx context.Context, closed bool) bool { return closed && ctx.Err() == nil }

// wrap says what failed on which server; nil stays nil.
func (c *Conn) wrap(doing string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("while %s on %s: %w", doing, c.addr, err)
}

// exec runs one statement; its error says what was being done.
func (c *Conn) exec(ctx context.Context, doing, sql string, args ...any) error {
	return c.wrap(doing, c.run(ctx, false, func(ctx context.Context) error {
		_, err := c.conn.Exec(ctx, sql, args...)
		return err
	}))
}

// Reload asks the server to re-read its configuration files (pg_reload_conf).
// Settings of context postmaster still need a restart; pg_settings then
// reports them as pending_restart.
func (c *Conn) Reload(ctx context.Context) error {
	var ok bool
	if err := c.run(ctx, false, func(ctx context.Context) error {
		return c.conn.QueryRow(ctx, "SELECT pg_reload_conf()").Scan(&ok)
	}); err != nil {
		return c.wrap("reloading the configuration", err)
	}
	if !ok {
		return c.wrap("reloading the configuration", fmt.Errorf("pg_reload_conf() returned false"))
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal: sqltext.Literal, the one
// quoting function for values that cannot travel as bind parameters.
func quoteLiteral(s string) (string, error) { return sqltext.Literal(s) }
