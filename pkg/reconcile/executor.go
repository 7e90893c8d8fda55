package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

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
			if err := logAction(log, x.d.Events, group[0], start, x.do(ctx, group[0]), res); err != nil {
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

// logAction logs one action's result, hands it to the event history
// (events, when set) and records it as done; the error it returns says
// where the action failed.
func logAction(log *slog.Logger, events func(Event), a Action, start time.Time, err error, res *Result) error {
	took := time.Since(start).Round(time.Millisecond).String()
	attrs := []any{"cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "target", a.Target,
		"reason", a.Reason, "duration", took}
	if events != nil {
		e := Event{At: start, Cluster: a.Cluster, Node: a.Node, Kind: string(a.Kind), Target: a.Target, Reason: a.Reason, Result: "ok", Duration: took}
		if err != nil {
			e.Result = "failed: " + err.Error()
		}
		events(e)
	}
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
			if files, results[i] = x.d.issueFiles(ctx, x.c, files); results[i] == nil {
				results[i] = rt.WriteFiles(ctx, x.ids[node], files)
			}
		}()
	}
	wg.Wait()
	var errs []error
	for i, node := range nodes {
		for _, a := range byNode[node] {
			if err := logAction(log, x.d.Events, a, start, results[i], res); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

func where(a Action) string {
	if a.Node == "" {
		return fmt.Sprintf("cluster %q", a.Cluster)
	}
	return fmt.Sprintf("cluster %q, node %q", a.Cluster, a.Node)
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
		if x.d.Work != nil {
			x.d.Work(x.c.Name, node, line)
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
	if a.Node == "" {
		rt, err = x.d.runtime(x.c, a.Host) // the cluster network and image of one host
	}
	if err != nil {
		return err
	}
	id := x.ids[a.Node]
	switch a.Kind {
	case CreateNetwork:
		return rt.NetworkCreate(ctx, a.Target, map[string]string{LabelCluster: x.c.Name})
	case PullImage:
		if err := rt.ImagePull(ctx, a.Target, x.progress("")); err != nil {
			return err
		}
		// What the pulled image declares is seen only now: no container is
		// made on it when it would hide the data.
		img, err := rt.ImageInspect(ctx, a.Target)
		if err != nil {
			return err
		}
		if v := img.HidingVolume(); v != "" {
			return errors.New(hidingVolumeProblem(x.c, " as pulled", v))
		}
		return nil
	case MoveAside:
		_, err := x.moveAside(ctx, rt, a.Node, a.Mount)
		return err
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
		want := *a.Container
		files, err := x.d.issueFiles(ctx, x.c, want.Files)
		if err != nil {
			return err
		}
		want.Files = files
		id, err := rt.ContainerCreate(ctx, want)
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
		files, err := x.d.issueFiles(ctx, x.c, []FileWrite{*a.File})
		if err != nil {
			return err
		}
		return rt.WriteFiles(ctx, id, files)
	case Restart:
		if a.CatchUp {
			if err := x.waitReplayedPrimary(ctx, rt, a.Node); err != nil {
				return err
			}
		}
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
	if err != nil && a.Kind == Reload && id != "" {
		// A server that does not speak TLS yet (pacsd just gave it its
		// certificate) or does not take pacsd's login is reloaded over
		// the container's own socket.
		return x.reloadLocal(ctx, rt, id, a.Node, err)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	switch a.Kind {
	case ResetSetting:
		return conn.ResetSetting(ctx, a.Target)
	case Reload:
		if err := conn.Reload(ctx); err != nil {
			return err
		}
		if a.Repoint {
			x.waitFollowing(ctx, rt, a.Node)
		}
		return nil
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
	if addr := x.d.remoteAddr(n); addr != "" {
		return x.d.connect(ctx, x.c, n, addr)
	}
	ct, err := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name)
	if err != nil {
		return nil, err
	}
	if ct == nil || ct.Addr == "" {
		return nil, fmt.Errorf("container %q is not running; start it or run apply again", n.Container)
	}
	return x.d.connect(ctx, x.c, n, ct.Addr)
}

// RepointTimeout bounds the wait for a standby given a new primary to
// stream from it: a standby that has not gone past the new primary's fork
// follows its timeline within a moment, and one that is not streaming by
// then is looked at again by the next round (a rewind, when it diverged).
var RepointTimeout = 5 * time.Second

// waitFollowing waits, at most RepointTimeout, until a repointed standby
// streams; it never fails: the next round observes what it does.
func (x *executor) waitFollowing(ctx context.Context, rt Runtime, node string) {
	deadline := time.Now().Add(RepointTimeout)
	for time.Now().Before(deadline) {
		if x.probe(ctx, rt, node, true) == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	x.log.Info("repointed standby not streaming yet; the next round looks again", "cluster", x.c.Name, "node", node, "waited", RepointTimeout.String())
}

// waitReplayedPrimary waits, StreamTimeout at most, until standby node has
// replayed the acting primary's WAL up to where it is when the wait
// begins.
func (x *executor) waitReplayedPrimary(ctx context.Context, rt Runtime, node string) error {
	p := x.c.Node(x.acting)
	prt, err := x.d.runtime(x.c, p.Host)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, SQLTimeout)
	ps, err := x.state(sctx, prt, p.Name)
	cancel()
	if err != nil {
		return fmt.Errorf("while reading the primary's WAL position before restarting standby %s: %w; the next pass tries again", node, err)
	}
	return x.waitNode(ctx, node, StreamTimeout, "replay the primary's WAL up to "+FormatLSN(ps.WAL)+" (its restart with the lower settings; restarted before, it would not start)", func() error {
		sctx, cancel := context.WithTimeout(ctx, SQLTimeout)
		defer cancel()
		st, err := x.state(sctx, rt, node)
		switch {
		case err != nil:
			return err
		case st.WAL < ps.WAL:
			return fmt.Errorf("replayed up to %s", FormatLSN(st.WAL))
		}
		return nil
	})
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
	silent := 0 // engine calls failed in a row
	for {
		last = x.probe(ctx, rt, node, standby)
		if errors.Is(last, errEngineSilent) {
			silent++
		} else {
			silent = 0
		}
		switch {
		case last == nil:
			return nil
		case errors.Is(last, errExited):
			return last
		case silent >= 3:
			// Its host may be cut off: the pass goes on without it, and
			// the next one finds whether its engine answers.
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

// errEngineSilent says that the node's engine failed to answer while pacsd waited
// for the server.
var errEngineSilent = errors.New("its Docker engine stopped answering")

func (x *executor) probe(ctx context.Context, rt Runtime, node string, standby bool) error {
	n := x.c.Node(node)
	ct, err := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name)
	if err != nil {
		return fmt.Errorf("%w: %w", errEngineSilent, err)
	}
	if ct == nil || (!ct.Running && ct.Status != "created") {
		return fmt.Errorf("container %q: %w", n.Container, errExited)
	}
	if ct.Addr == "" {
		return errors.New("no address yet")
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := x.d.connect(pctx, x.c, n, ct.Addr)
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
