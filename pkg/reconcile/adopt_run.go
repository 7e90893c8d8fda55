package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pacsd/pacsd/pkg/pgconf"
	"github.com/pacsd/pacsd/pkg/postgres/sqltext"
	"github.com/pacsd/pacsd/pkg/spec"
)

// AdoptRuntime is what adopt needs of a Docker engine besides Runtime:
// containers that pacsd did not create, seen, renamed and kept from
// starting again. pkg/docker implements it.
type AdoptRuntime interface {
	// LegacyInspect returns the container named name, nil when absent.
	LegacyInspect(ctx context.Context, name string) (*LegacyContainer, error)
	// ContainerRename gives container id the name name.
	ContainerRename(ctx context.Context, id, name string) error
	// ContainerNoRestart sets container id's restart policy to "no".
	ContainerNoRestart(ctx context.Context, id string) error
}

// adoptRuntime returns node n's engine as Runtime and AdoptRuntime.
func (d Deps) adoptRuntime(c *spec.Cluster, n *spec.Node) (Runtime, AdoptRuntime, error) {
	rt, err := d.runtime(c, n.Host)
	if err != nil {
		return nil, nil, err
	}
	art, ok := rt.(AdoptRuntime)
	if !ok {
		return nil, nil, fmt.Errorf("cluster %q, node %q: %s cannot be used to adopt containers (pacsd reaches it only through its host's pacsd); run 'pacsd adopt' with one controller", c.Name, n.Name, engineName(n.Host))
	}
	return rt, art, nil
}

// ObserveAdopt looks at what adopt decides from: for each node the container
// under its name and the one an earlier adopt kept, the server over its
// container's own socket, and the data location.
func ObserveAdopt(ctx context.Context, c *spec.Cluster, d Deps) (*AdoptObserved, error) {
	o := &AdoptObserved{Nodes: map[string]*AdoptNode{}, Images: map[string]*ImageState{}}
	for _, n := range c.Nodes {
		rt, art, err := d.adoptRuntime(c, n)
		if err != nil {
			return nil, err
		}
		if _, seen := o.Images[n.Host]; !seen {
			if o.Images[n.Host], err = rt.ImageInspect(ctx, c.Image); err != nil {
				return nil, fmt.Errorf("cluster %q: while inspecting image %s on %s: %w", c.Name, c.Image, engineName(n.Host), err)
			}
		}
		an := &AdoptNode{}
		if an.Current, err = art.LegacyInspect(ctx, n.Container); err != nil {
			return nil, fmt.Errorf("cluster %q, node %q: while inspecting container %q: %w", c.Name, n.Name, n.Container, err)
		}
		if an.Kept, err = art.LegacyInspect(ctx, KeptName(n)); err != nil {
			return nil, fmt.Errorf("cluster %q, node %q: while inspecting container %q: %w", c.Name, n.Name, KeptName(n), err)
		}
		an.Owned = an.Current.pacsdOwned(c.Name, n.Name)
		if cur := an.Current; cur != nil && cur.Running && !cur.Paused {
			an.Server, err = legacyServer(ctx, rt, cur.ID, c)
			if err != nil {
				an.ServerError = err.Error()
			}
		}
		// The data is inspected with the image (PlanAdopt refuses where it
		// is missing).
		if !an.Owned && o.Images[n.Host] != nil {
			if an.Data, err = rt.DataInspect(ctx, c.Image, Mount{Volume: n.Volume, HostDir: n.Data}); err != nil {
				an.Data.Unknown = true
			}
		}
		o.Nodes[n.Name] = an
	}
	return o, nil
}

// psqlLocal runs one statement with psql over container id's own socket as
// the cluster's superuser and returns its unaligned output.
func psqlLocal(ctx context.Context, rt Runtime, id string, c *spec.Cluster, sql string) (string, error) {
	out, code, err := rt.Exec(ctx, id, "postgres", []string{"psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-U", c.Superuser.Name, "-d", c.Database, "-c", sql})
	if err == nil && code != 0 {
		err = fmt.Errorf("psql exited with code %d: %s", code, strings.TrimSpace(out))
	}
	return out, err
}

