package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	unlock, err := s.Lock(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	// Held: a try fails at once, a wait fails when its context ends.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(done, "pacs"); !errors.Is(err, ErrLocked) {
		t.Fatalf("try while held: got %v, want ErrLocked", err)
	}
	// Another cluster's lock is independent.
	other, err := s.Lock(done, "other")
	if err != nil {
		t.Fatalf("another cluster: %v", err)
	}
	other()
	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, err := s.Lock(ctx, "pacs")
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("the waiter got the lock while it was held: %v", err)
	default:
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("the waiter: %v", err)
	}
	if _, err := s.Lock(done, "../x"); err == nil {
		t.Error("a cluster name that cannot name a file was accepted")
	}
}

// TestLockRefusesSymlink: a symbolic link planted at a cluster's lock path
// is refused and what it points to is left alone, also when it points to
// nothing yet.
func TestLockRefusesSymlink(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "precious")
	if err := os.WriteFile(target, []byte("precious content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir, "cluster-pacs.lock")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock(context.Background(), "pacs")
	if err == nil {
		unlock()
		t.Fatal("Lock took a lock file that is a symbolic link")
	}
	for _, want := range []string{path, "symbolic link", `cluster "pacs"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if errors.Is(err, ErrLocked) {
		t.Errorf("a refused lock file reads as a lock held by another process: %v", err)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "precious content\n" {
		t.Errorf("the file the link points to changed: %q, %v", b, err)
	}
	dangling := filepath.Join(elsewhere, "made-by-pacsd")
	if err := os.Symlink(dangling, filepath.Join(s.Dir, "cluster-other.lock")); err != nil {
		t.Fatal(err)
	}
	if unlock, err := s.Lock(context.Background(), "other"); err == nil {
		unlock()
		t.Error("Lock took a lock file that is a dangling symbolic link")
	}
	if _, err := os.Lstat(dangling); err == nil {
		t.Errorf("Lock created %s through a symbolic link", dangling)
	}
}

func TestLockFileMode(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	unlock, err := s.Lock(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	fi, err := os.Lstat(filepath.Join(s.Dir, "cluster-pacs.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("the lock file's mode is %v, want -rw-------", fi.Mode())
	}
}
