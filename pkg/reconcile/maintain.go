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

// The maintenance commands carried out: 'pacsd restart' and 'pacsd reinit'
// (maintenance.go decides). They act under the cluster's lock, like every
// round of Apply, so that no pass and no failover acts meanwhile, and each
// is an event of the history.

// RestartStreamTimeout bounds the wait for a restarted standby (or a
// primary switched over, rejoining as a standby, or a rebuilt standby) to
// stream from the acting primary again.
var RestartStreamTimeout = 2 * time.Minute

// RestartDone is what the restart of one node did.
type RestartDone struct {
	Node string
	// SwitchedTo is the standby that took the primary's role (a restart
	// with switchover), "" otherwise.
	SwitchedTo string
	// WriteGap is about how long the cluster took no writes: a primary
	// restarted in place, from its stop until it took writes again; a
	// primary switched over, the switchover. Zero for a standby.
	WriteGap time.Duration
	// Took is how long the node's restart took, until it was back.
	Took time.Duration
}

// here is where this pacsd carries out a maintenance command on c, whose
// acting primary is acting: nil with one controller.
func (d Deps) here(c *spec.Cluster, acting string) *Here {
	if d.Hosted == nil {
		return nil
	}
	h := &Here{Host: d.Hosted.Host, MayRun: !c.Failover.Automatic}
	if d.Hosted.MayRunPrimary != nil && d.Hosted.MayRunPrimary(c.Name, acting) {
		h.MayRun = true
	}
	return h
}

// ActingNow returns c's acting primary: the record's, or, without one, the
// one the nodes show (see CurrentState).
func ActingNow(ctx context.Context, c *spec.Cluster, d Deps) (string, error) {
	if d.Store == nil {
		return "", fmt.Errorf("cluster %q: no cluster store is configured", c.Name)
	}
	if st, err := d.Store.Load(c.Name); err == nil {
		if acting, err := ActingPrimary(c, st, nil); err == nil {
			return acting, nil
		}
	}
	obs, err := Observe(ctx, c, d)
	if err != nil {
		return "", err
	}
	return ActingPrimary(c, obs.State, obs)
}

// RestartAll restarts the nodes asked for of c, one at a time, in
// RestartOrder from the acting primary acting (the standbys first, the
// primary last), each back before the next; step restarts one node
// (RestartNode, or, with pacsd on every host, a request to the pacsd of
// its host) with q, whose WasActing is acting. It stops at the first node
// refused or failed and returns what was done before.
func RestartAll(ctx context.Context, c *spec.Cluster, acting string, asked []string, q RestartQuery, step func(ctx context.Context, node string, q RestartQuery) (RestartDone, error)) ([]RestartDone, error) {
	q.WasActing = acting
	var done []RestartDone
	for _, n := range RestartOrder(c, acting, asked) {
		r, err := step(ctx, n, q)
		if err != nil {
			return done, err
		}
		done = append(done, r)
	}
	return done, nil
}

