package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

func TestRoundTrip(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	got, err := s.Load("pacs")
	if err != nil || !got.Same(reconcile.ClusterState{}) {
		t.Fatalf("Load of nothing = %+v, %v; want zero, nil", got, err)
	}
	want := reconcile.ClusterState{Acting: "db2", Epoch: 3, Keep: "db1"}
	if err := s.Save("pacs", want); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load("pacs")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, ".cluster-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestRefusesBadInput(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if err := s.Save("../x", reconcile.ClusterState{}); err == nil {
		t.Error("Save accepted a cluster name with a path in it")
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "cluster-pacs.json"), []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("pacs"); err == nil {
		t.Error("Load accepted a torn state file")
	}
}

func TestSeen(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if ls, err := s.LoadSeen("pacs"); err != nil || ls.Node != "" {
		t.Fatalf("nothing saved: got %+v, %v", ls, err)
	}
	want := reconcile.LastSeen{Node: "db1", WAL: 42, SyncStandbys: []string{"db2", "db3"}, At: time.Now().UTC().Round(time.Millisecond)}
	if err := s.SaveSeen("pacs", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadSeen("pacs")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if st, err := s.Load("pacs"); err != nil || !st.Same(reconcile.ClusterState{}) {
		t.Errorf("the cluster's state is apart: got %+v, %v", st, err)
	}
}

// smallDir mounts a tmpfs of size bytes on a new directory for the test and
// unmounts it when the test ends.
func smallDir(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs on %s (the tests run as root): %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes into a file in dir until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 512)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return
		}
	}
}

