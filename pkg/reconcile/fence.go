package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pacsd/pacsd/pkg/spec"
)

// ErrEngineUnreachable is returned (wrapped, with ErrNotFenced) when a fence
// failed because the node's engine did not answer, as opposed to an engine
// that answered and reports the container still running.
var ErrEngineUnreachable = errors.New("the node's engine does not answer")

// signalFile is standby.signal as pacsd places it.
var signalFile = FileWrite{Path: SignalPath, Content: []byte{}, Mode: 0o600}

// fenceNode makes sure node n of c can no longer accept writes, and cannot
// again after a start by hand or by the engine: standby.signal goes into its
// PGDATA first, while its server runs (PostgreSQL reads it only at start),
// then its container is stopped (killed after timeout; a frozen one at
// once) and the engine must confirm that it no longer runs; a node whose
// signal could not be placed while it ran gets it now. It is the one fence
// of failover, of the plan's "a second primary" and of every path that
// stops a primary for good. The error wraps ErrNotFenced when the node may
// still, or again, accept writes.
//
// Every container labelled as the node's own is fenced, whatever its name
// now (renamed by hand, or left under an old container_name): none of them
// may run the node's data as a primary.
func fenceNode(ctx context.Context, rt Runtime, c *spec.Cluster, n *spec.Node, timeout time.Duration) error {
	names, err := rt.NodeContainers(ctx, c.Name, n.Name)
	if err != nil {
		return fmt.Errorf("%w: %w: while listing the containers of node %q: %v", ErrNotFenced, ErrEngineUnreachable, n.Name, err)
	}
	if !slices.Contains(names, n.Container) {
		names = append(names, n.Container)
	}
	for _, name := range names {
		if err := fenceContainer(ctx, rt, c, n, name, timeout); err != nil {
			return err
		}
	}
	return nil
}

// fenceContainer fences one container of node n (see fenceNode).
func fenceContainer(ctx context.Context, rt Runtime, c *spec.Cluster, n *spec.Node, name string, timeout time.Duration) error {
	ct, err := rt.ContainerInspect(ctx, name, c.Name, n.Name)
	if err != nil {
		return fmt.Errorf("%w: %w: while inspecting container %q: %v", ErrNotFenced, ErrEngineUnreachable, name, err)
	}
	if ct == nil {
		return nil // no container runs its data; pacsd creates one only as a standby
	}
	placed := false
	if ct.Running && !ct.Paused {
		placed = rt.WriteFiles(ctx, ct.ID, []FileWrite{signalFile}) == nil
	}
	if ct.Running || ct.Paused {
		if ct.Paused {
			timeout = 0 // whatever it was asked would hang: it is killed
		}
		if err := rt.ContainerStop(ctx, ct.ID, timeout); err != nil {
			// Unreachable only when the engine does not answer at all: an
			// engine that answers and failed to stop the container (or
			// reports it running) may leave a primary that takes writes,
			// and no operator's word confirms it stopped.
			if now, ierr := rt.ContainerInspect(context.WithoutCancel(ctx), name, c.Name, n.Name); ierr == nil {
				state := "gone"
				switch {
				case now == nil:
				case now.Paused:
					state = "paused"
				case now.Running:
					state = "running"
				default:
					state = cmp.Or(now.Status, "stopped")
				}
				return fmt.Errorf("%w: the engine answers but failed to stop container %q (%v); it reports it %s: stop it by hand ('docker stop %s' on its host), then try again", ErrNotFenced, name, err, state, name)
			}
			return fmt.Errorf("%w: %w: while stopping container %q: %v", ErrNotFenced, ErrEngineUnreachable, name, err)
		}
		if ct, err = rt.ContainerInspect(ctx, name, c.Name, n.Name); err != nil {
			return fmt.Errorf("%w: while confirming that container %q stopped: %v", ErrNotFenced, name, err)
		}
		if ct != nil && ct.Running {
			return fmt.Errorf("%w: container %q still runs after it was stopped", ErrNotFenced, name)
		}
	}
	if ct != nil && !placed {
		if err := rt.WriteFiles(ctx, ct.ID, []FileWrite{signalFile}); err != nil {
			return fmt.Errorf("%w: container %q is stopped, but standby.signal could not be placed in its data (%v), so a start would bring it back as a primary: remove the container ('docker rm %s'; its data stays and pacsd re-creates it as a standby)", ErrNotFenced, name, err, name)
		}
		// PostgreSQL reads standby.signal when it starts: one started
		// between the look above and the write (a restart's start) runs
		// as a primary all the same. Then it is fenced again, running,
		// the signal now in place.
		now, err := rt.ContainerInspect(ctx, name, c.Name, n.Name)
		if err != nil {
			return fmt.Errorf("%w: while confirming that container %q stayed stopped: %v", ErrNotFenced, name, err)
		}
		if now != nil && (now.Running || now.Paused) {
			return fenceContainer(ctx, rt, c, n, name, timeout)
		}
	}
	return nil
}

// FenceNode is the fence of failover (see fenceNode) for a caller outside
// a failover: the pacsd of a host whose primary lost its lease (pacsd on
// every host) fences it through its own engine.
func FenceNode(ctx context.Context, rt Runtime, c *spec.Cluster, n *spec.Node, timeout time.Duration) error {
	return fenceNode(ctx, rt, c, n, timeout)
}

// errFence is fenceNode's error for a caller that is not a failover.
func errFence(err error) error {
	if errors.Is(err, ErrNotFenced) {
		return fmt.Errorf("pacsd cannot confirm it is fenced: %w; stop it by hand", err)
	}
	return err
}
