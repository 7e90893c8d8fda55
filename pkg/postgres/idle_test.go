package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeIdle is an idleSet of strings on a clock the test moves, recording
// what it drops.
type fakeIdle struct {
	*idleSet[string]
	mu      sync.Mutex
	dropped []string
	clock   time.Time
}

func newFakeIdle(timeout time.Duration) *fakeIdle {
	f := &fakeIdle{clock: time.Unix(1_000_000, 0)}
	f.idleSet = newIdleSet(timeout, func(v string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.dropped = append(f.dropped, v)
	})
	f.now = func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.clock
	}
	return f
}

func (f *fakeIdle) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

func (f *fakeIdle) drops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.dropped)
	slices.Sort(out)
	return out
}

func TestIdleSet(t *testing.T) {
	a := newConnKey("10.0.0.1:5432", "pacs", "postgres", "pw")
	b := newConnKey("10.0.0.2:5432", "pacs", "postgres", "pw")
	type step struct {
		put     string // "a=v" or "b=v": put v under that key
		take    string // "a" or "b": take, want the value wantTake ("" for none)
		want    string
		advance time.Duration
		sweep   bool
	}
	tests := []struct {
		name      string
		timeout   time.Duration
		steps     []step
		wantDrops []string
		wantLen   int
	}{
		{
			name:    "a value put is taken once",
			timeout: time.Minute,
			steps:   []step{{put: "a=c1"}, {take: "a", want: "c1"}, {take: "a", want: ""}},
		},
		{
			name:    "keys do not share values",
			timeout: time.Minute,
			steps:   []step{{put: "a=c1"}, {take: "b", want: ""}, {take: "a", want: "c1"}},
		},
		{
			name:      "one idle value per key: a second is dropped",
			timeout:   time.Minute,
			steps:     []step{{put: "a=c1"}, {put: "a=c2"}, {put: "b=c3"}},
			wantDrops: []string{"c2"},
			wantLen:   2,
		},
		{
			name:      "a value idle for longer than the timeout is dropped, not taken",
			timeout:   time.Minute,
			steps:     []step{{put: "a=c1"}, {advance: time.Minute + time.Second}, {take: "a", want: ""}},
			wantDrops: []string{"c1"},
		},
		{
			name:    "a value idle for less than the timeout is taken",
			timeout: time.Minute,
			steps:   []step{{put: "a=c1"}, {advance: 59 * time.Second}, {take: "a", want: "c1"}},
		},
		{
			name:    "a sweep drops only the expired values",
			timeout: time.Minute,
			steps: []step{{put: "a=c1"}, {advance: 30 * time.Second}, {put: "b=c2"},
				{advance: 31 * time.Second}, {sweep: true}, {take: "b", want: "c2"}},
			wantDrops: []string{"c1"},
		},
		{
			name:      "no timeout keeps nothing",
			timeout:   0,
			steps:     []step{{put: "a=c1"}, {take: "a", want: ""}},
			wantDrops: []string{"c1"},
		},
	}
	keys := map[string]connKey{"a": a, "b": b}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIdle(tt.timeout)
			defer f.closeAll(true)
			for i, s := range tt.steps {
				switch {
				case s.put != "":
					k, v, _ := strings.Cut(s.put, "=")
					f.put(keys[k], v)
				case s.take != "":
					got, ok := f.take(keys[s.take])
					if got != s.want || ok != (s.want != "") {
						t.Errorf("step %d: take(%s) = %q, %v; want %q", i, s.take, got, ok, s.want)
					}
				case s.advance > 0:
					f.advance(s.advance)
				case s.sweep:
					f.sweep()
				}
			}
			if diff := cmp.Diff(tt.wantDrops, f.drops()); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
			if got := f.len(); got != tt.wantLen {
				t.Errorf("%d values idle at the end, want %d", got, tt.wantLen)
			}
		})
	}
}

// TestIdleSetCloseAll: closing drops every idle value, and every value put
// afterwards.
func TestIdleSetCloseAll(t *testing.T) {
	f := newFakeIdle(time.Minute)
	f.put(newConnKey("h:1", "u", "d", "p"), "c1")
	f.put(newConnKey("h:2", "u", "d", "p"), "c2")
	f.closeAll(true)
	f.put(newConnKey("h:1", "u", "d", "p"), "c3")
	if diff := cmp.Diff([]string{"c1", "c2", "c3"}, f.drops()); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if n := f.len(); n != 0 {
		t.Errorf("%d values idle after closeAll, want 0", n)
	}
}

