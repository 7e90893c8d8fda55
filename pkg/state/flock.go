package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// FileLock is an exclusive flock held on a lock file (see LockFile). It is
// the one lock implementation of pacsd: the cluster locks of Store.Lock and
// the daemon's lock on its state directory both take it.
type FileLock struct {
	f    *os.File
	path string
}

// BusyError is returned by LockFile when another process held the lock
// until the context was done. It matches ErrLocked and the context's error
// with errors.Is.
type BusyError struct {
	// Path is the lock file.
	Path string
	// Note is what the holder wrote into the file with WriteNote (such as its
	// pid), trimmed; "" when it wrote nothing.
	Note string
	ctx  error
}

// Error says which file another process holds.
func (e *BusyError) Error() string {
	return "another process holds the lock " + e.Path
}

// Unwrap returns ErrLocked and the context's error.
func (e *BusyError) Unwrap() []error { return []error{ErrLocked, e.ctx} }

// noteMax bounds what LockFile reads of a holder's note.
const noteMax = 256

// LockFile takes an exclusive flock on the file at path. It tries at once,
// then every 10 ms until ctx is done (a context that is done already makes
// it one try); then it returns a *BusyError.
//
// The file is created with mode 0600 when missing; an existing one is never
// truncated (WriteNote replaces its content only once the lock is held) and
// gets mode 0600. LockFile refuses, with an error naming path and saying to
// remove it, a path that is a symbolic link (it is never followed, so a link
// planted there cannot make pacsd create, lock or write a file elsewhere), that is
// not a regular file (a directory, a FIFO, a device), or a file with more
// than one name (a hard link to a file elsewhere). The directory must
// exist. The lock lasts until Unlock or the end of the process.
func LockFile(ctx context.Context, path string) (*FileLock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	for moved := 0; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// A file system that cannot tell a file's identity (the path
			// and the open file never match) is taken at its word after a
			// few tries, never looped on.
			if moved++; sameFile(f, path) || moved > 3 {
				return &FileLock{f: f, path: path}, nil
			}
			// The file was removed (its directory removed) or replaced
			// since it was opened: a lock on it locks nothing another
			// process would look at. Lock the file the path names now.
			f.Close()
			if f, err = openLockFile(path); err != nil {
				return nil, err
			}
			continue
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("while locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			b := make([]byte, noteMax)
			n, _ := f.ReadAt(b, 0)
			f.Close()
			return nil, &BusyError{Path: path, Note: strings.TrimSpace(string(b[:n])), ctx: ctx.Err()}
		case <-time.After(lockPoll):
		}
	}
}

// openLockFile opens (or creates, 0600) the lock file at path for LockFile,
// refusing what LockFile refuses. It looks before it opens, so that nothing
// but a regular file is ever opened, and checks again what it opened, so
// that a file swapped in between is refused too.
func openLockFile(path string) (*os.File, error) {
	refuse := func(why string) error {
		return fmt.Errorf("refusing the lock file %s: %s; pacsd makes its lock files itself: remove it, then try again", path, why)
	}
	if fi, err := os.Lstat(path); err == nil {
		if why := notLockFile(fi); why != "" {
			return nil, refuse(why)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("while looking at the lock file %s: %w", path, err)
	}
	// O_NOFOLLOW: a symbolic link put there since is an error (ELOOP), not
	// followed; O_NONBLOCK: a FIFO put there since does not block the open.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, refuse("it is a symbolic link")
	}
	if err != nil {
		return nil, fmt.Errorf("while opening the lock file %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		if why := notLockFile(fi); why != "" {
			f.Close()
			return nil, refuse(why)
		}
		if fi.Mode().Perm() != 0o600 {
			err = f.Chmod(0o600)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("while opening the lock file %s: %w", path, err)
	}
	return f, nil
}

// notLockFile says why fi cannot be a lock file; "" when it can.
func notLockFile(fi os.FileInfo) string {
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return "it is a symbolic link"
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("it is not a regular file (%v)", fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Sprintf("it has %d names (hard links), so it may be a file used elsewhere", st.Nlink)
	}
	return ""
}

// sameFile reports whether path still names the open file f.
func sameFile(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Lstat(path)
	return err == nil && os.SameFile(held, now)
}

// Held reports whether the lock is still the one on the file its path
// names: false once that file was removed (with its directory, say) or
// replaced, when another process can take a lock on the new file.
func (l *FileLock) Held() bool { return sameFile(l.f, l.path) }

// Path is the lock file's path.
func (l *FileLock) Path() string { return l.path }

// WriteNote replaces the content of the lock file with note and a newline
// (such as the holder's pid, for the BusyError of another process), durably.
func (l *FileLock) WriteNote(note string) error {
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("while writing into the lock file %s: %w", l.path, err)
	}
	if _, err := l.f.WriteAt([]byte(note+"\n"), 0); err != nil {
		return fmt.Errorf("while writing into the lock file %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("while writing into the lock file %s: %w", l.path, err)
	}
	return nil
}

// Unlock releases the lock; the file stays, so that two processes never
// hold locks on two different files of one name.
func (l *FileLock) Unlock() error {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("while releasing the lock %s: %w", l.path, err)
	}
	return nil
}
