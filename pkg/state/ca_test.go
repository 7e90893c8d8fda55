package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/certs"
)

// modes returns the permission bits of each file of dir, by name.
func modes(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]os.FileMode{}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = fi.Mode().Perm()
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthorityCreated: the first call makes the CA and stores it (key
// 0600, certificate 0644); later calls, from any Store on the directory,
// return the same CA, which issues certificates that check against it.
func TestAuthorityCreated(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	a, err := (&Store{Dir: dir}).Authority(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{"ca-pacs.crt": 0o644, "ca-pacs.key": 0o600, "ca-pacs.lock": 0o600}
	if diff := cmp.Diff(want, modes(t, dir)); diff != "" {
		t.Errorf("files of the state directory (-want +got):\n%s", diff)
	}
	if got := readFile(t, filepath.Join(dir, "ca-pacs.crt")); !bytes.Equal(got, a.CertPEM()) {
		t.Errorf("ca-pacs.crt holds %q, want the CA's certificate", got)
	}
	if !certs.KeyMatches(a.CertPEM(), readFile(t, filepath.Join(dir, "ca-pacs.key"))) {
		t.Error("ca-pacs.key is not the CA's key")
	}
	again, err := (&Store{Dir: dir}).Authority(ctx, "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.CertPEM(), a.CertPEM()) {
		t.Error("a second call made another CA")
	}
	names := []string{"pacs-db1", "db", "10.0.0.12"}
	cert, key, err := again.Issue(names, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := certs.Check(cert, a.CertPEM(), names, time.Now(), 0); !ok || !certs.KeyMatches(cert, key) {
		t.Errorf("a certificate of the CA read back does not check against the CA made: %s", why)
	}
	other, err := (&Store{Dir: dir}).Authority(ctx, "archive")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.CertPEM(), a.CertPEM()) {
		t.Error("two clusters share one CA")
	}
}

// TestAuthorityOperatorCA: a CA an operator put in the two files is the
// cluster's.
func TestAuthorityOperatorCA(t *testing.T) {
	dir := t.TempDir()
	mine, key, err := certs.NewAuthority("operator", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-pacs.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-pacs.crt"), mine.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := (&Store{Dir: dir}).Authority(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CertPEM(), mine.CertPEM()) {
		t.Error("the operator's CA was not taken")
	}
}

// TestAuthorityConcurrent: two processes (two Stores on one directory,
// each with its own lock file descriptor) that create the CA at once end
// with one CA.
func TestAuthorityConcurrent(t *testing.T) {
	for round := range 10 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		start := make(chan struct{})
		got := make([][]byte, 4)
		errs := make([]error, len(got))
		for i := range got {
			wg.Go(func() {
				<-start
				a, err := (&Store{Dir: dir}).Authority(context.Background(), "pacs")
				if err == nil {
					got[i] = a.CertPEM()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, err)
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("round %d: callers 0 and %d got different CAs", round, i)
			}
		}
		if stored := readFile(t, filepath.Join(dir, "ca-pacs.crt")); !bytes.Equal(stored, got[0]) {
			t.Fatalf("round %d: the stored CA is not the one returned", round)
		}
		want := map[string]os.FileMode{"ca-pacs.crt": 0o644, "ca-pacs.key": 0o600, "ca-pacs.lock": 0o600}
		if diff := cmp.Diff(want, modes(t, dir)); diff != "" {
			t.Fatalf("round %d: files (-want +got):\n%s", round, diff)
		}
	}
}

// TestAuthorityDamaged: a stored CA that cannot be used is an error naming
// the file at fault and saying what to do, and is left as it is.
func TestAuthorityDamaged(t *testing.T) {
	other, otherKey, err := certs.NewAuthority("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nodeCert, nodeKey, err := other.Issue([]string{"db"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, cert, key string)
		fault string // the file the error names, "crt" or "key"
		want  string
	}{
		{"certificate garbage", func(t *testing.T, cert, key string) { write(t, cert, "garbage", 0o644) }, "crt", "holds no PEM certificate"},
		{"certificate empty", func(t *testing.T, cert, key string) { write(t, cert, "", 0o644) }, "crt", "holds no PEM certificate"},
		{"certificate cut short", func(t *testing.T, cert, key string) {
			b := readFile(t, cert)
			write(t, cert, string(b[:len(b)/2]), 0o644)
		}, "crt", "holds no PEM certificate"},
		{"certificate not a CA", func(t *testing.T, cert, key string) {
			write(t, cert, string(nodeCert), 0o644)
			write(t, key, string(nodeKey), 0o600)
		}, "crt", "it is not a certificate authority"},
		{"key garbage", func(t *testing.T, cert, key string) { write(t, key, "garbage", 0o600) }, "key", "holds no PEM private key"},
		{"key of another CA", func(t *testing.T, cert, key string) { write(t, key, string(otherKey), 0o600) }, "key", "does not belong"},
		{"certificate of another CA", func(t *testing.T, cert, key string) { write(t, cert, string(other.CertPEM()), 0o644) }, "key", "does not belong"},
		{"key missing", func(t *testing.T, cert, key string) {
			if err := os.Remove(key); err != nil {
				t.Fatal(err)
			}
		}, "crt", "its key ca-pacs.key is missing"},
		{"key readable by others", func(t *testing.T, cert, key string) {
			if err := os.Chmod(key, 0o640); err != nil {
				t.Fatal(err)
			}
		}, "key", "is readable by group or others (mode 0640), and it is the CA's private key; make it readable by its owner only (chmod 0600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := &Store{Dir: dir}
			if _, err := s.Authority(context.Background(), "pacs"); err != nil {
				t.Fatal(err)
			}
			cert, key := filepath.Join(dir, "ca-pacs.crt"), filepath.Join(dir, "ca-pacs.key")
			tc.spoil(t, cert, key)
			before := snapshot(t, dir)
			_, err := s.Authority(context.Background(), "pacs")
			if !errors.Is(err, ErrAuthorityDamaged) {
				t.Fatalf("Authority: %v, want ErrAuthorityDamaged", err)
			}
			fault := filepath.Join(dir, "ca-pacs."+tc.fault)
			for _, part := range []string{fault + " ", tc.want, "move both files away", "every client must be given the new CA"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("Authority: %v\nwant it to say %q", err, part)
				}
			}
			if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
				t.Errorf("the damaged CA was changed (-before +after):\n%s", diff)
			}
		})
	}
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns the content and mode of each file of dir, by name.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, mode := range modes(t, dir) {
		out[name] = mode.String() + " " + string(readFile(t, filepath.Join(dir, name)))
	}
	return out
}

