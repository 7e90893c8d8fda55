package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	return res, fmt.Errorf("cluster %q: %w after %d rounds; the last round planned:\n%s\nrun 'pacsd plan' to see what is left", c.Name, ErrNotConverged, maxRounds, strings.Join(left, "\n"))
}

// ErrNotConverged is matched by Apply's error when its rounds kept finding
// work (another process acting on the cluster meanwhile, say): the next
// Apply goes on from what it observes.
var ErrNotConverged = errors.New("still not converged")

// errStale says that the cluster's state changed between a round's
// observation and its actions: the round is observed again.
var errStale = errors.New("the cluster changed since the observation")

// applyRound observes, plans and carries out one round; it returns the
// actions it carried out (none: converged).
func applyRound(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger, res *Result) ([]Action, error) {
	began := time.Now()
	obs, err := Observe(ctx, c, d)
	if err != nil {
		return nil, err
	}
	log.Debug("observed", "cluster", c.Name, "took", time.Since(began).Round(time.Millisecond).String())
	if d.Observed != nil {
		d.Observed(c, obs)
	}
	actions, problems := Plan(c, obs, d.Matches)
	if h := d.Hosted; h != nil {
		if h.Seen != nil {
			h.Seen(c, obs)
		}
		acting, _ := ActingPrimary(c, obs.State, obs)
		p := obs.Nodes[acting]
		up := p != nil && p.DB != nil && !p.DB.InRecovery
		waits := ""
		if slices.ContainsFunc(actions, func(a Action) bool { return a.Kind == Switchover }) {
			var prim map[string]string
			err := errors.New("no report of the hosts' files is available")
			if h.FilePrimaries != nil {
				prim, err = h.FilePrimaries(ctx, c.Name)
			}
			waits = SwitchoverWaits(c, prim, err)
		}
		actions, problems = Scope(c, h.Host, acting, h.MayRunPrimary != nil && h.MayRunPrimary(c.Name, acting), up, waits, actions, problems)
	}
	if err := problemsError(problems, log, d.Events); err != nil {
		return nil, err
	}
	// Nodes whose engine does not answer are left alone; the rest is
	// converged, and then Apply says what it could not reach.
	left := nodeOnlyError(problems)
	if _, placed := placedState(c, obs); len(actions) == 0 && obs.State.Acting != "" && !placed {
		return nil, left
	}
	began = time.Now()
	unlock, err := d.lock(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	log.Debug("the cluster's lock taken", "cluster", c.Name, "waited", time.Since(began).Round(time.Millisecond).String())
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
		return nil, left
	}
	res.Rounds++
	done := len(res.Done)
	err = execute(ctx, c, d, obs, actions, log, res, held)
	if held.unlock == nil {
		return actions, err // the lock was lost (not taken back after long work): nothing more is written
	}
	var busy *NodeBusyError
	if len(res.Done) == done && errors.As(err, &busy) {
		// Nothing was changed: the first action found another process's
		// work on the node before it touched anything. Counting a round
		// would send that process's round, which does the work, to observe
		// and do it again.
		return actions, err
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

// problemsError joins the problems that stop Apply; warnings are logged,
// and so are problems that keep Apply off one node only (nodeOnlyError).
func problemsError(ps []Problem, log *slog.Logger, events func(Event)) error {
	var errs []error
	for _, p := range ps {
		if events != nil {
			// A decision not to act; the history keeps it once while it
			// stays the same.
			result := "not acted on: refused"
			if p.Warning {
				result = "not acted on: warning"
			}
			events(Event{Cluster: p.Cluster, Node: p.Node, Kind: "problem", Target: p.Summary, Reason: p.Summary + ": " + p.Detail, Result: result})
		}
		switch {
		case p.Warning:
			log.Warn(p.Summary, "cluster", p.Cluster, "node", p.Node, "detail", p.Detail)
		case p.NodeOnly:
			log.Error(p.Summary, "cluster", p.Cluster, "node", p.Node, "detail", p.Detail)
		default:
			errs = append(errs, p)
		}
	}
	return errors.Join(errs...)
}

// NodesLeftError is Apply's error when everything but some nodes is
// converged: the nodes whose host's engine does not answer, left alone
// (Problem.NodeOnly). It is no failure of the pass: the daemon does not back
// off for it, so that the rest keeps being repaired at once.
type NodesLeftError struct {
	Problems []Problem
}

func (e *NodesLeftError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// nodeOnlyError is the problems that keep Apply off one node only, as a
// *NodesLeftError; nil when there are none. Apply returns it once the rest
// is converged.
func nodeOnlyError(ps []Problem) error {
	var left []Problem
	for _, p := range ps {
		if p.NodeOnly && !p.Warning {
			left = append(left, p)
		}
	}
	if len(left) == 0 {
		return nil
	}
	return &NodesLeftError{Problems: left}
}

// ApplyWaiting is Apply that does not fail when another pacsd process runs
// long work on a node's data (a base backup, a rewind: a *NodeBusyError):
// it tells waiting which node, waits on store until that work ends, and
// converges again. busy, when not nil, is such an error an earlier call
// returned, waited for first.
func ApplyWaiting(ctx context.Context, c *spec.Cluster, d Deps, log *slog.Logger, busy error, store ClusterStore, waiting func(node string)) (Result, error) {
	var total Result
	err := busy
	for {
		var nb *NodeBusyError
		if errors.As(err, &nb) {
			if waiting != nil {
				waiting(nb.Node)
			}
			if werr := nb.Wait(ctx, store); werr != nil {
				return total, fmt.Errorf("%w; waiting for it: %w", err, werr)
			}
		} else if err != nil {
			return total, err
		}
		res, aerr := Apply(ctx, c, d, log)
		total.Done, total.Rounds = append(total.Done, res.Done...), total.Rounds+res.Rounds
		if aerr == nil || !errors.As(aerr, &nb) {
			return total, aerr
		}
		err = aerr
	}
}
