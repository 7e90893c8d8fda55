package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

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
// of the same name.
func Lock(stateDir string) (*StateLock, error) {
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

// Unlock releases the lock. The pid stays in the file; it is only read while
// the lock is held.
func (l *StateLock) Unlock() error { return l.l.Unlock() }