// RestartNode restarts node of c ('pacsd restart') as RestartCheck decides
// and waits until it is back: a standby streaming from the acting primary
// again, a primary taking writes again. A standby, or a primary restarted
// in place, is stopped (fast shutdown) and started under the cluster's
// lock, held until a primary takes writes again: the failover supervisor
// confirms a lost primary only under that lock, so a planned restart is
// never taken for a lost primary. A primary restarted with q.Switchover
// hands its role to SwitchoverTarget by a switchover (nothing acknowledged
// is lost), then rejoins as a standby (Apply's rewind). The restart is an
// event of the history (with its result), the switchover another.
func RestartNode(ctx context.Context, c *spec.Cluster, d Deps, node string, q RestartQuery, log *slog.Logger) (RestartDone, error) {
	done := RestartDone{Node: node}
	why := "asked for on the command line (" + q.By + ")"
	if q.Whole {
		why = "a restart of the whole cluster " + why
	}
	m := &command{c: c, d: d, node: node, kind: "restart", why: why, began: time.Now(), log: log}
	fail := func(err error) (RestartDone, error) {
		done.Took = time.Since(m.began)
		return done, m.fail(err)
	}
	held, obs, err := m.begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer held.release()
	acting := obs.State.Acting
	step, err := RestartCheck(c, obs, acting, node, q, d.here(c, acting))
	if err != nil {
		return fail(err)
	}
	x := newExecutor(c, d, obs, log)
	x.held = held
	rt, err := x.rt(node)
	if err != nil {
		return fail(err)
	}
	if step.SwitchTo != "" {
		held.release() // the switchover takes it itself
		log.Info("restart: the primary's role is handed over first", "cluster", c.Name, "node", node, "to", step.SwitchTo)
		gap, err := switchNow(ctx, c, acting, step.SwitchTo, d, why+": the primary's role is handed over so that it restarts as a standby", log)
		done.WriteGap, done.SwitchedTo = gap, step.SwitchTo
		if err != nil {
			return fail(fmt.Errorf("cluster %q, node %q: %w", c.Name, node, err))
		}
		// The old primary rejoins as a standby: Apply rewinds and starts it.
		if err := x.convergeUntilStreaming(ctx, rt, node); err != nil {
			return fail(fmt.Errorf("cluster %q: %q took the primary's role, but the old primary %q does not stream from it: %w; run 'pacsd apply' (or let the daemon's next pass go on)", c.Name, step.SwitchTo, node, err))
		}
		done.Took = time.Since(m.began)
		m.record(fmt.Sprintf("ok: its role handed to %s by a switchover (writes stopped for %s), then restarted and streaming as a standby", step.SwitchTo, done.WriteGap.Round(time.Millisecond)))
		log.Info("restart done", "cluster", c.Name, "node", node, "switched_to", step.SwitchTo, "write_gap", done.WriteGap.Round(time.Millisecond).String())
		return done, nil
	}
	id := x.ids[node]
	stopped := time.Now()
	// Once asked to stop, the node is started again and waited for even
	// when the command is interrupted or the stop failed half-way: a
	// primary left stopped would be failed over once the lock is let go.
	bg := context.WithoutCancel(ctx)
	if err := rt.ContainerStop(bg, id, StopTimeout); err != nil {
		// A stop call given up on is not a stop called off: the engine
		// may stop it still. Started now, it would be stopped after.
		x.waitNotRunning(bg, rt, node, stopSettle)
		if serr := rt.ContainerStart(bg, id); serr != nil {
			return fail(fmt.Errorf("cluster %q, node %q: while stopping it: %w; starting it again failed too (%v): 'pacsd apply' (or the daemon's next pass) starts it", c.Name, node, err, serr))
		}
		return fail(fmt.Errorf("cluster %q, node %q: while stopping it: %w; it was started again", c.Name, node, err))
	}
	if err := rt.ContainerStart(bg, id); err != nil {
		return fail(fmt.Errorf("cluster %q, node %q: stopped, but starting it again failed: %w; 'pacsd apply' (or the daemon's next pass) starts it", c.Name, node, err))
	}
	if step.Primary {
		err = x.waitWritable(bg, rt, node)
		done.WriteGap = time.Since(stopped)
	} else {
		err = x.waitStarted(bg, rt, node)
	}
	if cerr := countRound(c, d); err == nil {
		err = cerr
	}
	held.release()
	if err != nil {
		return fail(fmt.Errorf("cluster %q, node %q: restarted, but %w", c.Name, node, err))
	}
	if !step.Primary {
		if err := x.waitStreaming(ctx, rt, node); err != nil {
			return fail(fmt.Errorf("cluster %q, node %q: restarted, but %w", c.Name, node, err))
		}
	}
	done.Took = time.Since(m.began)
	if step.Primary {
		m.record(fmt.Sprintf("ok: restarted in place, taking writes again; writes were refused for %s", done.WriteGap.Round(time.Millisecond)))
	} else {
		m.record("ok: restarted, streaming again")
	}
	log.Info("restart done", "cluster", c.Name, "node", node, "primary", step.Primary, "took", done.Took.Round(time.Millisecond).String())
	return done, nil
}