// legacyServer asks the server in container id what LegacyServer holds.
func legacyServer(ctx context.Context, rt Runtime, id string, c *spec.Cluster) (*LegacyServer, error) {
	repl, err := sqltext.Literal(c.Replication.User)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, SQLTimeout)
	defer cancel()
	out, err := psqlLocal(ctx, rt, id, c, legacyServerSQL(repl))
	if err != nil {
		return nil, err
	}
	s, err := parseLegacyServer(out)
	if err != nil {
		return nil, err
	}
	// Symbolic links are seen only by the file system; the image is not
	// pacsd's, so only POSIX sh is used.
	out, code, err := rt.Exec(ctx, id, "postgres", []string{"sh", "-c", legacyLinksScript, "sh", PGDATA})
	if err == nil && code != 0 {
		err = fmt.Errorf("exited with code %d: %s", code, strings.TrimSpace(out))
	}
	if err != nil {
		return nil, fmt.Errorf("while looking for symbolic links in %s: %w", PGDATA, err)
	}
	s.Links = strings.Fields(out)
	return s, nil
}

// legacyLinksScript prints the names of the entries of directory $1 that
// are symbolic links, one a line.
const legacyLinksScript = `cd -- "$1" || exit 1
for e in * .[!.]*; do
  if [ -L "$e" ]; then printf '%s\n' "$e"; fi
done`

// AdoptDone is what Adopt did.
type AdoptDone struct {
	// Changes says, one line each, what was changed.
	Changes []string
	// Kept are the containers replaced and kept (stopped, renamed).
	Kept []KeptContainer
	// WriteGap is how long the primary took no writes: from the moment it
	// was asked to stop until pacsd's container took writes. Zero when
	// the primary was not replaced by this run.
	WriteGap time.Duration
	// Stopped is when the primary was asked to stop.
	Stopped time.Time
	// Plan is what Adopt decided under the cluster's lock.
	Plan AdoptPlan
}

// KeptContainer is a container adopt replaced and kept.
type KeptContainer struct {
	Name string
	// SecretEnv names its environment variables that hold a password
	// (docker inspect shows them until it is removed).
	SecretEnv []string
	// SharesData says that it mounted the data location's parent of PGDATA
	// (no move): started again, it would run a second server on the data
	// pacsd's container runs on.
	SharesData bool
}

// Adopt adopts cluster c: under the cluster's lock it observes
// (ObserveAdopt), decides (PlanAdopt) and carries the plan out node by
// node; the caller converges the rest with Apply afterwards. A refusal
// changes nothing and is returned as an error joining the problems. It
// stops at the first failure: what was done stays done, and a second
// adopt plans from what it then observes.
func Adopt(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger) (AdoptDone, error) {
	var done AdoptDone
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return done, err
	}
	defer unlock()
	o, err := ObserveAdopt(ctx, c, d)
	if err != nil {
		return done, err
	}
	plan, problems := PlanAdopt(c, o, d.Matches)
	var refused []error
	for _, p := range problems {
		if !p.Warning {
			refused = append(refused, p)
		}
	}
	if len(refused) > 0 {
		return done, fmt.Errorf("%w; nothing was changed", errors.Join(refused...))
	}
	done.Plan = plan
	if len(plan.Steps) == 0 {
		return done, nil
	}
	// A pass of another pacsd process that observed before this adopt
	// observes again before it acts.
	defer func() {
		if err := countRound(c, d); err != nil {
			log.Warn("adopt: the round could not be recorded", "cluster", c.Name, "error", err.Error())
		}
	}()
	a, err := d.Authority(ctx, c)
	if err != nil {
		return done, err
	}
	x := newExecutor(c, d, &Observed{CA: a.CertPEM(), State: ClusterState{Acting: c.Primary}}, log)
	if err := x.adoptEngines(ctx, &done); err != nil {
		return done, err
	}
	for _, s := range plan.Steps {
		if err := x.adoptStep(ctx, s, &done); err != nil {
			return done, fmt.Errorf("cluster %q, node %q: %w; what was done before stays done: run 'pacsd adopt' again to go on from there", c.Name, s.Node, err)
		}
	}
	return done, nil
}

