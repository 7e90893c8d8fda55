package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
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

// closeTimeout bounds the goodbye message of Close.
const closeTimeout = 5 * time.Second

// Database opens connections to PostgreSQL servers. It implements
// reconcile.Database. The zero value is not ready for use; call New.
type Database struct {
	// ConnectTimeout bounds each connection attempt (DefaultConnectTimeout).
	ConnectTimeout time.Duration
}

var _ reconcile.Database = (*Database)(nil)

// New returns a Database with the default connect timeout.
func New() *Database { return &Database{ConnectTimeout: DefaultConnectTimeout} }

// Connect opens one connection to the server at addr ("host:port") as user
// to database, without TLS, with application_name "pacsd". The libpq
// environment (PGHOST, PGOPTIONS, ...) does not change any of these. The
// error names addr and user, never the password.
func (d *Database) Connect(ctx context.Context, addr, user string, password spec.Secret, database string) (reconcile.DBConn, error) {
	return d.connect(ctx, addr, user, password, database)
}

// connect is Connect returning the concrete type.
func (d *Database) connect(ctx context.Context, addr, user string, password spec.Secret, database string) (*Conn, error) {
	fail := func(err error) (*Conn, error) {
		return nil, fmt.Errorf("while connecting to %s as %s: %w", addr, user, err)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return fail(err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return fail(fmt.Errorf("port %q is not a TCP port", portText))
	}
	if host == "" || user == "" || database == "" {
		return fail(fmt.Errorf("host, user and database must all be given"))
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return fail(err)
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.User, cfg.Password, cfg.Database = user, password.Reveal(), database
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = d.ConnectTimeout
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	// pacsd's own writes (roles, slots) never wait for a synchronous standby:
	// a primary with synchronous_standby_names and no standby yet must still
	// get the roles and slots its standbys need.
	cfg.RuntimeParams = map[string]string{"application_name": ApplicationName, "synchronous_commit": "local"}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// pgx's errors name host, user and database; make sure that stays so.
		alive := answered(err)
		err = redact(err, password.Reveal())
		if alive {
			err = fmt.Errorf("%w: %w", reconcile.ErrServerRefused, err)
		}
		return fail(err)
	}
	return &Conn{conn: conn, addr: addr, user: user}, nil
}

// answered reports a connection error that a running server sent: the
// login was refused (SQLSTATE class 28: a wrong password, no pg_hba.conf
// line), too many connections, or the database does not exist. Such a
// server is alive.
func answered(err error) bool {
	var pe *pgconn.PgError
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
	conn *pgx.Conn
	addr string // as given to Connect, for errors
	user string // the connected role
}

var _ reconcile.DBConn = (*Conn)(nil)

// Addr returns the address the connection was opened to.
func (c *Conn) Addr() string { return c.addr }

// Close closes the connection, waiting at most a few seconds for the server.
func (c *Conn) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = c.conn.Close(ctx)
}

// wrap says what failed on which server; nil stays nil.
func (c *Conn) wrap(doing string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("while %s on %s: %w", doing, c.addr, err)
}

// exec runs one statement; its error says what was being done.
func (c *Conn) exec(ctx context.Context, doing, sql string, args ...any) error {
	_, err := c.conn.Exec(ctx, sql, args...)
	return c.wrap(doing, err)
}

// Reload asks the server to re-read its configuration files (pg_reload_conf).
// Settings of context postmaster still need a restart; pg_settings then
// reports them as pending_restart.
func (c *Conn) Reload(ctx context.Context) error {
	var ok bool
	if err := c.conn.QueryRow(ctx, "SELECT pg_reload_conf()").Scan(&ok); err != nil {
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
