// Package state keeps what pacsd must remember across restarts, per cluster,
// in daemon.state_dir: the acting primary, the fencing epoch, and the spec's
// primary that must not trigger a switchover back after a failover.
//
// Each cluster's state is one JSON file written atomically (a temporary file,
// fsync, rename, fsync of the directory), so a crash leaves the old or the new
// state, never a torn one.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

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

// Load returns the stored state of cluster; the zero state when none is
// stored. A record that is not one Save wrote (empty, cut short, not a JSON
// object, without its epoch, with fields Save never writes, a negative
// epoch) is an error that names the file and matches
// reconcile.ErrRecordDamaged, never the zero state: pacsd then rebuilds the
// record from the nodes when they name the acting primary beyond doubt (see
// reconcile.CurrentState), and Save keeps the damaged file beside it.
func (s *Store) Load(cluster string) (reconcile.ClusterState, error) {
	var st reconcile.ClusterState
	p, err := s.path(cluster)
	if err == nil {
		err = read(p, &st, "epoch")
	}
	if err == nil && st.Epoch < 0 {
		err = fmt.Errorf("%w: %s: the epoch %d is negative", reconcile.ErrRecordDamaged, p, st.Epoch)
	}
	if err != nil {
		return reconcile.ClusterState{}, fmt.Errorf("while reading the state of cluster %q: %w", cluster, err)
	}
	return st, nil
}

// read decodes the JSON record at p into v; a missing file leaves v as it is.
// The record must be one JSON object with each of the keys required, and
// only fields of v: anything else (an empty file, a torn write, null, data
// after the object) is an error naming p.
func read(p string, v any, required ...string) error {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	damaged := reconcile.ErrRecordDamaged
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("%w: %s is empty (a write cut short?)", damaged, p)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("%w: %s is not a record pacsd wrote (cut short or edited?): %w", damaged, p, err)
	}
	if keys == nil {
		return fmt.Errorf("%w: %s is not a record pacsd wrote: it holds no JSON object", damaged, p)
	}
	for _, k := range required {
		if _, ok := keys[k]; !ok {
			return fmt.Errorf("%w: %s is not a record pacsd wrote: it has no %q", damaged, p, k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s is not a record pacsd wrote: %w", damaged, p, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s is not a record pacsd wrote: data follows the record", damaged, p)
	}
	return nil
}

// Save stores the state of cluster atomically and durably.
func (s *Store) Save(cluster string, st reconcile.ClusterState) error {
	p, err := s.path(cluster)
	if err != nil {
		return err
	}
	// A damaged record is kept beside the new one, for the operator.
	if _, err := s.Load(cluster); errors.Is(err, reconcile.ErrRecordDamaged) {
		if err := os.Rename(p, fmt.Sprintf("%s.damaged-%d", p, time.Now().Unix())); err != nil {
			return fmt.Errorf("%w: while setting the damaged state record %s aside: %w; make the state directory %s writable, then try again", reconcile.ErrRecordNotWritten, p, err, s.Dir)
		}
	}
	if err := s.write(cluster, "state", p, st); err != nil {
		return fmt.Errorf("%w: %w", reconcile.ErrRecordNotWritten, err)
	}
	return nil
}

// CheckWrite returns nil when a record of cluster could be saved now: a
// copy of its record (or, without one, as many bytes as a small record)
// is written in full to a temporary file of the state directory, synced
// and removed. The record itself is not touched, so no lock is needed.
func (s *Store) CheckWrite(cluster string) error {
	p, err := s.path(cluster)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if len(b) == 0 {
		b, err = []byte(strings.Repeat(" ", 512)), nil
	}
	if err == nil {
		err = os.MkdirAll(s.Dir, 0o700) // as Save makes it: a removed state directory is not a full one
	}
	if err == nil {
		var tmp string
		if tmp, err = writeTemp(s.Dir, ".cluster-*.tmp", b); err == nil {
			err = os.Remove(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: while trying whether the state directory %s can hold the record of cluster %q: %w", reconcile.ErrRecordNotWritten, s.Dir, cluster, err)
	}
	return nil
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
		err = read(p, &ls, "Node", "At")
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
// fsync of the directory); what names what is written, for errors. When any
// step before the rename fails (a short write, a full disk, a failed fsync)
// or the rename itself fails, the record at p is unchanged and the error
// says so.
func (s *Store) write(cluster, what, p string, v any) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("while creating the state directory %s for the %s of cluster %q: %w; "+
			"make it creatable (or create it, mode 0700) and try again", s.Dir, what, cluster, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the %s of cluster %q: %w", what, cluster, err)
	}
	b = append(b, '\n')
	failed := func(err error) error {
		return fmt.Errorf("while saving the %s of cluster %q to %s: %w; the record in that file is unchanged: "+
			"make sure the state directory %s is writable and its file system has free space, then try again", what, cluster, p, err, s.Dir)
	}
	if err := replaceFile(s.Dir, ".cluster-*.tmp", p, b); err != nil {
		return failed(err)
	}
	if err := syncDir(s.Dir); err != nil {
		return fmt.Errorf("while saving the %s of cluster %q to %s: the new record is in place but may not survive a crash, "+
			"as the state directory %s could not be synced: %w; check that file system, then try again", what, cluster, p, s.Dir, err)
	}
	return nil
}

// replaceFile puts b at p in dir at once: a temporary file named by
// pattern (mode 0600), written in full and synced, then renamed over p.
// When it fails, p is unchanged and the temporary file is gone. The
// directory is not synced (syncDir).
func replaceFile(dir, pattern, p string, b []byte) error {
	tmp, err := writeTemp(dir, pattern, b)
	if err == nil {
		if err = os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
		}
	}
	return err
}

// writeTemp writes b in full to a new file of dir named by pattern (mode
// 0600, owned like dir), syncs it and returns its path. When it fails, the
// file is gone.
func writeTemp(dir, pattern string, b []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	n, err := tmp.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = ownLikeDir(tmp, dir)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// ownLikeDir gives f, run as root, the owner and group of dir: a command
// run with sudo (pause, apply, events of the command line) leaves files the
// service, running as the state directory's owner, can read and write.
func ownLikeDir(f *os.File, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 && sys.Gid == 0 {
		return nil
	}
	return f.Chown(int(sys.Uid), int(sys.Gid))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
