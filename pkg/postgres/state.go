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
	// headQuery reads, in one row, what the server reports as single values:
	// version, recovery, the timeline's sources, its WAL receiver, its WAL
	// positions and its streaming and synchronous standbys.
	//
	// On a primary the timeline is the one WAL is written on now: the first
	// eight hex digits of the current WAL file's name (pg_control_checkpoint
	// lags behind a promotion until the next checkpoint). On a standby it is
	// the timeline the WAL receiver receives; without a receiver, the latest
	// timeline the control file knows of. The WAL position is the one
	// written (primary) or replayed (standby); received is a standby's.
	headQuery = `SELECT current_setting('server_version_num'), r.rec,
		CASE WHEN r.rec THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END,
		CASE WHEN r.rec THEN coalesce(
			(SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0),
			greatest((SELECT timeline_id FROM pg_control_checkpoint()),
				(SELECT min_recovery_end_timeline FROM pg_control_recovery())))::bigint
		ELSE 0 END,
		coalesce((SELECT status FROM pg_stat_wal_receiver), ''),
		` + positionsColumns + `,
		ARRAY(SELECT application_name::text FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1),
		` + oldestWALColumn + `
		FROM (SELECT pg_is_in_recovery() AS rec) r`
	// oldestWALColumn is where the oldest WAL segment in pg_wal begins
	// (0 when there is none), whatever its timeline: a segment file's name
	// is its timeline, then the high and low halves of its number.
	oldestWALColumn = `coalesce((SELECT ('x' || substr(w.seg, 1, 8))::bit(32)::bigint * 4294967296
			+ ('x' || substr(w.seg, 9, 8))::bit(32)::bigint * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
		FROM (SELECT min(substr(name, 9, 16)) AS seg FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$') w
		WHERE w.seg IS NOT NULL), 0)`
	// healthQuery reads recovery, the columns of positionsColumns and the
	// WAL receiver's status ('' without one).
	healthQuery = `SELECT r.rec, ` + positionsColumns + `, coalesce((SELECT status FROM pg_stat_wal_receiver), '') FROM (SELECT pg_is_in_recovery() AS rec) r`
	// positionsColumns are the WAL written (primary) or replayed (standby),
	// the WAL received, and the synchronous standbys; r.rec is
	// pg_is_in_recovery().
	positionsColumns = `(CASE WHEN r.rec THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END - '0/0')::bigint,
		(coalesce(pg_last_wal_receive_lsn(), '0/0') - '0/0')::bigint,
		ARRAY(SELECT application_name::text FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') ORDER BY 1)`
	// settingsQuery reads every parameter with its value as SHOW prints it.
	settingsQuery = `SELECT name, current_setting(name), context, coalesce(sourcefile, ''), pending_restart
		FROM pg_settings`
	// rolesQuery reads roles with their direct memberships; a role granted
	// several times (PostgreSQL 16 keeps one grant per grantor) is listed once.
	rolesQuery = `SELECT a.rolname, a.rolcanlogin, a.rolreplication, a.rolsuper, coalesce(a.rolpassword, ''),
		ARRAY(SELECT DISTINCT g.rolname::text FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid
			WHERE m.member = a.oid ORDER BY 1)
		FROM pg_authid a`
	// slotsQuery reads the physical slots, the WAL each holds back on a
	// primary and its wal_status, a column PostgreSQL 13 added: read from
	// the row as JSON, it is NULL on 12 instead of an error.
	slotsQuery = `SELECT s.slot_name, s.active,
		CASE WHEN pg_is_in_recovery() OR s.restart_lsn IS NULL THEN 0 ELSE (pg_current_wal_lsn() - s.restart_lsn)::bigint END,
		coalesce(to_jsonb(s) ->> 'wal_status', '')
		FROM pg_replication_slots s WHERE s.slot_type = 'physical'`
	// replicasQuery reads the WAL senders of a primary.
	replicasQuery = `SELECT application_name::text, coalesce(state, ''), coalesce(sync_state, ''),
		(coalesce(replay_lsn, '0/0') - '0/0')::bigint,
		coalesce(extract(epoch FROM replay_lag), 0)::float8
		FROM pg_stat_replication`
)

// State reads what the server reports about itself: version, recovery,
// timeline, every setting, every role, physical slots, streaming standbys and
// its own WAL receiver. It needs a superuser (pg_authid, source files). Its
// statements travel as one batch: one round trip.
func (c *Conn) State(ctx context.Context) (*reconcile.DBState, error) {
	var s *reconcile.DBState
	err := c.run(ctx, false, func(ctx context.Context) error {
		var err error
		s, err = c.state(ctx)
		return err
	})
	if err != nil {
		return nil, c.wrap("reading the server's state", err)
	}
	s.ServedCert = c.served
	return s, nil
}

