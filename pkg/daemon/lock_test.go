package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pacsd/pacsd/pkg/state"
)

// precious makes a file outside the state directory that a lock must never
// touch, and returns its path.
func precious(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(p, []byte("precious content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unchanged fails the test when the file at p no longer holds what precious
// wrote, with its mode.
func unchanged(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the file %s outside the state directory: %v", p, err)
	}
	if string(b) != "precious content\n" {
		t.Errorf("the file %s outside the state directory was changed: %q", p, b)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the mode of %s changed: %v, %v", p, fi.Mode(), err)
	}
}

func TestLockRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := precious(t)
	path := filepath.Join(dir, LockFile)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	l, err := Lock(dir)
	if err == nil {
		l.Unlock()
		t.Fatal("Lock took a lock file that is a symbolic link")
	}
	for _, want := range []string{path, "symbolic link", "remove it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	unchanged(t, target)
}

func TestLockRefusesDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "made-by-pacsd")
	if err := os.Symlink(target, filepath.Join(dir, LockFile)); err != nil {
		t.Fatal(err)
	}
	if l, err := Lock(dir); err == nil {
		l.Unlock()
		t.Fatal("Lock took a lock file that is a dangling symbolic link")
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("Lock created %s through a symbolic link", target)
	}
}

func TestLockRefusesHardLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("precious content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, filepath.Join(dir, LockFile)); err != nil {
		t.Fatal(err)
	}
	if l, err := Lock(dir); err == nil {
		l.Unlock()
		t.Fatal("Lock took a lock file with a second name (a hard link)")
	}
	unchanged(t, target)
}

func TestLockRefusesNotRegular(t *testing.T) {
	for name, make := range map[string]func(string) error{
		"directory": func(p string) error { return os.Mkdir(p, 0o700) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, LockFile)
			if err := make(path); err != nil {
				t.Fatal(err)
			}
			l, err := Lock(dir)
			if err == nil {
				l.Unlock()
				t.Fatalf("Lock took a %s as its lock file", name)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("the error %q does not name %s as not a regular file", err, path)
			}
		})
	}
}

// TestLockFile: a new lock file is 0600 and holds the holder's pid only, and
// an older one (0644, a longer pid) is made so.
func TestLockFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		fi, err := os.Lstat(l.Path())
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("the lock file's mode is %v, want -rw-------", fi.Mode())
		}
		if b, _ := os.ReadFile(l.Path()); string(b) != strconv.Itoa(os.Getpid())+"\n" {
			t.Errorf("the lock file holds %q, want the pid", b)
		}
	}
	check()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path(), []byte("12345678901234567890\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err = Lock(dir); err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	check()
}

// TestLockRenewedAfterStateDirRemoved: a state directory removed while pacsd
// runs takes its lock file with it, and a second pacsd could lock the new
// one; Renew takes the lock on the new file first (then a second pacsd is
// refused), and says when another pacsd got there first.
func TestLockRenewedAfterStateDirRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if renewed, err := l.Renew(dir); renewed || err != nil {
		t.Fatalf("Renew of a lock in place: %v, %v; want nothing done", renewed, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if renewed, err := l.Renew(dir); !renewed || err != nil {
		t.Fatalf("Renew after the directory was removed: %v, %v; want the lock taken again", renewed, err)
	}
	if second, err := Lock(dir); err == nil {
		second.Unlock()
		t.Fatal("a second pacsd took the lock after Renew")
	}
	// Another pacsd locks the new file before Renew looks.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	other, err := state.LockFile(context.Background(), filepath.Join(dir, LockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Unlock()
	if err := other.WriteNote("999999"); err != nil { // another process's pid
		t.Fatal(err)
	}
	if _, err := l.Renew(dir); err == nil || !strings.Contains(err.Error(), "another pacsd") {
		t.Errorf("Renew with another pacsd on the new lock file: %v; want an error naming it", err)
	}
}
