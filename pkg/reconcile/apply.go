package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// Timeouts of the waits Apply does between steps.
var (
	// ReadyTimeout bounds the wait for a started server to accept connections.
	ReadyTimeout = 3 * time.Minute
	// StreamTimeout bounds the wait for a started standby that answers to
	// stream; past it the pass goes on and the next one looks again.
	StreamTimeout = 30 * time.Second
	// StopTimeout is how long a fast shutdown may take before the container is killed.
	StopTimeout = 60 * time.Second
	// FenceTimeout is how long a fenced node may take to stop before it is killed.
	FenceTimeout = 5 * time.Second
	// CatchUpTimeout bounds the wait for a switchover's target to replay
	// everything the old primary wrote, counted from the last time its
	// replay moved: a target that catches up is waited for.
	CatchUpTimeout = 60 * time.Second
	// SQLTimeout bounds each SQL action of a round (a role, a slot, a
	// reload, a reset setting).
	SQLTimeout = 30 * time.Second
	// PromoteTimeout bounds a promotion (pg_promote waits up to 60 s).
	PromoteTimeout = 2 * time.Minute
)

// maxRounds bounds how often Apply observes, plans and acts before it gives
// up on converging.
const maxRounds = 6

// Result is what Apply did.
type Result struct {
	// Done lists the actions carried out, in order.
	Done []Action
	// Rounds is how many observe-plan-act rounds it took.
	Rounds int
}

// SwitchoverTo makes node the primary of cluster c now, whatever the file
// names, and then converges the rest. When the file names another node, that
// value is kept from starting a switchover back (plan and status warn until
// the file is edited).
func SwitchoverTo(ctx context.Context, c *spec.Cluster, node string, d Deps, log *slog.Logger) (Result, error) {
	if c.Node(node) == nil {
		return Result{}, fmt.Errorf("cluster %q has no node %q; name one of its nodes", c.Name, node)
	}
	if err := switchNow(ctx, c, node, d, log); err != nil {
		return Result{}, err
	}
	return Apply(ctx, c, d, log)
}

// switchNow is SwitchoverTo's switch, under the cluster's lock from the
// observation on, so that no pass or failover acts in between.
func switchNow(ctx context.Context, c *spec.Cluster, node string, d Deps, log *slog.Logger) error {
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return err
	}
	defer unlock()
	obs, err := Observe(ctx, c, d)
	if err != nil {
		return err
	}
	// The switch starts from a record: one rebuilt from the nodes when none
	// is kept (see CurrentState), so that the file's primary is never taken
	// for the acting one.
	if err := recordActing(c, obs, d, log); err != nil {
		return err
	}
	if acting := obs.State.Acting; acting != node {
		want := *c
		want.Primary = node
		obs.State.Keep = ""
		actions, problems := Plan(&want, obs, d.Matches)
		if err := problemsError(problems, log); err != nil {
			return err
		}
		var sw *Action
		for i := range actions {
			if actions[i].Kind == Switchover {
				sw = &actions[i]
			}
		}
		if sw == nil {
			return fmt.Errorf("cluster %q: no switchover to %q could be planned; run 'pacsd plan' to see why", c.Name, node)
		}
		x := newExecutor(c, d, obs, log)
		if c.Primary != node {
			x.keep = c.Primary
		}
		if err := x.do(ctx, *sw); err != nil {
			return fmt.Errorf("%s: while switching over to %q: %w", where(*sw), node, err)
		}
		log.Info("action done", "cluster", c.Name, "node", node, "action", string(Switchover), "target", sw.Target, "reason", "asked for on the command line")
	}
	return nil
}

