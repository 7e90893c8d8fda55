package reconcile

import (
	"context"
	"fmt"
	"strings"
)

// setRoleLocal sets a role's password over the container's own socket with
// psql; only the SCRAM verifier travels, never the password.
func (x *executor) setRoleLocal(ctx context.Context, rt Runtime, id string, a Action) error {
	v, err := x.d.Verifier(a.Password.Reveal())
	if err != nil {
		return fmt.Errorf("while hashing the password of role %q: %w", a.Role.Name, err)
	}
	// Two commands in one session: the first keeps the second out of the server log.
	sql := fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", quoteIdent(a.Role.Name), strings.ReplaceAll(v, "'", "''"))
	out, code, err := rt.Exec(ctx, id, "postgres", []string{"psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", x.c.Superuser.Name, "-d", x.c.Database,
		"-c", "SET log_statement = 'none'", "-c", sql})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("psql over the container's socket exited with code %d: %s", code, strings.TrimSpace(out))
	}
	return nil
}

// quoteIdent quotes a role name as an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