// TestAuthorityOrphanKey: a key without its certificate (a creation cut
// short) is set aside, not used and not lost, and a new CA is made.
func TestAuthorityOrphanKey(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ca-pacs.key"), "half made", 0o600)
	a, err := (&Store{Dir: dir}).Authority(context.Background(), "pacs")
	if err != nil {
		t.Fatal(err)
	}
	if !certs.KeyMatches(a.CertPEM(), readFile(t, filepath.Join(dir, "ca-pacs.key"))) {
		t.Error("ca-pacs.key is not the new CA's key")
	}
	aside, err := filepath.Glob(filepath.Join(dir, "ca-pacs.key.orphaned-*"))
	if err != nil || len(aside) != 1 {
		t.Fatalf("keys set aside: %v, %v; want one", aside, err)
	}
	if got := string(readFile(t, aside[0])); got != "half made" {
		t.Errorf("the key set aside holds %q", got)
	}
}

// TestAuthorityRefusesUnsafeCluster: a cluster name that is not a plain
// file name makes no file.
func TestAuthorityRefusesUnsafeCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for _, name := range []string{"../x", "a/b", "", "x y"} {
		if _, err := (&Store{Dir: dir}).Authority(context.Background(), name); err == nil || !strings.Contains(err.Error(), "cannot name a state file") {
			t.Errorf("Authority(%q): %v, want a refusal", name, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state directory was made: %v", err)
	}
}

// TestAuthorityLockHeld: while another process creates the CA, a caller
// waits for it until its context is done, then says who holds what.
func TestAuthorityLockHeld(t *testing.T) {
	dir := t.TempDir()
	l, err := LockFile(context.Background(), filepath.Join(dir, "ca-pacs.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = (&Store{Dir: dir}).Authority(ctx, "pacs")
	if !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "ca-pacs.lock") {
		t.Errorf("Authority while the lock is held: %v, want ErrLocked naming ca-pacs.lock", err)
	}
}

// TestAuthorityOwnedLikeTheDirectory: run as root on a directory of the
// service's user, the CA's files and lock are that user's.
func TestAuthorityOwnedLikeTheDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tests run as root in CI")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Store{Dir: dir}).Authority(context.Background(), "pacs"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca-pacs.crt", "ca-pacs.key", "ca-pacs.lock"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sys := fi.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 {
			t.Errorf("%s: owner %d:%d; want the directory's owner", name, sys.Uid, sys.Gid)
		}
	}
}