// Apply brings cluster c to the spec: it observes, plans and carries out the
// plan, then observes again, until the plan is empty. It refuses to act when
// Plan reports problems, and stops at the first failed action: the error
// names the node and the step; the next Apply continues from there, because
// every step is derived again from what is observed. A round acts under the
// cluster's lock (Deps.Lock) and only when nothing acted on the cluster since
// its observation (a failover, a switchover, another pacsd process's round);
// otherwise it observes again. The observation itself takes no lock, so an
// engine that does not answer never holds up the failover supervisor.
func Apply(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger) (Result, error) {
	var res Result
	var last []Action
	for tries := 0; tries < maxRounds; tries++ {
		actions, err := applyRound(ctx, c, d, log, &res)
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil || len(actions) == 0 {
			return res, err
		}
		last = actions
	}
	left := make([]string, len(last))
	for i, a := range last {
		left[i] = a.String()
	}
	return res, fmt.Errorf("cluster %q: still not converged after %d rounds; the last round planned:\n%s\nrun 'pacsd plan' to see what is left", c.Name, maxRounds, strings.Join(left, "\n"))
}

// errStale says that the cluster's state changed between a round's
// observation and its actions: the round is observed again.
var errStale = errors.New("the cluster changed since the observation")

// applyRound observes, plans and carries out one round; it returns the
// actions it carried out (none: converged).
func applyRound(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger, res *Result) ([]Action, error) {
	obs, err := Observe(ctx, c, d)
	if err != nil {
		return nil, err
	}
	actions, problems := Plan(c, obs, d.Matches)
	if err := problemsError(problems, log); err != nil {
		return nil, err
	}
	if len(actions) == 0 && obs.State.Acting != "" {
		return nil, nil
	}
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	held := &heldLock{unlock: unlock}
	defer held.release()
	if now, same, err := unchanged(c, d, obs); err != nil {
		return nil, err
	} else if !same {
		log.Info("the cluster changed since the observation (a failover, a switchover or another pacsd process acted); observing again",
			"cluster", c.Name, "acting", now.Acting, "epoch", now.Epoch)
		return nil, errStale
	}
	if err := recordActing(c, obs, d, log); err != nil {
		return nil, err
	}
	if len(actions) == 0 {
		return nil, nil
	}
	res.Rounds++
	err = execute(ctx, c, d, obs, actions, log, res, held)
	if held.unlock == nil {
		return actions, err // the lock was lost (not taken back after long work): nothing more is written
	}
	if cerr := countRound(c, d); err == nil {
		err = cerr
	}
	return actions, err
}

// countRound records in the cluster's state that a round acted (see
// ClusterState.Rounds). The caller holds the cluster's lock.
func countRound(c *spec.Cluster, d Deps) error {
	st, err := d.Store.Load(c.Name)
	if err != nil {
		return err
	}
	st.Rounds++
	if err := d.Store.Save(c.Name, st); err != nil {
		return fmt.Errorf("cluster %q: while recording an apply round: %w", c.Name, err)
	}
	return nil
}

// heldLock is the cluster's lock as a round holds it: long work lets go of
// it and takes it again (see executor.unlocked).
type heldLock struct{ unlock func() }

// release lets go of the lock, once.
func (h *heldLock) release() {
	if h.unlock != nil {
		h.unlock()
		h.unlock = nil
	}
}

// execute carries out one round's actions in order. held is the cluster's
// lock the round holds (nil: none to let go of during long work).
func execute(ctx context.Context, c *spec.Cluster, d Deps, obs *Observed, actions []Action, log *slog.Logger, res *Result, held *heldLock) error {
	x := newExecutor(c, d, obs, log)
	x.held = held
	x.alive = func() { Progressed(ctx) }
	for i := 0; i < len(actions); {
		// File writes in a row, in one phase, go to each node's container at
		// once and to the nodes side by side; each is still logged as its
		// own action.
		j := i + 1
		for actions[i].Kind == WriteFile && j < len(actions) && actions[j].Kind == WriteFile && actions[j].phase == actions[i].phase {
			j++
		}
		group := actions[i:j]
		i = j
		if len(group) == 1 {
			start := time.Now()
			if err := logAction(log, group[0], start, x.do(ctx, group[0]), res); err != nil {
				return err
			}
		} else if err := x.writeFiles(ctx, group, log, res); err != nil {
			return err
		}
		Progressed(ctx)
		if x.stale {
			log.Info("the cluster changed while long work ran without its lock (a failover, a switchover or another pacsd process acted); observing again",
				"cluster", c.Name, "acting", x.obs.State.Acting)
			return errStale
		}
	}
	return nil
}

