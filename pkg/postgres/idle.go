package postgres

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long a Database keeps a connection nobody uses
// before it closes it.
const DefaultIdleTimeout = 60 * time.Second

// connKey names the server and login a connection was opened for: a
// connection is handed out again only for the same address, user,
// database and password. The password is kept as its SHA-256 only.
type connKey struct {
	addr, user, database string
	password             [sha256.Size]byte
}

func newConnKey(addr, user, database, password string) connKey {
	return connKey{addr: addr, user: user, database: database, password: sha256.Sum256([]byte(password))}
}

// idleSet keeps at most one idle value per key, for at most timeout; it
// closes the values it drops (expired, a second one for a key, after
// closeAll) with drop, outside its lock. It is safe for concurrent use.
type idleSet[T any] struct {
	timeout time.Duration
	drop    func(T)
	now     func() time.Time

	mu     sync.Mutex
	idle   map[connKey]idleEntry[T]
	timer  *time.Timer // the next sweep, nil when none is due
	closed bool
}

type idleEntry[T any] struct {
	v     T
	since time.Time
}

func newIdleSet[T any](timeout time.Duration, drop func(T)) *idleSet[T] {
	return &idleSet[T]{timeout: timeout, drop: drop, now: time.Now}
}

// take removes and returns the idle value of k; ok is false when there is
// none, or it was idle for longer than the timeout (then it is dropped).
func (s *idleSet[T]) take(k connKey) (v T, ok bool) {
	s.mu.Lock()
	e, found := s.idle[k]
	if found {
		delete(s.idle, k)
	}
	s.mu.Unlock()
	if !found {
		return v, false
	}
	if s.now().Sub(e.since) > s.timeout {
		s.drop(e.v)
		return v, false
	}
	return e.v, true
}

// put keeps v as the idle value of k; when k has one already, or the set
// was closed, or keeps nothing (timeout <= 0), v is dropped instead.
func (s *idleSet[T]) put(k connKey, v T) {
	s.mu.Lock()
	if _, busy := s.idle[k]; busy || s.closed || s.timeout <= 0 {
		s.mu.Unlock()
		s.drop(v)
		return
	}
	if s.idle == nil {
		s.idle = map[connKey]idleEntry[T]{}
	}
	s.idle[k] = idleEntry[T]{v: v, since: s.now()}
	if s.timer == nil {
		s.timer = time.AfterFunc(s.timeout, s.sweep)
	}
	s.mu.Unlock()
}

// sweep drops the values idle for longer than the timeout and plans the
// next sweep while values remain.
func (s *idleSet[T]) sweep() {
	s.mu.Lock()
	now := s.now()
	var expired []T
	next := time.Duration(-1)
	for k, e := range s.idle {
		left := s.timeout - now.Sub(e.since)
		if left <= 0 {
			expired = append(expired, e.v)
			delete(s.idle, k)
		} else if next < 0 || left < next {
			next = left
		}
	}
	s.timer = nil
	if next >= 0 && !s.closed {
		s.timer = time.AfterFunc(next, s.sweep)
	}
	s.mu.Unlock()
	for _, v := range expired {
		s.drop(v)
	}
}

// closeAll drops every idle value; with for good, later puts drop theirs.
func (s *idleSet[T]) closeAll(forGood bool) {
	s.mu.Lock()
	all := s.idle
	s.idle = nil
	if forGood {
		s.closed = true
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	for _, e := range all {
		s.drop(e.v)
	}
}

// len returns how many values are idle.
func (s *idleSet[T]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idle)
}