// TestIdleSetTimerSweeps: without any further use, an idle value is dropped
// once the timeout has passed.
func TestIdleSetTimerSweeps(t *testing.T) {
	dropped := make(chan string, 1)
	s := newIdleSet(20*time.Millisecond, func(v string) { dropped <- v })
	defer s.closeAll(true)
	s.put(newConnKey("h:1", "u", "d", "p"), "c1")
	select {
	case v := <-dropped:
		if v != "c1" {
			t.Errorf("dropped %q, want c1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the idle value was not dropped 5 s after its 20 ms timeout")
	}
	if n := s.len(); n != 0 {
		t.Errorf("%d values idle after the sweep, want 0", n)
	}
}

// TestIdleSetConcurrent: many goroutines taking and putting (run with
// -race) never get the same value at once, and every value ends up either
// idle or dropped.
func TestIdleSetConcurrent(t *testing.T) {
	var mu sync.Mutex
	dropped := map[string]bool{}
	s := newIdleSet(time.Minute, func(v string) {
		mu.Lock()
		defer mu.Unlock()
		dropped[v] = true
	})
	keys := []connKey{newConnKey("h:1", "u", "d", "p"), newConnKey("h:2", "u", "d", "p")}
	var inUse sync.Map
	var wg sync.WaitGroup
	const workers, rounds = 8, 200
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := keys[(w+i)%len(keys)]
				v, ok := s.take(k)
				if !ok {
					v = fmt.Sprintf("w%d-%d", w, i)
				}
				if _, dup := inUse.LoadOrStore(v, true); dup {
					t.Errorf("value %s handed out twice at once", v)
				}
				inUse.Delete(v)
				s.put(k, v)
			}
		})
	}
	wg.Wait()
	idle := s.len()
	s.closeAll(true)
	mu.Lock()
	defer mu.Unlock()
	if idle != len(keys) {
		t.Errorf("%d values idle after the workers, want %d (one per key)", idle, len(keys))
	}
	for k, v := range dropped {
		if !v {
			t.Errorf("value %s not dropped", k)
		}
	}
}

// TestConnKey: the key tells passwords apart without holding them.
func TestConnKey(t *testing.T) {
	k := newConnKey("10.0.0.1:5432", "pacs", "postgres", "hunter2-secret")
	if k == newConnKey("10.0.0.1:5432", "pacs", "postgres", "hunter3-secret") {
		t.Error("two passwords give the same key: a changed password would get the old connection")
	}
	if k != newConnKey("10.0.0.1:5432", "pacs", "postgres", "hunter2-secret") {
		t.Error("the same login gives two keys: no connection would be kept")
	}
	for _, other := range []connKey{
		newConnKey("10.0.0.2:5432", "pacs", "postgres", "hunter2-secret"),
		newConnKey("10.0.0.1:5432", "other", "postgres", "hunter2-secret"),
		newConnKey("10.0.0.1:5432", "pacs", "other", "hunter2-secret"),
	} {
		if k == other {
			t.Errorf("%+v and %+v are one key", k, other)
		}
	}
	if s := fmt.Sprintf("%+v %#v", k, k); strings.Contains(s, "hunter2") {
		t.Errorf("the key holds the password: %s", s)
	}
}

func TestStale(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		closed bool
		want   bool
	}{
		{"the connection broke while the caller still waits: try a new one", live, true, true},
		{"the server answered with an error, the connection is fine: its answer", live, false, false},
		{"the caller gave up: nothing more to try", done, true, false},
		{"the caller gave up, the connection is fine", done, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stale(tt.ctx, tt.closed); got != tt.want {
				t.Errorf("stale = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestClosedConn: a Conn's methods after Close fail without touching the
// network, and Close is idempotent.
func TestClosedConn(t *testing.T) {
	c := &Conn{d: New(), addr: "10.0.0.1:5432", user: "pacs"}
	c.Close()
	c.Close()
	ctx := context.Background()
	calls := map[string]func() error{
		"State":    func() error { _, err := c.State(ctx); return err },
		"Health":   func() error { _, err := c.Health(ctx); return err },
		"Reload":   func() error { return c.Reload(ctx) },
		"ReadFile": func() error { _, err := c.ReadFiles(ctx, []string{"x"}, nil); return err },
		"Promote":  func() error { return c.Promote(ctx) },
		"DropSlot": func() error { return c.DropSlot(ctx, "s") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, errClosed) || !strings.Contains(err.Error(), c.addr) {
			t.Errorf("%s on a closed Conn: %v, want errClosed naming %s", name, err, c.addr)
		}
	}
}