// command is a maintenance command on one node as it is carried out: its
// start under the cluster's lock, and its event in the history.
type command struct {
	c               *spec.Cluster
	d               Deps
	node, kind, why string
	began           time.Time
	log             *slog.Logger
}

// begin takes the cluster's lock, observes, and records the acting
// primary when the record lacks it; the caller releases the lock.
func (m *command) begin(ctx context.Context) (*heldLock, *Observed, error) {
	unlock, err := m.d.lock(ctx, m.c.Name)
	if err != nil {
		return nil, nil, err
	}
	held := &heldLock{unlock: unlock}
	obs, err := Observe(ctx, m.c, m.d)
	if err == nil {
		err = recordActing(m.c, obs, m.d, m.log)
	}
	if err != nil {
		held.release()
		return nil, nil, err
	}
	return held, obs, nil
}

// record keeps the command's event with result.
func (m *command) record(result string) {
	if m.d.Events != nil {
		m.d.Events(Event{At: m.began, Cluster: m.c.Name, Node: m.node, Kind: m.kind, Target: containerOf(m.c, m.node), Reason: m.why,
			Result: result, Duration: time.Since(m.began).Round(time.Millisecond).String()})
	}
}

// fail records and logs err, a refusal (*RefusedError) or a failure, and
// returns it.
func (m *command) fail(err error) error {
	var r *RefusedError
	if errors.As(err, &r) {
		m.record("refused: " + err.Error())
		m.log.Warn(m.kind+" refused", "cluster", m.c.Name, "node", m.node, "reason", err.Error())
	} else {
		m.record("failed: " + err.Error())
		m.log.Error(m.kind+" failed", "cluster", m.c.Name, "node", m.node, "error", err.Error())
	}
	return err
}

// containerOf is node's container name, "" when c does not declare it.
func containerOf(c *spec.Cluster, node string) string {
	if n := c.Node(node); n != nil {
		return n.Container
	}
	return ""
}

// waitStreaming waits, RestartStreamTimeout at most, until node's server
// answers as a standby whose WAL receiver streams.
func (x *executor) waitStreaming(ctx context.Context, rt Runtime, node string) error {
	return x.waitNode(ctx, node, RestartStreamTimeout, "stream", func() error { return x.probe(ctx, rt, node, true) })
}

