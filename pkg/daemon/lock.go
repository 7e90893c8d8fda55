package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/pacsd/pacsd/pkg/reconcile"
	"github.com/pacsd/pacsd/pkg/state"
)

// LockFile is the name of the lock file in the state directory.
const LockFile = "pacsd.lock"

// StateLock is the exclusive hold of one pacsd on a state directory.
type StateLock struct {
	l *state.FileLock
}

// Lock takes an exclusive, non-blocking flock on <stateDir>/pacsd.lock,
// creating the directory (0750) and the file (0600) when they are missing,
// and, once it holds the lock, writes the caller's pid into it. When another
// process holds the lock it returns an error that names that process:
// "another pacsd (pid N) holds PATH; stop it first". It refuses a lock path
// that is a symbolic link (never followed), not a regular file, or a file
// with other names, and says to remove it (see state.LockFile). The lock
// lasts until Unlock or the end of the process; the file itself is never
// removed, so that two processes can never hold locks on two different files
// of the same name. When the directory cannot be written, the error says
// what to do; under pacsd.service, which drop-in to write.
func Lock(stateDir string) (*StateLock, error) {
	l, err := lock(stateDir)
	if err != nil {
		// Under systemd (INVOCATION_ID is set for every service), a state
		// directory the unit does not let pacsd write asks for a drop-in.
		return nil, unwritableStateDir(err, stateDir, os.Getenv("INVOCATION_ID") != "")
	}
	return l, nil
}

func lock(stateDir string) (*StateLock, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("while creating the state directory %s: %w", stateDir, err)
	}
	path := filepath.Join(stateDir, LockFile)
	once, cancel := context.WithCancel(context.Background())
	cancel() // one try
	l, err := state.LockFile(once, path)
	var busy *state.BusyError
	if errors.As(err, &busy) {
		pid := busy.Note
		if _, err := strconv.Atoi(pid); err != nil {
			pid = "unknown"
		}
		return nil, fmt.Errorf("another pacsd (pid %s) holds %s; stop it first", pid, path)
	}
	if err != nil {
		return nil, err
	}
	if err := l.WriteNote(strconv.Itoa(os.Getpid())); err != nil {
		l.Unlock()
		return nil, err
	}
	return &StateLock{l: l}, nil
}

// Path is the lock file's path.
func (l *StateLock) Path() string { return l.l.Path() }

// Renew takes the lock again when its file was removed (with the state
// directory, say) or replaced since it was taken: another pacsd could
// otherwise take a lock on the new file and run beside this one. It reports
// whether it took the lock again; an error means it could not (another
// pacsd holds the new file), and this one must stop.
func (l *StateLock) Renew(stateDir string) (bool, error) {
	if l.l.Held() {
		return false, nil
	}
	n, err := Lock(stateDir)
	if err != nil && (l.l.Held() || strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", os.Getpid()))) {
		// The first look failed for a moment, or the file system cannot
		// tell a file's identity: the lock on the file is still this
		// process's own.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("the lock file %s was removed or replaced, and could not be taken again: %w", l.l.Path(), err)
	}
	_ = l.l.Unlock()
	l.l = n.l
	return true, nil
}

// Unlock releases the lock. The pid stays in the file; it is only read while
// the lock is held.
func (l *StateLock) Unlock() error { return l.l.Unlock() }

// lockedStore is the cluster store as the daemon hands it to reconcile: its
// Lock takes the daemon's in-process mutex of the name first, then the
// store's lock, shared with other pacsd processes (a switchover or apply on
// the command line).
type lockedStore struct {
	reconcile.ClusterStore
	d *Daemon
}

// CheckWrite is the store's (reconcile.CheckWrite).
func (s *lockedStore) CheckWrite(cluster string) error {
	return reconcile.CheckWrite(s.ClusterStore, cluster)
}

// Lock takes the lock named cluster (a cluster's, or a node's work lock);
// a context done already makes it one try, of the in-process mutex too (a
// node's work lock, which a command carried out in this process may hold
// while the daemon's pass asks for it under the cluster's lock).
func (s *lockedStore) Lock(ctx context.Context, cluster string) (func(), error) {
	return s.d.take(ctx, s.ClusterStore, cluster, ctx.Err() != nil)
}

// lock takes the cluster's lock, which a pass holds while it acts (not while
// it observes) and the supervisor while it checks and fails over.
func (d *Daemon) lock(ctx context.Context, cluster string) (func(), error) {
	return d.take(ctx, d.snap.Load().shared, cluster, false)
}

// tryLock takes the cluster's lock when it is free at once.
func (d *Daemon) tryLock(cluster string) (func(), bool) {
	unlock, err := d.tryLockErr(cluster)
	return unlock, err == nil
}

// tryLockErr is tryLock with the reason the lock was not taken.
func (d *Daemon) tryLockErr(cluster string) (func(), error) {
	now, cancel := context.WithCancel(context.Background())
	cancel() // one try of the shared lock
	return d.take(now, d.snap.Load().shared, cluster, true)
}

// errBusy says that tryLock found the in-process mutex taken.
var errBusy = errors.New("the cluster's lock is taken")

// take takes the in-process mutex (at once or not at all when try is set),
// then the lock of shared, waiting until ctx is done.
func (d *Daemon) take(ctx context.Context, shared reconcile.ClusterStore, cluster string, try bool) (func(), error) {
	mu := d.mutex(cluster)
	if !try {
		mu.Lock()
	} else if !mu.TryLock() {
		return nil, errBusy
	}
	unlock, err := shared.Lock(ctx, cluster)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { unlock(); mu.Unlock() }, nil
}

func (d *Daemon) mutex(cluster string) *sync.Mutex {
	m, _ := d.locks.LoadOrStore(cluster, &sync.Mutex{})
	return m.(*sync.Mutex)
}
