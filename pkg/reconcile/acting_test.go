package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestCurrentState: the record names the acting primary; without one (lost
// or damaged), the world does, when it leaves no doubt; otherwise nothing
// may act.
func TestCurrentState(t *testing.T) {
	c := testCluster(t, "")
	running := func(writable bool, tl int64) *NodeState {
		return &NodeState{Container: &ContainerState{Running: true}, Data: DataState{Exists: true, Major: 15},
			DB: &DBState{InRecovery: !writable, Timeline: tl}}
	}
	stopped := func(tl uint32) *NodeState {
		return &NodeState{Container: &ContainerState{}, Data: DataState{Exists: true, Major: 15, Control: &Control{State: DBShutdowned, Timeline: tl}}}
	}
	stoppedAs := func(state ClusterDBState, tl uint32) *NodeState {
		return &NodeState{Container: &ContainerState{}, Data: DataState{Exists: true, Major: 15, Control: &Control{State: state, Timeline: tl}}}
	}
	empty := func() *NodeState { return &NodeState{} }
	world := func(db1, db2, db3 *NodeState) *Observed {
		return &Observed{Nodes: map[string]*NodeState{"db1": db1, "db2": db2, "db3": db3}}
	}
	tests := []struct {
		name   string
		record ClusterState
		world  *Observed
		damage string
		want   ClusterState
		err    string // a substring of the error; "" for none
	}{
		{name: "the record counts, whatever the world shows", record: ClusterState{Acting: "db2", Epoch: 3},
			world: world(running(true, 1), running(true, 4), running(false, 4)), want: ClusterState{Acting: "db2", Epoch: 3}},
		{name: "the record counts without a world", record: ClusterState{Acting: "db3", Epoch: 1}, want: ClusterState{Acting: "db3", Epoch: 1}},
		{name: "no record, no world: unknown", err: "no record of it is kept"},
		{name: "a stale record: its primary follows a later one", record: ClusterState{Acting: "db1"},
			world: world(running(false, 2), running(true, 2), running(false, 2)), err: `"db2" accepts writes on timeline 2, later than any promotion the record counts`},
		{name: "a stale record, every node stopped: a clean primary on a later timeline", record: ClusterState{Acting: "db1"},
			world: world(stopped(1), stopped(2), stoppedAs(DBShutdownedInRecovery, 2)), err: `"db2" was last a primary on timeline 2`},
		{name: "a stale record after several promotions", record: ClusterState{Acting: "db3", Epoch: 2},
			world: world(running(true, 5), running(false, 5), running(false, 5)), err: "remove the record"},
		{name: "a record whose primary accepts writes stands against a standby promoted by hand", record: ClusterState{Acting: "db1"},
			world: world(running(true, 1), running(false, 1), running(true, 2)), want: ClusterState{Acting: "db1"}},
		{name: "a record ahead of the world: recorded, not yet promoted", record: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"},
			world: world(stopped(1), running(false, 1), running(false, 1)), want: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"}},
		{name: "a record after a failover, the old primary started by hand", record: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"},
			world: world(running(true, 1), running(true, 2), running(false, 2)), want: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"}},
		{name: "new cluster: the file's primary", world: world(empty(), empty(), empty()), want: ClusterState{Acting: "db1"}},
		{name: "no record after a switchover: the one writable node, Keep set",
			world: world(running(false, 2), running(true, 2), running(false, 2)), want: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"}},
		{name: "no record, the file's primary writable", world: world(running(true, 1), running(false, 1), stopped(1)),
			want: ClusterState{Acting: "db1"}},
		{name: "damaged record: rebuilt the same way", damage: "cluster-pacs.json is empty",
			world: world(running(false, 3), running(false, 3), running(true, 3)), want: ClusterState{Acting: "db3", Epoch: 2, Keep: "db1"}},
		{name: "two writable nodes", world: world(running(true, 1), running(true, 2), running(false, 2)),
			err: `nodes "db1", "db2" all accept writes`},
		{name: "no node writable", world: world(stopped(1), running(false, 2), stopped(2)), err: "no node accepts writes"},
		{name: "a stopped node on a later timeline", world: world(running(true, 1), stopped(2), running(false, 1)),
			err: `"db1" accepts writes on timeline 1, but "db2" shows timeline 2`},
		{name: "a node whose data could not be read", world: world(running(true, 2), &NodeState{Data: DataState{Unknown: true}}, running(false, 2)),
			err: `the timeline of "db2" is not certain`},
		{name: "data without a readable control file", world: world(running(true, 2), &NodeState{Data: DataState{Exists: true, Major: 15}}, running(false, 2)),
			err: `the timeline of "db2" is not certain`},
		{name: "a stopped standby: its timeline is not certain", world: world(running(true, 1), stoppedAs(DBShutdownedInRecovery, 1), running(false, 1)),
			err: `start "db2" by hand`},
		{name: "a primary promoted then crashed before its first checkpoint", world: world(running(true, 1), stoppedAs(DBInProduction, 1), running(false, 1)),
			err: `the timeline of "db2" is not certain`},
		{name: "a stopped old primary, cleanly shut down: certain", world: world(stopped(1), running(true, 2), running(false, 2)),
			want: ClusterState{Acting: "db2", Epoch: 1, Keep: "db1"}},
		{name: "a partial standby does not count", world: world(running(true, 1), &NodeState{Data: DataState{Exists: true, Major: 15, Partial: true}}, empty()),
			want: ClusterState{Acting: "db1"}},
		{name: "only the file's primary holds data, stopped: it", world: world(stopped(3), empty(), empty()), want: ClusterState{Acting: "db1", Epoch: 2}},
		{name: "only the file's primary holds data, unreadable: it (plan checks its data)", world: world(&NodeState{Data: DataState{Unknown: true}}, empty(), empty()),
			want: ClusterState{Acting: "db1"}},
		{name: "only the file's primary holds data, another unreadable: unknown", world: world(stopped(1), &NodeState{Data: DataState{Unknown: true}}, empty()),
			err: "no node accepts writes"},
		{name: "only a standby holds data: not a new cluster", world: world(empty(), running(false, 1), empty()), err: "no node accepts writes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.world != nil {
				tt.world.RecordError = tt.damage
			}
			got, err := CurrentState(c, tt.record, tt.world)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrActingUnknown) {
					t.Fatalf("CurrentState: %+v, %v; want ErrActingUnknown with %q", got, err, tt.err)
				}
				if tt.world != nil && !strings.Contains(err.Error(), "docker st") && !strings.Contains(err.Error(), "remove the record") {
					t.Errorf("the error does not say how to repair: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CurrentState: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CurrentState (-want +got):\n%s", diff)
			}
			if acting, err := ActingPrimary(c, tt.record, tt.world); err != nil || acting != tt.want.Acting {
				t.Errorf("ActingPrimary: %q, %v; want %q", acting, err, tt.want.Acting)
			}
		})
	}
	// The damage is named in the refusal.
	w := world(stopped(1), stopped(2), empty())
	w.RecordError = "cluster-pacs.json is empty"
	if _, err := CurrentState(c, ClusterState{}, w); err == nil || !strings.Contains(err.Error(), "its record is damaged: cluster-pacs.json is empty") {
		t.Errorf("refusal with a damaged record: %v; want the damage named", err)
	}
}

// TestPrimaryWatch walks the supervisor's state machine through its
// transitions, one check at a time.
func TestPrimaryWatch(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const after = time.Second
	healthy := &DBState{WAL: 42, SyncStandbys: []string{"db2"}}
	down := errors.New("its container does not run")
	type step struct {
		node   string
		at     int // ms
		h      *DBState
		err    error
		locked bool
		began  int // ms, when the check started; 0 for at
		want   Verdict
	}
	tests := []struct {
		name  string
		start PrimaryWatch
		steps []step
		check func(t *testing.T, w PrimaryWatch)
	}{
		{name: "healthy keeps the sight", steps: []step{{node: "db1", at: 0, h: healthy, want: Healthy}},
			check: func(t *testing.T, w PrimaryWatch) {
				if w.Last.WAL != 42 || w.Last.Node != "db1" || !w.Last.At.Equal(at(0)) || len(w.Last.SyncStandbys) != 1 {
					t.Errorf("last sight: %+v", w.Last)
				}
			}},
		{name: "a slow check's sight counts from when it began", steps: []step{{node: "db1", at: 1500, began: 200, h: healthy, want: Healthy}},
			check: func(t *testing.T, w PrimaryWatch) {
				if !w.Last.At.Equal(at(200)) {
					t.Errorf("the sight of a check begun at 200 ms and ended at 1500 ms is dated %s; the WAL position it read may be that old", w.Last.At.Sub(t0))
				}
			}},
		{name: "a slow check, then a hang: the sight and the loss dated alike, the position still known", steps: []step{
			{node: "db1", at: 1200, began: 1, h: healthy, want: Healthy},
			{node: "db1", at: 3300, began: 1300, err: down, want: Recheck},
			{node: "db1", at: 3500, began: 3400, err: down, locked: true, want: FailOver}},
			check: func(t *testing.T, w PrimaryWatch) {
				if !w.Last.LostAt.Equal(at(1300)) || !w.Last.positionKnown() {
					t.Errorf("the failover's sight: %+v (lost at %s); want lost at 1.3 s, when the hanging check began, and the position known", w.Last, w.Last.LostAt.Sub(t0))
				}
			}},
		{name: "lost without the lock: recheck", steps: []step{{node: "db1", at: 0, err: down, want: Recheck}}},
		{name: "lost under the lock: announced once", steps: []step{
			{node: "db1", at: 0, err: down, want: Recheck},
			{node: "db1", at: 10, err: down, locked: true, want: LostNow},
			{node: "db1", at: 100, err: down, locked: true, want: StillLost}}},
		{name: "lost for failover.after: fail over, counted from the first failed check", steps: []step{
			{node: "db1", at: 0, err: down, want: Recheck},
			{node: "db1", at: 999, err: down, locked: true, want: LostNow},
			{node: "db1", at: 1000, err: down, locked: true, want: FailOver}},
			check: func(t *testing.T, w PrimaryWatch) {
				if w.Last.Node != "db1" || !w.Last.LostAt.Equal(at(0)) {
					t.Errorf("the failover's sight: %+v; want LostAt at the first failed check", w.Last)
				}
			}},
		{name: "the timer counts while the lock is busy", steps: []step{
			{node: "db1", at: 0, err: down, want: Recheck},
			{node: "db1", at: 500, err: down, want: Recheck},
			{node: "db1", at: 1200, err: down, locked: true, want: FailOver}}},
		{name: "never a failover without a check under the lock", steps: []step{
			{node: "db1", at: 0, err: down, want: Recheck},
			{node: "db1", at: 5000, err: down, want: Recheck}}},
		{name: "back before failover.after: recovered, timer reset", steps: []step{
			{node: "db1", at: 0, err: down, locked: true, want: LostNow},
			{node: "db1", at: 500, h: healthy, want: Recovered},
			{node: "db1", at: 900, err: down, locked: true, want: LostNow},
			{node: "db1", at: 1500, err: down, locked: true, want: StillLost}}},
		{name: "a primary found again under the lock is not lost", steps: []step{
			{node: "db1", at: 0, err: down, want: Recheck},
			{node: "db1", at: 5, h: healthy, locked: true, want: Healthy}}},
		{name: "in recovery counts as lost", steps: []step{{node: "db1", at: 0, h: &DBState{InRecovery: true}, locked: true, want: LostNow}}},
		{name: "a refused login is alive", steps: []step{{node: "db1", at: 0, err: ErrServerRefused, locked: true, want: Healthy}}},
		{name: "a paused primary (no answer) is lost", steps: []step{
			{node: "db1", at: 0, err: errors.New("timeout: context deadline exceeded"), locked: true, want: LostNow},
			{node: "db1", at: 2000, err: errors.New("timeout"), locked: true, want: FailOver}}},
		{name: "engine unreachable is lost too (Failover refuses to promote without the fence)", steps: []step{
			{node: "db1", at: 0, err: ErrEngineUnreachable, locked: true, want: LostNow}}},
		{name: "another acting primary starts anew", start: PrimaryWatch{Node: "db1", DownSince: t0, Confirmed: true, Last: LastSeen{Node: "db1", WAL: 7}},
			steps: []step{{node: "db2", at: 3000, err: down, locked: true, want: LostNow}},
			check: func(t *testing.T, w PrimaryWatch) {
				if w.Last.WAL != 0 || !w.DownSince.Equal(at(3000)) {
					t.Errorf("a watch of db2 kept db1's: %+v", w)
				}
			}},
		{name: "a held back failover waits", start: PrimaryWatch{Node: "db1", RetryAfter: at(4000)},
			steps: []step{
				{node: "db1", at: 0, err: down, locked: true, want: LostNow},
				{node: "db1", at: 2000, err: down, locked: true, want: StillLost},
				{node: "db1", at: 4000, err: down, locked: true, want: FailOver}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.start
			for i, s := range tt.steps {
				var v Verdict
				var lost error
				ch := HealthCheck{At: at(s.at), Health: s.h, Err: s.err, Locked: s.locked}
				if s.began != 0 {
					ch.Began = at(s.began)
				}
				w, v, lost = w.Observe(s.node, ch, after)
				if v != s.want {
					t.Fatalf("step %d: verdict %v, want %v (watch %+v)", i, v, s.want, w)
				}
				if (lost == nil) != (v == Healthy || v == Recovered) {
					t.Errorf("step %d: verdict %v with reason %v", i, v, lost)
				}
			}
			if tt.check != nil {
				tt.check(t, w)
			}
		})
	}
}

// TestFailedOver: a failover done or no longer needed starts the watch anew;
// a refused or failed one holds the next back.
func TestFailedOver(t *testing.T) {
	now := time.Unix(1e9, 0)
	w := PrimaryWatch{Node: "db1", DownSince: now, Confirmed: true}
	for _, err := range []error{nil, ErrActingChanged} {
		if got := w.FailedOver(now, err); !cmp.Equal(got, PrimaryWatch{}) {
			t.Errorf("after %v: %+v; want a new watch", err, got)
		}
	}
	for _, err := range []error{ErrNoCandidate, ErrNotFenced, errors.New("promotion failed")} {
		got := w.FailedOver(now, err)
		if !got.RetryAfter.Equal(now.Add(FailoverRetry)) || !got.Confirmed || got.Node != "db1" {
			t.Errorf("after %v: %+v; want the next held back for %s", err, got, FailoverRetry)
		}
	}
}