// TestSaveFullDisk saves on a full file system: Save must fail, name the
// file and what to do, and leave the record stored before intact.
func TestSaveFullDisk(t *testing.T) {
	s := &Store{Dir: smallDir(t, 64<<10)}
	old := reconcile.ClusterState{Acting: "db1", Epoch: 7, Rounds: 3}
	if err := s.Save("pacs", old); err != nil {
		t.Fatal(err)
	}
	oldSeen := reconcile.LastSeen{Node: "db1", WAL: 42, At: time.Now().UTC().Round(time.Millisecond)}
	if err := s.SaveSeen("pacs", oldSeen); err != nil {
		t.Fatal(err)
	}
	fill(t, s.Dir)
	// A record larger than what is left: the write is cut short.
	big := reconcile.ClusterState{Acting: strings.Repeat("n", 16<<10), Epoch: 8, Rounds: 4}
	err := s.Save("pacs", big)
	if !errors.Is(err, reconcile.ErrRecordNotWritten) {
		t.Fatalf("Save on a full file system returned %v, want an error matching ErrRecordNotWritten", err)
	}
	for _, want := range []string{filepath.Join(s.Dir, "cluster-pacs.json"), "unchanged", "free space"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Save's error %q does not say %q", err, want)
		}
	}
	got, err := s.Load("pacs")
	if err != nil {
		t.Fatalf("the old record no longer loads: %v", err)
	}
	if d := cmp.Diff(old, got); d != "" {
		t.Errorf("the old record changed (-want +got):\n%s", d)
	}
	if err := s.SaveSeen("pacs", reconcile.LastSeen{Node: strings.Repeat("n", 16<<10)}); err == nil {
		t.Error("SaveSeen on a full file system returned nil")
	}
	gotSeen, err := s.LoadSeen("pacs")
	if err != nil {
		t.Fatalf("the old sight no longer loads: %v", err)
	}
	if d := cmp.Diff(oldSeen, gotSeen); d != "" {
		t.Errorf("the old sight changed (-want +got):\n%s", d)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, ".cluster-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestCheckWrite: on a full file system CheckWrite fails (matching
// ErrRecordNotWritten) although a record stored before loads; once there is
// space it succeeds; it never touches the record nor leaves a file.
func TestCheckWrite(t *testing.T) {
	s := &Store{Dir: smallDir(t, 64<<10)}
	if err := s.CheckWrite("pacs"); err != nil {
		t.Fatalf("CheckWrite without a record, with space: %v", err)
	}
	old := reconcile.ClusterState{Acting: "db1", Epoch: 7, Rounds: 3, Keep: strings.Repeat("k", 6000)}
	if err := s.Save("pacs", old); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(s.Dir, "cluster-pacs.json"))
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s.Dir)
	err = s.CheckWrite("pacs")
	if !errors.Is(err, reconcile.ErrRecordNotWritten) || !strings.Contains(err.Error(), s.Dir) {
		t.Errorf("CheckWrite on a full file system: %v, want an error matching ErrRecordNotWritten naming %s", err, s.Dir)
	}
	if err := os.Remove(filepath.Join(s.Dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWrite("pacs"); err != nil {
		t.Errorf("CheckWrite once there is space again: %v", err)
	}
	after, err := os.ReadFile(filepath.Join(s.Dir, "cluster-pacs.json"))
	if err != nil || string(after) != string(before) {
		t.Errorf("CheckWrite changed the record (%v)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir, ".cluster-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A state directory removed is made again, as Save makes it: not a
	// full one that holds the cluster for good.
	gone := &Store{Dir: filepath.Join(t.TempDir(), "removed", "state")}
	if err := gone.CheckWrite("pacs"); err != nil {
		t.Errorf("CheckWrite of a removed state directory: %v, want nil (Save makes it)", err)
	}
}

// TestSaveRenameFails saves where the record's path cannot be replaced: the
// error names the file.
func TestSaveRenameFails(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	p := filepath.Join(s.Dir, "cluster-pacs.json")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.Save("pacs", reconcile.ClusterState{Acting: "db1", Epoch: 1})
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Save over a directory: got %v, want an error naming %s", err, p)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, ".cluster-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestLoadRefusesDamagedRecords: a record that is not one Save wrote is an
// error, never the zero state.
func TestLoadRefusesDamagedRecords(t *testing.T) {
	good, err := json.MarshalIndent(reconcile.ClusterState{Acting: "db2", Epoch: 3, Keep: "db1", Rounds: 9}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string]string{
		"empty":           "",
		"blank":           " \n",
		"zeros":           "\x00\x00\x00\x00",
		"null":            "null\n",
		"empty object":    "{}\n",
		"no epoch":        `{"acting": "db2"}` + "\n",
		"unknown field":   `{"acting": "db2", "epoch": 3, "primary": "db1"}` + "\n",
		"trailing data":   string(good) + "\n{}\n",
		"array":           "[]\n",
		"negative epoch":  `{"epoch": -1}` + "\n",
		"truncated":       string(good[:len(good)/2]),
		"truncated last}": string(good[:len(good)-1]),
	}
	for name, content := range damaged {
		t.Run(name, func(t *testing.T) {
			s := &Store{Dir: t.TempDir()}
			if err := os.WriteFile(filepath.Join(s.Dir, "cluster-pacs.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := s.Load("pacs")
			if err == nil {
				t.Fatalf("Load of a damaged record (%q) = %+v, nil; want an error", content, st)
			}
			if !strings.Contains(err.Error(), "cluster-pacs.json") {
				t.Errorf("the error %q does not name the file", err)
			}
			if !errors.Is(err, reconcile.ErrRecordDamaged) {
				t.Errorf("the error %q does not match ErrRecordDamaged: the record would not be rebuilt from the nodes", err)
			}
			// Saving a rebuilt record keeps the damaged one beside it.
			if err := s.Save("pacs", reconcile.ClusterState{Acting: "db2", Epoch: 1}); err != nil {
				t.Fatalf("Save over a damaged record: %v", err)
			}
			aside, _ := filepath.Glob(filepath.Join(s.Dir, "cluster-pacs.json.damaged-*"))
			if len(aside) != 1 {
				t.Fatalf("damaged records set aside: %v; want one", aside)
			}
			if b, err := os.ReadFile(aside[0]); err != nil || string(b) != content {
				t.Errorf("the record set aside holds %q, %v; want the damaged content", b, err)
			}
			if st, err := s.Load("pacs"); err != nil || st.Acting != "db2" {
				t.Errorf("Load after the rebuild: %+v, %v", st, err)
			}
			if err := os.WriteFile(filepath.Join(s.Dir, "seen-pacs.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if ls, err := s.LoadSeen("pacs"); err == nil {
				t.Errorf("LoadSeen of a damaged record (%q) = %+v, nil; want an error", content, ls)
			}
		})
	}
	// The record as Save writes it loads.
	s := &Store{Dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.Dir, "cluster-pacs.json"), append(good, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load("pacs"); err != nil {
		t.Errorf("Load of a good record: %v", err)
	}
}

// TestFilesOwnedLikeTheDirectory: run as root (sudo pacsd pause), the
// files pacsd writes in a state directory owned by another user (the
// service's) are that user's, so that the service can read and write them.
func TestFilesOwnedLikeTheDirectory(t *testing.T) {
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
	s := &Store{Dir: dir}
	if err := s.SavePause("pacs", reconcile.Pause{Paused: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(reconcile.Event{Cluster: "pacs", Kind: "pause", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pause-pacs.json", "events-pacs.jsonl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sys := fi.Sys().(*syscall.Stat_t); sys.Uid != 65534 || sys.Gid != 65534 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: owner %d:%d mode %v; want the directory's owner, 0600", name, sys.Uid, sys.Gid, fi.Mode().Perm())
		}
	}
}