// convergeUntilStreaming converges the cluster (ApplyWaiting) until node
// streams as a standby, RestartStreamTimeout at most after the last round
// that acted: with pacsd on every host, a node may wait for another host's
// primary to take writes, or a pass of another process may have the node's
// work. Nodes whose engine does not answer are left to the next pass.
func (x *executor) convergeUntilStreaming(ctx context.Context, rt Runtime, node string) error {
	deadline := time.Now().Add(RestartStreamTimeout)
	for {
		res, err := ApplyWaiting(ctx, x.c, x.d, x.log, nil, x.d.Store, nil)
		var left *NodesLeftError
		switch {
		case err == nil, errors.As(err, &left):
		case errors.Is(err, ErrNotConverged) && time.Now().Before(deadline):
			// Another process acted meanwhile (the daemon's pass): again.
			x.log.Info("converging again", "cluster", x.c.Name, "node", node, "reason", err.Error())
		default:
			return err
		}
		if len(res.Done) > 0 {
			deadline = time.Now().Add(RestartStreamTimeout)
		}
		err = x.probe(ctx, rt, node, true)
		switch {
		case err == nil:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("it does not stream within %s (%w); see 'pacsd status' and the node's log ('docker logs %s')", RestartStreamTimeout, err, containerOf(x.c, node))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitWritable waits, ReadyTimeout at most, until node's server takes
// writes (answers, out of recovery).
func (x *executor) waitWritable(ctx context.Context, rt Runtime, node string) error {
	return x.waitNode(ctx, node, ReadyTimeout, "take writes", func() error {
		if err := x.probe(ctx, rt, node, false); err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := x.state(sctx, rt, node)
		if err == nil && st.InRecovery {
			// It will not take writes by itself: standby.signal was placed
			// meanwhile (a fence). The lock is let go at once.
			err = errBackInRecovery
		}
		return err
	})
}

// errBackInRecovery says that a primary started again came back in
// recovery.
var errBackInRecovery = errors.New("it came back in recovery (fenced meanwhile?); see 'pacsd status' and 'pacsd events'")

// waitNode checks node's server every 100 ms until check returns nil, its
// container exited, or timeout passed; what is what it waits for the node
// to do, for the error.
func (x *executor) waitNode(ctx context.Context, node string, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errExited), errors.Is(err, errBackInRecovery):
			return err
		case time.Now().After(deadline):
			return fmt.Errorf("it does not %s within %s (%w); see 'pacsd status' and the node's log ('docker logs %s')", what, timeout, err, containerOf(x.c, node))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReinitQuery is what an operator asked of a rebuild.
type ReinitQuery struct {
	// AcceptCommitWait rebuilds a standby whose absence makes every commit
	// wait (synchronous replication, and it is the only standby that
	// streams).
	AcceptCommitWait bool
	// By says who asked, for the event history.
	By string
}

// ReinitDone is what a rebuild of a standby did.
type ReinitDone struct {
	Node string
	// Aside is where its old data went inside its data location (a name
	// beside PGDATA that begins with AsidePrefix); "" when it had none.
	Aside string
	// Kept says where that is on the node's host, and Remove how an
	// operator removes it once it is no longer wanted ("" without Aside).
	Kept, Remove string
	Took         time.Duration
}

// Reinit rebuilds standby node of c ('pacsd reinit'), as ReinitCheck
// allows: under the cluster's lock, and holding the node's work lock so
// that no other pacsd process builds it meanwhile, its container is
// stopped and removed and its data moved aside (kept, named with the time,
// never deleted); then Apply takes a fresh base backup from the acting
// primary (with the marker that keeps half-built data from ever being
// started), creates and starts the container, and Reinit waits until it
// streams. Whatever fails half-way leaves a state the next Apply (or the
// daemon's pass, or a second Reinit) finishes: no container and no data is
// built from scratch; a partial copy is moved aside in turn, never over the
// first. The count of unfinished builds (BuildAttemptsPath) is reset: a
// rebuild asked for by an operator is a fresh try.
func Reinit(ctx context.Context, c *spec.Cluster, d Deps, node string, q ReinitQuery, log *slog.Logger) (ReinitDone, error) {
	done := ReinitDone{Node: node}
	n := c.Node(node)
	why := "asked for on the command line (" + q.By + ")"
	m := &command{c: c, d: d, node: node, kind: "reinit", why: why, began: time.Now(), log: log}
	fail := func(err error) (ReinitDone, error) {
		done.Took = time.Since(m.began)
		return done, m.fail(err)
	}
	held, obs, err := m.begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer held.release()
	acting := obs.State.Acting
	if err := ReinitCheck(c, obs, acting, node, q.AcceptCommitWait, d.here(c, acting)); err != nil {
		return fail(err)
	}
	x := newExecutor(c, d, obs, log)
	x.held = held
	rt, err := x.rt(node)
	if err != nil {
		return fail(err)
	}
	unlockWork, err := x.workLock(ctx, node)
	if err != nil {
		return fail(refused("cluster %q, node %q: another pacsd process builds or rewinds its data now (%v); nothing was changed: try again once it is done ('pacsd status' shows the work)", c.Name, node, err))
	}
	x.working[node] = true
	res := &Result{}
	if ct := nodeOf(obs, node).Container; ct != nil {
		a := Action{Kind: RemoveContainer, Class: ClassRebuild, Cluster: c.Name, Node: node, Target: ct.Name, Reason: why + ": it is rebuilt from a fresh base backup"}
		if err := logAction(log, d.Events, a, time.Now(), x.do(ctx, a), res); err != nil {
			unlockWork()
			return fail(err)
		}
	}
	mount := Mount{Volume: n.Volume, HostDir: n.Data}
	a := Action{Kind: MoveAside, Class: ClassRebuild, Cluster: c.Name, Node: node, Target: n.Location(), Mount: mount, Reason: why + ": the old data is kept aside, never deleted"}
	start := time.Now()
	done.Aside, err = x.moveAside(ctx, rt, node, mount, BuildAttemptsPath)
	err = logAction(log, d.Events, a, start, err, res)
	unlockWork()
	delete(x.working, node)
	if cerr := countRound(c, d); err == nil {
		err = cerr
	}
	held.release()
	if err != nil {
		return fail(err)
	}
	done.Kept, done.Remove = AsideWords(c, n, done.Aside)
	if err := x.convergeUntilStreaming(ctx, rt, node); err != nil {
		return fail(fmt.Errorf("cluster %q, node %q: its old data is kept (%s), but the rebuild did not end streaming: %w; 'pacsd apply' (or the daemon's next pass) goes on", c.Name, node, keptOr(done), err))
	}
	done.Took = time.Since(m.began)
	m.record("ok: rebuilt from a fresh base backup of " + acting + ", streaming; old data: " + keptOr(done))
	log.Info("reinit done", "cluster", c.Name, "node", node, "aside", done.Aside, "took", done.Took.Round(time.Millisecond).String())
	return done, nil
}

// keptOr says where a rebuild's old data is kept, or that there was none.
func keptOr(d ReinitDone) string {
	if d.Kept == "" {
		return "there was none"
	}
	return d.Kept
}

// AsideWords says where data moved aside to aside (a path inside node n's
// data mount, see AsidePrefix) is on n's host, and how an operator removes
// it; both "" when aside is "".
func AsideWords(c *spec.Cluster, n *spec.Node, aside string) (kept, remove string) {
	if aside == "" {
		return "", ""
	}
	on := ""
	if n.Host != "" {
		on = fmt.Sprintf(" on host %q", n.Host)
	}
	name := path.Base(aside)
	if n.Data != "" {
		p := path.Join(n.Data, name)
		return fmt.Sprintf("host directory %s%s", p, on), "rm -rf -- " + shellQuote(p)
	}
	engine := " on the local Docker engine"
	if n.Host != "" {
		engine = fmt.Sprintf(" on the Docker engine of host %q", n.Host)
	}
	return fmt.Sprintf("directory %s in volume %s%s", name, n.Volume, engine),
		fmt.Sprintf("docker run --rm -v %s --entrypoint rm %s -rf -- %s", shellQuote(n.Volume+":"+DataMount), shellQuote(c.Image), shellQuote(aside))
}

// shellQuote is s in single quotes for a POSIX shell: a command printed for
// an operator to paste means what it says whatever a path holds.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// stopSettle is how long a restart waits, after a failed stop, for the
// engine to finish stopping the container before it starts it again.
var stopSettle = StopTimeout + 10*time.Second

// waitNotRunning waits, at most for timeout, until the engine reports
// node's container stopped or gone (or cannot tell).
func (x *executor) waitNotRunning(ctx context.Context, rt Runtime, node string, timeout time.Duration) {
	n := x.c.Node(node)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ct, err := rt.ContainerInspect(ctx, n.Container, x.c.Name, n.Name)
		if err != nil || ct == nil || !ct.Running {
			return
		}
	}
}
