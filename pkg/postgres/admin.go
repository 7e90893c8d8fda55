package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// duplicateObject is SQLSTATE 42710, raised for a slot that already exists.
const duplicateObject = "42710"

// CreateSlot creates the physical replication slot name unless it exists. The
// slot reserves WAL from the moment it is created, so a standby built or
// re-attached later finds the WAL it needs (max_slot_wal_keep_size bounds
// what it may hold). One that PostgreSQL invalidated (wal_status lost: it
// went past max_slot_wal_keep_size) can never be used again: it is dropped
// and created anew, unless a walsender still uses it (an error). A logical
// slot of that name is an error.
func (c *Conn) CreateSlot(ctx context.Context, name string) error {
	doing := "creating replication slot " + name
	return c.wrap(doing, c.run(ctx, false, func(ctx context.Context) error {
		var kind, status string
		var active bool
		err := c.conn.QueryRow(ctx, "SELECT slot_type, active, coalesce(to_jsonb(s) ->> 'wal_status', '') FROM pg_replication_slots s WHERE slot_name = $1", name).Scan(&kind, &active, &status)
		switch {
		case err == nil && kind == "physical" && status == "lost" && active:
			return errors.New("it was invalidated (wal_status lost) and a walsender still uses it; it is made anew once that one ends")
		case err == nil && kind == "physical" && status == "lost":
			if _, err := c.conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name); err != nil {
				return fmt.Errorf("while dropping it, invalidated (wal_status lost): %w", err)
			}
		case err == nil && kind == "physical":
			return nil
		case err == nil:
			return fmt.Errorf("a %s slot of that name exists", kind)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = c.conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", name)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == duplicateObject {
			return nil // created meanwhile by someone else
		}
		return err
	}))
}

// settingName is a parameter name: an identifier, or a dotted custom one
// such as pg_stat_statements.max.
var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$`)

// ResetSetting removes the ALTER SYSTEM override of parameter name from
// postgresql.auto.conf (ALTER SYSTEM RESET). It takes effect at the next
// reload, or restart for a parameter of context postmaster. name must be a
// parameter name; "all" resets nothing but is an unknown parameter.
func (c *Conn) ResetSetting(ctx context.Context, name string) error {
	doing := "resetting parameter " + name
	if !settingName.MatchString(name) {
		return c.wrap("resetting a parameter", fmt.Errorf("%q is not a parameter name", name))
	}
	ident := pgx.Identifier(strings.Split(strings.ToLower(name), "."))
	return c.exec(ctx, doing, "ALTER SYSTEM RESET "+ident.Sanitize())
}

// Checkpoint runs CHECKPOINT, so that a shutdown that follows is quick.
func (c *Conn) Checkpoint(ctx context.Context) error {
	return c.exec(ctx, "running a checkpoint", "CHECKPOINT")
}

// Promote ends recovery with pg_promote and waits up to 60 s until the
// server accepts writes. It is an error when the server is not in recovery.
func (c *Conn) Promote(ctx context.Context) error {
	// pg_promote's own wait looks every 100 ms; pacsd looks every 5 ms, as
	// the promotion is what writers wait for.
	// Only the request is sent again on a new connection should a kept one
	// be stale; the wait that follows is a use of its own.
	var asked bool
	if err := c.run(ctx, false, func(ctx context.Context) error {
		return c.conn.QueryRow(ctx, "SELECT pg_promote(false)").Scan(&asked)
	}); err != nil {
		return c.wrap("promoting", err)
	}
	if !asked {
		c.spoilt = true
		return c.wrap("promoting", errors.New("the server did not take the promotion request"))
	}
	deadline := time.Now().Add(promoteWait)
	for {
		var inRecovery bool
		if err := c.run(ctx, false, func(ctx context.Context) error {
			return c.conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
		}); err != nil {
			return c.wrap("waiting for the promotion", err)
		}
		if !inRecovery {
			return nil
		}
		if time.Now().After(deadline) {
			return c.wrap("promoting", fmt.Errorf("the server did not finish promotion within %s", promoteWait))
		}
		select {
		case <-ctx.Done():
			return c.wrap("waiting for the promotion", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// promoteWait bounds the wait for a promotion to finish.
const promoteWait = 60 * time.Second

// DropSlot drops the replication slot name if it exists; an active slot is
// an error (its standby still streams).
func (c *Conn) DropSlot(ctx context.Context, name string) error {
	return c.exec(ctx, "dropping replication slot "+name,
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
}
