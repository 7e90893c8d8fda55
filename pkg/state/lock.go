package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// lockPoll is how often Lock tries again while another process holds the lock.
const lockPoll = 10 * time.Millisecond

// Lock takes the lock of cluster: an exclusive flock on
// <Dir>/cluster-<name>.lock (see LockFile: never through a symbolic link,
// created 0600), shared by every pacsd process on the directory (pacsd run,
// and apply or switchover on the command line), so that only one acts on a
// cluster at a time. It tries at once, then every 10 ms until ctx is done; a
// context that is done already makes it one try. The lock lasts until the
// returned unlock is called or the process ends. An error that matches
// ErrLocked means another process holds the lock; any other error means the
// lock could not be taken at all.
func (s *Store) Lock(ctx context.Context, cluster string) (unlock func(), err error) {
	p, err := s.path(cluster)
	if err != nil {
		return nil, err
	}
	p = p[:len(p)-len(filepath.Ext(p))] + ".lock"
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating the state directory %s: %w", s.Dir, err)
	}
	l, err := LockFile(ctx, p)
	var busy *BusyError
	switch {
	case errors.As(err, &busy):
		return nil, fmt.Errorf("cluster %q: %w: another pacsd process (pacsd run, apply or switchover) acts on it (lock %s): %w", cluster, ErrLocked, p, busy.ctx)
	case err != nil:
		return nil, fmt.Errorf("while taking the lock of cluster %q: %w", cluster, err)
	}
	return func() { _ = l.Unlock() }, nil
}

// ErrLocked is returned (wrapped) by Lock when another process held the
// cluster's lock until the context was done; it is reconcile.ErrLocked, which
// every ClusterStore returns.
var ErrLocked = reconcile.ErrLocked
