package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

const (
	// settingsQuery reads every parameter with its value as SHOW prints it.
	settingsQuery = `SELECT name, current_setting(name), context, coalesce(sourcefile, ''), pending_restart
		FROM pg_settings`
	// rolesQuery reads roles with their direct memberships; a role granted
	// several times (PostgreSQL 16 keeps one grant per grantor) is listed once.
	rolesQuery = `SELECT a.rolname, a.rolcanlogin, a.rolreplication, a.rolsuper, coalesce(a.rolpassword, ''),
		ARRAY(SELECT DISTINCT g.rolname::text FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid
			WHERE m.member = a.oid ORDER BY 1)
		FROM pg_authid a`
	slotsQuery     = `SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical'`
	streamingQuery = `SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1`
	receiverQuery  = `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')`
	// On a primary the timeline is the one WAL is written on now: the first
	// eight hex digits of the current WAL file's name. (pg_control_checkpoint
	// lags behind a promotion until the next checkpoint.)
	// walQuery reads the WAL written (primary) or replayed (standby), and received.
	walQuery = `SELECT (CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END - '0/0')::bigint,
	       (coalesce(pg_last_wal_receive_lsn(), '0/0') - '0/0')::bigint`
	syncQuery            = `SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') ORDER BY 1`
	primaryTimelineQuery = `SELECT pg_walfile_name(pg_current_wal_lsn())`
	// On a standby it is the timeline the WAL receiver receives; without a
	// receiver, the latest timeline the control file knows of.
	standbyTimelineQuery = `SELECT coalesce(
		(SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0),
		greatest((SELECT timeline_id FROM pg_control_checkpoint()),
			(SELECT min_recovery_end_timeline FROM pg_control_recovery())))::bigint`
)

