package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pacsd/pacsd/pkg/postgres/sqltext"
	"github.com/pacsd/pacsd/pkg/reconcile"
)

// SetRole makes role r.Name exist with the attributes of r: it creates the
// role when it is missing, else alters LOGIN, REPLICATION and SUPERUSER where
// they differ, sets the password when r.Verifier is given and differs from
// the stored one, and grants the memberships of r.MemberOf the role lacks
// (others are left alone). It changes nothing when the role already matches.
//
// r.Verifier must be a SCRAM-SHA-256 verifier (see Verifier); anything else,
// such as a plain password, is refused before it is sent. The verifier is
// sent as a quoted literal in a transaction that neither logs nor keeps its
// statements (sqltext.QuietBefore: the same as the executor's reset over a
// container's socket).
// SetRole refuses to take LOGIN or SUPERUSER from the connected role.
// All changes happen in one transaction.
func (c *Conn) SetRole(ctx context.Context, r reconcile.RoleSpec) error {
	doing := "setting role " + r.Name
	if r.Name == "" {
		return c.wrap("setting a role", errors.New("the role has no name"))
	}
	if r.Verifier != "" && !IsVerifier(r.Verifier) {
		return c.wrap(doing, errors.New("the password is not a SCRAM-SHA-256 verifier; it is not sent"))
	}
	if r.Name == c.user && (!r.Login || !r.Superuser) {
		return c.wrap(doing, errors.New("refusing to take LOGIN or SUPERUSER from the connected role"))
	}
	return c.wrap(doing, c.run(ctx, false, func(ctx context.Context) error {
		return c.setRole(ctx, r)
	}))
}

// setRole is SetRole's work on the connection. A connection that carried a
// verifier is never kept: its session's settings were changed, and its
// statement cache names the statement.
func (c *Conn) setRole(ctx context.Context, r reconcile.RoleSpec) error {
	have, err := c.roles(ctx, r.Name)
	if err != nil {
		return err
	}
	cur, exists := have[r.Name]
	stmts, secret, err := roleStatements(r, cur, exists)
	if err != nil {
		return err
	}
	if len(stmts) == 0 {
		return nil
	}
	if secret {
		c.spoilt = true
		if _, err := c.conn.Exec(ctx, sqltext.QuietBefore); err != nil {
			return err
		}
		defer c.conn.Exec(ctx, sqltext.QuietAfter)
		stmts = append([]string{sqltext.QuietLocal}, stmts...)
	}
	return pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				// The statement may hold a verifier: say which kind failed only.
				return fmt.Errorf("%s: %w", strings.Join(strings.Fields(s)[:2], " "), err)
			}
		}
		return nil
	})
}

// roleStatements returns the statements that turn cur (exists reports whether
// the role exists at all) into r, and whether they carry a verifier.
func roleStatements(r reconcile.RoleSpec, cur reconcile.RoleState, exists bool) (stmts []string, secret bool, err error) {
	name := pgx.Identifier{r.Name}.Sanitize()
	attrs := flag(r.Login, "LOGIN") + " " + flag(r.Replication, "REPLICATION") + " " + flag(r.Superuser, "SUPERUSER")
	password := ""
	if r.Verifier != "" && r.Verifier != cur.Verifier {
		lit, err := quoteLiteral(r.Verifier)
		if err != nil {
			return nil, false, err
		}
		password, secret = " PASSWORD "+lit, true
	}
	switch {
	case !exists:
		stmts = append(stmts, "CREATE ROLE "+name+" WITH "+attrs+password)
	case password != "" || cur.Login != r.Login || cur.Replication != r.Replication || cur.Superuser != r.Superuser:
		stmts = append(stmts, "ALTER ROLE "+name+" WITH "+attrs+password)
	}
	for _, m := range r.MemberOf {
		if !slices.Contains(cur.MemberOf, m) {
			stmts = append(stmts, "GRANT "+pgx.Identifier{m}.Sanitize()+" TO "+name)
		}
	}
	return stmts, secret, nil
}

func flag(on bool, word string) string {
	if on {
		return word
	}
	return "NO" + word
}

// DropRole drops role name if it exists. It refuses to drop the connected
// role. A role that still owns objects or holds privileges is not dropped;
// the server's error says why.
func (c *Conn) DropRole(ctx context.Context, name string) error {
	doing := "dropping role " + name
	if name == c.user {
		return c.wrap(doing, errors.New("refusing to drop the connected role"))
	}
	return c.exec(ctx, doing, "DROP ROLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
}
