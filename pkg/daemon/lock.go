package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file in the state directory.
const LockFile = "pacsd.lock"

// StateLock is the exclusive hold of one pacsd on a state directory.
type StateLock struct {
	f    *os.File
	path string
}

// Lock takes an exclusive, non-blocking flock on <stateDir>/pacsd.lock,
// creating the directory (0750) and the file when they are missing, and
// writes the caller's pid into it. When another process holds the lock it
// returns an error that names that process: "another pacsd (pid N) holds
// PATH; stop it first". The lock lasts until Unlock or the end of the
// process; the file itself is never removed, so that two processes can never
// hold locks on two different files of the same name.
func Lock(stateDir string) (*StateLock, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("while creating the state directory %s: %w", stateDir, err)
	}
	path := filepath.Join(stateDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("while opening the lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another pacsd (pid %s) holds %s; stop it first", holder(path), path)
		}
		return nil, fmt.Errorf("while locking %s: %w", path, err)
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("while writing the pid into %s: %w", path, err)
	}
	return &StateLock{f: f, path: path}, nil
}

// Path is the lock file's path.
func (l *StateLock) Path() string { return l.path }

// Unlock releases the lock. The pid stays in the file; it is only read while
// the lock is held.
func (l *StateLock) Unlock() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("while releasing %s: %w", l.path, err)
	}
	return nil
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// holder reads the pid the holder of the lock wrote; "unknown" when it has
// not written it yet.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return pid
	}
	return "unknown"
}
