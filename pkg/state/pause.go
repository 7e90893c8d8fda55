package state

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pacsd/pacsd/pkg/reconcile"
)

func (s *Store) pausePath(cluster string) (string, error) {
	p, err := s.path(cluster)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, "pause-"+strings.TrimPrefix(filepath.Base(p), "cluster-")), nil
}

// LoadPause returns whether cluster is paused (the zero Pause when it was
// never paused).
func (s *Store) LoadPause(cluster string) (reconcile.Pause, error) {
	var ps reconcile.Pause
	p, err := s.pausePath(cluster)
	if err == nil {
		err = read(p, &ps, "paused")
	}
	if err != nil {
		return reconcile.Pause{}, fmt.Errorf("while reading whether cluster %q is paused: %w", cluster, err)
	}
	return ps, nil
}

// SavePause stores ps for LoadPause, atomically and durably.
func (s *Store) SavePause(cluster string, ps reconcile.Pause) error {
	p, err := s.pausePath(cluster)
	if err != nil {
		return err
	}
	return s.write(cluster, "maintenance mode", p, ps)
}

// LoadPause returns whether cluster is paused.
func (e *Etcd) LoadPause(cluster string) (reconcile.Pause, error) {
	ctx, cancel := e.ctx()
	defer cancel()
	var ps reconcile.Pause
	resp, err := e.cli.Get(ctx, e.key("clusters", cluster, "pause"))
	if err != nil {
		return ps, unreachable(fmt.Sprintf("reading whether cluster %q is paused", cluster), err)
	}
	if len(resp.Kvs) == 1 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &ps); err != nil {
			return reconcile.Pause{}, fmt.Errorf("while reading whether cluster %q is paused: %w: etcd key %s: %v", cluster, reconcile.ErrRecordDamaged, e.key("clusters", cluster, "pause"), err)
		}
	}
	return ps, nil
}

// SavePause stores ps for LoadPause.
func (e *Etcd) SavePause(cluster string, ps reconcile.Pause) error {
	b, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	ctx, cancel := e.ctx()
	defer cancel()
	if _, err := e.cli.Put(ctx, e.key("clusters", cluster, "pause"), string(b)); err != nil {
		return unreachable(fmt.Sprintf("saving whether cluster %q is paused", cluster), err)
	}
	return nil
}