func (c *Conn) state(ctx context.Context) (*reconcile.DBState, error) {
	s := &reconcile.DBState{Settings: map[string]reconcile.Setting{}, Roles: map[string]reconcile.RoleState{}, Slots: map[string]bool{}}
	var version, walfile string
	var standbyTLI, wal, received, oldest int64
	b := &pgx.Batch{}
	b.Queue(headQuery).QueryRow(func(r pgx.Row) error {
		return r.Scan(&version, &s.InRecovery, &walfile, &standbyTLI, &s.Receiver, &wal, &received, &s.SyncStandbys, &s.Streaming, &oldest)
	})
	b.Queue(settingsQuery).Query(func(rows pgx.Rows) error {
		return into(rows, s.Settings, scanSetting)
	})
	b.Queue(rolesQuery).Query(func(rows pgx.Rows) error {
		return into(rows, s.Roles, scanRole)
	})
	s.SlotInfo, s.Replicas = map[string]reconcile.SlotState{}, map[string]reconcile.ReplicaState{}
	b.Queue(slotsQuery).Query(func(rows pgx.Rows) error {
		return into(rows, s.SlotInfo, func(r pgx.Rows) (name string, sl reconcile.SlotState, err error) {
			err = r.Scan(&name, &sl.Active, &sl.Retained, &sl.WALStatus)
			return name, sl, err
		})
	})
	b.Queue(replicasQuery).Query(func(rows pgx.Rows) error {
		return into(rows, s.Replicas, func(r pgx.Rows) (app string, rs reconcile.ReplicaState, err error) {
			var replay int64
			err = r.Scan(&app, &rs.State, &rs.SyncState, &replay, &rs.ReplayLag)
			rs.ReplayLSN = uint64(replay)
			return app, rs, err
		})
	})
	if err := c.conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	v, err := strconv.Atoi(version)
	if err != nil {
		return nil, fmt.Errorf("server_version_num: %w", err)
	}
	s.Version = v
	s.Timeline = standbyTLI
	if !s.InRecovery {
		if s.Timeline, err = walfileTimeline(walfile); err != nil {
			return nil, fmt.Errorf("the timeline: %w", err)
		}
	}
	s.WAL, s.ReceivedWAL, s.OldestWAL = uint64(wal), uint64(received), uint64(oldest)
	for name, sl := range s.SlotInfo {
		s.Slots[name] = sl.Active
	}
	if len(s.Streaming) == 0 {
		s.Streaming = nil
	}
	if len(s.SyncStandbys) == 0 {
		s.SyncStandbys = nil
	}
	return s, nil
}

// Health reads only whether the server is in recovery, its WAL positions,
// its synchronous standbys and its WAL receiver's status, in one statement: cheap enough to ask
// several times a second. On a kept connection, the first attempt gets
// half of what is left of ctx's deadline, so that a connection that hangs
// leaves the other half to a new one.
func (c *Conn) Health(ctx context.Context) (*reconcile.DBState, error) {
	s := &reconcile.DBState{}
	var wal, received int64
	if err := c.run(ctx, true, func(ctx context.Context) error {
		return c.conn.QueryRow(ctx, healthQuery).Scan(&s.InRecovery, &wal, &received, &s.SyncStandbys, &s.Receiver)
	}); err != nil {
		return nil, c.wrap("reading whether the server is in recovery and its WAL positions", err)
	}
	s.WAL, s.ReceivedWAL = uint64(wal), uint64(received)
	if len(s.SyncStandbys) == 0 {
		s.SyncStandbys = nil
	}
	return s, nil
}

// walfileTimeline returns the timeline of a WAL file's name: its first
// eight hex digits.
func walfileTimeline(walfile string) (int64, error) {
	if len(walfile) < 8 {
		return 0, fmt.Errorf("unexpected WAL file name %q", walfile)
	}
	return strconv.ParseInt(walfile[:8], 16, 64)
}

func scanSetting(r pgx.Rows) (name string, s reconcile.Setting, err error) {
	err = r.Scan(&name, &s.Value, &s.Context, &s.SourceFile, &s.PendingRestart)
	return name, s, err
}

func scanRole(r pgx.Rows) (name string, s reconcile.RoleState, err error) {
	err = r.Scan(&name, &s.Login, &s.Replication, &s.Superuser, &s.Verifier, &s.MemberOf)
	if len(s.MemberOf) == 0 {
		s.MemberOf = nil
	}
	return name, s, err
}

// into puts each row of rows, as scan reads it, into m.
func into[V any](rows pgx.Rows, m map[string]V, scan func(pgx.Rows) (string, V, error)) error {
	defer rows.Close()
	for rows.Next() {
		k, v, err := scan(rows)
		if err != nil {
			return err
		}
		m[k] = v
	}
	return rows.Err()
}

// roles reads all roles, or only the role name when name is not "".
func (c *Conn) roles(ctx context.Context, name string) (map[string]reconcile.RoleState, error) {
	sql, args := rolesQuery, []any(nil)
	if name != "" {
		sql, args = rolesQuery+" WHERE a.rolname = $1", []any{name}
	}
	rows, err := c.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	m := map[string]reconcile.RoleState{}
	return m, into(rows, m, scanRole)
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
	var out map[string][]byte
	if err := c.run(ctx, false, func(ctx context.Context) error {
		out = map[string][]byte{}
		rows, err := c.conn.Query(ctx, filesQuery, paths, digests)
		if err != nil {
			return err
		}
		var p string
		var b []byte
		_, err = pgx.ForEachRow(rows, []any{&p, &b}, func() error {
			out[p] = bytes.Clone(b)
			return nil
		})
		return err
	}); err != nil {
		return nil, c.wrap("reading pacsd's files", err)
	}
	return out, nil
}
