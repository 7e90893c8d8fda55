package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// SwitchoverTo makes node the primary of cluster c now, whatever the file
// names, and then converges the rest. When the file names another node, that
// value is kept from starting a switchover back (plan and status warn until
// the file is edited).
func SwitchoverTo(ctx context.Context, c *spec.Cluster, node string, d Deps, log *slog.Logger) (Result, error) {
	if c.Node(node) == nil {
		return Result{}, fmt.Errorf("cluster %q has no node %q; name one of its nodes", c.Name, node)
	}
	if _, err := switchNow(ctx, c, "", node, d, "asked for on the command line", log); err != nil {
		return Result{}, err
	}
	return Apply(ctx, c, d, log)
}

// switchNow is SwitchoverTo's switch, under the cluster's lock from the
// observation on, so that no pass or failover acts in between; why is the
// reason the event history keeps. It returns how long the switchover took
// (writes stop for about that long), zero when node was the acting primary
// already.
func switchNow(ctx context.Context, c *spec.Cluster, from, node string, d Deps, why string, log *slog.Logger) (time.Duration, error) {
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return 0, err
	}
	defer unlock()
	obs, err := Observe(ctx, c, d)
	if err != nil {
		return 0, err
	}
	// The switch starts from a record: one rebuilt from the nodes when none
	// is kept (see CurrentState), so that the file's primary is never taken
	// for the acting one.
	if err := recordActing(c, obs, d, log); err != nil {
		return 0, err
	}
	acting := obs.State.Acting
	if from != "" && acting != from {
		// Between the caller's look and this lock another took the
		// role (a failover): the switchover asked for is gone.
		return 0, refused("cluster %q: the switchover from %q was asked for, but %q acts as the primary now (a failover in between); nothing was switched: look at 'pacsd status' and ask again", c.Name, from, acting)
	}
	if acting == node {
		return 0, nil
	}
	want := *c
	want.Primary = node
	obs.State.Keep = ""
	actions, problems := Plan(&want, obs, d.Matches)
	if err := problemsError(problems, log, d.Events); err != nil {
		return 0, err
	}
	var sw *Action
	for i := range actions {
		if actions[i].Kind == Switchover {
			sw = &actions[i]
		}
	}
	if sw == nil {
		return 0, fmt.Errorf("cluster %q: no switchover to %q could be planned; run 'pacsd plan' to see why", c.Name, node)
	}
	x := newExecutor(c, d, obs, log)
	if c.Primary != node {
		x.keep = c.Primary
	}
	start := time.Now()
	err = x.do(ctx, *sw)
	took := time.Since(start)
	if d.Events != nil {
		e := Event{At: start, Cluster: c.Name, Node: node, Kind: string(Switchover), Target: sw.Target, Reason: why,
			Result: "ok", Duration: took.Round(time.Millisecond).String()}
		if err != nil {
			e.Result = "failed: " + err.Error()
		}
		d.Events(e)
	}
	if err != nil {
		return took, fmt.Errorf("%s: while switching over to %q: %w", where(*sw), node, err)
	}
	log.Info("action done", "cluster", c.Name, "node", node, "action", string(Switchover), "target", sw.Target, "reason", why)
	return took, nil
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
	// A record that cannot be written would have the old primary stopped
	// only to be started again: refused before anything stops.
	if err := CheckWrite(x.d.Store, x.c.Name); err != nil {
		return fmt.Errorf("the old primary %q was not stopped and the record is unchanged: %w", from.Name, err)
	}
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
		// Its server answers before the cluster's lock is let go: a
		// failover supervisor that saw it stopped takes it for lost once
		// the lock is free, and would fence it.
		wctx, wcancel := context.WithTimeout(done, ReadyTimeout)
		defer wcancel()
		if err := x.waitStarted(wctx, frt, from.Name); err != nil {
			return fmt.Errorf("%w; the old primary %q was started again and is still the primary, but does not answer yet (%v)", why, from.Name, err)
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
	if h := x.d.Hosted; h != nil && x.c.Failover.Automatic {
		// Pacsd on every host: the record names another primary only
		// while no pacsd holds the primary's lease. Once the hand-over is
		// asked for, the old primary is never started again here: its
		// lease may be gone, and the leader may promote the target (which
		// has everything) as soon as it is. It stays stopped, with
		// standby.signal; under its lease taken again, the supervisor
		// gives it up and the leader fails over.
		if h.HandOver == nil {
			return restore(errors.New("this pacsd cannot hand the primary's lease over"))
		}
		stays := func(err error) error {
			fctx, cancel := context.WithTimeout(done, StopTimeout)
			ferr := fenceNode(fctx, frt, x.c, from, FenceTimeout)
			cancel()
			if ferr != nil {
				return fmt.Errorf("%w; the old primary %q is stopped but could not be given standby.signal (%v): do not start it by hand; the leader fails over to a standby that has everything it wrote, or this host's pacsd gives it up once it holds its lease again; check that etcd answers from this host", err, from.Name, ferr)
			}
			return fmt.Errorf("%w; the old primary %q stays stopped, as a standby to be: the leader fails over to a standby that has everything it wrote, or this host's pacsd gives it up once it holds its lease again; check that etcd answers from this host", err, from.Name)
		}
		u, err := h.HandOver(done, x.c.Name, from.Name)
		if err != nil {
			return stays(fmt.Errorf("while giving up the primary's lease for the switchover to %q: %w", to.Name, err))
		}
		if err := x.setActing(to.Name); err != nil {
			u() // the lease may be taken for it again
			return stays(err)
		}
	} else if err := x.setActing(to.Name); err != nil {
		// Without automatic failover no lease is held: as with one
		// controller.
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