// State reads what the server reports about itself: version, recovery,
// timeline, every setting, every role, physical slots, streaming standbys and
// its own WAL receiver. It needs a superuser (pg_authid, source files).
func (c *Conn) State(ctx context.Context) (*reconcile.DBState, error) {
	s := &reconcile.DBState{}
	var version string
	if err := c.conn.QueryRow(ctx, "SELECT current_setting('server_version_num'), pg_is_in_recovery()").
		Scan(&version, &s.InRecovery); err != nil {
		return nil, c.wrap("reading the server version", err)
	}
	v, err := strconv.Atoi(version)
	if err != nil {
		return nil, c.wrap("reading the server version", err)
	}
	s.Version = v
	if s.Timeline, err = c.timeline(ctx, s.InRecovery); err != nil {
		return nil, c.wrap("reading the timeline", err)
	}
	if s.Settings, err = c.settings(ctx); err != nil {
		return nil, c.wrap("reading settings", err)
	}
	if s.Roles, err = c.roles(ctx, ""); err != nil {
		return nil, c.wrap("reading roles", err)
	}
	if s.Slots, err = collect(ctx, c.conn, slotsQuery, func(r pgx.Rows, m map[string]bool) error {
		var name string
		var active bool
		err := r.Scan(&name, &active)
		m[name] = active
		return err
	}); err != nil {
		return nil, c.wrap("reading replication slots", err)
	}
	rows, _ := c.conn.Query(ctx, streamingQuery)
	if s.Streaming, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, c.wrap("reading streaming standbys", err)
	}
	if len(s.Streaming) == 0 {
		s.Streaming = nil
	}
	if err := c.conn.QueryRow(ctx, receiverQuery).Scan(&s.Receiver); err != nil {
		return nil, c.wrap("reading the WAL receiver", err)
	}
	if err := c.positions(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Health reads only whether the server is in recovery, its WAL positions
// and its synchronous standbys: cheap enough to ask several times a second.
func (c *Conn) Health(ctx context.Context) (*reconcile.DBState, error) {
	s := &reconcile.DBState{}
	if err := c.conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&s.InRecovery); err != nil {
		return nil, c.wrap("reading whether the server is in recovery", err)
	}
	if err := c.positions(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// positions fills the WAL positions and synchronous standbys of s.
func (c *Conn) positions(ctx context.Context, s *reconcile.DBState) error {
	var wal, received int64
	if err := c.conn.QueryRow(ctx, walQuery).Scan(&wal, &received); err != nil {
		return c.wrap("reading WAL positions", err)
	}
	s.WAL, s.ReceivedWAL = uint64(wal), uint64(received)
	rows, _ := c.conn.Query(ctx, syncQuery)
	var err error
	if s.SyncStandbys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return c.wrap("reading synchronous standbys", err)
	}
	if len(s.SyncStandbys) == 0 {
		s.SyncStandbys = nil
	}
	return nil
}

func (c *Conn) timeline(ctx context.Context, inRecovery bool) (int64, error) {
	var tli int64
	if inRecovery {
		err := c.conn.QueryRow(ctx, standbyTimelineQuery).Scan(&tli)
		return tli, err
	}
	var walfile string
	if err := c.conn.QueryRow(ctx, primaryTimelineQuery).Scan(&walfile); err != nil {
		return 0, err
	}
	if len(walfile) < 8 {
		return 0, fmt.Errorf("unexpected WAL file name %q", walfile)
	}
	return strconv.ParseInt(walfile[:8], 16, 64)
}

func (c *Conn) settings(ctx context.Context) (map[string]reconcile.Setting, error) {
	return collect(ctx, c.conn, settingsQuery, func(r pgx.Rows, m map[string]reconcile.Setting) error {
		var name string
		var s reconcile.Setting
		err := r.Scan(&name, &s.Value, &s.Context, &s.SourceFile, &s.PendingRestart)
		m[name] = s
		return err
	})
}

// roles reads all roles, or only the role name when name is not "".
func (c *Conn) roles(ctx context.Context, name string) (map[string]reconcile.RoleState, error) {
	sql, args := rolesQuery, []any(nil)
	if name != "" {
		sql, args = rolesQuery+" WHERE a.rolname = $1", []any{name}
	}
	return collect(ctx, c.conn, sql, func(r pgx.Rows, m map[string]reconcile.RoleState) error {
		var name string
		var s reconcile.RoleState
		err := r.Scan(&name, &s.Login, &s.Replication, &s.Superuser, &s.Verifier, &s.MemberOf)
		if len(s.MemberOf) == 0 {
			s.MemberOf = nil
		}
		m[name] = s
		return err
	}, args...)
}

// collect runs a query and lets scan put each row into a map.
func collect[V any](ctx context.Context, conn *pgx.Conn, sql string, scan func(pgx.Rows, map[string]V) error, args ...any) (map[string]V, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]V{}
	for rows.Next() {
		if err := scan(rows, m); err != nil {
			return nil, err
		}
	}
	return m, rows.Err()
}

// filesQuery reads each path of $1 as the server sees it, or its SHA-256
// when the path is also in $2; a missing file gives no row. 64 MiB bounds a
// file (pacsd reads its own small files and pg_control).
const filesQuery = `SELECT p, CASE WHEN p = ANY($2::text[]) THEN sha256(f) ELSE f END
	FROM unnest($1::text[]) AS p, LATERAL pg_read_binary_file(p, 0, 67108864, true) AS f
	WHERE f IS NOT NULL`

// ReadFiles reads files through the server (pg_read_binary_file, which needs
// a superuser): one round trip instead of one engine request per file. The
// content of a path in digests never leaves the server, only its SHA-256.
func (c *Conn) ReadFiles(ctx context.Context, paths, digests []string) (map[string][]byte, error) {
	rows, err := c.conn.Query(ctx, filesQuery, paths, digests)
	if err != nil {
		return nil, c.wrap("reading pacsd's files", err)
	}
	out := map[string][]byte{}
	var p string
	var b []byte
	if _, err := pgx.ForEachRow(rows, []any{&p, &b}, func() error {
		out[p] = bytes.Clone(b)
		return nil
	}); err != nil {
		return nil, c.wrap("reading pacsd's files", err)
	}
	return out, nil
}
