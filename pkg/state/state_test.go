package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

func TestRoundTrip(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	got, err := s.Load("pacs")
	if err != nil || got != (reconcile.ClusterState{}) {
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
	if st, err := s.Load("pacs"); err != nil || st != (reconcile.ClusterState{}) {
		t.Errorf("the cluster's state is apart: got %+v, %v", st, err)
	}
}
