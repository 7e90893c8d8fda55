package reconcile

import (
	"context"
	"log/slog"

	"github.com/pacsd/pacsd/pkg/spec"
)

// RunOneOffAction carries out a one-off action (BaseBackup, Rewind) of
// cluster c with d, acting being the acting primary, the way Apply's
// executor does; for the end-to-end tests of package reconcile_test.
func RunOneOffAction(ctx context.Context, c *spec.Cluster, d Deps, acting string, log *slog.Logger, a Action) error {
	x := &executor{c: c, d: d, log: log, ids: map[string]string{}, acting: acting}
	rt, err := x.rt(a.Node)
	if err != nil {
		return err
	}
	switch a.Kind {
	case BaseBackup:
		return x.baseBackup(ctx, rt, a)
	case Rewind:
		return x.rewind(ctx, rt, a)
	}
	return x.do(ctx, a)
}