// adoptEngines makes the cluster network and the image there on each host
// of the cluster, as Apply's first phases do: the data moves and pacsd's
// containers need both.
func (x *executor) adoptEngines(ctx context.Context, done *AdoptDone) error {
	c := x.c
	for _, host := range c.Hosts() {
		rt, err := x.d.runtime(c, host)
		if err != nil {
			return err
		}
		nw, err := rt.NetworkInspect(ctx, c.Network, c.Name)
		switch {
		case err != nil:
			return fmt.Errorf("cluster %q: while inspecting network %q on %s: %w", c.Name, c.Network, engineName(host), err)
		case nw != nil && !nw.Owned:
			return fmt.Errorf("cluster %q: a network named %q exists on %s but pacsd did not create it; remove or rename it, or set network in the cluster block; nothing was changed", c.Name, c.Network, engineName(host))
		case nw == nil:
			if err := x.do(ctx, Action{Kind: CreateNetwork, Host: host, Target: c.Network}); err != nil {
				return fmt.Errorf("cluster %q: while creating network %q on %s: %w", c.Name, c.Network, engineName(host), err)
			}
			done.Changes = append(done.Changes, fmt.Sprintf("network %s created on %s", c.Network, engineName(host)))
		}
		img, err := rt.ImageInspect(ctx, c.Image)
		if err != nil {
			return fmt.Errorf("cluster %q: while inspecting image %s on %s: %w", c.Name, c.Image, engineName(host), err)
		}
		if img == nil {
			if err := x.do(ctx, Action{Kind: PullImage, Host: host, Target: c.Image}); err != nil {
				return fmt.Errorf("cluster %q: image %s on %s: %w; nothing was changed", c.Name, c.Image, engineName(host), err)
			}
			done.Changes = append(done.Changes, fmt.Sprintf("image %s pulled on %s", c.Image, engineName(host)))
		}
	}
	return nil
}

