// Package state keeps what pacsd must remember across restarts, per cluster,
// in daemon.state_dir: the acting primary, the fencing epoch, and the spec's
// primary that must not trigger a switchover back after a failover.
//
// Each cluster's state is one JSON file written atomically (a temporary file,
// fsync, rename, fsync of the directory), so a crash leaves the old or the new
// state, never a torn one.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

// Store is a directory of cluster states. It implements reconcile.StateStore.
type Store struct {
	Dir string
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (s *Store) path(cluster string) (string, error) {
	if !safeName.MatchString(cluster) {
		return "", fmt.Errorf("cluster name %q cannot name a state file", cluster)
	}
	return filepath.Join(s.Dir, "cluster-"+cluster+".json"), nil
}

// Load returns the stored state of cluster; the zero state when none is stored.
func (s *Store) Load(cluster string) (reconcile.ClusterState, error) {
	var st reconcile.ClusterState
	p, err := s.path(cluster)
	if err == nil {
		err = read(p, &st)
	}
	if err != nil {
		return reconcile.ClusterState{}, fmt.Errorf("while reading the state of cluster %q: %w; fix or remove the file only if you know which node is the primary", cluster, err)
	}
	return st, nil
}

// read decodes the JSON file at p into v; a missing file leaves v as it is.
func read(p string, v any) error {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		if err = json.Unmarshal(b, v); err != nil {
			err = fmt.Errorf("%s: %w", p, err)
		}
	}
	return err
}

// Save stores the state of cluster atomically and durably.
func (s *Store) Save(cluster string, st reconcile.ClusterState) error {
	p, err := s.path(cluster)
	if err != nil {
		return err
	}
	return s.write(cluster, "state", p, st)
}

// seenPath is where the failover supervisor's last sight of a healthy
// primary is kept.
func (s *Store) seenPath(cluster string) (string, error) {
	p, err := s.path(cluster)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, "seen-"+strings.TrimPrefix(filepath.Base(p), "cluster-")), nil
}

// LoadSeen returns what the failover supervisor last saw of a healthy
// primary of cluster (a zero LastSeen when nothing is kept), so that a pacsd
// started again during an outage knows the synchronous standbys and the
// primary's last WAL position.
func (s *Store) LoadSeen(cluster string) (reconcile.LastSeen, error) {
	var ls reconcile.LastSeen
	p, err := s.seenPath(cluster)
	if err == nil {
		err = read(p, &ls)
	}
	if err != nil {
		return reconcile.LastSeen{}, fmt.Errorf("while reading what was last seen of cluster %q's primary: %w", cluster, err)
	}
	return ls, nil
}

// SaveSeen stores ls for LoadSeen, atomically and durably.
func (s *Store) SaveSeen(cluster string, ls reconcile.LastSeen) error {
	p, err := s.seenPath(cluster)
	if err != nil {
		return err
	}
	return s.write(cluster, "last sight of the primary", p, ls)
}

// write stores v as JSON at p atomically (a temporary file, fsync, rename,
// fsync of the directory); what names what is written, for errors.
func (s *Store) write(cluster, what, p string, v any) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("while creating the state directory %s: %w", s.Dir, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the %s of cluster %q: %w", what, cluster, err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".cluster-*.tmp")
	if err != nil {
		return fmt.Errorf("while saving the %s of cluster %q: %w", what, cluster, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err == nil {
		err = syncDir(s.Dir)
	}
	if err != nil {
		return fmt.Errorf("while saving the %s of cluster %q to %s: %w", what, cluster, p, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
