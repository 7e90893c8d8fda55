package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Timeouts of the waits Apply does between steps.
var (
	// ReadyTimeout bounds the wait for a started server to accept connections.
	ReadyTimeout = 3 * time.Minute
	// StreamTimeout bounds the wait for a new standby to stream.
	StreamTimeout = 3 * time.Minute
	// StopTimeout is how long a fast shutdown may take before the container is killed.
	StopTimeout = 60 * time.Second
)

// maxRounds bounds how often Apply observes, plans and acts before it gives
// up on converging.
const maxRounds = 4

// Result is what Apply did.
type Result struct {
	// Done lists the actions carried out, in order.
	Done []Action
	// Rounds is how many observe-plan-act rounds it took.
	Rounds int
}

// Apply brings cluster c to the spec: it observes, plans and carries out the
// plan, then observes again, until the plan is empty. It refuses to act when
// Plan reports problems, and stops at the first failed action: the error
// names the node and the step; the next Apply continues from there, because
// every step is derived again from what is observed.
func Apply(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger) (Result, error) {
	var res Result
	for res.Rounds < maxRounds {
		obs, err := Observe(ctx, c, d)
		if err != nil {
			return res, err
		}
		actions, problems := Plan(c, obs, d.Matches)
		if len(problems) > 0 {
			return res, problemsError(problems)
		}
		if len(actions) == 0 {
			return res, nil
		}
		res.Rounds++
		x := &executor{c: c, d: d, obs: obs, log: log, ids: map[string]string{}}
		for name, ns := range obs.Nodes {
			if ns.Container != nil {
				x.ids[name] = ns.Container.ID
			}
		}
		for _, a := range actions {
			start := time.Now()
			err := x.do(ctx, a)
			attrs := []any{"cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "target", a.Target,
				"reason", a.Reason, "duration", time.Since(start).Round(time.Millisecond).String()}
			if err != nil {
				log.Error("action failed", append(attrs, "error", err.Error())...)
				return res, fmt.Errorf("%s: while %s %s: %w", where(a), a.Kind, a.Target, err)
			}
			log.Info("action done", attrs...)
			res.Done = append(res.Done, a)
		}
	}
	return res, fmt.Errorf("cluster %q: still not converged after %d rounds; run 'pacsd plan' to see what is left", c.Name, maxRounds)
}

func where(a Action) string {
	if a.Node == "" {
		return fmt.Sprintf("cluster %q", a.Cluster)
	}
	return fmt.Sprintf("cluster %q, node %q", a.Cluster, a.Node)
}

func problemsError(ps []Problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// executor carries out the actions of one round.
type executor struct {
	c   *spec.Cluster
	d   Deps
	obs *Observed
	log *slog.Logger
	ids map[string]string // node -> container id
}

func (x *executor) rt(node string) (Runtime, error) {
	host := ""
	if n := x.c.Node(node); n != nil {
		host = n.Host
	} else if p := x.c.Node(x.c.Primary); p != nil {
		host = p.Host
	}
	return x.d.runtime(x.c, host)
}

func (x *executor) progress(node string) func(string) {
	return func(line string) {
		if x.d.Progress != nil {
			x.d.Progress(node, line)
		}
	}
}

func (x *executor) do(ctx context.Context, a Action) error {
	rt, err := x.rt(a.Node)
	if err != nil {
		return err
	}
	id := x.ids[a.Node]
	switch a.Kind {
	case CreateNetwork:
		return rt.NetworkCreate(ctx, a.Target, map[string]string{LabelCluster: x.c.Name})
	case PullImage:
		return rt.ImagePull(ctx, a.Target, x.progress(""))
	case MoveAside:
		aside := fmt.Sprintf("%s/data.aside-%s", DataMount, time.Now().UTC().Format("20060102T150405Z"))
		script := fmt.Sprintf("set -e\nif [ -e %[1]s ]; then mv %[1]s %[2]s; echo \"moved aside to %[2]s\"; fi\nrm -f %[3]s\n", PGDATA, aside, BuildingMarker)
		return x.runOnce(ctx, rt, a.Node, "move-aside", a.Mount, script, nil)
	case RemoveContainer:
		if err := rt.ContainerStop(ctx, id, StopTimeout); err != nil {
			return err
		}
		delete(x.ids, a.Node)
		return rt.ContainerRemove(ctx, id)
	case CreateContainer:
		id, err := rt.ContainerCreate(ctx, *a.Container)
		if err != nil {
			return err
		}
		x.ids[a.Node] = id
		return nil
	case StartContainer:
		if err := rt.ContainerStart(ctx, id); err != nil {
			return err
		}
		return x.waitStarted(ctx, rt, a.Node)
	case WriteFile:
		return rt.WriteFiles(ctx, id, []FileWrite{*a.File})
	case Restart:
		if err := rt.ContainerStop(ctx, id, StopTimeout); err != nil {
			return err
		}
		if err := rt.ContainerStart(ctx, id); err != nil {
			return err
		}
		return x.waitStarted(ctx, rt, a.Node)
	case BaseBackup:
		return x.baseBackup(ctx, rt, a)
	case SetRole:
		if a.Local {
			return x.setRoleLocal(ctx, rt, id, a)
		}
	}
	// The rest is SQL on the node's server.
	conn, err := x.connect(ctx, rt, a.Node)
	if err != nil {
		return err
	}
	defer conn.Close()
	switch a.Kind {
	case ResetSetting:
		return conn.ResetSetting(ctx, a.Target)
	case Reload:
		return conn.Reload(ctx)
	case SetRole:
		r := *a.Role
		if !a.Password.IsZero() {
			if r.Verifier, err = x.d.Verifier(a.Password.Reveal()); err != nil {
				return fmt.Errorf("while hashing the password of role %q: %w", r.Name, err)
			}
		}
		return conn.SetRole(ctx, r)
	case DropRole:
		return conn.DropRole(ctx, a.Target)
	case CreateSlot:
		return conn.CreateSlot(ctx, a.Target)
	}
	return fmt.Errorf("unknown action kind %q", a.Kind)
}

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

// connect opens a superuser connection to node's server.
func (x *executor) connect(ctx context.Context, rt Runtime, node string) (DBConn, error) {
	n := x.c.Node(node)
	ct, err := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name)
	if err != nil {
		return nil, err
	}
	if ct == nil || ct.Addr == "" {
		return nil, fmt.Errorf("container %q is not running; start it or run apply again", n.Container)
	}
	return x.d.DB.Connect(ctx, ct.Addr, x.c.Superuser.Name, x.c.Superuser.Password, x.c.Database)
}