// logAction logs one action's result and records it as done; the error it
// returns says where the action failed.
func logAction(log *slog.Logger, a Action, start time.Time, err error, res *Result) error {
	attrs := []any{"cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "target", a.Target,
		"reason", a.Reason, "duration", time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		log.Error("action failed", append(attrs, "result", "error", "error", err.Error())...)
		return fmt.Errorf("%s: while %s %s: %w", where(a), a.Kind, a.Target, err)
	}
	log.Info("action done", append(attrs, "result", "ok")...)
	res.Done = append(res.Done, a)
	return nil
}

// writeFiles carries out file writes: one WriteFiles call per node, the
// nodes side by side. Every write is logged; the first failure is returned.
func (x *executor) writeFiles(ctx context.Context, writes []Action, log *slog.Logger, res *Result) error {
	var nodes []string
	byNode := map[string][]Action{}
	for _, a := range writes {
		if _, ok := byNode[a.Node]; !ok {
			nodes = append(nodes, a.Node)
		}
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	results := make([]error, len(nodes))
	start := time.Now()
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt, err := x.rt(node)
			if err != nil {
				results[i] = err
				return
			}
			files := make([]FileWrite, len(byNode[node]))
			for k, a := range byNode[node] {
				files[k] = *a.File
			}
			results[i] = rt.WriteFiles(ctx, x.ids[node], files)
		}()
	}
	wg.Wait()
	var errs []error
	for i, node := range nodes {
		for _, a := range byNode[node] {
			if err := logAction(log, a, start, results[i], res); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// recordActing records the acting primary when nothing is recorded yet: the
// file's primary for a new cluster, or the state CurrentState rebuilds from
// the nodes (a lost or damaged record), so that a later edit of the file's
// primary is a switchover, not a guess. The caller holds the cluster's lock.
func recordActing(c *spec.Cluster, obs *Observed, d Deps, log *slog.Logger) error {
	if obs.State.Acting != "" {
		return nil
	}
	st, err := CurrentState(c, obs.State, obs)
	if err != nil {
		return err
	}
	if err := d.Store.Save(c.Name, st); err != nil {
		return fmt.Errorf("cluster %q: while recording %q as the acting primary: %w", c.Name, st.Acting, err)
	}
	if obs.RecordError != "" || st != (ClusterState{Acting: c.Primary}) {
		log.Warn("the cluster's record was missing or damaged; rebuilt from the nodes", "cluster", c.Name,
			"acting", st.Acting, "epoch", st.Epoch, "keep", st.Keep, "damaged", obs.RecordError)
	}
	obs.State, obs.RecordError = st, ""
	return nil
}

// unchanged reports whether the cluster's record is still what obs saw (a
// damaged record that obs saw damaged counts as unchanged); now is the
// record as it is. The caller holds the cluster's lock.
func unchanged(c *spec.Cluster, d Deps, obs *Observed) (now ClusterState, same bool, err error) {
	now, err = d.Store.Load(c.Name)
	if errors.Is(err, ErrRecordDamaged) && obs.RecordError != "" {
		return ClusterState{}, obs.State == ClusterState{}, nil
	}
	if err != nil {
		return now, false, err
	}
	return now, now == obs.State, nil
}

func where(a Action) string {
	if a.Node == "" {
		return fmt.Sprintf("cluster %q", a.Cluster)
	}
	return fmt.Sprintf("cluster %q, node %q", a.Cluster, a.Node)
}

// problemsError joins the problems that stop Apply; warnings are logged.
func problemsError(ps []Problem, log *slog.Logger) error {
	var errs []error
	for _, p := range ps {
		if p.Warning {
			log.Warn(p.Summary, "cluster", p.Cluster, "node", p.Node, "detail", p.Detail)
			continue
		}
		errs = append(errs, p)
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
	// acting is the primary; a switchover or promotion changes it.
	acting string
	// keep is recorded as ClusterState.Keep by a switchover (see SwitchoverTo).
	keep string
	// held is the cluster's lock this round holds; nil when it holds none.
	held *heldLock
	// stale is set when the cluster's state changed while long work ran
	// without the lock: the round ends and observes again.
	stale bool
	// alive tells the round's idle timeout that work moved (nil: no timeout).
	alive func()
	// working holds the nodes whose work lock this executor holds.
	working map[string]bool
}

func newExecutor(c *spec.Cluster, d Deps, obs *Observed, log *slog.Logger) *executor {
	x := &executor{c: c, d: d, obs: obs, log: log, ids: map[string]string{}, acting: obs.State.Acting, working: map[string]bool{}}
	if x.acting == "" {
		x.acting = c.Primary
	}
	for name, ns := range obs.Nodes {
		if ns.Container != nil {
			x.ids[name] = ns.Container.ID
		}
	}
	return x
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

// progress passes a one-off's output lines on; a line that differs from the
// one before (pg_basebackup and pg_rewind print the bytes they copied) is
// progress for the round's idle timeout.
func (x *executor) progress(node string) func(string) {
	var last string
	return func(line string) {
		if line != last && x.alive != nil {
			x.alive()
		}
		last = line
		if x.d.Progress != nil {
			x.d.Progress(node, line)
		}
	}
}

// unlocked runs long work (a base backup, a rewind: minutes to hours) on
// node's data without the cluster's lock, so that the failover supervisor,
// and other pacsd processes, are not held up meanwhile; the work's one-off
// container marks the node's data as in use. It then takes the lock again,
// and when the cluster's state changed meanwhile (a failover, a
// switchover) it marks the round stale, so that it ends and observes again
// rather than go on from an old observation.
func (x *executor) unlocked(ctx context.Context, node, what string, work func(context.Context) error) error {
	if x.held == nil || x.held.unlock == nil || x.d.Store == nil {
		return work(ctx)
	}
	// The node's work lock, taken under the cluster's lock, keeps every
	// other pacsd process off this node's data while the work runs.
	unlockWork, err := x.workLock(ctx, node)
	if err != nil {
		return err
	}
	x.working[node] = true
	defer func() { unlockWork(); delete(x.working, node) }()
	x.held.release()
	x.log.Info("long work runs without the cluster's lock; failover checks go on", "cluster", x.c.Name, "node", node, "work", what)
	err = work(ctx)
	unlock, lerr := x.d.lock(ctx, x.c.Name)
	if lerr != nil {
		return errors.Join(err, fmt.Errorf("while taking the cluster's lock again after the %s: %w", what, lerr))
	}
	x.held.unlock = unlock
	_, same, lerr := unchanged(x.c, x.d, x.obs)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	x.stale = !same
	return err
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
		// Nothing starts on data that a leftover one-off may still write.
		if err := x.clearOneOffs(ctx, rt, a.Node); err != nil {
			return err
		}
		id, err := rt.ContainerCreate(ctx, *a.Container)
		if err != nil {
			return err
		}
		x.ids[a.Node] = id
		return nil
	case StartContainer:
		if err := x.clearOneOffs(ctx, rt, a.Node); err != nil {
			return err
		}
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
		return x.unlocked(ctx, a.Node, "base backup", func(ctx context.Context) error { return x.baseBackup(ctx, rt, a) })
	case SetRole:
		if a.Local {
			return x.setRoleLocal(ctx, rt, id, a)
		}
	case Fence:
		return errFence(fenceNode(ctx, rt, x.c, x.c.Node(a.Node), FenceTimeout))
	case SetAliases:
		return rt.NetworkAliases(ctx, id, x.c.Network, a.Aliases)
	case Rewind:
		return x.unlocked(ctx, a.Node, "rewind", func(ctx context.Context) error { return x.rewind(ctx, rt, a) })
	case Switchover:
		return x.switchover(ctx, a)
	case Promote:
		return x.promoteRecorded(ctx, a.Node)
	}
	// The rest is SQL on the node's server: short statements, each bounded,
	// so that a server that freezes in the middle never holds the cluster's
	// lock (and with it a failover) for long.
	ctx, cancel := context.WithTimeout(ctx, SQLTimeout)
	defer cancel()
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

// switchover hands the primary role from a.From to a.Node without losing an
// acknowledged write: the old primary stops with a fast shutdown (its WAL
// senders send everything to connected standbys first), the target replays
// up to the old primary's shutdown checkpoint, the new acting primary is
// recorded, and only then promoted. When the target does not catch up, the
// old primary is started again and nothing changed.
func (x *executor) switchover(ctx context.Context, a Action) error {
	from, to := x.c.Node(a.From), x.c.Node(a.Node)
	frt, err := x.rt(from.Name)
	if err != nil {
		return err
	}
	trt, err := x.rt(to.Name)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, SQLTimeout)
	if conn, err := x.connect(cctx, frt, from.Name); err == nil {
		_ = conn.Checkpoint(cctx) // shortens the shutdown; not needed for safety
		conn.Close()
	}
	cancel()
	fromID := x.ids[from.Name]
	if err := frt.ContainerStop(ctx, fromID, StopTimeout); err != nil {
		return fmt.Errorf("while stopping the old primary %q: %w", from.Name, err)
	}
	// From here the switchover ends one way or the other even when ctx is
	// cancelled (pacsd stopping): the old primary is started again, or the
	// target is recorded and promoted; never neither.
	done := context.WithoutCancel(ctx)
	restore := func(why error) error {
		rctx, cancel := context.WithTimeout(done, StopTimeout)
		defer cancel()
		if err := frt.ContainerStart(rctx, fromID); err != nil {
			return fmt.Errorf("%w; starting the old primary %q again also failed: %v: start it by hand", why, from.Name, err)
		}
		return fmt.Errorf("%w; the old primary %q was started again and is still the primary", why, from.Name)
	}
	files, err := frt.ReadFiles(ctx, fromID, []string{ControlPath})
	if err != nil {
		return restore(fmt.Errorf("while reading the old primary's control file: %w", err))
	}
	ctl, err := ParseControl(files[ControlPath])
	if err != nil {
		return restore(fmt.Errorf("while reading the old primary's control file: %w", err))
	}
	if ctl.State != DBShutdowned {
		return restore(fmt.Errorf("the old primary %q did not shut down cleanly (%s)", from.Name, ctl.State))
	}
	deadline := time.Now().Add(CatchUpTimeout)
	var replayed uint64
	for {
		if ctx.Err() != nil {
			return restore(fmt.Errorf("the switchover was stopped (%w) while the target %q caught up", ctx.Err(), to.Name))
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := x.state(sctx, trt, to.Name)
		cancel()
		if err == nil && st.InRecovery && st.WAL > ctl.Checkpoint {
			break
		}
		if err == nil && st.WAL > replayed {
			// It catches up: the wait goes on as long as it does.
			replayed, deadline = st.WAL, time.Now().Add(CatchUpTimeout)
			Progressed(ctx)
		}
		if time.Now().After(deadline) {
			why := fmt.Sprintf("replayed %s", "nothing known")
			if st != nil {
				why = "replayed " + FormatLSN(st.WAL)
			} else if err != nil {
				why = err.Error()
			}
			return restore(fmt.Errorf("the target %q did not replay the old primary's shutdown checkpoint %s within %s (%s)", to.Name, FormatLSN(ctl.Checkpoint), CatchUpTimeout, why))
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := x.setActing(to.Name); err != nil {
		// The old primary is started again only when the record surely
		// still names it. A write that failed may have taken effect (its
		// directory not synced): then neither primary runs, and pacsd says
		// so; the old primary wrote nothing since its stop, so whichever
		// record survives, the next pass can finish safely.
		if _, same, lerr := unchanged(x.c, x.d, x.obs); lerr == nil && same {
			return restore(err)
		}
		return fmt.Errorf("%w; whether the record names %q or %q is not certain, so neither was started or promoted: make the state directory writable (daemon.state_dir), then run 'pacsd apply'", err, from.Name, to.Name)
	}
	// The old primary gets standby.signal now, so that a start by hand or by
	// the engine brings it back in recovery, never beside the new primary; a
	// start that came before is stopped again.
	fctx, cancel := context.WithTimeout(done, StopTimeout)
	err = fenceNode(fctx, frt, x.c, from, FenceTimeout)
	cancel()
	if err != nil {
		return fmt.Errorf("%q is recorded as the acting primary but was not promoted: the old primary %q could not be fenced (%w); the next pass promotes %q once %q is confirmed stopped or a standby", to.Name, from.Name, err, to.Name, from.Name)
	}
	return x.promoteRecorded(done, to.Name)
}

// promoteRecorded promotes node, which is recorded as the acting primary
// already. It runs to its end even when ctx is cancelled (bounded by
// PromoteTimeout), so that stopping pacsd never leaves the recorded primary
// in recovery; when it fails, the next pass promotes it (see planPromote).
func (x *executor) promoteRecorded(ctx context.Context, node string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), PromoteTimeout)
	defer cancel()
	rt, err := x.rt(node)
	if err != nil {
		return err
	}
	conn, err := x.connect(ctx, rt, node)
	if err != nil {
		return fmt.Errorf("%q is recorded as the acting primary but could not be reached to promote it (%w); the next pass promotes it", node, err)
	}
	defer conn.Close()
	if err := conn.Promote(ctx); err != nil {
		return fmt.Errorf("%q is recorded as the acting primary but its promotion failed (%w); the next pass tries again", node, err)
	}
	return nil
}

// setActing records node as the acting primary, durably, before anything
// makes it one.
func (x *executor) setActing(node string) error {
	st := x.obs.State
	st.Acting, st.Epoch, st.Keep = node, st.Epoch+1, x.keep
	if x.d.Store == nil {
		return errors.New("no cluster store is configured; pacsd cannot record the acting primary")
	}
	if err := x.d.Store.Save(x.c.Name, st); err != nil {
		return fmt.Errorf("while recording %q as the acting primary: %w", node, err)
	}
	x.obs.State, x.acting = st, node
	return nil
}

// state reads a node's server state.
func (x *executor) state(ctx context.Context, rt Runtime, node string) (*DBState, error) {
	conn, err := x.connect(ctx, rt, node)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.State(ctx)
}

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

// waitStarted waits until the node's server answers (ReadyTimeout); for a
// standby, then until it streams from the primary (StreamTimeout). A standby
// that answers but does not stream by then is logged and left to the next
// pass, which observes why: the wait holds the cluster's lock, and with it
// the failover supervisor's checks.
func (x *executor) waitStarted(ctx context.Context, rt Runtime, node string) error {
	standby := node != x.acting
	deadline := time.Now().Add(ReadyTimeout)
	var up time.Time // when the standby first answered, not streaming
	var last error
	for {
		last = x.probe(ctx, rt, node, standby)
		switch {
		case last == nil:
			return nil
		case errors.Is(last, errExited):
			return last
		case errors.Is(last, errNotStreaming):
			if up.IsZero() {
				up = time.Now()
			}
			if time.Since(up) > StreamTimeout {
				x.log.Warn("standby started but not streaming yet; the next pass looks again", "cluster", x.c.Name, "node", node, "waited", StreamTimeout.String(), "error", last.Error())
				return nil
			}
		case time.Now().After(deadline):
			return fmt.Errorf("waited %s for the server to be ready: %w", ReadyTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// errNotStreaming says that a standby answers but does not stream.
var errNotStreaming = errors.New("the standby does not stream yet")

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
		return fmt.Errorf("%w (WAL receiver: %q)", errNotStreaming, st.Receiver)
	}
	// An acting primary that starts in recovery was fenced (standby.signal)
	// by a failover that then found no standby to promote: it answers, and
	// the next round promotes it once every other node is confirmed a
	// standby or stopped (planPromote).
	return nil
}
