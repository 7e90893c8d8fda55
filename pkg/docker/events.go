package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// Event is something the engine reports about an object of a cluster: a
// container started, died, was removed; a network was disconnected. It is a
// poke to observe again, not a state.
type Event struct {
	Type   string // container, network, volume
	Action string // create, start, die, stop, destroy, pause, disconnect, ...
	ID     string // the object's ID
	Name   string // the object's name, when the engine says
	Node   string // the object's io.pacsd.node label, when it has one
}

// Events streams the engine's events about objects labelled
// io.pacsd.cluster=cluster until ctx is done. Both channels are closed when
// the stream ends; an error (the engine went away, for example) is sent on the
// second channel before that, and the caller subscribes again after observing
// the whole world, since events may have been missed.
func (r *Runtime) Events(ctx context.Context, cluster string) (<-chan Event, <-chan error) {
	out, errc := make(chan Event), make(chan error, 1)
	f := filters.NewArgs(filters.Arg("label", reconcile.LabelCluster+"="+cluster))
	msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		defer close(out)
		defer close(errc)
		for {
			select {
			case m := <-msgs:
				select {
				case out <- toEvent(m):
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				if ctx.Err() == nil {
					errc <- fmt.Errorf("while following the engine's events for cluster %s: %w", cluster, err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

func toEvent(m events.Message) Event {
	return Event{
		Type:   string(m.Type),
		Action: string(m.Action),
		ID:     m.Actor.ID,
		Name:   m.Actor.Attributes["name"],
		Node:   m.Actor.Attributes[reconcile.LabelNode],
	}
}