// waitStarted waits until the node's server answers; for a standby, until it
// streams from the primary.
func (x *executor) waitStarted(ctx context.Context, rt Runtime, node string) error {
	standby := node != x.c.Primary
	timeout := ReadyTimeout
	if standby {
		timeout += StreamTimeout
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = x.probe(ctx, rt, node, standby)
		if last == nil {
			return nil
		}
		if errors.Is(last, errExited) {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("waited %s for the server to be ready: %w", timeout, last)
}

var errExited = errors.New("the container exited; see 'docker logs' of it")

func (x *executor) probe(ctx context.Context, rt Runtime, node string, standby bool) error {
	n := x.c.Node(node)
	ct, err := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name)
	if err != nil {
		return err
	}
	if ct == nil || (!ct.Running && ct.Status != "created") {
		return fmt.Errorf("container %q: %w", n.Container, errExited)
	}
	if ct.Addr == "" {
		return errors.New("no address yet")
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := x.d.DB.Connect(pctx, ct.Addr, x.c.Superuser.Name, x.c.Superuser.Password, x.c.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := conn.State(pctx)
	if err != nil {
		return err
	}
	if standby && st.Receiver != "streaming" {
		return fmt.Errorf("the standby does not stream yet (WAL receiver: %q)", st.Receiver)
	}
	if !standby && st.InRecovery {
		return errors.New("the server is still in recovery")
	}
	return nil
}

// baseBackup builds a standby's data with pg_basebackup in a one-off
// container. A marker beside PGDATA says the data is partial until pacsd's
// files are in place; a failed build leaves the marker, so the next pass moves
// the data aside and never starts it.
func (x *executor) baseBackup(ctx context.Context, rt Runtime, a Action) error {
	b := a.Backup
	files := []FileWrite{b.Passfile}
	var install strings.Builder
	for _, f := range b.Files {
		staged := FileWrite{Path: SecretsDir + "/files/" + path.Base(f.Path), Content: f.Content, Mode: 0o600, Secret: f.Secret}
		files = append(files, staged)
		fmt.Fprintf(&install, "install -o postgres -g postgres -m 0600 %s %s\n", staged.Path, f.Path)
	}
	script := fmt.Sprintf(`set -e
install -d -o postgres -g postgres -m 0700 %[1]s
touch %[2]s
if [ -n "$(ls -A %[3]s 2>/dev/null)" ]; then echo "%[3]s is not empty; refusing to overwrite data" >&2; exit 3; fi
install -d -o postgres -g postgres -m 0700 %[3]s
runuser -u postgres -- env PGPASSFILE=%[4]s pg_basebackup -h %[5]s -p %[6]d -U %[7]s -D %[3]s -X stream -S %[8]s -c fast -P -v
%[9]srm -f %[2]s
`, DataMount, BuildingMarker, PGDATA, b.Passfile.Path, b.Host, b.Port, b.User, b.Slot, install.String())
	return x.runOnce(ctx, rt, a.Node, "basebackup", a.Mount, script, files)
}

func (x *executor) runOnce(ctx context.Context, rt Runtime, node, what string, m Mount, script string, files []FileWrite) error {
	n := x.c.Node(node)
	code, tail, err := rt.RunOnce(ctx, OneOff{
		Name:     n.Container + "-" + what,
		Image:    x.c.Image,
		Network:  x.c.Network,
		Labels:   map[string]string{LabelCluster: x.c.Name, LabelNode: n.Name, LabelRole: what},
		Mount:    m,
		Cmd:      []string{"bash", "-c", script},
		Files:    files,
		Progress: x.progress(node),
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s exited with code %d: %s", what, code, strings.TrimSpace(tail))
	}
	return nil
}
