package reconcile

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/postgres/sqltext"
)

// roleScriptPath is where setRoleLocal places its script in the container,
// for the time psql runs it.
const roleScriptPath = SecretsDir + "/set-role.sql"

// cleanupTimeout bounds the removal of the script once psql ran it, also
// when the pass's context is done.
const cleanupTimeout = 30 * time.Second

// setRoleLocal sets a role's password over the container's own socket with
// psql; only the SCRAM verifier travels, never the password. The statement
// goes the way of pkg/postgres's SetRole: in a transaction whose statements
// the server neither logs nor keeps (sqltext.PasswordScript). It reaches psql
// as a 0600 file placed through the engine and removed once psql ran it, so
// no command line (ps, the engine's exec events) holds the verifier.
func (x *executor) setRoleLocal(ctx context.Context, rt Runtime, id string, a Action) error {
	v, err := x.d.Verifier(a.Password.Reveal())
	if err != nil {
		return fmt.Errorf("while hashing the password of role %q: %w", a.Role.Name, err)
	}
	script, err := sqltext.PasswordScript(a.Role.Name, v)
	if err != nil {
		return err
	}
	if err := rt.WriteFiles(ctx, id, []FileWrite{{Path: roleScriptPath, Content: script, Mode: 0o600, Secret: true}}); err != nil {
		return fmt.Errorf("while placing the script that sets the password of role %q in the container: %w", a.Role.Name, err)
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if out, code, err := rt.Exec(rmCtx, id, "postgres", []string{"rm", "-f", roleScriptPath}); err != nil || code != 0 {
			x.log.Warn("cannot remove the script that set a role's password from the container; remove it by hand",
				"cluster", x.c.Name, "node", a.Node, "file", roleScriptPath, "exit", code, "error", errText(err, out))
		}
	}()
	out, code, err := rt.Exec(ctx, id, "postgres", []string{"psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=terse",
		"-U", x.c.Superuser.Name, "-d", x.c.Database, "-f", roleScriptPath})
	if err != nil {
		return fmt.Errorf("while setting the password of role %q with psql over the container's socket: %w", a.Role.Name, err)
	}
	if code != 0 {
		// psql's message may quote the statement: never the verifier.
		msg := strings.ReplaceAll(strings.TrimSpace(out), v, "[verifier]")
		return fmt.Errorf("while setting the password of role %q: psql over the container's socket exited with code %d: %s", a.Role.Name, code, msg)
	}
	return nil
}

// errText is err's text, or out's when err is nil.
func errText(err error, out string) string {
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(out)
}

// reloadLocal reloads node's server with psql over its container's own
// socket (trusted by the image's contract), for when pacsd cannot log in
// over TCP (why).
func (x *executor) reloadLocal(ctx context.Context, rt Runtime, id, node string, why error) error {
	out, code, err := rt.Exec(ctx, id, "postgres", []string{"psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
		"-U", x.c.Superuser.Name, "-d", x.c.Database, "-c", "SELECT pg_reload_conf()"})
	if err == nil && code != 0 {
		err = fmt.Errorf("psql exited with code %d: %s", code, strings.TrimSpace(out))
	}
	if err != nil {
		return fmt.Errorf("while reloading node %q over its container's socket (over TCP: %v): %w", node, why, err)
	}
	x.log.Info("reloaded over the container's socket", "cluster", x.c.Name, "node", node, "over_tcp", why.Error())
	return nil
}
