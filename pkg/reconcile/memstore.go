package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pacsd/pacsd/pkg/certs"
)

// MemoryStore is a ClusterStore held in memory, for one process: the unit
// tests' store, and the shape a distributed store takes (a record per
// cluster, compare before act under the lock). The zero value is ready.
type MemoryStore struct {
	mu    sync.Mutex
	state map[string]ClusterState
	seen  map[string]LastSeen
	locks map[string]chan struct{}
	// Saves counts the calls of Save that stored a state.
	Saves int
	// SaveErr, when set, makes Save fail with it (a full disk) and store
	// nothing.
	SaveErr error
	// LoadErr, when set, makes Load fail with it.
	LoadErr error
	cas     map[string]*certs.Authority
}

// Authority returns cluster's certificate authority, made at the first call.
func (m *MemoryStore) Authority(_ context.Context, cluster string) (*certs.Authority, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.cas[cluster]; ok {
		return a, nil
	}
	a, _, err := certs.NewAuthority(cluster, time.Now())
	if err != nil {
		return nil, err
	}
	if m.cas == nil {
		m.cas = map[string]*certs.Authority{}
	}
	m.cas[cluster] = a
	return a, nil
}

// Load returns the state of cluster; the zero state when none is stored.
func (m *MemoryStore) Load(cluster string) (ClusterState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.LoadErr != nil {
		return ClusterState{}, m.LoadErr
	}
	return m.state[cluster], nil
}

// Save stores s as the state of cluster.
func (m *MemoryStore) Save(cluster string, s ClusterState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.SaveErr != nil {
		return m.SaveErr
	}
	if m.state == nil {
		m.state = map[string]ClusterState{}
	}
	m.state[cluster] = s
	m.Saves++
	return nil
}

// Forget drops the record of cluster, as a lost state directory would.
func (m *MemoryStore) Forget(cluster string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.state, cluster)
	delete(m.seen, cluster)
}

// LoadSeen returns the last sight of cluster's primary.
func (m *MemoryStore) LoadSeen(cluster string) (LastSeen, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[cluster], nil
}

// SaveSeen keeps ls as the last sight of cluster's primary.
func (m *MemoryStore) SaveSeen(cluster string, ls LastSeen) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]LastSeen{}
	}
	m.seen[cluster] = ls
	return nil
}

// Lock takes cluster's lock, waiting until ctx is done.
func (m *MemoryStore) Lock(ctx context.Context, cluster string) (func(), error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]chan struct{}{}
	}
	ch := m.locks[cluster]
	if ch == nil {
		ch = make(chan struct{}, 1)
		m.locks[cluster] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
		select {
		case ch <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster %q: %w by another holder: %w", cluster, ErrLocked, ctx.Err())
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch }) }, nil
}

// Held reports whether the lock named name (a cluster's, or a node's work
// lock) is held.
func (m *MemoryStore) Held(name string) bool {
	m.mu.Lock()
	ch := m.locks[name]
	m.mu.Unlock()
	return len(ch) == 1
}