// adoptStep carries out one node's step (see AdoptStep).
func (x *executor) adoptStep(ctx context.Context, s AdoptStep, done *AdoptDone) error {
	c, n := x.c, x.c.Node(s.Node)
	rt, art, err := x.d.adoptRuntime(c, n)
	if err != nil {
		return err
	}
	since := time.Now()
	change := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		done.Changes = append(done.Changes, fmt.Sprintf("node %s: %s", s.Node, line))
		x.log.Info("adopt", "cluster", c.Name, "node", s.Node, "change", line, "took", time.Since(since).Round(time.Millisecond).String())
		since = time.Now()
	}
	if s.Disarm != "" {
		k, err := art.LegacyInspect(ctx, s.Disarm)
		if err != nil || k == nil {
			return fmt.Errorf("while finding the kept container %q: %v", s.Disarm, err)
		}
		if err := art.ContainerNoRestart(ctx, k.ID); err != nil {
			return err
		}
		change("restart policy of the kept container %s set to no (was %s)", s.Disarm, k.RestartPolicy)
	}
	if s.Slot != "" {
		pc, err := art.LegacyInspect(ctx, s.SlotOn)
		if err != nil || pc == nil {
			return fmt.Errorf("while finding container %q to create slot %s on: %v", s.SlotOn, s.Slot, err)
		}
		sql := func(doing, stmt string) error {
			sctx, cancel := context.WithTimeout(ctx, SQLTimeout)
			defer cancel()
			if _, err := psqlLocal(sctx, rt, pc.ID, c, stmt); err != nil {
				return fmt.Errorf("while %s on container %q: %w", doing, s.SlotOn, err)
			}
			return nil
		}
		if s.BoundWAL != "" {
			v, err := sqltext.Literal(s.BoundWAL)
			if err != nil {
				return err
			}
			// ALTER SYSTEM runs outside a transaction: one statement a call.
			if err := sql("bounding the WAL a slot keeps (ALTER SYSTEM SET max_slot_wal_keep_size; set it in postgresql.conf by hand if ALTER SYSTEM is refused)", "ALTER SYSTEM SET max_slot_wal_keep_size = "+v); err != nil {
				return err
			}
			if err := sql("reloading the configuration", "SELECT pg_reload_conf()"); err != nil {
				return err
			}
			change("max_slot_wal_keep_size = %s set on %s (ALTER SYSTEM; reset once adopted)", s.BoundWAL, s.SlotOn)
		}
		if err := sql("creating replication slot "+s.Slot, slotSQL(s.Slot)); err != nil {
			return err
		}
		change("replication slot %s created on %s", s.Slot, s.SlotOn)
	}
	// pacsd's container and its files are made ready before the old
	// container stops, so that the primary's write gap holds only the
	// stop, the move and the start: the certificate issued, and
	// postgresql.conf with the line that includes pacsd.conf (read from
	// the old container while it runs).
	want := ContainerSpecFor(c, n, s.Primary)
	files := NodeFiles(c, n.Name, c.Primary)
	want.Files = append(want.Files, pacsdFiles(files, !s.Primary)...)
	want.Files = append(want.Files, certFiles(c, n, x.obs.CA, PGDATA)...)
	if want.Files, err = x.d.issueFiles(ctx, c, want.Files); err != nil {
		return err
	}
	confRead := false
	if s.Replace != "" {
		l, err := art.LegacyInspect(ctx, s.Replace)
		if err != nil {
			return err
		}
		if l == nil || l.pacsdOwned(c.Name, n.Name) {
			return fmt.Errorf("container %q is no longer the one adopt saw; nothing of it was changed", s.Replace)
		}
		if l.Running && s.Create {
			have, err := rt.ReadFiles(ctx, l.ID, []string{ConfPath})
			if err != nil {
				return err
			}
			if conf, ok := have[ConfPath]; ok {
				conf, _ = pgconf.EnsureInclude(conf)
				want.Files = append(want.Files, FileWrite{Path: ConfPath, Content: conf, Mode: 0o600})
				confRead = true
			}
		}
		if s.Primary && l.Running {
			// A checkpoint now leaves little for the shutdown checkpoint
			// to write: the write gap begins with the stop.
			cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			_, err := psqlLocal(cctx, rt, l.ID, c, "CHECKPOINT")
			cancel()
			if err != nil {
				return fmt.Errorf("while running a checkpoint in container %q before stopping it: %w", l.Name, err)
			}
		}
		if s.Primary {
			done.Stopped = time.Now()
		}
		// Once asked to stop, the rest of this node's step goes on even when
		// the command is interrupted: a primary left stopped takes no writes.
		ctx = context.WithoutCancel(ctx)
		if err := rt.ContainerStop(ctx, l.ID, StopTimeout); err != nil {
			return err
		}
		if l.RestartPolicy != "no" {
			if err := art.ContainerNoRestart(ctx, l.ID); err != nil {
				return err
			}
		}
		if err := art.ContainerRename(ctx, l.ID, KeptName(n)); err != nil {
			return err
		}
		done.Kept = append(done.Kept, KeptContainer{Name: KeptName(n), SecretEnv: l.SecretEnv, SharesData: l.MountAt == DataMount})
		change("container %s stopped and renamed %s (kept; restart policy no)", s.Replace, KeptName(n))
	}
	m := Mount{Volume: n.Volume, HostDir: n.Data}
	if s.Move {
		var said []string
		progress := x.progress(s.Node)
		code, tail, err := x.runOneOff(ctx, rt, n, "adopt-move", m, adoptMoveScript, []string{DataMount, AdoptMarker, adoptStaging, PGDATA}, nil, func(line string) {
			if adoptedLine(line) {
				said = append(said, line)
			}
			progress(line)
		})
		if err == nil && code != 0 {
			err = fmt.Errorf("the data move exited with code %d: %s", code, strings.TrimSpace(tail))
		}
		if err != nil {
			return fmt.Errorf("while moving the data in %s into pacsd's layout: %w", n.Location(), err)
		}
		for _, line := range said {
			change("%s: %s", n.Location(), line)
		}
	}
	if !s.Create {
		return nil
	}
	if err := x.do(ctx, Action{Kind: CreateContainer, Node: n.Name, Target: want.Name, Container: &want}); err != nil {
		return err
	}
	id := x.ids[n.Name]
	// pacsd.conf is included from postgresql.conf before the first start,
	// so that no restart follows.
	if !confRead {
		have, err := rt.ReadFiles(ctx, id, []string{ConfPath})
		if err != nil {
			return err
		}
		if conf, changed := pgconf.EnsureInclude(have[ConfPath]); changed {
			if err := rt.WriteFiles(ctx, id, []FileWrite{{Path: ConfPath, Content: conf, Mode: 0o600}}); err != nil {
				return err
			}
		}
	}
	if err := rt.ContainerStart(ctx, id); err != nil {
		return err
	}
	if err := x.waitLocal(ctx, rt, id, n, s.Primary); err != nil {
		return err
	}
	role := "standby"
	if s.Primary {
		role = "primary"
		if !done.Stopped.IsZero() {
			done.WriteGap = time.Since(done.Stopped)
		}
	}
	change("pacsd's container %s created on %s and started as the %s", n.Container, n.Location(), role)
	return nil
}

// waitLocal waits, ReadyTimeout at most, until the server in container id
// answers over its own socket: a primary out of recovery (taking writes), a
// standby at all (it streams once the primary is pacsd's too).
func (x *executor) waitLocal(ctx context.Context, rt Runtime, id string, n *spec.Node, primary bool) error {
	deadline := time.Now().Add(ReadyTimeout)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := psqlLocal(qctx, rt, id, x.c, "SELECT pg_is_in_recovery()")
		cancel()
		switch got := strings.TrimSpace(out); {
		case err == nil && (!primary || got == "f"):
			return nil
		case err == nil:
			err = errors.New("it is in recovery")
		}
		if ct, ierr := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name); ierr == nil && (ct == nil || !ct.Running) {
			return fmt.Errorf("container %q: %w", n.Container, errExited)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for the server in container %q: %w; see 'docker logs %s'", ReadyTimeout, n.Container, err, n.Container)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
